// sparseinfer/kernels/avx512.hpp - AVX-512 kernels for the row format, in two
// flavours: sparseinfer::kernels::avx512 (AVX-512 F/BW/VL/DQ; int8 dots with
// vpmaddubsw) and sparseinfer::kernels::avx512_vnni (plus VNNI; int8 dots with
// vpdpbusd, and float activations split into three int8 limbs per block for
// gemv_rows).
//
// Each flavour is compiled in its own target region, so this header compiles
// with baseline x86-64 flags and the code runs only when kernels/isa.hpp has
// checked the CPU. Semantics are those of kernels/scalar.hpp; the algorithms
// are described in kernels/detail/avx512_body.inc.
//
//   if (sparseinfer::detail::detect_cpu_features().avx512_vnni)
//       y = sparseinfer::kernels::avx512_vnni::table_for_bits<4>.dot_row(layout, row, x);
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "../detail/kernel_table.hpp"
#include "../detail/row_format.hpp"
#include "detail/target_region.hpp"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define SPARSEINFER_HAS_AVX512_KERNELS 1
#include <immintrin.h>

// --- avx512: F, BW, VL, DQ (with AVX2 and FMA) ---
#define SPARSEINFER_AVX512_BODY_VNNI 0
SPARSEINFER_TARGET_REGION_BEGIN("avx2,fma,bmi2,avx512f,avx512bw,avx512vl,avx512dq",
                                "avx2,fma,bmi2,avx512f,avx512bw,avx512vl,avx512dq")
namespace sparseinfer::kernels::avx512 {
#include "detail/avx512_body.inc"
}  // namespace sparseinfer::kernels::avx512
SPARSEINFER_TARGET_REGION_END

// --- avx512_vnni: the same plus AVX512-VNNI ---
#undef SPARSEINFER_AVX512_BODY_VNNI
#define SPARSEINFER_AVX512_BODY_VNNI 1
SPARSEINFER_TARGET_REGION_BEGIN("avx2,fma,bmi2,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni",
                                "avx2,fma,bmi2,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")
namespace sparseinfer::kernels::avx512_vnni {
#include "detail/avx512_body.inc"
}  // namespace sparseinfer::kernels::avx512_vnni
SPARSEINFER_TARGET_REGION_END

#undef SPARSEINFER_AVX512_BODY_VNNI

SPARSEINFER_BUILT_PATH(::sparseinfer::Isa::avx512, ::sparseinfer::kernels::avx512)
SPARSEINFER_BUILT_PATH(::sparseinfer::Isa::avx512_vnni, ::sparseinfer::kernels::avx512_vnni)

#endif
