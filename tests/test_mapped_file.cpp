// Tests of <sparseinfer/mapped_file.hpp>, with views over a mapped weights file.
#include <sparseinfer/mapped_file.hpp>

#include <sparseinfer/quantized_weights_view.hpp>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "catch.hpp"

namespace si = sparseinfer;

namespace {
std::string temp_path(const char* tag) {
    return (std::filesystem::temp_directory_path() /
            ("sparseinfer_test_" + std::string(tag) + "_" + std::to_string(std::random_device{}())))
        .string();
}
}  // namespace

TEST_CASE("a mapped weights file gives a view equal to the saved matrix") {
    std::vector<float> w(5 * 70);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 13) - 6.0f;
    const auto q = si::QuantizedWeights<4>::from_f32(w.data(), 5, 70);
    const std::string path = temp_path("mapped");
    q.save(path);
    {
        si::MappedFile file(path);
        REQUIRE(file.size() == 64 + q.memory_bytes());
        const auto v = si::QuantizedWeightsView<4>::from_bytes(file.data(), file.size());
        CHECK(std::memcmp(v.data(), q.data(), q.memory_bytes()) == 0);
        si::MappedFile moved(std::move(file));
        CHECK(moved.size() == 64 + q.memory_bytes());
        CHECK(file.data() == nullptr);
        CHECK(file.size() == 0);
    }
    std::remove(path.c_str());
}

TEST_CASE("an empty file maps to no bytes, and views of it are rejected") {
    const std::string path = temp_path("empty");
    { std::ofstream os(path, std::ios::binary); }
    {
        si::MappedFile file(path);
        CHECK(file.size() == 0);
        CHECK_THROWS_AS(si::QuantizedWeightsView<4>::from_bytes(file.data(), file.size()), si::format_error);
    }
    std::remove(path.c_str());
}

TEST_CASE("a missing file throws sparseinfer::error naming it") {
    try {
        si::MappedFile file("/nonexistent-dir/none.siqw");
        FAIL("opened a missing file");
    } catch (const si::error& e) {
        CHECK(std::string(e.what()).find("/nonexistent-dir/none.siqw") != std::string::npos);
    }
}
