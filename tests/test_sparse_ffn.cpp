// Tests of <sparseinfer/sparse_ffn.hpp> and <sparseinfer/activation.hpp>.
//
// The reference is a plain double-precision FFN over the layer's dequantized
// matrices, so only the kernels' float rounding differs. Bound per output j:
//   |y_j - ref_j| <= 4e-5 * B_j + 1e-30,
//   B_j = sum_i |down_ji| * (|h_i| + 1.13 * Gabs_i * |u_i| + |a_i| * Uabs_i),
// where Gabs_i = sum_k |gate_ik x_k| and Uabs_i likewise bound the float
// rounding of the two dot products (relative d_model * 2^-24 <= 1.6e-5 for
// d_model <= 256), 1.13 bounds |act'| and the first term the rounding of the
// down row-adds. The int8-activation path adds the activation quantization
// error, |x_k - x^_k| <= max|x in k's block of 32| / 254, propagated the same way.
#include <sparseinfer/activation.hpp>
#include <sparseinfer/mapped_file.hpp>
#include <sparseinfer/quantized_weights.hpp>
#include <sparseinfer/selection.hpp>
#include <sparseinfer/sparse_ffn.hpp>
#include <sparseinfer/tensor_file.hpp>
#include <sparseinfer/thread_pool.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "catch.hpp"

using sparseinfer::Activation;
using sparseinfer::FfnMatrix;
using sparseinfer::SparseFfn;

namespace {

double act_d(Activation a, double x) {
    switch (a) {
    case Activation::silu: return x / (1.0 + std::exp(-x));
    case Activation::gelu: return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case Activation::relu: return x > 0 ? x : 0.0;
    }
    return 0;
}

struct Layer {
    std::size_t d, h;
    std::vector<float> gate, up, down;
};

Layer random_layer(std::size_t d, std::size_t h, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f / std::sqrt(static_cast<float>(d)));
    Layer l{d, h, std::vector<float>(h * d), std::vector<float>(h * d), std::vector<float>(d * h)};
    for (auto* v : {&l.gate, &l.up, &l.down})
        for (auto& w : *v) w = nd(rng);
    return l;
}

std::vector<float> random_input(std::size_t d, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> ud(-2.0f, 2.0f);
    std::vector<float> x(d);
    for (auto& v : x) v = ud(rng);
    return x;
}

struct Reference {
    std::vector<double> y, bound;
};

/// Double-precision FFN over the dequantized matrices of `ffn`, restricted to
/// `neurons`; xerr[k] is the per-input error to propagate (0 for the float path).
template <class Ffn>
Reference reference(const Ffn& ffn, const std::vector<float>& x, const std::vector<std::uint32_t>& neurons,
                    const std::vector<double>& xerr) {
    const std::size_t d = ffn.d_model(), h = ffn.hidden();
    const std::vector<float> up = ffn.dequantized(FfnMatrix::up), down = ffn.dequantized(FfnMatrix::down);
    const std::vector<float> gate = ffn.gated() ? ffn.dequantized(FfnMatrix::gate) : std::vector<float>();
    Reference r{std::vector<double>(d, 0.0), std::vector<double>(d, 1e-30)};
    for (std::uint32_t i : neurons) {
        double g = 0, gabs = 0, gq = 0, u = 0, uabs = 0, uq = 0;
        for (std::size_t k = 0; k < d; ++k) {
            u += double(up[i * d + k]) * x[k];
            uabs += std::fabs(double(up[i * d + k]) * x[k]);
            uq += std::fabs(double(up[i * d + k])) * xerr[k];
            if (ffn.gated()) {
                g += double(gate[i * d + k]) * x[k];
                gabs += std::fabs(double(gate[i * d + k]) * x[k]);
                gq += std::fabs(double(gate[i * d + k])) * xerr[k];
            }
        }
        double hv, a, err;
        if (ffn.gated()) {
            a = act_d(ffn.activation(), g);
            hv = a * u;
            err = 4e-5 * (std::fabs(hv) + 1.13 * gabs * std::fabs(u) + std::fabs(a) * uabs) +
                  1.13 * gq * (std::fabs(u) + uq) + (std::fabs(a) + 1.13 * gq) * uq;
        } else {
            a = act_d(ffn.activation(), u);
            hv = a;
            err = 4e-5 * (std::fabs(hv) + 1.13 * uabs) + 1.13 * uq;
        }
        for (std::size_t j = 0; j < d; ++j) {
            r.y[j] += hv * down[j * h + i];
            r.bound[j] += std::fabs(double(down[j * h + i])) * err;
        }
    }
    return r;
}

std::vector<double> no_error(std::size_t d) { return std::vector<double>(d, 0.0); }

