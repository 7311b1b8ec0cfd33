// Tests of <sparseinfer/version.hpp>: the macros agree with each other and with
// the version in the top-level CMakeLists.txt (project(sparseinfer VERSION x.y.z)).
#include <sparseinfer/version.hpp>

#include <fstream>
#include <sstream>
#include <string>

#include "catch.hpp"

namespace {

std::string numeric_version() {
    return std::to_string(SPARSEINFER_VERSION_MAJOR) + "." + std::to_string(SPARSEINFER_VERSION_MINOR) + "." +
           std::to_string(SPARSEINFER_VERSION_PATCH);
}

// The source tree's CMakeLists.txt, found from this file's path (CMake compiles
// sources by absolute path). Empty when the tree is not there.
std::string read_top_level_cmakelists() {
    std::string here = __FILE__;
    const auto slash = here.find_last_of("/\\");
    if (slash == std::string::npos) return {};
    std::ifstream in(here.substr(0, slash) + "/../CMakeLists.txt");
    if (!in) return {};
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

TEST_CASE("SPARSEINFER_VERSION_STRING spells the numeric macros") {
#if !(SPARSEINFER_VERSION_MAJOR >= 0 && SPARSEINFER_VERSION_MINOR >= 0 && SPARSEINFER_VERSION_PATCH >= 0)
#error "the version macros must be non-negative integers usable in #if"
#endif
    CHECK(std::string(SPARSEINFER_VERSION_STRING) == numeric_version());
}

TEST_CASE("the header's version is the CMake project version") {
    const std::string cmake = read_top_level_cmakelists();
    if (cmake.empty()) {
        WARN("CMakeLists.txt not found next to " << __FILE__ << "; comparison skipped");
        return;
    }
    // project(sparseinfer ... VERSION x.y.z ...), possibly over several lines.
    // (Parsed by hand: <regex> trips GCC 12's -Wmaybe-uninitialized under ASan.)
    const auto project = cmake.find("project(sparseinfer");
    REQUIRE(project != std::string::npos);
    const auto close = cmake.find(')', project);
    const auto keyword = cmake.find("VERSION", project);
    REQUIRE(keyword < close);
    const auto first = cmake.find_first_not_of(" \t\r\n", keyword + 7);
    const auto last = cmake.find_first_not_of("0123456789.", first);
    REQUIRE(last > first);
    CHECK(cmake.substr(first, last - first) == numeric_version());
}
