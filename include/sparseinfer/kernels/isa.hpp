// sparseinfer/kernels/isa.hpp - choosing the kernel path (instruction set) once.
//
// The best path the CPU has is chosen at the first use, thread-safely, from
// CPUID (x86-64: avx512_vnni > avx512 > avx2 > scalar) or HWCAP (aarch64:
// neon_dotprod > neon). The environment variable SPARSEINFER_ISA (scalar, avx2,
// avx512, avx512_vnni, neon, neon_dotprod) forces a path at or below the best;
// an unknown name, or one this CPU (or build) lacks, is an error thrown by
// select_isa() and by every checked call (the QuantizedWeights API,
// quantize_activations, init_kernels()). The raw noexcept kernels in
// dispatch.hpp never throw: until a checked call has reported a bad
// SPARSEINFER_ISA they run the scalar reference.
//
//   sparseinfer::kernels::init_kernels();          // throws on a bad SPARSEINFER_ISA
//   std::puts(sparseinfer::active_isa());          // e.g. "avx512_vnni"
//   for (auto isa : sparseinfer::kernels::supported_isas())  // tests: every path
//       sparseinfer::kernels::table_for(isa, 4).dot_row(layout, row, x);
#pragma once

#include <cstdlib>
#include <string>
#include <vector>

#include "../detail/cpu_features.hpp"
#include "../detail/kernel_table.hpp"
#include "../error.hpp"
#include "registry.hpp"

namespace sparseinfer::kernels {

/// True when this build contains the path and the CPU can run it.
inline bool isa_supported(Isa isa) noexcept {
    static const detail::CpuFeatures f = detail::detect_cpu_features();
    const IsaEntry& e = isa_entry(isa);
#if defined(SPARSEINFER_SEPARATE_KERNELS)
    if (separate_table(isa, 4) == nullptr) return false;  // not in the kernels unit
#endif
    return e.isa == isa && e.built && e.cpu_has(f);
}

/// Every path this CPU can run, weakest first (scalar is always first).
inline std::vector<Isa> supported_isas() {
    std::vector<Isa> out;
    for (const auto& e : isa_registry)
        if (isa_supported(e.isa)) out.push_back(e.isa);
    return out;
}

/// The best path this CPU can run.
inline Isa best_isa() noexcept {
    Isa best = Isa::scalar;
    for (const auto& e : isa_registry)
        if (isa_supported(e.isa)) best = e.isa;
    return best;
}

/// The kernels of `isa` for code width Bits (2, 3, 4 or 8). The caller makes
/// sure isa_supported(isa); an unsupported one gives the scalar table.
template <int Bits>
const KernelTable& table_for(Isa isa) noexcept {
    return *path_table<Bits>(isa_supported(isa) ? isa : Isa::scalar);
}

/// Kernel Op of `isa` for code width Bits alone (compiles no other kernel).
/// The caller makes sure isa_supported(isa); an unsupported one gives scalar's.
template <int Bits, KernelOp Op>
KernelFn<Op> kernel_for(Isa isa) noexcept {
    return path_kernel<Bits, Op>(isa_supported(isa) ? isa : Isa::scalar);
}

/// table_for for a width known at run time (compiles every width's kernels).
inline const KernelTable& table_for(Isa isa, int bits) noexcept {
    return with_width(
        bits, [isa](auto width) noexcept -> const KernelTable& { return table_for<decltype(width)::value>(isa); });
}

/// Parses a path name; throws sparseinfer::error naming the valid ones.
inline Isa parse_isa(const std::string& name) {
    std::string all;
    for (const auto& e : isa_registry) {
        if (name == e.name) return e.isa;
        all += std::string(all.empty() ? "" : ", ") + e.name;
    }
    throw error("SPARSEINFER_ISA is '" + name + "'; expected one of " + all);
}

/// The path to use given a SPARSEINFER_ISA value (nullptr or empty: the best one).
/// Throws sparseinfer::error on an unknown name or one this CPU lacks.
inline Isa select_isa(const char* forced) {
    if (forced == nullptr || *forced == '\0') return best_isa();
    const Isa isa = parse_isa(forced);
    if (!isa_supported(isa)) {
        std::string have;
        for (Isa s : supported_isas()) have += std::string(have.empty() ? "" : ", ") + isa_name(s);
        throw error(std::string("SPARSEINFER_ISA is '") + forced + "', which this CPU or build does not support" +
                    " (supported: " + have + ")");
    }
    return isa;
}

/// select_isa for the current value of the SPARSEINFER_ISA environment variable
/// (read fresh on every call; the cached choice is active_kernels()).
inline Isa select_isa() { return select_isa(std::getenv("SPARSEINFER_ISA")); }

}  // namespace sparseinfer::kernels

namespace sparseinfer::detail {

/// The path chosen once for the process, and the error a bad SPARSEINFER_ISA gave.
struct ActiveKernels {
    Isa isa = Isa::scalar;
    std::string message;  ///< empty when SPARSEINFER_ISA was valid
};

inline const ActiveKernels& active_kernels() noexcept {
    static const ActiveKernels active = [] {
        ActiveKernels a;
        try {
            a.isa = kernels::select_isa();
        } catch (const std::exception& e) {
            a.isa = Isa::scalar;
            a.message = e.what();
        }
        return a;
    }();
    return active;
}

/// The chosen kernels for code width Bits (no checks; see init_kernels()).
template <int Bits>
const kernels::KernelTable& active_table_for() noexcept {
    static const kernels::KernelTable* const table = &kernels::table_for<Bits>(active_kernels().isa);
    return *table;
}

/// The chosen path's kernel Op for code width Bits (no checks; see init_kernels()).
template <int Bits, kernels::KernelOp Op>
kernels::KernelFn<Op> active_kernel() noexcept {
    static const kernels::KernelFn<Op> fn = kernels::kernel_for<Bits, Op>(active_kernels().isa);
    return fn;
}

/// active_table_for a width known at run time (compiles every width's kernels).
inline const kernels::KernelTable& active_table(int bits) noexcept {
    return kernels::with_width(bits, [](auto width) noexcept -> const kernels::KernelTable& {
        return active_table_for<decltype(width)::value>();
    });
}

}  // namespace sparseinfer::detail

namespace sparseinfer::kernels {

/// Chooses the kernel path now and throws sparseinfer::error if SPARSEINFER_ISA
/// named an unknown path or one the CPU lacks. Cheap after the first call; the
/// checked APIs call it, so callers of the raw kernels only need it once.
inline void init_kernels() {
    const auto& a = detail::active_kernels();
    if (!a.message.empty()) throw error(a.message.substr(a.message.find(' ') + 1));
}

}  // namespace sparseinfer::kernels

namespace sparseinfer {

/// Name of the kernel path in use: "scalar", "avx2", "avx512", "avx512_vnni",
/// "neon" or "neon_dotprod".
inline const char* active_isa() noexcept { return isa_name(detail::active_kernels().isa); }

}  // namespace sparseinfer
