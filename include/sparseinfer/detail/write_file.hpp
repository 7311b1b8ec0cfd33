// sparseinfer/detail/write_file.hpp - writing a whole file through a stream writer.
//
// Every writer in the library (tensor files, weights files, GGUF files, cache
// profiles) writes to a std::ostream; this is the one place that opens the
// path, runs such a writer and checks that every byte reached the file,
// closing first, since a failed flush only shows at close.
#pragma once

#include <fstream>
#include <ostream>
#include <string>

#include "../error.hpp"

namespace sparseinfer::detail {

/// Creates or truncates the file at `path` and calls write(std::ostream&) on it;
/// throws sparseinfer::error naming `what` and the path when the file cannot be
/// opened or a write, flush or close fails.
template <class Write>
void write_file(const std::string& path, const char* what, Write&& write) {
    std::ofstream os(path, std::ios::binary | std::ios::trunc);
    if (!os) throw error(std::string(what) + ": cannot open '" + path + "' for writing");
    write(static_cast<std::ostream&>(os));
    os.close();
    if (!os) throw error(std::string(what) + ": writing '" + path + "' failed");
}

}  // namespace sparseinfer::detail
