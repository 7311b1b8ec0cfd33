// sparseinfer/detail/aligned_allocator.hpp - a std::allocator that aligns to 64 bytes,
// so owned weight storage starts on a cache line (alignment is speed, not validity).
#pragma once

#include <cstddef>
#include <new>

namespace sparseinfer::detail {

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
        return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{Alignment}));
    }
    void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t{Alignment}); }

    template <class U>
    bool operator==(const AlignedAllocator<U, Alignment>&) const noexcept { return true; }
    template <class U>
    bool operator!=(const AlignedAllocator<U, Alignment>&) const noexcept { return false; }
};

}  // namespace sparseinfer::detail
