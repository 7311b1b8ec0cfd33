// sparseinfer/detail/row_chunks.hpp - the fixed split of a layer's rows into
// chunks that threads take one at a time.
//
// The split depends on the number of rows alone, never on the thread count:
// each chunk's gate and up values are written to their own places and its down
// rows are summed into its own partial output, and the partials are added in
// chunk order, so every thread count gives the same bits. Chunks start at
// multiples of 64 rows, so a kernel that groups rows (in 2, 4, 16 or 64) groups
// the same rows whatever chunk they fall in. About 48 chunks for large n keeps
// two or three threads within a few percent of an even share.
//
//   detail::RowChunks chunks(11008);        // 43 chunks of 256 rows (the last shorter)
//   for (std::size_t c = 0; c < chunks.count(); ++c) work(chunks.begin(c), chunks.end(c));
#pragma once

#include <algorithm>
#include <cstddef>

namespace sparseinfer::detail {

class RowChunks {
public:
    static constexpr std::size_t alignment = 64;  ///< chunk starts are multiples of this
    static constexpr std::size_t target = 48;     ///< chunks aimed at for large n

    explicit RowChunks(std::size_t n) noexcept : n_(n) {
        const std::size_t want = (n + target - 1) / target;
        rows_ = std::max(alignment, (want + alignment - 1) / alignment * alignment);
        count_ = (n + rows_ - 1) / rows_;
    }

    std::size_t count() const noexcept { return count_; }
    /// The most chunks any n' <= n splits into: min(target, ceil(n / alignment)).
    static std::size_t max_count(std::size_t n) noexcept { return std::min(target, (n + alignment - 1) / alignment); }
    std::size_t begin(std::size_t c) const noexcept { return c * rows_; }
    std::size_t end(std::size_t c) const noexcept { return std::min(n_, (c + 1) * rows_); }

private:
    std::size_t n_ = 0, rows_ = alignment, count_ = 0;
};

}  // namespace sparseinfer::detail
