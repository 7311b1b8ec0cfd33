// Tests of <sparseinfer/tensor_file.hpp>: several named matrices in one file.
#include <sparseinfer/tensor_file.hpp>

#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "catch.hpp"
#include "file_test_util.hpp"

namespace si = sparseinfer;
using file_test::le64;
using file_test::make_weights;
using file_test::save_to_string;

namespace {

std::string write_to_string(const si::TensorFileWriter& w) {
    std::ostringstream os(std::ios::binary);
    w.write(os);
    return os.str();
}

std::string open_error(const std::string& bytes, si::Verify verify = si::Verify::full) {
    std::vector<std::uint8_t> exact(bytes.begin(), bytes.end());
    try {
        (void)si::TensorFile::from_bytes(exact.data(), exact.size(), verify);
    } catch (const si::format_error& e) {
        return e.what();
    }
    return "";
}

struct Layer {
    si::QuantizedWeights<4> gate = make_weights<4>(6, 100, 32, 1);
    si::QuantizedWeights<2> up = make_weights<2>(6, 100, 64, 2);
    si::QuantizedWeights<8> down = make_weights<8>(3, 33, 32, 3);
    si::QuantizedWeights<3> extra = make_weights<3>(1, 1, 128, 4);

    std::string file() const {
        si::TensorFileWriter w;
        w.add("ffn.gate", gate);
        w.add("ffn.up", up);
        w.add("ffn.down", down);
        w.add("x", si::QuantizedWeightsView<3>(extra));
        return write_to_string(w);
    }
};

}  // namespace

TEST_CASE("a tensor file round-trips names, order, widths and bytes") {
    const Layer layer;
    const std::string f = layer.file();
    std::vector<std::uint8_t> buf(f.begin(), f.end());
    const auto tf = si::TensorFile::from_bytes(buf.data(), buf.size());
    REQUIRE(tf.size() == 4);
    const char* names[] = {"ffn.gate", "ffn.up", "ffn.down", "x"};
    const int bits[] = {4, 2, 8, 3};
    std::size_t i = 0;
    for (const auto& e : tf) {
        CHECK(std::string(e.name) == names[i]);  // std::string: Catch2 v2 may lack string_view printing
        CHECK(e.bits == bits[i]);
        CHECK(e.offset % 64 == 0);
        ++i;
    }
    CHECK(tf[2].rows == 3);
    CHECK(tf[2].cols == 33);
    CHECK(tf[1].group_size == 64);

    const auto gate = tf.view<4>("ffn.gate");
    const auto up = tf.view<2>("ffn.up");
    const auto down = tf.view<8>("ffn.down");
    const auto extra = tf.view<3>(tf[3]);
    // Zero copy: the views point into the buffer, at the payload of each tensor.
    CHECK(gate.data() == buf.data() + tf[0].offset + 64);
    CHECK(std::memcmp(gate.data(), layer.gate.data(), layer.gate.memory_bytes()) == 0);
    CHECK(std::memcmp(up.data(), layer.up.data(), layer.up.memory_bytes()) == 0);
    CHECK(std::memcmp(down.data(), layer.down.data(), layer.down.memory_bytes()) == 0);
    CHECK(std::memcmp(extra.data(), layer.extra.data(), layer.extra.memory_bytes()) == 0);
    // Each tensor is a complete weights file.
    CHECK(f.substr(tf[2].offset, tf[2].bytes) == save_to_string(layer.down));

    std::vector<float> x(100, 0.5f), yw(6), yv(6);
    layer.gate.gemv(x.data(), yw.data());
    gate.gemv(x.data(), yv.data());
    CHECK(std::memcmp(yw.data(), yv.data(), sizeof(float) * 6) == 0);
}

TEST_CASE("lookup by name, missing names and wrong widths") {
    const std::string f = Layer().file();
    const auto tf = si::TensorFile::from_bytes(f.data(), f.size());
    REQUIRE(tf.find("ffn.up") != nullptr);
    CHECK(tf.find("ffn.up")->bits == 2);
    CHECK(tf.find("ffn") == nullptr);
    CHECK(tf.find("ffn.up2") == nullptr);
    CHECK(tf.find("") == nullptr);
    CHECK_THROWS_AS(tf.view<4>("nope"), si::error);
    try {
        (void)tf.view<4>("ffn.up");
        FAIL("gave a 4-bit view of a 2-bit tensor");
    } catch (const si::error& e) {
        CHECK(std::string(e.what()).find("2-bit") != std::string::npos);
    }
}

