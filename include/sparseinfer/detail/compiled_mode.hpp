// sparseinfer/detail/compiled_mode.hpp - how a function that the compiled mode
// compiles once is declared.
//
// Header-only (the default), such a function is `inline` and its header
// includes its body (a `*_impl.hpp` beside it). In the compiled mode
// (SPARSEINFER_SEPARATE_KERNELS in every unit, CMake target
// sparseinfer::kernels) the header declares it only and one unit of the
// kernels target defines it, so units that call it neither parse its body nor
// generate its code. This is for costly code that is not a template of the
// caller's types: the kernels, the low-rank fit (Eigen's SVD and QR), file
// verification.
//
//   // header.hpp
//   SPARSEINFER_SEPARATE_FN int costly(int x);
//   #if !defined(SPARSEINFER_SEPARATE_KERNELS)
//   #include "header_impl.hpp"  // SPARSEINFER_SEPARATE_FN int costly(int x) { ... }
//   #endif
#pragma once

#if defined(SPARSEINFER_SEPARATE_KERNELS)
#define SPARSEINFER_SEPARATE_FN
#else
#define SPARSEINFER_SEPARATE_FN inline
#endif
