// Tests of <sparseinfer/gguf.hpp>: reading GGUF files.
//
// The reference file tests/data/gguf_reference.gguf is written by
// scripts/gguf_reference.py with numpy alone: hand-built blocks of every
// decoded type with their expected decodes, floats with numpy's reference
// quantizations, and metadata of every type. Damaged files are built by hand
// here, byte by byte, independent of the library's writer.
#include <sparseinfer/gguf.hpp>
#include <sparseinfer/gguf_writer.hpp>

#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "catch.hpp"
#include "file_test_util.hpp"

namespace si = sparseinfer;

namespace {

std::string read_file(const std::string& path) {
    si::MappedFile f(path);
    return std::string(reinterpret_cast<const char*>(f.data()), f.size());
}

std::string reference_path() {
    std::string here = __FILE__;
    return here.substr(0, here.find_last_of("/\\") + 1) + "data/gguf_reference.gguf";
}

const std::string& reference() {
    static const std::string bytes = read_file(reference_path());
    return bytes;
}

si::GgufFile open(const std::string& bytes) { return si::GgufFile::from_bytes(bytes.data(), bytes.size()); }

std::string open_error(const std::string& bytes) {
    const std::vector<std::uint8_t> exact(bytes.begin(), bytes.end());  // ASan sees reads past the end
    try {
        (void)si::GgufFile::from_bytes(exact.data(), exact.size());
    } catch (const si::format_error& e) {
        return e.what();
    }
    return "";
}

/// Little-endian byte builder, written here independently of the library.
struct Bytes {
    std::string s;
    Bytes& u8(unsigned v) {
        s += static_cast<char>(v);
        return *this;
    }
    Bytes& u32(std::uint32_t v) {
        for (int i = 0; i < 4; ++i) s += static_cast<char>(v >> (8 * i));
        return *this;
    }
    Bytes& u64(std::uint64_t v) {
        for (int i = 0; i < 8; ++i) s += static_cast<char>(v >> (8 * i));
        return *this;
    }
    Bytes& str(const std::string& v) {
        u64(v.size());
        s += v;
        return *this;
    }
    Bytes& header(std::uint64_t tensors, std::uint64_t kvs, std::uint32_t version = 3) {
        s += "GGUF";
        return u32(version).u64(tensors).u64(kvs);
    }
    Bytes& pad(std::size_t align) {
        while (s.size() % align != 0) s += '\0';
        return *this;
    }
};

std::uint32_t float_bits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

/// Reads everything a loaded file offers, so every accepted damaged file is
/// exercised as a user would (ASan and UBSan watch).
void use_everything(const si::GgufFile& f) {
    for (const auto& t : f) {
        REQUIRE(f.find(t.name) == &t);
        if (si::ggml_can_dequantize(t.type) && t.rows * t.cols <= (1u << 16)) (void)f.dequantize(t);
    }
    for (const auto key : f.metadata_keys()) {
        const auto v = f.metadata(key);
        REQUIRE(v.has_value());
        std::vector<si::GgufValue> todo{*v};
        while (!todo.empty()) {
            const si::GgufValue x = todo.back();
            todo.pop_back();
            switch (x.type()) {
            case si::GgufValueType::string: (void)x.as_string(); break;
            case si::GgufValueType::array:
                for (const auto& e : x.array()) todo.push_back(e);
                break;
            case si::GgufValueType::float32:
            case si::GgufValueType::float64: (void)x.as_float(); break;
            case si::GgufValueType::boolean: (void)x.as_bool(); break;
            default: (void)x.as_int(); break;
            }
        }
    }
}

}  // namespace

TEST_CASE("edge cases: empty input, bare headers, an empty file of version 2") {
    CHECK(open_error("").find("truncated") != std::string::npos);
    CHECK_THROWS_AS(si::GgufFile::from_bytes(nullptr, 0), si::format_error);
    CHECK_THROWS_AS(si::GgufFile::from_bytes(nullptr, 4), si::error);
    CHECK(open_error("GGUX").find("bad magic") != std::string::npos);
    CHECK(open_error("GGUF").find("truncated") != std::string::npos);
    for (std::uint32_t version : {2u, 3u}) {
        const auto f = open(Bytes().header(0, 0, version).s);
        CHECK(f.version() == version);
        CHECK(f.size() == 0);
        CHECK(f.alignment() == 32);
        CHECK(f.find("x") == nullptr);
        CHECK_FALSE(f.metadata_string("general.architecture").has_value());
    }
    CHECK(open_error(Bytes().header(0, 0, 1).s).find("version 1") != std::string::npos);
    CHECK(open_error(Bytes().header(0, 0, 0x03000000).s).find("version is 50331648") != std::string::npos);
}