TEST_CASE("the header follows the documented layout") {
    const std::string f = Layer().file();
    const unsigned char magic[8] = {0x89, 'S', 'I', 'T', 'F', 0x0D, 0x0A, 0x1A};
    CHECK(std::memcmp(f.data(), magic, 8) == 0);
    CHECK((le64(f, 8) & 0xFFFFFFFF) == 1);
    CHECK(le64(f, 8) >> 32 == 0);  // reserved
    CHECK(le64(f, 16) == 4);
    const std::size_t names =
        std::string("ffn.gate").size() + std::string("ffn.up").size() + std::string("ffn.down").size() + 1;
    CHECK(le64(f, 24) == names);
    const std::size_t data_offset = (64 + 4 * 32 + names + 63) / 64 * 64;
    CHECK(le64(f, 32) == data_offset);
    CHECK(le64(f, 40) == f.size());
    CHECK(le64(f, 48) == 0);
    CHECK(le64(f, 64 + 16) == data_offset);         // first tensor offset
    CHECK(f.substr(64 + 4 * 32, 8) == "ffn.gate");  // first name
    for (std::size_t i = 64 + 4 * 32 + names; i < data_offset; ++i) CHECK(f[i] == '\0');
}

TEST_CASE("an empty tensor file is valid") {
    const std::string f = write_to_string(si::TensorFileWriter());
    CHECK(f.size() == 64);
    const auto tf = si::TensorFile::from_bytes(f.data(), f.size());
    CHECK(tf.size() == 0);
    CHECK(tf.begin() == tf.end());
    CHECK(tf.find("a") == nullptr);
}

TEST_CASE("the writer rejects empty, duplicate and NUL-holding names") {
    const auto w = make_weights<4>(1, 32, 32, 5);
    si::TensorFileWriter out;
    out.add("a", w);
    CHECK_THROWS_AS(out.add("a", w), si::error);
    CHECK_THROWS_AS(out.add("", w), si::error);
    CHECK_THROWS_AS(out.add(std::string("b\0c", 3), w), si::error);
    CHECK(out.size() == 1);
}

TEST_CASE("error messages name the problem, the tensor and the byte offset") {
    const std::string good = Layer().file();
    REQUIRE(open_error(good).empty());
    SECTION("truncated") {
        const std::string m = open_error(good.substr(0, good.size() - 1));
        CHECK(m.find("truncated") != std::string::npos);
        CHECK(m.find("byte offset " + std::to_string(good.size() - 1)) != std::string::npos);
    }
    SECTION("table checksum") {
        std::string f = good;
        f[64 + 3 * 32 + 8] = 2;  // name length of the last tensor
        CHECK(open_error(f).find("checksum mismatch") != std::string::npos);
        CHECK(open_error(f).find("byte offset 56") != std::string::npos);
    }
    SECTION("tensor payload") {
        std::string f = good;
        const std::size_t at = static_cast<std::size_t>(le64(f, 64 + 32 + 16));  // tensor 1
        f[at + 64 + 3] = static_cast<char>(f[at + 64 + 3] ^ 1);
        const std::string m = open_error(f);
        CHECK(m.find("tensor 'ffn.up'") != std::string::npos);
        CHECK(m.find("checksum mismatch") != std::string::npos);
        CHECK(m.find("byte offset " + std::to_string(at + 56)) != std::string::npos);
        CHECK(open_error(f, si::Verify::structure).empty());  // the payload is not read
    }
    SECTION("tensor header") {
        std::string f = good;
        const std::size_t at = static_cast<std::size_t>(le64(f, 64 + 2 * 32 + 16));  // tensor 2
        f[at + 8] = 9;
        const std::string m = open_error(f, si::Verify::structure);
        CHECK(m.find("tensor 'ffn.down'") != std::string::npos);
        CHECK(m.find("version is 9") != std::string::npos);
        CHECK(m.find("byte offset " + std::to_string(at + 8)) != std::string::npos);
    }
    SECTION("padding between tensors") {
        std::string f = good;
        const std::size_t at = static_cast<std::size_t>(le64(f, 64 + 32 + 16));
        // Tensor 0 (6 rows of 80 bytes + 64) ends mid-line: a zero gap precedes tensor 1.
        REQUIRE(le64(f, 64 + 16) + le64(f, 64 + 24) < at);
        REQUIRE(f[at - 1] == '\0');
        f[at - 1] = 1;
        const std::string m = open_error(f, si::Verify::structure);
        CHECK(m.find("tensor 'ffn.up'") != std::string::npos);
        CHECK(m.find("padding byte before the tensor") != std::string::npos);
        CHECK(m.find("byte offset " + std::to_string(at - 1)) != std::string::npos);
    }
}

