// libFuzzer target: QuantizedWeights<Bits>::load from a stream of arbitrary
// bytes, as given and with the checksum re-sealed. Anything loaded runs every
// kernel. Only sparseinfer::format_error may escape.
#include <sparseinfer/quantized_weights.hpp>

#include <cstdint>
#include <sstream>
#include <string>

#include "fuzz_common.hpp"

namespace {
template <int Bits>
void try_load(const std::string& bytes) {
    std::istringstream is(bytes, std::ios::binary);
    try {
        const auto w = sparseinfer::QuantizedWeights<Bits>::load(is);
        if (fuzz::small_enough(w.rows(), w.cols())) fuzz::exercise(w);
    } catch (const sparseinfer::format_error&) {}
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string bytes(reinterpret_cast<const char*>(data), size);
    for (int pass = 0; pass < 2; ++pass) {
        if (pass == 1) fuzz::reseal_weights(reinterpret_cast<std::uint8_t*>(&bytes[0]), bytes.size());
        fuzz::with_bits(fuzz::declared_bits(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()),
                        [&](auto bits) { try_load<decltype(bits)::value>(bytes); });
    }
    return 0;
}