TEST_CASE("the reference file: structure, alignment and placement") {
    const auto f = open(reference());
    CHECK(f.version() == 3);
    CHECK(f.alignment() == 64);
    REQUIRE(f.size() == 17);
    CHECK(f.tensors()[0].name == "source");
    for (const auto& t : f) {
        INFO(std::string(t.name));
        CHECK(t.offset % 64 == 0);
        CHECK(t.n_dims == 2);
        CHECK(t.ne[0] == t.cols);
        CHECK(t.ne[1] == t.rows);
        CHECK(reinterpret_cast<const char*>(t.data) == reference().data() + t.offset);
    }
    const auto* q4k = f.find("q4_k");
    REQUIRE(q4k != nullptr);
    CHECK(q4k->type == si::GgmlType::q4_k);
    CHECK(std::string(q4k->type_name()) == "Q4_K");
    CHECK(q4k->rows == 2);
    CHECK(q4k->cols == 256);
    CHECK(q4k->bytes == 2 * 144);
    CHECK(f.find("q4_") == nullptr);
    CHECK(f.find("q4_k ") == nullptr);
}

TEST_CASE("every decoded type is bit-exact to the reference decode") {
    const auto f = open(reference());
    for (const char* name : {"f16", "q4_0", "q4_1", "q8_0", "q4_k", "q6_k", "source"}) {
        INFO(name);
        const auto* t = f.find(name);
        const auto* e = f.find(std::string("expected.") + name);
        if (std::string(name) == "source") e = t;  // F32 decodes to its own bytes
        REQUIRE(t != nullptr);
        REQUIRE(e != nullptr);
        REQUIRE(e->type == si::GgmlType::f32);
        REQUIRE(e->rows * e->cols == t->rows * t->cols);
        std::vector<float> expected(e->rows * e->cols);
        std::memcpy(expected.data(), e->data, expected.size() * 4);
        const auto got = f.dequantize(*t);
        std::size_t wrong = 0, outliers = 0;
        for (std::size_t i = 0; i < got.size(); ++i) {
            if (float_bits(got[i]) != float_bits(expected[i])) {
                if (wrong++ < 5) UNSCOPED_INFO("value " << i << ": got " << got[i] << ", expected " << expected[i]);
            }
            if (std::fabs(expected[i]) > 1000.0f) ++outliers;
        }
        CHECK(wrong == 0);
        if (std::string(name) != "source" && std::string(name) != "f16") CHECK(outliers > 0);  // outlier scales reached
    }
}

TEST_CASE("dequantize_transposed: element (r, c) lands at c * rows + r, bit-exact, every decoded type") {
    const auto f = open(reference());
    for (const char* name : {"f16", "q4_0", "q4_1", "q8_0", "q4_k", "q6_k", "source"}) {
        INFO(name);
        const auto* t = f.find(name);
        const auto* e = f.find(std::string("expected.") + name);
        if (std::string(name) == "source") e = t;
        REQUIRE(t != nullptr);
        REQUIRE(e != nullptr);
        // The expected decode, read straight from the file's F32 bytes, in the tensor's own shape.
        std::vector<float> expected(t->rows * t->cols);
        REQUIRE(e->rows * e->cols == expected.size());
        std::memcpy(expected.data(), e->data, expected.size() * 4);
        const auto got = f.dequantize_transposed(*t);
        REQUIRE(got.size() == expected.size());
        std::size_t wrong = 0;
        for (std::size_t r = 0; r < t->rows; ++r)
            for (std::size_t c = 0; c < t->cols; ++c)
                if (float_bits(got[c * t->rows + r]) != float_bits(expected[r * t->cols + c])) ++wrong;
        CHECK(wrong == 0);
    }
}

TEST_CASE("dequantize_transposed: a tile boundary, a single row, and an unsupported type refused by name") {
    // 37 rows cross the decoder's tiles of 16 rows; 1 row is a plain copy.
    for (std::size_t rows : {std::size_t{1}, std::size_t{37}}) {
        const std::size_t cols = 64;
        std::vector<float> w(rows * cols);
        for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 97) - 48.0f;
        si::GgufWriter out;
        out.add("m", w.data(), rows, cols, si::GgmlType::f32);
        std::ostringstream os;
        out.write(os);
        const std::string bytes = os.str();
        const auto f = open(bytes);
        const auto got = f.dequantize_transposed(*f.find("m"));
        std::size_t wrong = 0;
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t c = 0; c < cols; ++c) wrong += got[c * rows + r] != w[r * cols + c];
        CHECK(wrong == 0);
    }
    const auto f = open(reference());
    std::vector<float> out(256, 1.0f);
    CHECK_THROWS_WITH(f.dequantize_transposed(*f.find("unsupported.q5_k"), out.data()),
                      Catch::Contains("unsupported.q5_k") && Catch::Contains("Q5_K"));
    CHECK(out[0] == 1.0f);
}