/// Half the int8 step of each input's block: max|x in block| / 254.
std::vector<double> int8_error(const std::vector<float>& x) {
    std::vector<double> e(x.size());
    for (std::size_t b = 0; b < x.size(); b += 32) {
        double m = 0;
        for (std::size_t k = b; k < std::min(x.size(), b + 32); ++k) m = std::max(m, std::fabs(double(x[k])));
        for (std::size_t k = b; k < std::min(x.size(), b + 32); ++k) e[k] = m / 254.0 * 1.0001;
    }
    return e;
}

void check_close(const std::vector<float>& y, const Reference& r) {
    REQUIRE(y.size() == r.y.size());
    for (std::size_t j = 0; j < y.size(); ++j) {
        INFO("output " << j << ": got " << y[j] << ", reference " << r.y[j] << ", bound " << r.bound[j]);
        CHECK(std::fabs(y[j] - r.y[j]) <= r.bound[j]);
    }
}

std::vector<std::uint32_t> all_neurons(std::size_t h) {
    std::vector<std::uint32_t> v(h);
    std::iota(v.begin(), v.end(), 0u);
    return v;
}

template <int Bits>
void check_layer(std::size_t d, std::size_t h, Activation act, bool gated, bool int8) {
    INFO("bits " << Bits << ", d_model " << d << ", hidden " << h << ", " << sparseinfer::to_string(act)
                 << (gated ? ", gated" : ", no gate") << (int8 ? ", int8 activations" : ", float activations"));
    const Layer l = random_layer(d, h, static_cast<unsigned>(d * 131 + h));
    SparseFfn<Bits> ffn(gated ? l.gate.data() : nullptr, l.up.data(), l.down.data(), d, h, act);
    ffn.set_int8_activations(int8);
    const std::vector<float> x = random_input(d, 5);
    const std::vector<double> xerr = int8 ? int8_error(x) : no_error(d);

    std::vector<float> dense(d, 123.0f);
    ffn.forward_dense(x.data(), dense.data());
    check_close(dense, reference(ffn, x, all_neurons(h), xerr));

    // Every neuron, in a shuffled order: the dense result.
    std::vector<std::uint32_t> every = all_neurons(h);
    std::shuffle(every.begin(), every.end(), std::mt19937(3));
    std::vector<float> full(d, -7.0f);
    ffn.forward_sparse(x.data(), every.data(), every.size(), full.data());
    check_close(full, reference(ffn, x, every, xerr));
    for (std::size_t j = 0; j < d; ++j) CHECK(std::fabs(full[j] - dense[j]) <= 1e-4f * (1.0f + std::fabs(dense[j])));

    // Every other neuron.
    std::vector<std::uint32_t> some;
    for (std::uint32_t i = 0; i < h; i += 2) some.push_back(i);
    std::vector<float> part(d, 9.0f);
    ffn.forward_sparse(x.data(), some.data(), some.size(), part.data());
    check_close(part, reference(ffn, x, some, xerr));
}

}  // namespace

TEST_CASE("activations match their double-precision definitions and stay finite at the extremes") {
    for (Activation a : {Activation::silu, Activation::gelu, Activation::relu}) {
        INFO(sparseinfer::to_string(a));
        for (double x : {-30.0, -10.5, -9.9, -3.0, -1.0, -0.1, 0.0, 0.1, 0.5, 1.0, 3.0, 9.9, 10.5, 30.0}) {
            const double want = act_d(a, x);
            CHECK(std::fabs(sparseinfer::activate(a, static_cast<float>(x)) - want) <= 2e-6 * (1.0 + std::fabs(want)));
        }
        for (float x : {1e30f, -1e30f, std::numeric_limits<float>::max(), -std::numeric_limits<float>::max()}) {
            const float y = sparseinfer::activate(a, x);
            CHECK(std::isfinite(y));
            if (x > 0)
                CHECK(y == x);
            else
                CHECK(std::fabs(y) <= 1e-30f);
        }
        CHECK(std::isnan(sparseinfer::activate(a, std::numeric_limits<float>::quiet_NaN())) == (a != Activation::relu));
    }
}

TEST_CASE("dense, full-list and partial-list outputs match the float reference, 4 and 8 bits") {
    for (Activation act : {Activation::silu, Activation::gelu, Activation::relu})
        for (bool gated : {true, false})
            for (bool int8 : {false, true}) {
                check_layer<4>(33, 7, act, gated, int8);
                check_layer<8>(33, 7, act, gated, int8);
                check_layer<4>(1, 1, act, gated, int8);
                check_layer<8>(1, 1, act, gated, int8);
                check_layer<4>(96, 45, act, gated, int8);
                check_layer<8>(256, 64, act, gated, int8);
            }
}

