// The kernels unit of the compiled mode (see kernels/registry.hpp): the one
// translation unit that compiles the SIMD kernels. Link it into a program
// whose units all define SPARSEINFER_SEPARATE_KERNELS (CMake target
// sparseinfer::kernels does both).
//
// It includes the SIMD headers and not the registry, so that no unit holds a
// second definition of the registry's inline entities.
#include <sparseinfer/detail/kernel_table.hpp>
#include <sparseinfer/kernels/avx2.hpp>
#include <sparseinfer/kernels/avx512.hpp>
#include <sparseinfer/kernels/neon.hpp>

namespace sparseinfer::kernels {

const KernelTable* separate_table(Isa isa, int bits) noexcept {
    switch (isa) {
#if defined(SPARSEINFER_HAS_AVX2_KERNELS)
    case Isa::avx2: return &avx2::table(bits);
#endif
#if defined(SPARSEINFER_HAS_AVX512_KERNELS)
    case Isa::avx512: return &avx512::table(bits);
    case Isa::avx512_vnni: return &avx512_vnni::table(bits);
#endif
#if defined(SPARSEINFER_HAS_NEON_KERNELS)
    case Isa::neon: return &neon::table(bits);
#endif
#if defined(SPARSEINFER_HAS_NEON_DOTPROD_KERNELS)
    case Isa::neon_dotprod: return &neon_dotprod::table(bits);
#endif
    default: return nullptr;
    }
}

}  // namespace sparseinfer::kernels