TEST_CASE("damaged-file corpus: the reader rejects every damaged file with format_error") {
    si::TensorFileWriter w;
    const auto a = make_weights<4>(2, 40, 32, 6);
    const auto b = make_weights<2>(1, 33, 32, 7);
    w.add("a", a);
    w.add("bb", b);
    const std::string good = write_to_string(w);
    auto rejected = [](const std::string& bytes, si::Verify verify) {
        return file_test::rejected([&] {
            std::vector<std::uint8_t> exact(bytes.begin(), bytes.end());
            const auto tf = si::TensorFile::from_bytes(exact.data(), exact.size(), verify);
            // Accepted (possible without the checksum pass): views must stay in bounds.
            for (const auto& e : tf)
                if (e.bits == 4) {
                    const auto v = tf.view<4>(e);
                    std::vector<float> x(v.cols(), 1.0f), y(v.rows());
                    v.gemv(x.data(), y.data());
                }
        });
    };
    REQUIRE_FALSE(rejected(good, si::Verify::full));
    CHECK(file_test::accepted_damaged_files(good, {9, 600, 16}, rejected) == 0);
}

namespace {

/// Re-seals the checksum of the array file at `at` in f (payload then header bytes [0, 56)).
void reseal_array(std::string& f, std::size_t at) {
    auto* p = reinterpret_cast<std::uint8_t*>(&f[at]);
    const std::size_t payload = static_cast<std::size_t>(le64(f, at + 24));
    si::detail::store_u64(p + 56, si::detail::array_checksum(p, p + 64, payload));
}

}  // namespace

TEST_CASE("arrays: int8 and float32 arrays round-trip beside matrices; such a file is version 2") {
    const Layer layer;
    const std::vector<std::int8_t> codes = {-127, 0, 5, 127, -3};
    const std::vector<float> values = {1.5f, -0.0f, 3.0e38f, 1e-40f};
    si::TensorFileWriter w;
    w.add("ffn.gate", layer.gate);
    w.add_array("codes", codes.data(), codes.size());
    std::vector<float> source = values;
    w.add_array("values", source.data(), source.size());
    source.assign(source.size(), 0.0f);  // float arrays are copied when added
    const std::string f = write_to_string(w);
    CHECK((le64(f, 8) & 0xFFFFFFFF) == 2);
    CHECK((le64(write_to_string(si::TensorFileWriter()), 8) & 0xFFFFFFFF) == 1);  // no arrays: version 1
    const auto tf = si::TensorFile::from_bytes(f.data(), f.size());
    REQUIRE(tf.size() == 3);
    CHECK(tf[1].array == si::ArrayType::int8);
    CHECK(tf[1].bits == 0);
    CHECK(tf[1].rows == codes.size());
    CHECK(tf[1].cols == 1);
    CHECK(tf[1].offset % 64 == 0);
    CHECK(tf[0].array == si::ArrayType::none);
    const auto c = tf.array<std::int8_t>("codes");
    CHECK(c.to_vector() == codes);
    CHECK(c.bytes() == reinterpret_cast<const std::uint8_t*>(f.data()) + tf[1].offset + 64);  // in place
    const auto v = tf.array<float>("values");
    REQUIRE(v.size() == values.size());
    for (std::size_t i = 0; i < values.size(); ++i) CHECK(std::memcmp(&values[i], &v.to_vector()[i], 4) == 0);
    // Kinds are not mixed up.
    CHECK_THROWS_WITH(tf.array<float>("codes"),
                      Catch::Contains("'codes' is an array of int8, not an array of float32"));
    CHECK_THROWS_WITH(tf.array<float>("ffn.gate"), Catch::Contains("a matrix"));
    CHECK_THROWS_WITH(tf.view<8>("codes"), Catch::Contains("not a matrix"));
    CHECK_THROWS_WITH(tf.array<float>("nope"), Catch::Contains("no tensor named 'nope'"));
    // The array file's header follows the documented layout.
    const std::size_t at = tf[2].offset;
    const unsigned char magic[8] = {0x89, 'S', 'I', 'A', 'R', 0x0D, 0x0A, 0x1A};
    CHECK(std::memcmp(f.data() + at, magic, 8) == 0);
    CHECK(le64(f, at + 8) == (std::uint64_t{2} << 32 | 1));  // version 1, float32
    CHECK(le64(f, at + 16) == values.size());
    CHECK(le64(f, at + 24) == 4 * values.size());
    CHECK(tf[2].bytes == 64 + 4 * values.size());
    // The writer refuses empty arrays and null data.
    si::TensorFileWriter bad;
    CHECK_THROWS_AS(bad.add_array("a", codes.data(), 0), si::error);
    CHECK_THROWS_AS(bad.add_array("a", static_cast<const float*>(nullptr), 3), si::error);
    bad.add_array("a", codes.data(), 1);
    CHECK_THROWS_WITH(bad.add_array("a", values.data(), 1), Catch::Contains("already in the file"));
}

