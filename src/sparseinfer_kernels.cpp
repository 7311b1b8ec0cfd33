// The kernels unit of the compiled mode (see kernels/registry.hpp): the one
// translation unit that compiles the SIMD kernels. Link it into a program
// whose units all define SPARSEINFER_SEPARATE_KERNELS (CMake target
// sparseinfer::kernels does both).
//
// This unit compiles the registry as the header-only mode does, with every
// path's table, and answers separate_table() from it: the registry stays the
// only list of paths. (The other units' registry is the compiled mode's, in
// its own inline namespace, so the two do not clash.)
#undef SPARSEINFER_SEPARATE_KERNELS
#include <sparseinfer/kernels/registry.hpp>

namespace sparseinfer::kernels {

// Declared by kernels/registry.hpp in the units of the compiled mode.
const KernelTable* separate_table(Isa isa, int bits) noexcept;

const KernelTable* separate_table(Isa isa, int bits) noexcept {
    return with_width(bits, [isa](auto width) noexcept { return path_table<decltype(width)::value>(isa); });
}

}  // namespace sparseinfer::kernels
