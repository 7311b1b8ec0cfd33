// Helpers shared by the file-format tests: sample matrices, files as strings,
// little-endian field access written independently of the library's code.
#pragma once

#include <sparseinfer/quantized_weights.hpp>

#include <cstddef>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

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

}  // namespace file_test
