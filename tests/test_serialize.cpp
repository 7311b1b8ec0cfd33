// Tests of <sparseinfer/serialize.hpp>: the weights file format, save and load.
#include <sparseinfer/detail/stripe_checksum.hpp>
#include <sparseinfer/serialize.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "catch.hpp"
#include "file_test_util.hpp"

namespace si = sparseinfer;
using file_test::le32;
using file_test::le64;
using file_test::make_weights;
using file_test::put64;
using file_test::reseal_weights_file;
using file_test::save_to_string;

namespace {

// The stripe checksum as docs/format.md defines it, written apart from the
// library's: keys from SplitMix64, 64-byte stripes, 1 KiB blocks.
std::uint64_t reference_stripe_checksum(const std::vector<std::uint8_t>& bytes) {
    std::uint64_t key[32], x = 0x5350494E46455232ull;
    for (auto& k : key) {
        x += 0x9E3779B97F4A7C15ull;
        std::uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        k = z ^ (z >> 31);
    }
    std::uint64_t acc[8];
    for (int i = 0; i < 8; ++i) acc[i] = key[i];
    std::vector<std::uint8_t> padded = bytes;
    padded.resize((bytes.size() + 63) / 64 * 64, 0);
    const std::size_t stripes = padded.size() / 64, full_blocks = bytes.size() / 1024;
    for (std::size_t t = 0; t < stripes; ++t) {
        for (int i = 0; i < 8; ++i) {
            std::uint64_t d = 0;
            for (int b = 0; b < 8; ++b) d |= static_cast<std::uint64_t>(padded[64 * t + 8 * i + b]) << (8 * b);
            const std::uint64_t k = d ^ key[t % 16 + i];
            acc[i] += (k & 0xFFFFFFFF) * (k >> 32);
            acc[i ^ 1] += d;
        }
        if (t % 16 == 15 && t / 16 < full_blocks)
            for (int i = 0; i < 8; ++i) acc[i] = (acc[i] ^ (acc[i] >> 47) ^ key[24 + i]) * 0x9E3779B1ull;
    }
    const std::uint64_t p1 = 0x9E3779B185EBCA87ull, p2 = 0xC2B2AE3D27D4EB4Full, p3 = 0x165667B19E3779F9ull;
    std::uint64_t h = bytes.size() * p1;
    for (int i = 0; i < 8; ++i) {
        const std::uint64_t v = h ^ ((acc[i] ^ key[24 + i]) * p2);
        h = ((v << 27) | (v >> 37)) * p1;
    }
    h ^= h >> 33;
    h *= p2;
    h ^= h >> 29;
    h *= p3;
    h ^= h >> 32;
    return h;
}

// Loads from a stream; returns the format_error message, "" if it loaded.
template <int Bits>
std::string load_error(const std::string& bytes) {
    std::istringstream is(bytes, std::ios::binary);
    try {
        (void)si::QuantizedWeights<Bits>::load(is);
    } catch (const si::format_error& e) {
        return e.what();
    }
    return "";
}

template <int Bits>
void check_round_trip(std::size_t rows, std::size_t cols, std::size_t group_size) {
    INFO("bits " << Bits << ", " << rows << "x" << cols << ", group size " << group_size);
    const auto w = make_weights<Bits>(rows, cols, group_size, static_cast<unsigned>(rows * 131 + cols + group_size));
    const std::string file = save_to_string(w);
    REQUIRE(file.size() == 64 + rows * w.row_bytes());
    // The payload is the in-memory rows, byte for byte.
    CHECK(std::memcmp(file.data() + 64, w.data(), rows * w.row_bytes()) == 0);
    std::istringstream is(file, std::ios::binary);
    const auto back = si::QuantizedWeights<Bits>::load(is);
    CHECK(back.rows() == rows);
    CHECK(back.cols() == cols);
    CHECK(back.group_size() == group_size);
    CHECK(back.row_bytes() == w.row_bytes());
    REQUIRE(back.memory_bytes() == w.memory_bytes());
    CHECK(std::memcmp(back.data(), w.data(), w.memory_bytes()) == 0);
    CHECK(reinterpret_cast<std::uintptr_t>(back.data()) % 64 == 0);
}

template <int Bits>
void check_round_trips() {
    const std::size_t shapes[][2] = {{1, 1}, {1, 33}, {7, 100}, {3, 4096}};
    for (std::size_t gs : {32, 64, 128})
        for (const auto& s : shapes) check_round_trip<Bits>(s[0], s[1], gs);
}

}  // namespace

