// The compiled mode's unit for the library's costly functions that are neither
// kernels (src/sparseinfer_kernels.cpp) nor the Eigen fit
// (src/sparseinfer_low_rank_fit.cpp): it defines, once, what the headers
// declare with SPARSEINFER_SEPARATE_FN (see detail/compiled_mode.hpp).
#if !defined(SPARSEINFER_SEPARATE_KERNELS)
#error "compiled as part of sparseinfer::kernels, which defines SPARSEINFER_SEPARATE_KERNELS"
#endif
#include <sparseinfer/detail/weights_file_impl.hpp>
#include <sparseinfer/detail/quantizer_impl.hpp>
