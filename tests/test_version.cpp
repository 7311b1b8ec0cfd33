// Tests of <sparseinfer/version.hpp>: the macros agree with each other and with
// the version in the top-level CMakeLists.txt (project(sparseinfer VERSION x.y.z)).
#include <sparseinfer/version.hpp>

#include <fstream>
#include <regex>
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
    const std::regex project_version(R"(project\s*\(\s*sparseinfer[^)]*\bVERSION\s+([0-9]+\.[0-9]+\.[0-9]+))");
    std::smatch m;
    REQUIRE(std::regex_search(cmake, m, project_version));
    CHECK(m[1].str() == numeric_version());
}
