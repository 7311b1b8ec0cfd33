// The low-rank fit of the compiled mode (see detail/compiled_mode.hpp): the
// one unit that instantiates Eigen's SVD, QR and LDLT solvers for
// LowRankPredictor. Part of the kernels target when Eigen is found.
#if !defined(SPARSEINFER_SEPARATE_KERNELS)
#error "compiled as part of sparseinfer::kernels, which defines SPARSEINFER_SEPARATE_KERNELS"
#endif
#include <sparseinfer/detail/low_rank_fit_impl.hpp>
