// sparseinfer/kernels/neon.hpp - NEON kernels (aarch64) for the row format, in
// sparseinfer::kernels::neon (Advanced SIMD) and sparseinfer::kernels::neon_dotprod
// (plus the dot-product extension: sdot), each in its own target region so the
// header builds with baseline armv8-a flags. Only compiled on aarch64.
// Semantics: kernels/scalar.hpp.
//
// The loops over rows, panels and chunks are kernels/detail/row_walk.inc, as on
// x86; this path supplies the arithmetic. Float x: a block of 32 codes is
// widened to 8 vectors of 4 floats, w = d*q + m, multiplied into 4 accumulators.
// Int8 x: per block the exact int32 sum of codes x activations (sdot for codes
// < 128, i.e. 2-4 bits on neon_dotprod; widening multiply-accumulate
// otherwise), scaled per block by group scale code x activation scale, four
// blocks per vector.
//
//   if (sparseinfer::detail::detect_cpu_features().neon_dotprod)
//       y = sparseinfer::kernels::neon_dotprod::table_for_bits<4>.dot_row(layout, row, x);
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "../detail/kernel_table.hpp"
#include "../detail/row_format.hpp"
#include "detail/target_region.hpp"
#include "scalar.hpp"

#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define SPARSEINFER_HAS_NEON_KERNELS 1
#include <arm_neon.h>

SPARSEINFER_TARGET_REGION_BEGIN("+simd", "neon")
#define SPARSEINFER_NEON_BODY_DOTPROD 0
namespace sparseinfer::kernels::neon {
#include "detail/neon_body.inc"
}  // namespace sparseinfer::kernels::neon
SPARSEINFER_TARGET_REGION_END
SPARSEINFER_BUILT_PATH(::sparseinfer::Isa::neon, ::sparseinfer::kernels::neon)

// Clang 14's arm_neon.h declares the dot-product intrinsics only when the
// compiler flags enable the extension, so with Clang the path needs them.
#if !defined(__clang__) || defined(__ARM_FEATURE_DOTPROD)
#define SPARSEINFER_HAS_NEON_DOTPROD_KERNELS 1
SPARSEINFER_TARGET_REGION_BEGIN("+simd+dotprod", "dotprod")
#undef SPARSEINFER_NEON_BODY_DOTPROD
#define SPARSEINFER_NEON_BODY_DOTPROD 1
namespace sparseinfer::kernels::neon_dotprod {
#include "detail/neon_body.inc"
}  // namespace sparseinfer::kernels::neon_dotprod
SPARSEINFER_TARGET_REGION_END
SPARSEINFER_BUILT_PATH(::sparseinfer::Isa::neon_dotprod, ::sparseinfer::kernels::neon_dotprod)
#endif
#undef SPARSEINFER_NEON_BODY_DOTPROD

#endif
