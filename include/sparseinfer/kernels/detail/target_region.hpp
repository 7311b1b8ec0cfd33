// sparseinfer/kernels/detail/target_region.hpp - opens and closes a region of
// code compiled for one instruction set, so a kernel header builds with the
// baseline flags of its architecture and its code runs only where
// kernels/isa.hpp has checked the CPU.
//
// GCC and Clang spell the target differently (GCC "+simd" is Clang "neon"), so
// the region takes both:
//
//   SPARSEINFER_TARGET_REGION_BEGIN("avx2,fma", "avx2,fma")
//   namespace sparseinfer::kernels::avx2 { ... }
//   SPARSEINFER_TARGET_REGION_END
#pragma once

#define SPARSEINFER_PRAGMA(text) _Pragma(#text)

// The kernels' helpers take and return vectors: a call would spill every live
// vector register around it (GCC left per-chunk and even per-block helpers out
// of line), so they are forced inline.
#ifndef SPARSEINFER_KERNEL_INLINE
#define SPARSEINFER_KERNEL_INLINE inline __attribute__((always_inline))
#endif

// clang-format off (its layout of these pragma macros changes from run to run)
#if defined(__clang__)
#define SPARSEINFER_TARGET_REGION_BEGIN(gcc_target, clang_target) \
    SPARSEINFER_PRAGMA(clang attribute push(__attribute__((target(clang_target))), apply_to = function))
#define SPARSEINFER_TARGET_REGION_END SPARSEINFER_PRAGMA(clang attribute pop)
#elif defined(__GNUC__)
// Intrinsics built on _mm*_undefined_* trip -Wuninitialized once inlined here.
#define SPARSEINFER_TARGET_REGION_BEGIN(gcc_target, clang_target) \
    SPARSEINFER_PRAGMA(GCC push_options)                          \
    SPARSEINFER_PRAGMA(GCC target(gcc_target))                    \
    SPARSEINFER_PRAGMA(GCC diagnostic push)                       \
    SPARSEINFER_PRAGMA(GCC diagnostic ignored "-Wuninitialized")  \
    SPARSEINFER_PRAGMA(GCC diagnostic ignored "-Wmaybe-uninitialized")
#define SPARSEINFER_TARGET_REGION_END SPARSEINFER_PRAGMA(GCC diagnostic pop) SPARSEINFER_PRAGMA(GCC pop_options)
#endif
// clang-format on