TEST_CASE("2- and 3-bit layers match the reference too") {
    check_layer<2>(65, 9, Activation::silu, true, false);
    check_layer<3>(65, 9, Activation::gelu, true, true);
}

TEST_CASE("an empty list contributes exactly zero") {
    const Layer l = random_layer(40, 10, 1);
    SparseFfn<4> ffn(l.gate.data(), l.up.data(), l.down.data(), 40, 10, Activation::silu);
    const std::vector<float> x = random_input(40, 2);
    std::vector<float> y(40, 5.0f);
    ffn.forward_sparse(x.data(), nullptr, 0, y.data());
    for (float v : y) CHECK(v == 0.0f);
}

TEST_CASE("bad arguments throw sparseinfer::error and leave y untouched") {
    const Layer l = random_layer(40, 10, 1);
    SparseFfn<4> ffn(l.gate.data(), l.up.data(), l.down.data(), 40, 10, Activation::silu);
    const std::vector<float> x = random_input(40, 2);
    std::vector<float> y(40, 5.0f);
    const std::uint32_t repeated[] = {1, 4, 1};
    const std::uint32_t out_of_range[] = {0, 10};
    CHECK_THROWS_AS(ffn.forward_sparse(x.data(), repeated, 3, y.data()), sparseinfer::error);
    CHECK_THROWS_WITH(ffn.forward_sparse(x.data(), repeated, 3, y.data()), Catch::Contains("listed twice"));
    CHECK_THROWS_WITH(ffn.forward_sparse(x.data(), out_of_range, 2, y.data()), Catch::Contains("out of range"));
    CHECK_THROWS_AS(ffn.forward_sparse(x.data(), nullptr, 2, y.data()), sparseinfer::error);
    CHECK_THROWS_AS(ffn.forward_sparse(nullptr, repeated, 1, y.data()), sparseinfer::error);
    CHECK_THROWS_AS(ffn.forward_sparse(x.data(), repeated, 1, nullptr), sparseinfer::error);
    CHECK_THROWS_AS(ffn.forward_dense(nullptr, y.data()), sparseinfer::error);
    CHECK_THROWS_AS(ffn.forward_dense(x.data(), nullptr), sparseinfer::error);
    for (float v : y) CHECK(v == 5.0f);
    // A list longer than hidden must repeat a neuron.
    std::vector<std::uint32_t> long_list(11, 0);
    CHECK_THROWS_AS(ffn.forward_sparse(x.data(), long_list.data(), 11, y.data()), sparseinfer::error);
    // After an error the layer still works, and a neuron may be listed again in the next call.
    const std::uint32_t one[] = {1};
    CHECK_NOTHROW(ffn.forward_sparse(x.data(), one, 1, y.data()));
    CHECK_NOTHROW(ffn.forward_sparse(x.data(), one, 1, y.data()));

    SparseFfn<4> mlp(nullptr, l.up.data(), l.down.data(), 40, 10, Activation::relu);
    CHECK_THROWS_AS(mlp.forward_gate_first(x.data(), sparseinfer::Selection::top_k(3), y.data()), sparseinfer::error);
    CHECK_THROWS_AS(mlp.dequantized(FfnMatrix::gate), sparseinfer::error);
}

TEST_CASE("construction rejects null matrices, zero sizes and non-finite weights") {
    Layer l = random_layer(40, 10, 1);
    using F = SparseFfn<4>;
    CHECK_THROWS_AS(F(l.gate.data(), nullptr, l.down.data(), 40, 10, Activation::silu), sparseinfer::error);
    CHECK_THROWS_AS(F(l.gate.data(), l.up.data(), nullptr, 40, 10, Activation::silu), sparseinfer::error);
    CHECK_THROWS_AS(F(l.gate.data(), l.up.data(), l.down.data(), 0, 10, Activation::silu), sparseinfer::error);
    CHECK_THROWS_AS(F(l.gate.data(), l.up.data(), l.down.data(), 40, 0, Activation::silu), sparseinfer::error);
    l.down[3 * 10 + 7] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(F(l.gate.data(), l.up.data(), l.down.data(), 40, 10, Activation::silu),
                      Catch::Contains("down") && Catch::Contains("row 3, column 7"));
    l = random_layer(40, 10, 1);
    l.gate[5] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(F(l.gate.data(), l.up.data(), l.down.data(), 40, 10, Activation::silu), Catch::Contains("gate"));
}

