// libFuzzer target: GgufFile::from_bytes on arbitrary bytes. Whatever loads is
// used as a caller would: every tensor found by name and (when small enough)
// dequantized, every metadata value read through the accessor of its type,
// arrays walked to the bottom. Only sparseinfer::format_error may escape the
// parser; dequantize may refuse an undecoded type with sparseinfer::error.
#include <sparseinfer/gguf.hpp>

#include <cstdint>
#include <vector>

namespace {
namespace si = sparseinfer;

void read_value(const si::GgufValue& v) {
    switch (v.type()) {
    case si::GgufValueType::string: (void)v.as_string(); break;
    case si::GgufValueType::array:
        for (const auto& e : v.array()) read_value(e);  // depth bounded by the parser
        break;
    case si::GgufValueType::float32:
    case si::GgufValueType::float64: (void)v.as_float(); break;
    case si::GgufValueType::boolean: (void)v.as_bool(); break;
    default: try { (void)v.as_uint();
        } catch (const si::format_error&) {
            (void)v.as_int();  // a negative signed value: must read as int64
        }
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::vector<std::uint8_t> exact(data, data + size);  // ASan sees any read past the end
    try {
        const auto f = si::GgufFile::from_bytes(exact.data(), exact.size());
        for (const auto& t : f) {
            if (f.find(t.name) != &t) __builtin_trap();  // names are unique and every one is found
            if (t.data < exact.data() || t.data + t.bytes > exact.data() + exact.size()) __builtin_trap();
            if (si::ggml_can_dequantize(t.type) && t.rows * t.cols <= (1u << 16)) (void)f.dequantize(t);
        }
        for (const auto key : f.metadata_keys()) read_value(*f.metadata(key));
        (void)f.metadata_strings("tokenizer.ggml.tokens");
    } catch (const si::format_error&) {}
    return 0;
}
