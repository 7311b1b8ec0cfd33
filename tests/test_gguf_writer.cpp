// Tests of <sparseinfer/gguf_writer.hpp>: writing GGUF files.
//
// Byte identity with ggml's reference quantizers is checked against the
// numpy transcriptions in scripts/gguf_reference.py (tests/data/gguf_reference.gguf).
#include <sparseinfer/gguf.hpp>
#include <sparseinfer/gguf_writer.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "catch.hpp"

namespace si = sparseinfer;

namespace {

std::string to_bytes(const si::GgufWriter& w) {
    std::ostringstream os(std::ios::binary);
    w.write(os);
    return os.str();
}

std::string reference() {
    std::string here = __FILE__;
    si::MappedFile f(here.substr(0, here.find_last_of("/\\") + 1) + "data/gguf_reference.gguf");
    return std::string(reinterpret_cast<const char*>(f.data()), f.size());
}

std::vector<float> normal(std::size_t n, unsigned seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng);
    return v;
}

template <class Fn>
std::string error_of(Fn&& fn) {
    try {
        fn();
    } catch (const si::error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("Q4_0, Q8_0 and F16 bytes equal the reference quantizers' bytes for the same floats") {
    const std::string ref_bytes = reference();
    const auto ref = si::GgufFile::from_bytes(ref_bytes.data(), ref_bytes.size());
    const auto* src = ref.find("source");
    REQUIRE(src != nullptr);
    REQUIRE(src->type == si::GgmlType::f32);
    std::vector<float> x(src->rows * src->cols);
    std::memcpy(x.data(), src->data, x.size() * 4);
    for (auto [name, type] : {std::pair{"ref.q4_0", si::GgmlType::q4_0}, std::pair{"ref.q8_0", si::GgmlType::q8_0},
                              std::pair{"ref.f16", si::GgmlType::f16}}) {
        INFO(name);
        si::GgufWriter w;
        w.add("t", x.data(), src->rows, src->cols, type);
        const std::string bytes = to_bytes(w);
        const auto mine = si::GgufFile::from_bytes(bytes.data(), bytes.size());
        const auto* got = mine.find("t");
        const auto* want = ref.find(name);
        REQUIRE(want != nullptr);
        REQUIRE(got->bytes == want->bytes);
        std::size_t differ = 0;
        for (std::size_t i = 0; i < got->bytes; ++i)
            if (got->data[i] != want->data[i] && differ++ < 5) UNSCOPED_INFO("byte " << i << " differs");
        CHECK(differ == 0);
    }
}

TEST_CASE("every metadata type the writer sets reads back") {
    si::GgufWriter w;
    w.set("s", "text");
    w.set("s2", std::string("more"));
    w.set("u8", std::uint8_t{255});
    w.set("i8", std::int8_t{-128});
    w.set("u16", std::uint16_t{65535});
    w.set("i16", std::int16_t{-32768});
    w.set("u32", std::uint32_t{4294967295u});
    w.set("i32", std::int32_t{INT32_MIN});
    w.set("u64", std::uint64_t{UINT64_MAX});
    w.set("i64", std::int64_t{INT64_MIN});
    w.set("f32", 0.1f);
    w.set("f64", 0.1);
    w.set("yes", true);
    w.set("no", false);
    w.set("tokens", std::vector<std::string>{"", "a", std::string("b\0c", 3)});
    w.set("empty", std::vector<std::string>{});
    w.set("floats", std::vector<float>{1.0f, -0.5f});
    w.set("ints", std::vector<std::int64_t>{-7, 7});
    w.set("u32", std::uint32_t{5});  // replaces, keeping its place
    const std::string bytes = to_bytes(w);
    const auto f = si::GgufFile::from_bytes(bytes.data(), bytes.size());
    CHECK(f.metadata_string("s") == std::string_view("text"));
    CHECK(f.metadata_string("s2") == std::string_view("more"));
    CHECK(f.metadata("u8")->type() == si::GgufValueType::uint8);
    CHECK(f.metadata_uint("u8") == 255u);
    CHECK(f.metadata("i8")->type() == si::GgufValueType::int8);
    CHECK(f.metadata_int("i8") == -128);
    CHECK(f.metadata("u16")->type() == si::GgufValueType::uint16);
    CHECK(f.metadata_uint("u16") == 65535u);
    CHECK(f.metadata("i16")->type() == si::GgufValueType::int16);
    CHECK(f.metadata_int("i16") == -32768);
    CHECK(f.metadata("u32")->type() == si::GgufValueType::uint32);
    CHECK(f.metadata_uint("u32") == 5u);
    CHECK(f.metadata("i32")->type() == si::GgufValueType::int32);
    CHECK(f.metadata_int("i32") == INT32_MIN);
    CHECK(f.metadata("u64")->type() == si::GgufValueType::uint64);
    CHECK(f.metadata_uint("u64") == UINT64_MAX);
    CHECK(f.metadata("i64")->type() == si::GgufValueType::int64);
    CHECK(f.metadata_int("i64") == INT64_MIN);
    CHECK(f.metadata("f32")->type() == si::GgufValueType::float32);
    CHECK(f.metadata_float("f32") == static_cast<double>(0.1f));
    CHECK(f.metadata("f64")->type() == si::GgufValueType::float64);
    CHECK(f.metadata_float("f64") == 0.1);
    CHECK(f.metadata_bool("yes") == true);
    CHECK(f.metadata_bool("no") == false);
    CHECK(*f.metadata_strings("tokens") == std::vector<std::string_view>{"", "a", std::string_view("b\0c", 3)});
    CHECK(f.metadata_strings("empty")->empty());
    CHECK(f.metadata("floats")->array_type() == si::GgufValueType::float32);
    CHECK(f.metadata("floats")->array()[1].as_float() == -0.5);
    CHECK(f.metadata("ints")->array()[0].as_int() == -7);
    const auto keys = f.metadata_keys();
    REQUIRE(keys.size() == 18);
    CHECK(keys[6] == "u32");
}

TEST_CASE("tensors round-trip through a file on disk: shapes, types, values") {
    const auto x = normal(3 * 64, 1, 2.0f);
    si::GgufWriter w;
    w.set("general.architecture", "llama");
    w.add("f32", x.data(), 3, 64, si::GgmlType::f32);
    w.add("f16", x.data(), 3, 64, si::GgmlType::f16);
    w.add("q8_0", x.data(), 3, 64, si::GgmlType::q8_0);
    w.add("q4_0", x.data(), 3, 64, si::GgmlType::q4_0);
    w.add("one", x.data(), 1, 1, si::GgmlType::f32);
    w.add("empty", x.data(), 0, 32, si::GgmlType::q4_0);
    w.add("empty.f32", x.data(), 0, 4, si::GgmlType::f32);  // no bytes: no copy from or to a null buffer
    CHECK(w.size() == 7);
    const std::string path = "test_gguf_writer_roundtrip.gguf";
    w.write(path);
    {
        si::MappedFile file(path);
        const auto f = si::GgufFile::from_file(file);
        REQUIRE(f.size() == 7);
        for (const auto& t : f) CHECK(t.offset % 32 == 0);
        CHECK(f.dequantize(*f.find("f32")) == x);
        CHECK(f.dequantize(*f.find("one")) == std::vector<float>{x[0]});
        CHECK(f.find("empty")->rows == 0);
        CHECK(f.dequantize(*f.find("empty")).empty());
        CHECK(f.dequantize(*f.find("empty.f32")).empty());
        // Error bounds from the formats, with d = max|v| / 8 (Q4_0) or / 127 (Q8_0): rounding costs half a
        // step, storing d as fp16 up to |code| d 2^-11 more; Q4_0 clamps code 16 to 15 (a whole step).
        for (const char* name : {"f16", "q8_0", "q4_0"}) {
            INFO(name);
            const auto* t = f.find(name);
            CHECK(t->rows == 3);
            CHECK(t->cols == 64);
            const auto y = f.dequantize(*t);
            for (std::size_t b = 0; b < x.size() / 32; ++b) {
                float amax = 0.0f;
                for (std::size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * b + j]));
                const float step = std::string(name) == "q4_0"   ? amax / 8
                                   : std::string(name) == "q8_0" ? amax / 127
                                                                 : 0;
                for (std::size_t j = 0; j < 32; ++j) {
                    const std::size_t i = 32 * b + j;
                    const float bound = std::string(name) == "f16"
                                            ? std::fabs(x[i]) * 0x1p-11f
                                            : step * (std::string(name) == "q4_0" ? 1.01f : 0.57f);
                    CHECK(std::fabs(y[i] - x[i]) <= bound);
                }
            }
        }
    }
    std::remove(path.c_str());
}