TEST_CASE("a type sparseinfer does not decode is refused by name, never decoded") {
    const auto f = open(reference());
    const auto* t = f.find("unsupported.q5_k");
    REQUIRE(t != nullptr);
    CHECK(t->type == si::GgmlType::q5_k);
    CHECK(t->bytes == 176);
    std::vector<float> out(256, 1.0f);
    try {
        f.dequantize(*t, out.data());
        FAIL("Q5_K was decoded");
    } catch (const si::error& e) {
        CHECK(std::string(e.what()).find("Q5_K") != std::string::npos);
        CHECK(std::string(e.what()).find("unsupported.q5_k") != std::string::npos);
    }
    CHECK(out[0] == 1.0f);
}

TEST_CASE("metadata of every type reads back") {
    const auto f = open(reference());
    CHECK(f.metadata_string("general.architecture") == std::string_view("llama"));
    CHECK(f.metadata_uint("general.alignment") == 64u);
    CHECK(f.metadata_uint("test.u8") == 200u);
    CHECK(f.metadata_int("test.i8") == -100);
    CHECK(f.metadata_uint("test.u16") == 60000u);
    CHECK(f.metadata_int("test.i16") == -30000);
    CHECK(f.metadata_uint("test.u32") == 4000000000u);
    CHECK(f.metadata_int("test.i32") == -2000000000);
    CHECK(f.metadata_float("test.f32") == 0.15625);
    CHECK(f.metadata_bool("test.bool") == true);
    CHECK(f.metadata_string("test.string") == std::string_view("h\xc3\xa9llo\0world", 12));
    CHECK(f.metadata_uint("test.u64") == UINT64_MAX);
    CHECK(f.metadata_int("test.i64") == INT64_MIN);
    CHECK(f.metadata_float("test.f64") == -1.0e300);
    CHECK(f.metadata_int("test.u8") == 200);  // unsigned into int64
    CHECK(f.metadata_uint("test.i8_absent") == std::nullopt);

    const auto tokens = f.metadata_strings("tokenizer.ggml.tokens");
    REQUIRE(tokens.has_value());
    CHECK(*tokens == std::vector<std::string_view>{"<unk>", "<s>", "", "\xe2\x96\x81the"});

    auto values = [&](const char* key) { return f.metadata(key)->array(); };
    CHECK(f.metadata("test.array.u8")->array_type() == si::GgufValueType::uint8);
    CHECK(values("test.array.u8").size() == 3);
    CHECK(values("test.array.u8")[2].as_uint() == 255u);
    CHECK(values("test.array.i16")[0].as_int() == -32768);
    CHECK(values("test.array.i16")[1].as_int() == 32767);
    CHECK(values("test.array.f32")[1].as_float() == -2.25);
    CHECK(values("test.array.bool")[0].as_bool());
    CHECK_FALSE(values("test.array.bool")[1].as_bool());
    CHECK(values("test.array.i64")[0].as_int() == -1);
    CHECK(values("test.array.i64")[1].as_uint() == (std::uint64_t{1} << 62));
    CHECK(values("test.array.f64")[0].as_float() == 0.5);
    CHECK(f.metadata("test.array.empty")->array_size() == 0);
    CHECK(f.metadata("test.array.empty")->array_type() == si::GgufValueType::uint32);
    const auto nested = values("test.array.nested");
    REQUIRE(nested.size() == 3);
    CHECK(nested[0].array_size() == 2);
    CHECK(nested[0].array()[1].as_int() == -2);
    CHECK(nested[1].array().empty());
    CHECK(nested[2].array()[0].as_int() == 3);
    const auto nested_strings = values("test.array.nested_strings");
    REQUIRE(nested_strings.size() == 2);
    CHECK(nested_strings[1].array()[1].as_string() == "cd");
    const auto keys = f.metadata_keys();
    REQUIRE(keys.size() == 24);
    CHECK(keys[0] == "general.architecture");
    CHECK(keys[23] == "test.array.nested_strings");
}

