// sparseinfer/kernels/registry.hpp - the one list of kernel paths (instruction
// sets): each entry's name, how the CPU shows it has it, and whether this build
// has its kernels. kernels/isa.hpp chooses among them; nothing else lists the
// paths.
//
// Adding a path: a value in `enum class Isa` (detail/kernel_table.hpp), the
// CPU bit in detail/cpu_features.hpp, its primitives file under kernels/ (the
// loops come from kernels/detail/row_walk.inc; SPARSEINFER_BUILT_PATH gives
// its tables to PathTables), and one entry here.
//
// A path's tables are reached per code width (path_table<Bits>), never through
// a function that covers every width, so a unit compiles only the widths it
// asks for: QuantizedWeights<4> brings the 4-bit kernels of every path, not
// the 2-, 3- and 8-bit ones. Only the run-time-width entry points
// (kernels/dispatch.hpp on a RowLayout, table_for(isa, bits)) bring them all.
//
//   for (const auto& e : sparseinfer::kernels::isa_registry)
//       std::printf("%s %s\n", e.name, e.built ? "built" : "not in this build");
//
// Compiled mode: a program that defines SPARSEINFER_SEPARATE_KERNELS in every
// unit and links src/sparseinfer_kernels.cpp (CMake: sparseinfer::kernels)
// compiles the kernels once, in that unit; the other units' PathTables ask
// separate_table() below, and compile no kernel code. That unit compiles this
// file as the header-only mode does and answers separate_table() from the
// registry itself, so this list stays the only one. The compiled mode's
// registry lives in the inline namespace `compiled_mode`, so it and the unit's
// are distinct entities, not two definitions of one.
#pragma once

#include <cstddef>
#include <utility>

#include "../detail/cpu_features.hpp"
#include "../detail/kernel_table.hpp"
// The scalar reference is declared in both modes (tests compare with it); the
// compiled mode's registry does not call it.
#include "scalar.hpp"
#if !defined(SPARSEINFER_SEPARATE_KERNELS)
#include "avx2.hpp"
#include "avx512.hpp"
#include "neon.hpp"
#endif