TEST_CASE("save then load is bit-identical for every width, group size and shape") {
    check_round_trips<2>();
    check_round_trips<3>();
    check_round_trips<4>();
    check_round_trips<8>();
}

TEST_CASE("the header follows the documented layout") {
    const auto w = make_weights<3>(5, 70, 64, 1);
    const std::string f = save_to_string(w);
    const unsigned char magic[8] = {0x89, 'S', 'I', 'Q', 'W', 0x0D, 0x0A, 0x1A};
    CHECK(std::memcmp(f.data(), magic, 8) == 0);
    CHECK(le32(f, 8) == 2);    // version
    CHECK(le32(f, 12) == 3);   // bits
    CHECK(le32(f, 16) == 64);  // group size
    CHECK(le32(f, 20) == 1);   // parameter layout
    CHECK(le64(f, 24) == 5);   // rows
    CHECK(le64(f, 32) == 70);  // cols
    // Row bytes from the row format: 8 + 2 groups * 2 + 4 blocks * 12 bytes.
    CHECK(le64(f, 40) == 8 + 2 * 2 + 4 * 12);
    CHECK(le64(f, 48) == 5 * (8 + 2 * 2 + 4 * 12));
    // The checksum covers the payload, then [0, 56): any edit outside it is caught.
    std::vector<std::uint8_t> covered(f.begin() + 64, f.end());
    covered.insert(covered.end(), f.begin(), f.begin() + 56);
    CHECK(le64(f, 56) == reference_stripe_checksum(covered));
}

TEST_CASE("the stripe checksum: every path and every split of the bytes give the documented digest") {
    using C = si::detail::StripeChecksum64;
    std::mt19937 rng(11);
    // Lengths around the stripe (64) and block (1024) boundaries, and several blocks.
    for (std::size_t n : {0u, 1u, 7u, 63u, 64u, 65u, 1000u, 1023u, 1024u, 1025u, 2048u, 3071u, 5000u, 16384u}) {
        std::vector<std::uint8_t> b(n);
        for (auto& v : b) v = static_cast<std::uint8_t>(rng());
        const std::uint64_t expected = reference_stripe_checksum(b);
        CHECK(C::of(b.data(), n) == expected);
        for (C::Path path : C::paths()) {
            C c;
            std::size_t at = 0;
            while (at < n) {  // random pieces, some whole blocks
                const std::size_t piece =
                    std::min<std::size_t>(n - at, rng() % 2 ? 1024 * (1 + rng() % 3) : rng() % 700);
                c.update_on(path, b.data() + at, piece);
                at += piece;
            }
            INFO("n = " << n << ", path " << static_cast<int>(path));
            CHECK(c.digest() == expected);
        }
    }
}

TEST_CASE("the stripe checksum changes when any one bit changes") {
    std::vector<std::uint8_t> b(2100);
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(i * 37 + 5);
    const std::uint64_t good = si::detail::StripeChecksum64::of(b.data(), b.size());
    for (std::size_t i = 0; i < b.size(); i += 7)
        for (int bit = 0; bit < 8; bit += 3) {
            b[i] = static_cast<std::uint8_t>(b[i] ^ (1 << bit));
            CHECK(si::detail::StripeChecksum64::of(b.data(), b.size()) != good);
            b[i] = static_cast<std::uint8_t>(b[i] ^ (1 << bit));
        }
    // Trailing zeros are not lost in the padding of the last stripe: the length counts.
    std::vector<std::uint8_t> longer = b;
    longer.push_back(0);
    CHECK(si::detail::StripeChecksum64::of(longer.data(), longer.size()) != good);
}

