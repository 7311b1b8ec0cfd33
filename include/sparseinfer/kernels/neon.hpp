// sparseinfer/kernels/neon.hpp - NEON kernels (aarch64) for the row format.
// Not yet implemented: on aarch64 the scalar reference is used.
#pragma once
