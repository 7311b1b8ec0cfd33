// libFuzzer target: QuantizedWeightsView<Bits>::from_bytes on arbitrary bytes,
// both verification levels, as given and with the checksum re-sealed. Anything
// accepted runs every kernel. Only sparseinfer::format_error may escape from a
// parser; any other exception, crash or sanitizer report is a finding.
#include <sparseinfer/quantized_weights_view.hpp>

#include <cstdint>
#include <vector>

#include "fuzz_common.hpp"

namespace {
template <int Bits>
void try_view(const std::uint8_t* p, std::size_t n, sparseinfer::Verify verify) {
    try {
        const auto v = sparseinfer::QuantizedWeightsView<Bits>::from_bytes(p, n, verify);
        if (fuzz::small_enough(v.rows(), v.cols())) fuzz::exercise(v);
    } catch (const sparseinfer::format_error&) {}
}
template <int Bits>
void try_all(const std::uint8_t* p, std::size_t n) {
    try_view<Bits>(p, n, sparseinfer::Verify::full);
    try_view<Bits>(p, n, sparseinfer::Verify::structure);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::vector<std::uint8_t> exact(data, data + size);  // exact-size heap copy: ASan sees overreads
    for (int pass = 0; pass < 2; ++pass) {
        if (pass == 1) fuzz::reseal_weights(exact.data(), exact.size());
        fuzz::with_bits(fuzz::declared_bits(exact.data(), exact.size()),
                        [&](auto bits) { try_all<decltype(bits)::value>(exact.data(), exact.size()); });
    }
    return 0;
}