TEST_CASE("the layer stores gate, up and down^T as rows of one layout; a bundle is one neuron's three rows") {
    const Layer l = random_layer(64, 12, 4);
    SparseFfn<8> ffn(l.gate.data(), l.up.data(), l.down.data(), 64, 12, Activation::silu);
    auto gate = sparseinfer::QuantizedWeights<8>::from_f32(l.gate.data(), 12, 64);
    auto up = sparseinfer::QuantizedWeights<8>::from_f32(l.up.data(), 12, 64);
    CHECK(ffn.layout().row_bytes == gate.row_bytes());
    CHECK(ffn.layout().row_stride == gate.row_bytes());
    CHECK(ffn.bundle_bytes() == 3 * gate.row_bytes());
    CHECK(ffn.memory_bytes() == 12 * ffn.bundle_bytes());
    CHECK(ffn.bundle_offset(FfnMatrix::gate) == 0);
    CHECK(ffn.bundle_offset(FfnMatrix::up) == gate.row_bytes());
    CHECK(ffn.bundle_offset(FfnMatrix::down) == 2 * gate.row_bytes());
    // The rows are exactly QuantizedWeights' rows of the same matrices.
    for (std::size_t i = 0; i < 12; ++i) {
        CHECK(std::equal(gate.row_data(i), gate.row_data(i) + gate.row_bytes(),
                         ffn.matrix_data(FfnMatrix::gate) + i * gate.row_bytes()));
        CHECK(std::equal(up.row_data(i), up.row_data(i) + up.row_bytes(),
                         ffn.matrix_data(FfnMatrix::up) + i * up.row_bytes()));
    }
    for (FfnMatrix m : {FfnMatrix::gate, FfnMatrix::up, FfnMatrix::down})
        CHECK(reinterpret_cast<std::uintptr_t>(ffn.matrix_data(m)) % 64 == 0);
    // 8-bit dequantized down is close to the float matrix.
    const std::vector<float> down = ffn.dequantized(FfnMatrix::down);
    for (std::size_t k = 0; k < down.size(); ++k) CHECK(std::fabs(down[k] - l.down[k]) < 0.01f);
    SparseFfn<4> mlp(nullptr, l.up.data(), l.down.data(), 64, 12, Activation::relu);
    const std::size_t rb4 = sparseinfer::QuantizedWeights<4>::from_f32(l.up.data(), 12, 64).row_bytes();
    CHECK(mlp.bundle_bytes() == 2 * rb4);
    CHECK(mlp.bundle_offset(FfnMatrix::up) == 0);
    CHECK(mlp.bundle_offset(FfnMatrix::down) == rb4);
    CHECK_THROWS_AS(mlp.matrix_data(FfnMatrix::gate), sparseinfer::error);
}

TEST_CASE("gate-first keeps the exact top-k by |act(gate)| and equals the sparse pass over them") {
    const std::size_t d = 96, h = 50;
    const Layer l = random_layer(d, h, 11);
    SparseFfn<8> ffn(l.gate.data(), l.up.data(), l.down.data(), d, h, Activation::silu);
    const std::vector<float> x = random_input(d, 12);
    // Independent scores from the dequantized gate, in double.
    const std::vector<float> gate = ffn.dequantized(FfnMatrix::gate);
    std::vector<std::pair<double, std::uint32_t>> scored;
    for (std::uint32_t i = 0; i < h; ++i) {
        double g = 0;
        for (std::size_t k = 0; k < d; ++k) g += double(gate[i * d + k]) * x[k];
        scored.push_back({std::fabs(act_d(Activation::silu, g)), i});
    }
    std::sort(scored.begin(), scored.end(), [](auto a, auto b) { return a.first > b.first; });
    const std::size_t k = 12;
    std::vector<std::uint32_t> top;
    for (std::size_t i = 0; i < k; ++i) top.push_back(scored[i].second);
    REQUIRE(scored[k - 1].first - scored[k].first > 1e-4);  // no near-tie at the boundary

    std::vector<float> y(d), want(d);
    CHECK(ffn.forward_gate_first(x.data(), sparseinfer::Selection::top_k(k), y.data()) == k);
    check_close(y, reference(ffn, x, top, no_error(d)));

    // A threshold between the k-th and (k+1)-th score keeps the same neurons.
    const float t = static_cast<float>((scored[k - 1].first + scored[k].first) / 2);
    CHECK(ffn.forward_gate_first(x.data(), sparseinfer::Selection::at_least(t), y.data()) == k);
    check_close(y, reference(ffn, x, top, no_error(d)));

    // Keeping every neuron is the dense pass.
    ffn.forward_dense(x.data(), want.data());
    CHECK(ffn.forward_gate_first(x.data(), sparseinfer::Selection::top_k(h + 5), y.data()) == h);
    for (std::size_t j = 0; j < d; ++j) CHECK(std::fabs(y[j] - want[j]) <= 1e-4f * (1.0f + std::fabs(want[j])));

    // exact_scores are the gate-first scores.
    std::vector<float> s(h);
    ffn.exact_scores(x.data(), s.data());
    for (std::size_t i = 0; i < k; ++i)
        CHECK(std::fabs(s[scored[i].second] - scored[i].first) <= 1e-4 * (1 + scored[i].first));
}