TEST_CASE("general.alignment places the tensors; a bad alignment is refused") {
    const auto x = normal(32, 2);
    si::GgufWriter w;
    w.set("general.alignment", std::uint32_t{256});
    w.add("a", x.data(), 1, 32, si::GgmlType::q4_0);
    w.add("b", x.data(), 1, 32, si::GgmlType::q8_0);
    const std::string bytes = to_bytes(w);
    const auto f = si::GgufFile::from_bytes(bytes.data(), bytes.size());
    CHECK(f.alignment() == 256);
    CHECK(f.find("a")->offset == 256);
    CHECK(f.find("b")->offset == 512);
    CHECK(bytes.size() == 768);
    CHECK(error_of([&] { w.set("general.alignment", std::uint32_t{100}); }).find("power of two") != std::string::npos);
    CHECK(error_of([&] { w.set("general.alignment", std::uint64_t{64}); }).find("must be a uint32") !=
          std::string::npos);
}

TEST_CASE("the writer refuses what it cannot store faithfully") {
    si::GgufWriter w;
    std::vector<float> x(64, 1.0f);
    CHECK(error_of([&] { w.add("t", x.data(), 1, 33, si::GgmlType::q4_0); }).find("not a multiple of Q4_0") !=
          std::string::npos);
    CHECK(error_of([&] { w.add("t", x.data(), 1, 256, si::GgmlType::q4_k); }).find("not Q4_K") != std::string::npos);
    CHECK(error_of([&] { w.add("", x.data(), 1, 32, si::GgmlType::f32); }).find("empty") != std::string::npos);
    CHECK(error_of([&] { w.add("t", nullptr, 1, 32, si::GgmlType::f32); }).find("null") != std::string::npos);
    x[40] = std::numeric_limits<float>::quiet_NaN();
    CHECK(error_of([&] { w.add("t", x.data(), 2, 32, si::GgmlType::f32); }).find("value 40 (row 1) is not finite") !=
          std::string::npos);
    x[40] = std::numeric_limits<float>::infinity();
    CHECK(error_of([&] { w.add("t", x.data(), 2, 32, si::GgmlType::q8_0); }).find("not finite") != std::string::npos);
    x[40] = 65520.0f;  // rounds to fp16 infinity
    CHECK(error_of([&] { w.add("t", x.data(), 2, 32, si::GgmlType::f16); }).find("value 40 overflows fp16") !=
          std::string::npos);
    x[40] = 65519.0f;  // rounds to 65504: fine
    CHECK(error_of([&] { w.add("t", x.data(), 2, 32, si::GgmlType::f16); }).empty());
    x[40] = 65520.0f * 127.0f;
    CHECK(error_of([&] { w.add("q8", x.data(), 2, 32, si::GgmlType::q8_0); }).find("scale of block 1 overflows") !=
          std::string::npos);
    x[40] = 65520.0f * 8.0f;
    CHECK(error_of([&] { w.add("q4", x.data(), 2, 32, si::GgmlType::q4_0); }).find("scale of block 1 overflows") !=
          std::string::npos);
    CHECK(error_of([&] { w.add("t", x.data(), 1, 32, si::GgmlType::f32); }).find("already in the file") !=
          std::string::npos);
    CHECK(error_of([&] { w.set("", 1); }).find("key is empty") != std::string::npos);
    CHECK(w.size() == 1);  // only the F16 tensor "t" was added
}
