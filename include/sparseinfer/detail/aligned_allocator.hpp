// sparseinfer/detail/aligned_allocator.hpp - a std::allocator that aligns to 64 bytes,
// so owned weight storage starts on a cache line (alignment is speed, not validity).
//
// Allocations of 2 MiB or more are aligned to 2 MiB and, on Linux, marked
// madvise(MADV_HUGEPAGE): weight matrices are read at memory bandwidth, and
// when a kernel reads a scattered 10% of the rows, every row lands on a new 4 KiB
// page, so TLB misses cost a large part of the time (docs/kernels.md has the
// measurement). The advice is a hint only: if the kernel ignores it, or
// elsewhere, nothing changes but speed.
//
//   std::vector<std::uint8_t, sparseinfer::detail::AlignedAllocator<std::uint8_t>> bytes(n);
#pragma once

#include <cstddef>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace sparseinfer::detail {

/// Size from which an allocation is aligned to (and advised as) huge pages.
inline constexpr std::size_t huge_page_bytes = std::size_t{2} << 20;

template <class T, std::size_t Alignment = 64>
struct AlignedAllocator {
    using value_type = T;
    template <class U>
    struct rebind {
        using other = AlignedAllocator<U, Alignment>;
    };

    AlignedAllocator() noexcept = default;
    template <class U>
    AlignedAllocator(const AlignedAllocator<U, Alignment>&) noexcept {}

    T* allocate(std::size_t n) {
        if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
        const std::size_t bytes = n * sizeof(T);
        void* p = ::operator new (bytes, std::align_val_t{alignment_for(bytes)});
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        // Round down to whole huge pages: madvise needs a page-aligned range, and
        // a partial huge page at the end would only be backed by small pages.
        if (bytes >= huge_page_bytes) (void)::madvise(p, bytes / huge_page_bytes * huge_page_bytes, MADV_HUGEPAGE);
#endif
        return static_cast<T*>(p);
    }
    void deallocate(T* p, std::size_t n) noexcept {
        ::operator delete (p, std::align_val_t{alignment_for(n * sizeof(T))});
    }

    template <class U>
    bool operator==(const AlignedAllocator<U, Alignment>&) const noexcept {
        return true;
    }
    template <class U>
    bool operator!=(const AlignedAllocator<U, Alignment>&) const noexcept {
        return false;
    }

private:
    static constexpr std::size_t alignment_for(std::size_t bytes) noexcept {
        return bytes >= huge_page_bytes && huge_page_bytes > Alignment ? huge_page_bytes : Alignment;
    }
};

}  // namespace sparseinfer::detail