TEST_CASE("the layer records neurons in its cache and counts the bytes it reads") {
    const std::size_t d = 64, h = 20;
    const Layer l = random_layer(d, h, 21);
    SparseFfn<4> ffn(l.gate.data(), l.up.data(), l.down.data(), d, h, Activation::silu);
    const std::vector<float> x = random_input(d, 22);
    std::vector<float> y(d);
    const std::uint32_t list[] = {2, 3, 5, 7};
    ffn.forward_sparse(x.data(), list, 4, y.data());
    ffn.forward_sparse(x.data(), list, 4, y.data());
    CHECK(ffn.cache().total_activations() == 2);  // tokens
    CHECK(ffn.cache().activation_count(5) == 2);
    CHECK(ffn.cache().activation_count(4) == 0);
    CHECK(ffn.stats().calls == 2);
    CHECK(ffn.stats().neurons == 8);
    CHECK(ffn.stats().bytes_read == 8 * ffn.bundle_bytes());
    ffn.forward_dense(x.data(), y.data());
    CHECK(ffn.stats().bytes_read == (8 + h) * ffn.bundle_bytes());
}

TEST_CASE("neurons served from an attached slot store give the same output") {
    const std::size_t d = 64, h = 40;
    const Layer l = random_layer(d, h, 31);
    using Ffn = SparseFfn<4, sparseinfer::policy::Lru>;
    Ffn plain(l.gate.data(), l.up.data(), l.down.data(), d, h, Activation::silu, {}, sparseinfer::policy::Lru{h / 2});
    Ffn stored(plain);  // a deep copy
    stored.attach_store(h / 2 * stored.bundle_bytes());
    REQUIRE(stored.cache().store() != nullptr);
    std::mt19937 rng(5);
    std::uint64_t hits = 0;
    for (int token = 0; token < 40; ++token) {
        const std::vector<float> x = random_input(d, 100 + token);
        std::vector<std::uint32_t> list = all_neurons(h);
        std::shuffle(list.begin(), list.end(), rng);
        list.resize(8 + token % 10);
        std::vector<float> a(d), b(d);
        plain.forward_sparse(x.data(), list.data(), list.size(), a.data());
        stored.forward_sparse(x.data(), list.data(), list.size(), b.data());
        for (std::size_t j = 0; j < d; ++j) CHECK(std::fabs(a[j] - b[j]) <= 1e-5f * (1.0f + std::fabs(a[j])));
        // Every neuron resident now has its bundle (gate, up, down^T rows) in its slot.
        const auto* store = stored.cache().store();
        const std::size_t rb = stored.layout().row_bytes;
        for (std::uint32_t i = 0; i < h; ++i) {
            const std::uint32_t slot = store->slot_of(i);
            if (slot == sparseinfer::SlotStore::npos) continue;
            ++hits;
            const std::uint8_t* bundle = store->data() + static_cast<std::size_t>(slot) * store->slot_stride();
            for (FfnMatrix m : {FfnMatrix::gate, FfnMatrix::up, FfnMatrix::down}) {
                const std::uint8_t* row = stored.matrix_data(m) + i * rb;
                CHECK(std::equal(row, row + rb, bundle + stored.bundle_offset(m)));
            }
        }
    }
    CHECK(hits > 0);
    CHECK(stored.stats().bytes_from_store > 0);
    CHECK(plain.stats().bytes_from_store == 0);
}

