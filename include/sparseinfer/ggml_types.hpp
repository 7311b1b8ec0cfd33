// sparseinfer/ggml_types.hpp - the tensor types of ggml (llama.cpp) as GGUF files number them.
//
// A GGUF tensor names its element type by ggml's type id. Every id ggml has
// assigned and still accepts in files is listed with its block geometry, so a
// file holding a type sparseinfer cannot decode still validates (its byte
// size is known) and the type is refused by name only when it is decoded.
//
//   auto t = sparseinfer::ggml_type_info(12);           // Q4_K
//   std::printf("%s: %zu values in %zu bytes\n", t->name, t->block_values, t->block_bytes);
//   bool ok = sparseinfer::ggml_can_dequantize(sparseinfer::GgmlType::q6_k);  // true
#pragma once

#include <cstddef>
#include <cstdint>

namespace sparseinfer {

/// ggml's type ids (the numbers stored in GGUF tensor infos). Ids 4, 5, 31-33
/// and 36-38 were removed from ggml and are not valid in files.
enum class GgmlType : std::uint32_t {
    f32 = 0,
    f16 = 1,
    q4_0 = 2,
    q4_1 = 3,
    q5_0 = 6,
    q5_1 = 7,
    q8_0 = 8,
    q8_1 = 9,
    q2_k = 10,
    q3_k = 11,
    q4_k = 12,
    q5_k = 13,
    q6_k = 14,
    q8_k = 15,
    iq2_xxs = 16,
    iq2_xs = 17,
    iq3_xxs = 18,
    iq1_s = 19,
    iq4_nl = 20,
    iq3_s = 21,
    iq2_s = 22,
    iq4_xs = 23,
    i8 = 24,
    i16 = 25,
    i32 = 26,
    i64 = 27,
    f64 = 28,
    iq1_m = 29,
    bf16 = 30,
    tq1_0 = 34,
    tq2_0 = 35,
    mxfp4 = 39,
};

/// A type's name as ggml spells it and its block geometry: a row of n values
/// takes n / block_values blocks of block_bytes each.
struct GgmlTypeInfo {
    GgmlType type;             ///< the type
    const char* name;          ///< as ggml spells it, e.g. "q4_K"
    std::size_t block_values;  ///< values per block
    std::size_t block_bytes;   ///< bytes per block
    bool dequantizable;        ///< sparseinfer decodes it (GgufFile::dequantize)
};

namespace detail {
inline constexpr GgmlTypeInfo ggml_types[] = {
    {GgmlType::f32, "F32", 1, 4, true},
    {GgmlType::f16, "F16", 1, 2, true},
    {GgmlType::q4_0, "Q4_0", 32, 18, true},
    {GgmlType::q4_1, "Q4_1", 32, 20, true},
    {GgmlType::q5_0, "Q5_0", 32, 22, false},
    {GgmlType::q5_1, "Q5_1", 32, 24, false},
    {GgmlType::q8_0, "Q8_0", 32, 34, true},
    {GgmlType::q8_1, "Q8_1", 32, 36, false},
    {GgmlType::q2_k, "Q2_K", 256, 84, false},
    {GgmlType::q3_k, "Q3_K", 256, 110, false},
    {GgmlType::q4_k, "Q4_K", 256, 144, true},
    {GgmlType::q5_k, "Q5_K", 256, 176, false},
    {GgmlType::q6_k, "Q6_K", 256, 210, true},
    {GgmlType::q8_k, "Q8_K", 256, 292, false},
    {GgmlType::iq2_xxs, "IQ2_XXS", 256, 66, false},
    {GgmlType::iq2_xs, "IQ2_XS", 256, 74, false},
    {GgmlType::iq3_xxs, "IQ3_XXS", 256, 98, false},
    {GgmlType::iq1_s, "IQ1_S", 256, 50, false},
    {GgmlType::iq4_nl, "IQ4_NL", 32, 18, false},
    {GgmlType::iq3_s, "IQ3_S", 256, 110, false},
    {GgmlType::iq2_s, "IQ2_S", 256, 82, false},
    {GgmlType::iq4_xs, "IQ4_XS", 256, 136, false},
    {GgmlType::i8, "I8", 1, 1, false},
    {GgmlType::i16, "I16", 1, 2, false},
    {GgmlType::i32, "I32", 1, 4, false},
    {GgmlType::i64, "I64", 1, 8, false},
    {GgmlType::f64, "F64", 1, 8, false},
    {GgmlType::iq1_m, "IQ1_M", 256, 56, false},
    {GgmlType::bf16, "BF16", 1, 2, false},
    {GgmlType::tq1_0, "TQ1_0", 256, 54, false},
    {GgmlType::tq2_0, "TQ2_0", 256, 66, false},
    {GgmlType::mxfp4, "MXFP4", 32, 17, false},
};
}  // namespace detail

/// The type with ggml id `id`, or nullptr for an id ggml never assigned or removed.
constexpr const GgmlTypeInfo* ggml_type_info(std::uint32_t id) noexcept {
    for (const auto& t : detail::ggml_types)
        if (static_cast<std::uint32_t>(t.type) == id) return &t;
    return nullptr;
}

/// The type's info (never nullptr for an enumerator).
constexpr const GgmlTypeInfo& ggml_type_info(GgmlType type) noexcept {
    return *ggml_type_info(static_cast<std::uint32_t>(type));
}

/// ggml's name of the type ("Q4_K"), or "unknown" for an id not in the list.
constexpr const char* ggml_type_name(std::uint32_t id) noexcept {
    const GgmlTypeInfo* t = ggml_type_info(id);
    return t != nullptr ? t->name : "unknown";
}

/// True when GgufFile::dequantize decodes the type: F32, F16, Q4_0, Q4_1, Q8_0, Q4_K, Q6_K.
constexpr bool ggml_can_dequantize(GgmlType type) noexcept { return ggml_type_info(type).dequantizable; }

}  // namespace sparseinfer
