// sparseinfer/kernels/registry.hpp - the one list of kernel paths (instruction
// sets): each entry's name, how the CPU shows it has it, and its kernel tables.
// kernels/isa.hpp chooses among them; nothing else lists the paths.
//
// Adding a path: a value in `enum class Isa` (detail/kernel_table.hpp), the
// CPU bit in detail/cpu_features.hpp, its primitives file under kernels/ (the
// loops come from kernels/detail/row_walk.inc), and one entry here.
//
//   for (const auto& e : sparseinfer::kernels::isa_registry)
//       std::printf("%s %s\n", e.name, e.table ? "built" : "not in this build");
//
// Compiled mode: a program that defines SPARSEINFER_SEPARATE_KERNELS in every
// unit and links src/sparseinfer_kernels.cpp (CMake: sparseinfer::kernels)
// compiles the kernels once, in that unit; the other units see only
// separate_table() below, which the registry's entries call, and compile no
// kernel code. That unit compiles this file as the header-only mode does and
// answers separate_table() from the registry itself, so this list stays the
// only one. The compiled mode's registry lives in the inline namespace
// `compiled_mode`, so it and the unit's are distinct entities, not two
// definitions of one.
#pragma once

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

/// A registry table function over separate_table(); isa_supported() has
/// checked that the kernels unit holds the path.
template <Isa I>
const KernelTable& separate_table_of(int bits) noexcept {
    return *separate_table(I, bits);
}
#endif

#if defined(SPARSEINFER_SEPARATE_KERNELS)
inline namespace compiled_mode {
#endif

/// One kernel path.
struct IsaEntry {
    Isa isa;           ///< the path
    const char* name;  ///< what SPARSEINFER_ISA and active_isa() call it
    /// True when the CPU (and OS) can run the path.
    bool (*cpu_has)(const detail::CpuFeatures&) noexcept;
    /// The path's kernels per code width; nullptr when this build lacks them
    /// (another architecture, or a compiler without the target).
    const KernelTable& (*table)(int bits) noexcept;
};

/// Every path, weakest first within each architecture: the last one the CPU
/// has is the default.
inline constexpr IsaEntry isa_registry[] = {
    {Isa::scalar, "scalar", [](const detail::CpuFeatures&) noexcept { return true; },
#if defined(SPARSEINFER_SEPARATE_KERNELS)
     &separate_table_of<Isa::scalar>},
#else
     &scalar::table},
#endif
    {Isa::avx2, "avx2", [](const detail::CpuFeatures& f) noexcept { return f.avx2; },
#if defined(SPARSEINFER_SEPARATE_KERNELS)
     &separate_table_of<Isa::avx2>},
#elif defined(SPARSEINFER_HAS_AVX2_KERNELS)
     &avx2::table},
#else
     nullptr},
#endif
    {Isa::avx512, "avx512", [](const detail::CpuFeatures& f) noexcept { return f.avx512; },
#if defined(SPARSEINFER_SEPARATE_KERNELS)
     &separate_table_of<Isa::avx512>},
#elif defined(SPARSEINFER_HAS_AVX512_KERNELS)
     &avx512::table},
#else
     nullptr},
#endif
    {Isa::avx512_vnni, "avx512_vnni", [](const detail::CpuFeatures& f) noexcept { return f.avx512_vnni; },
#if defined(SPARSEINFER_SEPARATE_KERNELS)
     &separate_table_of<Isa::avx512_vnni>},
#elif defined(SPARSEINFER_HAS_AVX512_KERNELS)
     &avx512_vnni::table},
#else
     nullptr},
#endif
    {Isa::neon, "neon", [](const detail::CpuFeatures& f) noexcept { return f.neon; },
#if defined(SPARSEINFER_SEPARATE_KERNELS)
     &separate_table_of<Isa::neon>},
#elif defined(SPARSEINFER_HAS_NEON_KERNELS)
     &neon::table},
#else
     nullptr},
#endif
    {Isa::neon_dotprod, "neon_dotprod", [](const detail::CpuFeatures& f) noexcept { return f.neon_dotprod; },
#if defined(SPARSEINFER_SEPARATE_KERNELS)
     &separate_table_of<Isa::neon_dotprod>},
#elif defined(SPARSEINFER_HAS_NEON_DOTPROD_KERNELS)
     &neon_dotprod::table},
#else
     nullptr},
#endif
};

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