TEST_CASE("a caller-quantized input gives exactly the int8 mode's output, in either mode") {
    const std::size_t d = 96, h = 80;
    const Layer l = random_layer(d, h, 41);
    SparseFfn<4> ffn(l.gate.data(), l.up.data(), l.down.data(), d, h, Activation::silu);
    const std::vector<float> x = random_input(d, 8);
    const sparseinfer::QuantizedActivations xq = sparseinfer::quantize_activations(x.data(), d);
    std::vector<std::uint32_t> some;
    for (std::uint32_t i = 1; i < h; i += 3) some.push_back(i);

    // The int8 mode quantizes x itself; its outputs are the reference.
    ffn.set_int8_activations(true);
    std::vector<float> dense(d), sparse(d), first(d), scores(h);
    ffn.forward_dense(x.data(), dense.data());
    ffn.forward_sparse(x.data(), some.data(), some.size(), sparse.data());
    const std::size_t kept = ffn.forward_gate_first(x.data(), sparseinfer::Selection::top_k(20), first.data());
    ffn.exact_scores(x.data(), scores.data());

    // The float mode's output differs (so the checks below can tell the paths apart).
    ffn.set_int8_activations(false);
    std::vector<float> dense_f(d);
    ffn.forward_dense(x.data(), dense_f.data());
    REQUIRE(dense_f != dense);

    for (bool int8_mode : {false, true}) {
        INFO((int8_mode ? "int8 mode" : "float mode"));
        ffn.set_int8_activations(int8_mode);
        std::vector<float> got(d, 5.0f), got_scores(h, 5.0f);
        ffn.forward_dense(random_input(d, 99).data(), got.data());  // leaves another input's state behind
        ffn.forward_dense(xq, got.data());
        CHECK(got == dense);
        ffn.forward_sparse(xq, some.data(), some.size(), got.data());
        CHECK(got == sparse);
        CHECK(ffn.forward_gate_first(xq, sparseinfer::Selection::top_k(20), got.data()) == kept);
        CHECK(got == first);
        ffn.exact_scores(xq, got_scores.data());
        CHECK(got_scores == scores);
    }
}

TEST_CASE("a caller-quantized input of the wrong shape throws sparseinfer::error and leaves y untouched") {
    const std::size_t d = 64, h = 16;
    const Layer l = random_layer(d, h, 2);
    SparseFfn<4> ffn(l.gate.data(), l.up.data(), l.down.data(), d, h, Activation::silu);
    const std::vector<float> x = random_input(d + 32, 1);
    const std::uint32_t active[] = {0, 5};
    std::vector<float> y(d, 3.0f);
    const auto longer = sparseinfer::quantize_activations(x.data(), d + 32);
    CHECK_THROWS_WITH(ffn.forward_sparse(longer, active, 2, y.data()),
                      Catch::Contains("size 96") && Catch::Contains("d_model is 64"));
    CHECK_THROWS_AS(ffn.forward_dense(sparseinfer::quantize_activations(x.data(), d - 1), y.data()),
                    sparseinfer::error);
    auto damaged = sparseinfer::quantize_activations(x.data(), d);
    damaged.scales.pop_back();  // one block's scale missing
    CHECK_THROWS_WITH(ffn.forward_gate_first(damaged, sparseinfer::Selection::top_k(4), y.data()),
                      Catch::Contains("expected 2"));
    CHECK_THROWS_AS(ffn.exact_scores(sparseinfer::QuantizedActivations{}, y.data()), sparseinfer::error);
    const auto good = sparseinfer::quantize_activations(x.data(), d);
    CHECK_THROWS_AS(ffn.forward_sparse(good, active, 2, nullptr), sparseinfer::error);
    const std::uint32_t twice[] = {5, 5};
    CHECK_THROWS_AS(ffn.forward_sparse(good, twice, 2, y.data()), sparseinfer::error);
    for (float v : y) CHECK(v == 3.0f);
    SparseFfn<4> plain(nullptr, l.up.data(), l.down.data(), d, h, Activation::relu);
    CHECK_THROWS_WITH(plain.forward_gate_first(good, sparseinfer::Selection::top_k(4), y.data()),
                      Catch::Contains("gated layer"));
}

// ---------------------------------------------------------------------------------------------
// Layers over views: the float constructor and from_views over the same quantized matrices read
// the same bytes the same way, so every output must agree bit for bit.

