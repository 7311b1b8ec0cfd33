// Helpers shared by the file-format tests: sample matrices, files as strings,
// little-endian field access written independently of the library's code, and
// the damaged-file corpus every reader is held to.
#pragma once

#include <sparseinfer/detail/weights_file.hpp>
#include <sparseinfer/error.hpp>
#include <sparseinfer/quantized_weights.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "catch.hpp"

namespace file_test {

/// An N(0,1) rows x cols matrix quantized with min_max.
template <int Bits>
sparseinfer::QuantizedWeights<Bits> make_weights(std::size_t rows, std::size_t cols, std::size_t group_size,
                                                 unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> w(rows * cols);
    for (auto& v : w) v = nd(rng);
    return sparseinfer::QuantizedWeights<Bits>::from_f32(w.data(), rows, cols,
                                                         {group_size, sparseinfer::QuantMethod::min_max});
}

/// The bytes W::save writes.
template <class W>
std::string save_to_string(const W& w) {
    std::ostringstream os(std::ios::binary);
    w.save(os);
    return os.str();
}

inline std::uint64_t le64(const std::string& s, std::size_t at) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(s[at + static_cast<std::size_t>(i)]);
    return v;
}
inline std::uint32_t le32(const std::string& s, std::size_t at) {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(s[at + static_cast<std::size_t>(i)]);
    return v;
}
inline void put64(std::string& s, std::size_t at, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) s[at + static_cast<std::size_t>(i)] = static_cast<char>(v >> (8 * i));
}

/// Recomputes a weights file's checksum after a deliberate edit, so the
/// reader's checks behind the checksum are reached.
inline void reseal_weights_file(std::string& s) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
    put64(s, 56, sparseinfer::detail::weights_checksum(p, p + 64, s.size() - 64));
}

/// How a file of the damaged-file corpus was made from the good one.
enum class Damage {
    changed_byte,  ///< one byte xor 0xFF or + 1
    truncated,     ///< the first n bytes
    random,        ///< random bytes, every second file behind the good file's first bytes
};

/// Where the random files of the corpus come from.
struct RandomFiles {
    unsigned seed;
    std::size_t max_size;     ///< sizes are uniform in [0, max_size)
    std::size_t good_prefix;  ///< bytes of the good file put in front of every second one
};

/// Calls fn(bytes, damage, at) for every file of the damaged-file corpus of
/// `good`: each byte changed two ways (xor 0xFF, then + 1; at = the byte), each
/// truncation (at = the length) and 300 random files (at = their index).
template <class Fn>
void for_each_damaged_file(const std::string& good, RandomFiles random, Fn fn) {
    for (std::size_t i = 0; i < good.size(); ++i)
        for (int kind = 0; kind < 2; ++kind) {
            std::string f = good;
            f[i] = static_cast<char>(kind == 0 ? f[i] ^ 0xFF : f[i] + 1);
            fn(f, Damage::changed_byte, i);
        }
    for (std::size_t n = 0; n < good.size(); ++n) fn(good.substr(0, n), Damage::truncated, n);
    std::mt19937 rng(random.seed);
    for (std::size_t k = 0; k < 300; ++k) {
        std::string f(rng() % random.max_size, '\0');
        for (auto& c : f) c = static_cast<char>(rng());
        if (k % 2 == 1 && f.size() >= random.good_prefix) std::memcpy(&f[0], good.data(), random.good_prefix);
        fn(f, Damage::random, k);
    }
}

/// "a change at byte 5" and the like, for the message of an accepted file.
inline std::string describe(Damage d, std::size_t at) {
    switch (d) {
    case Damage::changed_byte: return "a change at byte " + std::to_string(at);
    case Damage::truncated: return "a truncation to " + std::to_string(at) + " bytes";
    default: return "random file " + std::to_string(at);
    }
}

/// True when read() throws sparseinfer::format_error, false when it returns;
/// any other exception fails the test.
template <class Read>
bool rejected(Read&& read) {
    try {
        read();
    } catch (const sparseinfer::format_error&) {
        return true;
    } catch (...) {
        FAIL("an exception other than format_error escaped");
    }
    return false;
}

/// Runs the damaged-file corpus of `good` through a reader with both
/// verification levels, rejected(bytes, Verify) -> bool, and returns how many
/// damaged files it accepted (each named in the test's output): every damaged
/// file must fail Verify::full and every truncation Verify::structure too. A
/// changed byte may pass Verify::structure (the checksum is not read); the
/// reader then still has to stay in bounds (ASan checks it).
template <class Rejected>
std::size_t accepted_damaged_files(const std::string& good, RandomFiles random, Rejected&& rejected) {
    using sparseinfer::Verify;
    std::size_t accepted = 0;
    for_each_damaged_file(good, random, [&](const std::string& f, Damage d, std::size_t at) {
        if (!rejected(f, Verify::full)) {
            ++accepted;
            UNSCOPED_INFO("accepted " << describe(d, at));
        }
        if (d == Damage::truncated && !rejected(f, Verify::structure)) {
            ++accepted;
            UNSCOPED_INFO("accepted without the checksum pass " << describe(d, at));
        }
        if (d == Damage::changed_byte) (void)rejected(f, Verify::structure);
    });
    return accepted;
}

}  // namespace file_test
