// Tests of <sparseinfer/ggml_types.hpp> (ggml's type ids and block sizes) and
// of the fp16 conversions in detail/ggml_blocks.hpp that every F16 value and
// block scale goes through.
#include <sparseinfer/detail/ggml_blocks.hpp>
#include <sparseinfer/ggml_types.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <string>

#include "catch.hpp"

namespace si = sparseinfer;
namespace g = sparseinfer::detail::ggml;

namespace {
std::uint32_t bits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
float from_bits(std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
}  // namespace

TEST_CASE("type ids, names and block sizes follow the block layouts") {
    // Sizes worked out from each block's fields (fp16 = 2 bytes).
    CHECK(si::ggml_type_info(si::GgmlType::q4_0).block_bytes == 2 + 32 / 2);
    CHECK(si::ggml_type_info(si::GgmlType::q4_1).block_bytes == 2 + 2 + 32 / 2);
    CHECK(si::ggml_type_info(si::GgmlType::q8_0).block_bytes == 2 + 32);
    CHECK(si::ggml_type_info(si::GgmlType::q4_k).block_bytes == 2 + 2 + 12 + 256 / 2);
    CHECK(si::ggml_type_info(si::GgmlType::q6_k).block_bytes == 256 / 2 + 256 / 4 + 256 / 16 + 2);
    CHECK(si::ggml_type_info(si::GgmlType::q5_k).block_bytes == 2 + 2 + 12 + 256 / 2 + 256 / 8);
    CHECK(si::ggml_type_info(si::GgmlType::q2_k).block_bytes == 256 / 16 + 256 / 4 + 2 + 2);
    CHECK(si::ggml_type_info(si::GgmlType::q3_k).block_bytes == 256 / 8 + 256 / 4 + 12 + 2);
    CHECK(si::ggml_type_info(si::GgmlType::q4_k).block_values == 256);
    CHECK(si::ggml_type_info(si::GgmlType::f16).block_bytes == 2);
    CHECK(std::string(si::ggml_type_name(12)) == "Q4_K");
    CHECK(std::string(si::ggml_type_name(0)) == "F32");
    CHECK(std::string(si::ggml_type_name(30)) == "BF16");
    for (std::uint32_t removed : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 40u, 1000u}) {
        CHECK(si::ggml_type_info(removed) == nullptr);
        CHECK(std::string(si::ggml_type_name(removed)) == "unknown");
    }
    std::set<std::uint32_t> ids;
    std::set<std::string> names, decoded;
    for (const auto& t : si::detail::ggml_types) {
        ids.insert(static_cast<std::uint32_t>(t.type));
        names.insert(t.name);
        if (t.dequantizable) decoded.insert(t.name);
        CHECK(si::ggml_type_info(static_cast<std::uint32_t>(t.type)) == &t);
    }
    CHECK(ids.size() == std::size(si::detail::ggml_types));
    CHECK(names.size() == ids.size());
    CHECK(decoded == std::set<std::string>{"F32", "F16", "Q4_0", "Q4_1", "Q8_0", "Q4_K", "Q6_K"});
    CHECK(si::ggml_can_dequantize(si::GgmlType::q6_k));
    CHECK_FALSE(si::ggml_can_dequantize(si::GgmlType::iq4_xs));
}

TEST_CASE("fp16 -> fp32 is exact: every half converts back to itself") {
    std::size_t wrong = 0;
    for (std::uint32_t h = 0; h < 65536; ++h) {
        const float f = g::fp16_to_fp32(static_cast<std::uint16_t>(h));
        const bool nan = (h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0;
        if (nan ? !std::isnan(f) : g::fp32_to_fp16(f) != h) ++wrong;
    }
    CHECK(wrong == 0);
    CHECK(g::fp16_to_fp32(0x3C00) == 1.0f);
    CHECK(g::fp16_to_fp32(0x0001) == std::ldexp(1.0f, -24));
    CHECK(g::fp16_to_fp32(0x03FF) == std::ldexp(1023.0f, -24));
    CHECK(g::fp16_to_fp32(0x7BFF) == 65504.0f);
    CHECK(g::fp16_to_fp32(0xFC00) == -INFINITY);
    CHECK(bits(g::fp16_to_fp32(0x8000)) == 0x80000000u);
}

TEST_CASE("fp32 -> fp16 rounds to nearest, ties to even, at every boundary") {
    CHECK(g::fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);      // tie, down to even
    CHECK(g::fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3C02);  // tie, up to even
    CHECK(g::fp32_to_fp16(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)) == 0x3C01);
    CHECK(g::fp32_to_fp16(65504.0f) == 0x7BFF);
    CHECK(g::fp32_to_fp16(65519.99f) == 0x7BFF);
    CHECK(g::fp32_to_fp16(65520.0f) == 0x7C00);  // the tie above the largest half goes to infinity
    CHECK(g::fp32_to_fp16(-1e10f) == 0xFC00);
    CHECK(g::fp32_to_fp16(std::ldexp(1.0f, -25)) == 0x0000);  // tie between 0 and the smallest subnormal
    CHECK(g::fp32_to_fp16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)) == 0x0001);
    CHECK(g::fp32_to_fp16(3 * std::ldexp(1.0f, -25)) == 0x0002);                      // 1.5 ulp: tie, up to even
    CHECK(g::fp32_to_fp16(std::ldexp(1.0f, -14) - std::ldexp(1.0f, -25)) == 0x0400);  // tie into the normals
    CHECK(g::fp32_to_fp16(1e-30f) == 0x0000);
    CHECK(g::fp32_to_fp16(-1e-30f) == 0x8000);
    CHECK(g::fp32_to_fp16(from_bits(1)) == 0x0000);  // float subnormal
    CHECK(g::fp32_to_fp16(INFINITY) == 0x7C00);
    CHECK((g::fp32_to_fp16(NAN) & 0x7E00) == 0x7E00);
    // Against an independent rule: the nearest half by distance, ties to the even code.
    std::mt19937 rng(7);
    std::size_t wrong = 0;
    for (int i = 0; i < 200000; ++i) {
        const std::uint32_t exponent = 100 + rng() % 44;  // 2^-27 to 2^16: below the subnormals to overflow
        const float f = from_bits((rng() & 0x807FFFFFu) | exponent << 23);
        const std::uint16_t h = g::fp32_to_fp16(f);
        const double x = std::fabs(static_cast<double>(f));
        if (x >= 65520.0) {
            wrong += (h & 0x7FFF) != 0x7C00;
            continue;
        }
        // Candidates: h and its neighbours; h must be at least as near, and even when tied.
        const std::uint16_t m = h & 0x7FFF;
        const double here = std::fabs(static_cast<double>(g::fp16_to_fp32(m)) - x);
        for (int dlt : {-1, 1}) {
            const int n = m + dlt;
            if (n < 0 || n > 0x7BFF) continue;
            const double there = std::fabs(static_cast<double>(g::fp16_to_fp32(static_cast<std::uint16_t>(n))) - x);
            if (there < here || (there == here && (m & 1) != 0)) ++wrong;
        }
        if ((h & 0x8000) != (bits(f) >> 16 & 0x8000)) ++wrong;
    }
    CHECK(wrong == 0);
}