TEST_CASE("a stored type that does not fit the request is a format_error naming the key and offset") {
    const auto f = open(reference());
    auto message = [&](auto&& read) {
        try {
            read();
        } catch (const si::format_error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    const std::string neg = message([&] { (void)f.metadata_uint("test.i8"); });
    CHECK(neg.find("'test.i8' is a negative int8 (-100)") != std::string::npos);
    CHECK(neg.find("byte offset") != std::string::npos);
    CHECK(message([&] { (void)f.metadata_string("test.u32"); }).find("is a uint32, not a string") != std::string::npos);
    CHECK(message([&] { (void)f.metadata_float("test.string"); }).find("not a float") != std::string::npos);
    CHECK(message([&] { (void)f.metadata_bool("test.u8"); }).find("not a bool") != std::string::npos);
    CHECK(message([&] { (void)f.metadata_int("test.u64"); }).find("above 2^63") != std::string::npos);
    CHECK(message([&] { (void)f.metadata_strings("test.array.u8"); }).find("array of uint8, not of strings") !=
          std::string::npos);
    CHECK(message([&] { (void)f.metadata_strings("test.string"); }).find("not an array") != std::string::npos);
    CHECK(message([&] { (void)f.metadata_strings("test.array.nested"); }).find("array of array") != std::string::npos);
    CHECK(message([&] { (void)f.metadata_uint("test.f32"); }).find("not an unsigned integer") != std::string::npos);
}

TEST_CASE("version 2 files read the same") {
    std::string v2 = reference();
    v2[4] = 2;
    const auto f = open(v2);
    CHECK(f.version() == 2);
    CHECK(f.size() == 17);
    CHECK(f.metadata_uint("test.u32") == 4000000000u);
}

TEST_CASE("hand-built defects: each is a format_error naming what and where") {
    auto tensor_file = [](std::uint32_t n_dims, std::uint64_t ne0, std::uint32_t type, std::uint64_t offset,
                          std::size_t data_bytes) {
        Bytes b;
        b.header(1, 0).str("t").u32(n_dims);
        for (std::uint32_t d = 0; d < n_dims; ++d) b.u64(d == 0 ? ne0 : 1);
        b.u32(type).u64(offset).pad(32);
        b.s += std::string(data_bytes, '\0');
        return b.s;
    };
    CHECK(open_error(tensor_file(1, 32, 2, 0, 18)).empty());       // the good one: Q4_0, one block
    CHECK(open(tensor_file(0, 0, 0, 0, 4)).find("t")->cols == 1);  // n_dims 0: one value
    CHECK(open_error(tensor_file(5, 32, 2, 0, 18)).find("n_dims is 5") != std::string::npos);
    CHECK(open_error(tensor_file(1, 32, 4, 0, 18)).find("type id 4 is unknown or was removed") != std::string::npos);
    CHECK(open_error(tensor_file(1, 32, 99, 0, 18)).find("type id 99") != std::string::npos);
    CHECK(open_error(tensor_file(1, 33, 2, 0, 18)).find("not a multiple of Q4_0's block of 32") != std::string::npos);
    CHECK(open_error(tensor_file(1, 32, 2, 16, 64)).find("not a multiple of the alignment 32") != std::string::npos);
    CHECK(open_error(tensor_file(1, 32, 2, 0, 17)).find("run past the end of the file") != std::string::npos);
    CHECK(open_error(tensor_file(1, 32, 2, 32, 18)).find("run past the end") != std::string::npos);
    CHECK(open_error(tensor_file(1, UINT64_MAX, 0, 0, 4)).find("negative as ggml's int64") != std::string::npos);
    CHECK(open_error(tensor_file(1, INT64_MAX - 31, 2, 0, 4)).find("run past the end") != std::string::npos);
    {
        Bytes b;  // ne[1] * ne[2] overflows while ne[0] is 0
        b.header(1, 0).str("t").u32(3).u64(0).u64(INT64_MAX).u64(INT64_MAX).u32(0).u64(0).pad(32);
        CHECK(open_error(b.s).find("row count overflows") != std::string::npos);
    }
    CHECK(open_error(Bytes().header(UINT64_MAX, 0).s).find("tensor count") != std::string::npos);
    CHECK(open_error(Bytes().header(0, UINT64_MAX).s).find("metadata count") != std::string::npos);
    CHECK(open_error(Bytes().header(0, 1).str("k").u32(13).u8(0).s).find("value types are 0 to 12") !=
          std::string::npos);
    CHECK(open_error(Bytes().header(0, 1).str("k").u32(7).u8(2).s).find("bool value is 2") != std::string::npos);
    CHECK(open_error(Bytes().header(0, 1).str("k").u32(8).u64(100).s).find("100 bytes long") != std::string::npos);
    CHECK(open_error(Bytes().header(0, 1).str("k").u32(9).u32(4).u64(1u << 30).s).find("array of 1073741824") !=
          std::string::npos);
    CHECK(open_error(Bytes().header(0, 1).str("k").u32(9).u32(8).u64(3).str("a").s)
              .find("array of 3 string values is larger") != std::string::npos);
    {
        Bytes b;  // arrays nested 17 deep
        b.header(0, 1).str("k").u32(9);
        for (int i = 0; i < 17; ++i) b.u32(9).u64(1);
        b.u32(0).u64(0);
        CHECK(open_error(b.s).find("nest deeper than 16") != std::string::npos);
    }
    CHECK(open_error(Bytes().header(0, 2).str("k").u32(0).u8(1).str("k").u32(0).u8(2).s).find("'k' appears twice") !=
          std::string::npos);
    {
        Bytes b;
        b.header(2, 0).str("t").u32(1).u64(1).u32(0).u64(0).str("t").u32(1).u64(1).u32(0).u64(32).pad(32);
        b.s += std::string(64, '\0');
        CHECK(open_error(b.s).find("tensor name 't' appears twice") != std::string::npos);
    }
    CHECK(open_error(Bytes().header(0, 1).str("general.alignment").u32(5).u32(64).s).find("not a uint32") !=
          std::string::npos);
    CHECK(open_error(Bytes().header(0, 1).str("general.alignment").u32(4).u32(48).s).find("power of two") !=
          std::string::npos);
    CHECK(open_error(Bytes().header(0, 1).str("general.alignment").u32(4).u32(0).s).find("power of two") !=
          std::string::npos);
    const std::string e = open_error(tensor_file(1, 32, 2, 0, 17));
    CHECK(e.find("tensor 't'") != std::string::npos);
    CHECK(e.find("(at byte offset 49)") != std::string::npos);  // the offset field: 24 + 8 + 1 + 4 + 8 + 4
}

TEST_CASE("every change of a header byte, every truncation and random files: format_error or a correct load") {
    // A small file with metadata of several types and a tensor of every decoded type but the K quants
    // (which the writer does not make), written by the library's writer, then the reference file.
    si::GgufWriter w;
    w.set("general.architecture", "llama");
    w.set("n", std::uint32_t{7});
    w.set("x", -1.5);
    w.set("flag", false);
    w.set("tokens", std::vector<std::string>{"a", "bc"});
    w.set("ints", std::vector<std::int16_t>{-1, 2});
    std::vector<float> v(2 * 32);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 7) - 3.0f;
    w.add("a", v.data(), 2, 32, si::GgmlType::q4_0);
    w.add("b", v.data(), 1, 32, si::GgmlType::q8_0);
    w.add("c", v.data(), 1, 3, si::GgmlType::f16);
    w.add("d", v.data(), 1, 2, si::GgmlType::f32);
    std::ostringstream os(std::ios::binary);
    w.write(os);
    for (const std::string& good : {os.str(), reference()}) {
        const auto f = open(good);
        const std::size_t data_end = f.tensors().back().offset + f.tensors().back().bytes;
        std::size_t header_bytes = f.tensors().front().offset, accepted = 0, loads = 0;
        file_test::for_each_damaged_file(good, {16, 600, 24},
                                         [&](const std::string& bad, file_test::Damage d, std::size_t at) {
                                             if (d == file_test::Damage::changed_byte && at >= header_bytes)
                                                 return;  // payload bytes: any value
                                             const std::vector<std::uint8_t> exact(bad.begin(), bad.end());
                                             try {
                                                 const auto g = si::GgufFile::from_bytes(exact.data(), exact.size());
                                                 use_everything(g);
                                                 ++loads;
                                                 if (d == file_test::Damage::truncated && at < data_end) {
                                                     ++accepted;
                                                     UNSCOPED_INFO("accepted " << file_test::describe(d, at));
                                                 }
                                             } catch (const si::format_error&) {
                                             } catch (const std::exception& e) {
                                                 FAIL("an exception other than format_error escaped: " << e.what());
                                             }
                                         });
        CHECK(accepted == 0);  // a truncation into the tensor data is always refused
        CHECK(loads > 0);      // some changes (in a name or a value) leave a valid file
    }
}