namespace sparseinfer::kernels {

#if defined(SPARSEINFER_SEPARATE_KERNELS)
/// The kernels of a path for a code width, or nullptr when the kernels unit
/// lacks the path; it always has scalar. Defined in src/sparseinfer_kernels.cpp.
const KernelTable* separate_table(Isa isa, int bits) noexcept;

inline namespace compiled_mode {
/// Compiled mode: every path's tables are asked of the kernels unit at run
/// time (isa_supported() checks that the unit holds the path).
template <Isa I>
struct PathTables {
    static constexpr bool built = true;  ///< whether this build has the path
    /// The path's kernels for code width Bits (nullptr when not built).
    template <int Bits>
    static const KernelTable* table() noexcept {
        return separate_table(I, Bits);
    }
    template <int Bits, KernelOp Op>
    static KernelFn<Op> kernel() noexcept {
        const KernelTable* t = separate_table(I, Bits);
        return t != nullptr ? t->*kernel_member<Op>() : nullptr;
    }
};
#else
/// Header-only: a path no primitives file specialized is not in this build
/// (another architecture, or a compiler without the target).
template <Isa I>
struct PathTables {
    static constexpr bool built = false;  ///< whether this build has the path
    /// The path's kernels for code width Bits (nullptr when not built).
    template <int Bits>
    static const KernelTable* table() noexcept {
        return nullptr;
    }
    /// The path's kernel Op for code width Bits alone (nullptr when not built).
    template <int Bits, KernelOp Op>
    static KernelFn<Op> kernel() noexcept {
        return nullptr;
    }
};
#endif

/// One kernel path.
struct IsaEntry {
    Isa isa;           ///< the path
    const char* name;  ///< what SPARSEINFER_ISA and active_isa() call it
    /// True when the CPU (and OS) can run the path.
    bool (*cpu_has)(const detail::CpuFeatures&) noexcept;
    /// True when this build has the path's kernels (PathTables<isa>).
    bool built;
};

/// Every path, weakest first within each architecture: the last one the CPU
/// has is the default.
inline constexpr IsaEntry isa_registry[] = {
    {Isa::scalar, "scalar", [](const detail::CpuFeatures&) noexcept { return true; }, PathTables<Isa::scalar>::built},
    {Isa::avx2, "avx2", [](const detail::CpuFeatures& f) noexcept { return f.avx2; }, PathTables<Isa::avx2>::built},
    {Isa::avx512, "avx512", [](const detail::CpuFeatures& f) noexcept { return f.avx512; },
     PathTables<Isa::avx512>::built},
    {Isa::avx512_vnni, "avx512_vnni", [](const detail::CpuFeatures& f) noexcept { return f.avx512_vnni; },
     PathTables<Isa::avx512_vnni>::built},
    {Isa::neon, "neon", [](const detail::CpuFeatures& f) noexcept { return f.neon; }, PathTables<Isa::neon>::built},
    {Isa::neon_dotprod, "neon_dotprod", [](const detail::CpuFeatures& f) noexcept { return f.neon_dotprod; },
     PathTables<Isa::neon_dotprod>::built},
};

/// The kernels of path `isa` for code width Bits, or nullptr when this build
/// lacks the path. Instantiates width Bits of every built path, no other width.
template <int Bits, std::size_t... K>
const KernelTable* path_table(Isa isa, std::index_sequence<K...>) noexcept {
    const KernelTable* t = nullptr;
    ((isa == isa_registry[K].isa ? (void)(t = PathTables<isa_registry[K].isa>::template table<Bits>()) : (void)0), ...);
    return t;
}

/// path_table over every registry entry: the kernels of path `isa` for code
/// width Bits, or nullptr when this build lacks the path.
template <int Bits>
const KernelTable* path_table(Isa isa) noexcept {
    return path_table<Bits>(isa, std::make_index_sequence<sizeof isa_registry / sizeof isa_registry[0]>{});
}

/// Kernel Op of path `isa` for code width Bits, or nullptr when this build
/// lacks the path. Instantiates that one kernel of every built path.
template <int Bits, KernelOp Op, std::size_t... K>
KernelFn<Op> path_kernel(Isa isa, std::index_sequence<K...>) noexcept {
    KernelFn<Op> f = nullptr;
    ((isa == isa_registry[K].isa ? (void)(f = PathTables<isa_registry[K].isa>::template kernel<Bits, Op>()) : (void)0),
     ...);
    return f;
}

/// Kernel Op of path `isa` for code width Bits, or nullptr when this build
/// lacks the path (as above, over the whole registry).
template <int Bits, KernelOp Op>
KernelFn<Op> path_kernel(Isa isa) noexcept {
    return path_kernel<Bits, Op>(isa, std::make_index_sequence<sizeof isa_registry / sizeof isa_registry[0]>{});
}

/// The registry entry of a path.
constexpr const IsaEntry& isa_entry(Isa isa) noexcept {
    for (const auto& e : isa_registry)
        if (e.isa == isa) return e;
    return isa_registry[0];
}

#if defined(SPARSEINFER_SEPARATE_KERNELS)
}  // namespace compiled_mode
#endif

}  // namespace sparseinfer::kernels

namespace sparseinfer {
#if defined(SPARSEINFER_SEPARATE_KERNELS)
inline namespace compiled_mode {
#endif

/// The name SPARSEINFER_ISA and active_isa() use for a path.
constexpr const char* isa_name(Isa isa) noexcept { return kernels::isa_entry(isa).name; }

#if defined(SPARSEINFER_SEPARATE_KERNELS)
}  // namespace compiled_mode
#endif
}  // namespace sparseinfer