TEST_CASE("version-1 files (Checksum64 over the header, then the payload) are still read") {
    const auto w = make_weights<4>(7, 100, 32, 5);
    std::string f = save_to_string(w);
    f[8] = 1;
    si::detail::Checksum64 c;
    c.update(f.data(), 56);
    c.update(f.data() + 64, f.size() - 64);
    put64(f, 56, c.digest());
    SECTION("loads from a stream and as a view, with the same rows") {
        std::istringstream is(f, std::ios::binary);
        const auto back = si::QuantizedWeights<4>::load(is);
        REQUIRE(back.memory_bytes() == w.memory_bytes());
        CHECK(std::memcmp(back.data(), w.data(), w.memory_bytes()) == 0);
        const auto v = si::QuantizedWeightsView<4>::from_bytes(f.data(), f.size());
        CHECK(std::memcmp(v.data(), w.data(), w.memory_bytes()) == 0);
    }
    SECTION("a damaged version-1 file fails its checksum") {
        f[150] = static_cast<char>(f[150] ^ 1);
        const std::string m = load_error<4>(f);
        CHECK(m.find("checksum mismatch") != std::string::npos);
        CHECK(m.find("[0, 56) and [64") != std::string::npos);
    }
    SECTION("a version-1 header over a version-2 checksum is rejected") {
        put64(f, 56, le64(save_to_string(w), 56));
        CHECK(load_error<4>(f).find("checksum mismatch") != std::string::npos);
    }
}

TEST_CASE("save and load through a path") {
    const auto w = make_weights<4>(3, 100, 32, 2);
    const auto path = (std::filesystem::temp_directory_path() /
                       ("sparseinfer_test_serialize_" + std::to_string(std::random_device{}()) + ".siqw"))
                          .string();
    w.save(path);
    const auto back = si::QuantizedWeights<4>::load(path);
    std::remove(path.c_str());
    REQUIRE(back.memory_bytes() == w.memory_bytes());
    CHECK(std::memcmp(back.data(), w.data(), w.memory_bytes()) == 0);
    CHECK_THROWS_AS(si::QuantizedWeights<4>::load(path), si::error);  // gone now
    CHECK_THROWS_AS(w.save("/nonexistent-dir/x.siqw"), si::error);
}

TEST_CASE("files follow each other in one stream") {
    const auto a = make_weights<4>(2, 40, 32, 3);
    const auto b = make_weights<4>(3, 70, 64, 4);
    std::istringstream is(save_to_string(a) + save_to_string(b), std::ios::binary);
    const auto a2 = si::QuantizedWeights<4>::load(is);
    const auto b2 = si::QuantizedWeights<4>::load(is);
    CHECK(std::memcmp(a2.data(), a.data(), a.memory_bytes()) == 0);
    CHECK(std::memcmp(b2.data(), b.data(), b.memory_bytes()) == 0);
    CHECK_THROWS_AS(si::QuantizedWeights<4>::load(is), si::format_error);  // nothing left
}

TEST_CASE("load rejects a file of another width, naming both and the offset") {
    const std::string f = save_to_string(make_weights<8>(2, 40, 32, 5));
    const std::string msg = load_error<4>(f);
    CHECK(msg.find("8-bit") != std::string::npos);
    CHECK(msg.find("4-bit") != std::string::npos);
    CHECK(msg.find("byte offset 12") != std::string::npos);
}

