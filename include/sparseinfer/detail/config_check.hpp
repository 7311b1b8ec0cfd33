// sparseinfer/detail/config_check.hpp - one-line validation of configuration structs.
#pragma once

#include <string>

#include "../error.hpp"

namespace sparseinfer::detail {

/// Throws sparseinfer::error(what) unless ok; what names the field and its bad value.
inline void require_config(bool ok, const std::string& what) {
    if (!ok) throw error(what);
}

}  // namespace sparseinfer::detail
