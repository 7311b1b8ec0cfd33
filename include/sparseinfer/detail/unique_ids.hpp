// sparseinfer/detail/unique_ids.hpp - checks that a list of ids is in range and
// holds no id twice, in O(n) per list with no clearing between lists.
//
// Each id's mark holds the stamp of the last list it was seen in; a new list
// takes a new stamp, so marks from earlier lists never match. The marks are
// cleared only when the 32-bit stamp wraps.
//
//   detail::UniqueIds ids(11008);
//   ids.check(active, n, "active");   // throws sparseinfer::error naming the bad entry
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../error.hpp"

namespace sparseinfer::detail {

class UniqueIds {
public:
    explicit UniqueIds(std::size_t count = 0) : mark_(count, 0) {}

    std::size_t count() const noexcept { return mark_.size(); }

    /// Throws sparseinfer::error when ids[0..n) holds an id >= count() or one id twice;
    /// `name` names the list in the message. ids may be null when n == 0.
    void check(const std::uint32_t* ids, std::size_t n, const char* name) {
        if (n == 0) return;
        if (ids == nullptr) throw error(std::string("argument '") + name + "' is a null pointer");
        const std::size_t count = mark_.size();
        if (n > count)
            throw error("the list holds " + std::to_string(n) + " neurons; the layer has " + std::to_string(count) +
                        ", so one is repeated or out of range");
        if (++epoch_ == 0) {  // the stamp wrapped: clear the marks once
            std::fill(mark_.begin(), mark_.end(), 0u);
            epoch_ = 1;
        }
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint32_t a = ids[i];
            if (a >= count)
                throw error(std::string(name) + "[" + std::to_string(i) + "] = " + std::to_string(a) +
                            " is out of range (hidden = " + std::to_string(count) + ")");
            if (mark_[a] == epoch_)
                throw error(std::string(name) + "[" + std::to_string(i) + "] = " + std::to_string(a) +
                            " is listed twice; each neuron may appear once");
            mark_[a] = epoch_;
        }
    }

private:
    std::vector<std::uint32_t> mark_;
    std::uint32_t epoch_ = 0;
};

}  // namespace sparseinfer::detail