TEST_CASE("error messages name the problem and the byte offset") {
    const std::string good = save_to_string(make_weights<4>(2, 40, 32, 6));
    REQUIRE(load_error<4>(good).empty());
    SECTION("empty stream") {
        const std::string m = load_error<4>("");
        CHECK(m.find("header") != std::string::npos);
        CHECK(m.find("byte offset 0") != std::string::npos);
    }
    SECTION("bad magic") {
        std::string f = good;
        f[3] = 'X';
        CHECK(load_error<4>(f).find("bad magic") != std::string::npos);
        CHECK(load_error<4>(f).find("byte offset 3") != std::string::npos);
    }
    SECTION("future version") {
        std::string f = good;
        f[8] = 3;
        CHECK(load_error<4>(f).find("version is 3") != std::string::npos);
        CHECK(load_error<4>(f).find("byte offset 8") != std::string::npos);
    }
    SECTION("group size not a multiple of 32") {
        std::string f = good;
        f[16] = 33;
        CHECK(load_error<4>(f).find("group size is 33") != std::string::npos);
        CHECK(load_error<4>(f).find("byte offset 16") != std::string::npos);
    }
    SECTION("unknown parameter layout") {
        std::string f = good;
        f[20] = 7;
        CHECK(load_error<4>(f).find("parameter layout id is 7") != std::string::npos);
    }
    SECTION("zero rows") {
        std::string f = good;
        put64(f, 24, 0);
        CHECK(load_error<4>(f).find("rows is 0") != std::string::npos);
        CHECK(load_error<4>(f).find("byte offset 24") != std::string::npos);
    }
    SECTION("rows beyond 32-bit row indices") {
        std::string f = good;
        put64(f, 24, std::uint64_t{1} << 32);
        CHECK(load_error<4>(f).find("byte offset 24") != std::string::npos);
    }
    SECTION("cols whose row size overflows") {
        // 8-bit codes: 2^64 - 6 columns need 2^59 blocks of 32 bytes, 2^64 bytes.
        std::string f = save_to_string(make_weights<8>(2, 40, 32, 6));
        put64(f, 32, ~std::uint64_t{0} - 5);
        CHECK(load_error<8>(f).find("overflow") != std::string::npos);
        CHECK(load_error<8>(f).find("byte offset 32") != std::string::npos);
    }
    SECTION("row bytes inconsistent with the geometry") {
        std::string f = good;
        put64(f, 40, le64(f, 40) + 1);
        CHECK(load_error<4>(f).find("row bytes is") != std::string::npos);
        CHECK(load_error<4>(f).find("byte offset 40") != std::string::npos);
    }
    SECTION("payload size inconsistent") {
        std::string f = good;
        put64(f, 48, le64(f, 48) - 1);
        CHECK(load_error<4>(f).find("payload bytes is") != std::string::npos);
        CHECK(load_error<4>(f).find("byte offset 48") != std::string::npos);
    }
    SECTION("truncated payload") {
        const std::string m = load_error<4>(good.substr(0, good.size() - 10));
        CHECK(m.find("truncated") != std::string::npos);
        CHECK(m.find("byte offset " + std::to_string(good.size() - 10)) != std::string::npos);
    }
    SECTION("a flipped payload bit") {
        std::string f = good;
        f[100] = static_cast<char>(f[100] ^ 4);
        const std::string m = load_error<4>(f);
        CHECK(m.find("checksum mismatch") != std::string::npos);
        CHECK(m.find("byte offset 56") != std::string::npos);
    }
}

TEST_CASE("a header claiming a huge matrix is rejected without allocating it") {
    std::string f = save_to_string(make_weights<8>(1, 32, 32, 7));
    // 2^32 - 1 rows of 2^20 columns: about 4 PiB declared, 104 bytes present.
    put64(f, 24, 0xFFFFFFFFull);
    put64(f, 32, std::uint64_t{1} << 20);
    const auto layout = si::detail::make_row_layout(8, std::size_t{1} << 20, 32);
    put64(f, 40, layout.row_bytes);
    put64(f, 48, 0xFFFFFFFFull * layout.row_bytes);
    reseal_weights_file(f);
    const std::string m = load_error<8>(f);
    CHECK(m.find("truncated") != std::string::npos);
}

