// libFuzzer target: TensorFile::from_bytes on arbitrary bytes. The container
// checksum is re-sealed in a second pass, and when the structure is accepted
// each tensor's checksum too, so mutations reach every later check. Every
// accepted matrix runs every kernel and every array is read; every layer with
// a stored predictor is read as a model file does (predictor_from, then
// LowRankPredictor::from_views and a prediction). Only sparseinfer::format_error
// may escape.
#include <sparseinfer/detail/checksum.hpp>
#include <sparseinfer/model_file.hpp>
#include <sparseinfer/predictor.hpp>
#include <sparseinfer/tensor_file.hpp>

#include <cstdint>
#include <vector>

#include "fuzz_common.hpp"

namespace {
namespace d = sparseinfer::detail;

// Reads a layer's stored predictor and predicts once, as an engine opening a model file does.
void run_predictor(const sparseinfer::TensorFile& tf, std::size_t layer) {
    auto p = sparseinfer::LowRankPredictor::from_views(sparseinfer::predictor_from(tf, layer));
    if (!fuzz::small_enough(p.hidden(), p.d_model()) || !fuzz::small_enough(p.hidden(), p.rank())) return;
    std::vector<float> x(p.d_model(), 0.5f), pre(p.hidden());
    p.predict(x.data(), pre.data());
}

void reseal_container(std::vector<std::uint8_t>& b) {
    if (b.size() < d::tensor_file_header_bytes) return;
    const std::uint64_t end = d::load_u64(b.data() + d::tensor_field::data_offset);
    if (end < d::tensor_file_header_bytes || end > b.size()) return;
    d::Checksum64 c;
    c.update(b.data(), d::tensor_field::checksum);
    c.update(b.data() + d::tensor_file_header_bytes, static_cast<std::size_t>(end) - d::tensor_file_header_bytes);
    d::store_u64(b.data() + d::tensor_field::checksum, c.digest());
}

template <int Bits>
void run(const sparseinfer::TensorFile& tf, const sparseinfer::TensorFile::Entry& e) {
    const auto v = tf.view<Bits>(e);
    if (fuzz::small_enough(v.rows(), v.cols())) fuzz::exercise(v);
}

bool try_open(const std::vector<std::uint8_t>& b, sparseinfer::Verify verify) {
    try {
        const auto tf = sparseinfer::TensorFile::from_bytes(b.data(), b.size(), verify);
        for (const auto& e : tf) {
            if (tf.find(e.name) == nullptr) __builtin_trap();  // every name must be found
            if (e.array == sparseinfer::ArrayType::int8) {
                if (tf.array<std::int8_t>(e).to_vector().size() != e.rows) __builtin_trap();
                continue;
            }
            if (e.array == sparseinfer::ArrayType::float32) {
                if (tf.array<float>(e).to_vector().size() != e.rows) __builtin_trap();
                continue;
            }
            switch (e.bits) {
            case 2: run<2>(tf, e); break;
            case 3: run<3>(tf, e); break;
            case 4: run<4>(tf, e); break;
            case 8: run<8>(tf, e); break;
            default: __builtin_trap();
            }
        }
        for (std::size_t layer = 0; layer < 4; ++layer)
            if (sparseinfer::has_predictor(tf, layer)) run_predictor(tf, layer);
        return true;
    } catch (const sparseinfer::format_error&) {
        return false;
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::vector<std::uint8_t> b(data, data + size);
    try_open(b, sparseinfer::Verify::full);
    reseal_container(b);
    try_open(b, sparseinfer::Verify::full);
    if (!try_open(b, sparseinfer::Verify::structure)) return 0;
    // The structure is valid: re-seal every tensor and check contents in full.
    const auto tf = sparseinfer::TensorFile::from_bytes(b.data(), b.size(), sparseinfer::Verify::structure);
    std::vector<std::uint8_t> sealed = b;
    for (const auto& e : tf) {
        if (e.array != sparseinfer::ArrayType::none)
            fuzz::reseal_array(sealed.data() + e.offset, e.bytes);
        else
            fuzz::reseal_weights(sealed.data() + e.offset, e.bytes);
    }
    try_open(sealed, sparseinfer::Verify::full);
    return 0;
}