TEST_CASE("arrays: damaged array headers and payloads are rejected with format_error") {
    const std::vector<std::int8_t> codes(100, 7);
    si::TensorFileWriter w;
    w.add_array("codes", codes.data(), codes.size());
    const std::string good = write_to_string(w);
    const auto tf = si::TensorFile::from_bytes(good.data(), good.size());
    const std::size_t at = tf[0].offset;
    {
        std::string f = good;
        f[at + 64 + 10] = 8;  // payload without a new checksum
        CHECK_THAT(open_error(f), Catch::Contains("tensor 'codes'") && Catch::Contains("checksum mismatch"));
        CHECK(open_error(f, si::Verify::structure).empty());
    }
    {
        std::string f = good;
        f[at + 12] = 9;  // element type
        reseal_array(f, at);
        CHECK_THAT(open_error(f), Catch::Contains("element type is 9"));
    }
    {
        std::string f = good;
        f[at + 16] = 99;  // count disagrees with the payload present
        reseal_array(f, at);
        CHECK_THAT(open_error(f), Catch::Contains("payload bytes is 100; 99 elements of int8 take 99"));
        f[at + 24] = 99;
        reseal_array(f, at);
        CHECK_THAT(open_error(f), Catch::Contains("1 unexpected bytes after the array's payload"));
        f[at + 16] = static_cast<char>(101);
        CHECK_THAT(open_error(f), Catch::Contains("needs more than the 100 payload bytes present"));
        f[at + 16] = 0;
        CHECK_THAT(open_error(f), Catch::Contains("element count is 0"));
    }
    {
        std::string f = good;
        f[at + 24] = 50;  // payload bytes field
        reseal_array(f, at);
        CHECK_THAT(open_error(f), Catch::Contains("payload bytes is 50"));
    }
    {
        std::string f = good;
        f[at + 40] = 1;  // reserved
        reseal_array(f, at);
        CHECK_THAT(open_error(f), Catch::Contains("reserved header byte is not zero"));
    }
    {
        std::string f = good;
        f[at + 8] = 3;  // array format version
        CHECK_THAT(open_error(f), Catch::Contains("array format version is 3"));
    }
    {
        // An array in a file that declares version 1 (re-seal the container's checksum).
        std::string f = good;
        f[8] = 1;
        auto* p = reinterpret_cast<std::uint8_t*>(&f[0]);
        si::detail::Checksum64 c;
        c.update(p, 56);
        c.update(p + 64, at - 64);
        si::detail::store_u64(p + 56, c.digest());
        CHECK_THAT(open_error(f), Catch::Contains("version 1 tensor file cannot hold"));
        f[8] = 3;
        CHECK_THAT(open_error(f), Catch::Contains("reads versions 1 and 2"));
    }
}