TEST_CASE("contents the writer never produces are rejected even with a valid checksum") {
    // 4-bit, 2 rows of 40 columns, group 32: row = 8 + 2 + 2 + 2 blocks * 16 = 44 bytes.
    const std::string good = save_to_string(make_weights<4>(2, 40, 32, 8));
    REQUIRE(le64(good, 40) == 44);
    const std::size_t row1 = 64 + 44;
    SECTION("non-finite scale unit") {
        std::string f = good;
        const float nan = std::numeric_limits<float>::quiet_NaN();
        std::memcpy(&f[row1], &nan, 4);  // little-endian host assumed by this test only
        reseal_weights_file(f);
        const std::string m = load_error<4>(f);
        CHECK(m.find("row 1: scale unit is not finite") != std::string::npos);
        CHECK(m.find("byte offset " + std::to_string(row1)) != std::string::npos);
    }
    SECTION("infinite min unit") {
        std::string f = good;
        const float inf = std::numeric_limits<float>::infinity();
        std::memcpy(&f[64 + 4], &inf, 4);
        reseal_weights_file(f);
        CHECK(load_error<4>(f).find("row 0: min unit is not finite") != std::string::npos);
    }
    SECTION("min code -128") {
        std::string f = good;
        f[row1 + 8 + 2 + 1] = static_cast<char>(0x80);  // row 1, min code of group 1
        reseal_weights_file(f);
        const std::string m = load_error<4>(f);
        CHECK(m.find("row 1, group 1: min code is -128") != std::string::npos);
        CHECK(m.find("byte offset " + std::to_string(row1 + 11)) != std::string::npos);
    }
    SECTION("non-zero padding code past the last column") {
        // Column 40 is value 8 of block 1, the low nibble of byte 8 of that block.
        std::string f = good;
        f[row1 + 12 + 16 + 8] = static_cast<char>(f[row1 + 12 + 16 + 8] | 1);
        reseal_weights_file(f);
        CHECK(load_error<4>(f).find("row 1: padding code") != std::string::npos);
    }
    SECTION("non-zero padding block") {
        // 1 x 40 with group 128: blocks 2 and 3 lie past the last column.
        std::string f = save_to_string(make_weights<4>(1, 40, 128, 9));
        f[64 + 8 + 2 + 2 * 16 + 5] = 1;
        reseal_weights_file(f);
        CHECK(load_error<4>(f).find("padding block") != std::string::npos);
    }
}

namespace {

// Every single-byte change (xor 0xFF and +1) and every truncation of a small
// valid file, and random files, are rejected with format_error and nothing else.
template <int Bits>
void check_damaged_corpus(const std::string& good) {
    auto rejected = [](const std::string& bytes) {
        return file_test::rejected([&] {
            std::istringstream is(bytes, std::ios::binary);
            (void)si::QuantizedWeights<Bits>::load(is);
        });
    };
    REQUIRE_FALSE(rejected(good));
    std::size_t accepted = 0;
    // The random files get past magic and version every second time.
    file_test::for_each_damaged_file(good, {11, 400, 24},
                                     [&](const std::string& f, file_test::Damage d, std::size_t at) {
                                         if (!rejected(f)) {
                                             ++accepted;
                                             UNSCOPED_INFO("accepted " << file_test::describe(d, at));
                                         }
                                     });
    CHECK(accepted == 0);
}

}  // namespace

TEST_CASE("damaged-file corpus: stream load rejects every damaged file with format_error") {
    check_damaged_corpus<4>(save_to_string(make_weights<4>(2, 40, 32, 12)));
    check_damaged_corpus<3>(save_to_string(make_weights<3>(2, 33, 64, 13)));
}

TEST_CASE("a stream that throws on failure still yields format_error") {
    const std::string good = save_to_string(make_weights<4>(2, 40, 32, 14));
    std::istringstream is(good.substr(0, 90), std::ios::binary);
    is.exceptions(std::ios::failbit | std::ios::badbit | std::ios::eofbit);
    CHECK_THROWS_AS(si::QuantizedWeights<4>::load(is), si::format_error);
}