namespace {

/// down [d][h] transposed to [h][d], written independently of the layer's own transpose.
std::vector<float> transposed(const std::vector<float>& down, std::size_t d, std::size_t h) {
    std::vector<float> t(h * d);
    for (std::size_t j = 0; j < d; ++j)
        for (std::size_t i = 0; i < h; ++i) t[i * d + j] = down[j * h + i];
    return t;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

/// Every forward function of `a` and `b` on the same inputs, compared bit for bit.
template <class A, class B>
void check_identical(A& a, B& b, std::size_t d, std::size_t h, bool gated) {
    const std::vector<float> x = random_input(d, 11);
    std::vector<float> ya(d, 1.0f), yb(d, 2.0f);
    a.forward_dense(x.data(), ya.data());
    b.forward_dense(x.data(), yb.data());
    CHECK(same_bits(ya, yb));
    std::vector<std::uint32_t> some;
    for (std::uint32_t i = 0; i < h; i += 3) some.push_back(i);
    a.forward_sparse(x.data(), some.data(), some.size(), ya.data());
    b.forward_sparse(x.data(), some.data(), some.size(), yb.data());
    CHECK(same_bits(ya, yb));
    const auto xq = sparseinfer::quantize_activations(x.data(), d);
    a.forward_sparse(xq, some.data(), some.size(), ya.data());
    b.forward_sparse(xq, some.data(), some.size(), yb.data());
    CHECK(same_bits(ya, yb));
    if (gated) {
        const auto sel = sparseinfer::Selection::top_k(h / 2 + 1);
        CHECK(a.forward_gate_first(x.data(), sel, ya.data()) == b.forward_gate_first(x.data(), sel, yb.data()));
        CHECK(same_bits(ya, yb));
    }
    // The slot store copies bundles out of the viewed matrices: the same outputs again.
    a.attach_store(a.bundle_bytes() * (h / 2 + 1));
    b.attach_store(b.bundle_bytes() * (h / 2 + 1));
    a.cache().pin(some.data(), 1);
    b.cache().pin(some.data(), 1);
    for (int round = 0; round < 2; ++round) {
        a.forward_sparse(x.data(), some.data(), some.size(), ya.data());
        b.forward_sparse(x.data(), some.data(), some.size(), yb.data());
        CHECK(same_bits(ya, yb));
    }
    CHECK(a.stats().bytes_from_store == b.stats().bytes_from_store);
    CHECK(b.stats().bytes_from_store > 0);
}

template <int Bits>
void check_views(std::size_t d, std::size_t h, Activation act, bool gated, std::size_t group) {
    INFO("bits " << Bits << ", d_model " << d << ", hidden " << h << ", " << sparseinfer::to_string(act)
                 << (gated ? ", gated" : ", no gate") << ", groups of " << group);
    const Layer l = random_layer(d, h, static_cast<unsigned>(d * 7 + h + Bits));
    const sparseinfer::QuantOptions opts{group, sparseinfer::QuantMethod::optimized};
    SparseFfn<Bits> built(gated ? l.gate.data() : nullptr, l.up.data(), l.down.data(), d, h, act, opts);

    using W = sparseinfer::QuantizedWeights<Bits>;
    const W gate = W::from_f32(l.gate.data(), h, d, opts), up = W::from_f32(l.up.data(), h, d, opts);
    const std::vector<float> dt = transposed(l.down, d, h);
    const W down_t = W::from_f32(dt.data(), h, d, opts);
    auto viewed = gated ? SparseFfn<Bits>::from_views(gate.view(), up.view(), down_t.view(), act)
                        : SparseFfn<Bits>::from_views(up.view(), down_t.view(), act);
    CHECK(viewed.matrix_data(FfnMatrix::up) == up.data());  // no copy: the layer reads the matrix in place
    CHECK(viewed.matrix_data(FfnMatrix::down) == down_t.data());
    CHECK(viewed.gated() == gated);
    CHECK(viewed.d_model() == d);
    CHECK(viewed.hidden() == h);
    check_identical(built, viewed, d, h, gated);

    // The same matrices from a mapped tensor file.
    sparseinfer::TensorFileWriter out;
    if (gated) out.add("gate", gate);
    out.add("up", up);
    out.add("down_t", down_t);
    const auto path = (std::filesystem::temp_directory_path() /
                       ("sparseinfer_test_ffn_views_" + std::to_string(Bits) + "_" + std::to_string(d) + ".sitf"))
                          .string();
    out.write(path);
    {
        sparseinfer::MappedFile file(path);
        const auto tf = sparseinfer::TensorFile::from_bytes(file.data(), file.size());
        auto mapped = gated ? SparseFfn<Bits>::from_views(tf.view<Bits>("gate"), tf.view<Bits>("up"),
                                                          tf.view<Bits>("down_t"), act)
                            : SparseFfn<Bits>::from_views(tf.view<Bits>("up"), tf.view<Bits>("down_t"), act);
        CHECK(mapped.matrix_data(FfnMatrix::up) == tf.view<Bits>("up").data());
        SparseFfn<Bits> again(gated ? l.gate.data() : nullptr, l.up.data(), l.down.data(), d, h, act, opts);
        check_identical(again, mapped, d, h, gated);
        // A copy of a view-built layer views the same bytes.
        SparseFfn<Bits> copy(mapped);
        CHECK(copy.matrix_data(FfnMatrix::down) == mapped.matrix_data(FfnMatrix::down));
    }
    std::filesystem::remove(path);
}

}  // namespace

TEST_CASE("a layer from views of quantized matrices equals the float-built layer bit for bit") {
    for (Activation act : {Activation::silu, Activation::gelu, Activation::relu}) {
        check_views<2>(70, 13, act, true, 32);
        check_views<3>(64, 9, act, true, 64);
        check_views<4>(96, 21, act, true, 32);
        check_views<8>(33, 6, act, true, 32);
        check_views<4>(40, 10, act, false, 32);
        check_views<8>(1, 1, act, false, 32);
    }
}

TEST_CASE("from_views rejects matrices that do not form one layer") {
    using W = sparseinfer::QuantizedWeights<4>;
    const Layer l = random_layer(64, 8, 3);
    const W gate = W::from_f32(l.gate.data(), 8, 64), up = W::from_f32(l.up.data(), 8, 64);
    const W fewer = W::from_f32(l.up.data(), 7, 64), narrower = W::from_f32(l.up.data(), 8, 32);
    const W other_groups = W::from_f32(l.up.data(), 8, 64, {64, sparseinfer::QuantMethod::min_max});
    CHECK_THROWS_WITH(SparseFfn<4>::from_views(gate.view(), up.view(), fewer.view(), Activation::silu),
                      Catch::Contains("down_t") && Catch::Contains("7 rows"));
    CHECK_THROWS_WITH(SparseFfn<4>::from_views(gate.view(), up.view(), narrower.view(), Activation::silu),
                      Catch::Contains("down_t") && Catch::Contains("32 columns"));
    CHECK_THROWS_WITH(SparseFfn<4>::from_views(other_groups.view(), up.view(), up.view(), Activation::silu),
                      Catch::Contains("gate") && Catch::Contains("groups of 64"));
    CHECK_THROWS_WITH(SparseFfn<4>::from_views(sparseinfer::QuantizedWeightsView<4>(), up.view(), Activation::relu),
                      Catch::Contains("up") && Catch::Contains("empty"));
}

// ---------------------------------------------------------------------------------------------
// Threads: the chunks do not depend on the thread count, so 1, 2 and 3 threads give the same bits.

namespace {

template <int Bits>
void check_threads(std::size_t d, std::size_t h, Activation act, bool gated, bool int8) {
    INFO("bits " << Bits << ", d_model " << d << ", hidden " << h << ", " << sparseinfer::to_string(act)
                 << (gated ? ", gated" : ", no gate") << (int8 ? ", int8" : ", float"));
    const Layer l = random_layer(d, h, static_cast<unsigned>(h + Bits));
    SparseFfn<Bits> one(gated ? l.gate.data() : nullptr, l.up.data(), l.down.data(), d, h, act);
    one.set_int8_activations(int8);
    const std::vector<float> x = random_input(d, 21);
    std::vector<std::uint32_t> list;  // a scattered list, long enough for several chunks
    for (std::uint32_t i = 0; i < h; i += 1 + i % 3) list.push_back(i);
    std::reverse(list.begin(), list.end());
    const auto sel = sparseinfer::Selection::top_k(h / 3);

    std::vector<float> dense1(d), sparse1(d), first1(d), scores1(h);
    one.forward_dense(x.data(), dense1.data());
    one.forward_sparse(x.data(), list.data(), list.size(), sparse1.data());
    const std::size_t kept1 = gated ? one.forward_gate_first(x.data(), sel, first1.data()) : 0;
    one.exact_scores(x.data(), scores1.data());
    for (std::size_t threads : {2, 3}) {
        INFO(threads << " threads");
        sparseinfer::ThreadPool pool(threads);
        SparseFfn<Bits> many(one);
        many.set_executor(pool);
        std::vector<float> y(d, 5.0f), s(h);
        many.forward_dense(x.data(), y.data());
        CHECK(same_bits(y, dense1));
        many.forward_sparse(x.data(), list.data(), list.size(), y.data());
        CHECK(same_bits(y, sparse1));
        if (gated) {
            CHECK(many.forward_gate_first(x.data(), sel, y.data()) == kept1);
            CHECK(same_bits(y, first1));
        }
        many.exact_scores(x.data(), s.data());
        CHECK(same_bits(s, scores1));
    }
}

}  // namespace

TEST_CASE("outputs are bit-identical for 1, 2 and 3 threads", "[threads]") {
    for (Activation act : {Activation::silu, Activation::gelu, Activation::relu}) {
        check_threads<4>(64, 700, act, true, false);
        check_threads<4>(64, 700, act, true, true);
        check_threads<8>(40, 130, act, false, false);
    }
    check_threads<2>(32, 3100, Activation::silu, true, false);  // chunks of 128 rows
    check_threads<3>(96, 65, Activation::relu, true, true);     // two chunks, the second of one row
}

TEST_CASE("threaded outputs still match the float reference", "[threads]") {
    const Layer l = random_layer(64, 300, 4);
    SparseFfn<4> ffn(l.gate.data(), l.up.data(), l.down.data(), 64, 300, Activation::silu);
    sparseinfer::ThreadPool pool(3);
    ffn.set_executor(pool);
    const std::vector<float> x = random_input(64, 5);
    std::vector<float> y(64);
    ffn.forward_dense(x.data(), y.data());
    check_close(y, reference(ffn, x, all_neurons(300), no_error(64)));
}
