// sparseinfer/detail/weights_api.hpp - the read-only API shared by QuantizedWeights
// (owned storage) and QuantizedWeightsView (caller-owned bytes).
//
// The derived class provides `const RowLayout& layout() const`, `std::size_t
// rows() const` and `const std::uint8_t* data() const`. Every public function
// validates its arguments and throws sparseinfer::error; the kernels behind
// them do not check, throw or allocate. Every kernel-calling function also
// reports a bad SPARSEINFER_ISA (kernels::init_kernels()) before running one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../error.hpp"
#include "../kernels/dispatch.hpp"
#include "../quantized_activations.hpp"
#include "row_format.hpp"

namespace sparseinfer::detail {

template <class Derived, int Bits>
class WeightsReadApi {
public:
    static constexpr int bits = Bits;

    /// Columns (values per row).
    std::size_t cols() const noexcept { return self().layout().cols; }
    /// Values sharing one scale and min.
    std::size_t group_size() const noexcept { return self().layout().group_size; }
    /// Bytes of one row: header, group parameters and packed codes.
    std::size_t row_bytes() const noexcept { return self().layout().row_bytes; }
    /// True storage of the quantized matrix in bytes.
    std::size_t memory_bytes() const noexcept { return self().rows() * row_bytes(); }
    /// memory_bytes() * 8 / (rows * cols).
    double bits_per_weight() const noexcept {
        return static_cast<double>(memory_bytes()) * 8.0 /
               (static_cast<double>(self().rows()) * static_cast<double>(cols()));
    }

    /// The raw bytes of one row (row_bytes() of them), e.g. to prefetch or copy a neuron.
    const std::uint8_t* row_data(std::size_t row) const {
        check_row(row, "row");
        return self().data() + row * self().layout().row_stride;
    }

    /// out[0..cols) = decoded row.
    void dequantize_row(std::size_t row, float* out) const {
        check_ptr(out, "out");
        kernels::dequantize_row<Bits>(self().layout(), row_data(row), out);
    }

    /// out[i * cols + j] = decoded value j of row rows[i], for i in [0, n).
    void dequantize_rows(const std::uint32_t* rows, std::size_t n, float* out) const {
        if (n == 0) return;
        check_ptr(rows, "rows");
        check_ptr(out, "out");
        check_row_list(rows, n);
        for (std::size_t i = 0; i < n; ++i)
            kernels::dequantize_row<Bits>(self().layout(), raw_row(rows[i]), out + i * cols());
    }

    /// The whole matrix decoded, row-major.
    std::vector<float> to_f32() const {
        kernels::init_kernels();
        std::vector<float> out(self().rows() * cols());
        for (std::size_t r = 0; r < self().rows(); ++r)
            kernels::dequantize_row<Bits>(self().layout(), raw_row(r), out.data() + r * cols());
        return out;
    }

    /// Returns row . x; x holds cols() floats.
    float dot_row(std::size_t row, const float* x) const {
        check_ptr(x, "x");
        return kernels::dot_row<Bits>(self().layout(), row_data(row), x);
    }

    /// Returns row . x for activations quantized with quantize_activations (size cols()).
    float dot_row(std::size_t row, const QuantizedActivations& x) const {
        check_activations(x);
        return kernels::dot_row<Bits>(self().layout(), row_data(row), x);
    }

    /// y[r] = row(r) . x for every row; x holds cols() floats, y rows() floats.
    void gemv(const float* x, float* y) const {
        check_ptr(x, "x");
        check_ptr(y, "y");
        kernels::gemv_rows<Bits>(self().layout(), self().data(), nullptr, self().rows(), x, y);
    }

    /// y[i] = row(rows[i]) . x for i in [0, n).
    void gemv_rows(const std::uint32_t* rows, std::size_t n, const float* x, float* y) const {
        if (n == 0) return;
        check_ptr(rows, "rows");
        check_ptr(x, "x");
        check_ptr(y, "y");
        check_row_list(rows, n);
        kernels::gemv_rows<Bits>(self().layout(), self().data(), rows, n, x, y);
    }

    /// gemv for int8-quantized activations.
    void gemv(const QuantizedActivations& x, float* y) const {
        check_activations(x);
        check_ptr(y, "y");
        kernels::gemv_rows<Bits>(self().layout(), self().data(), nullptr, self().rows(), x, y);
    }

    /// gemv_rows for int8-quantized activations.
    void gemv_rows(const std::uint32_t* rows, std::size_t n, const QuantizedActivations& x, float* y) const {
        if (n == 0) return;
        check_ptr(rows, "rows");
        check_activations(x);
        check_ptr(y, "y");
        check_row_list(rows, n);
        kernels::gemv_rows<Bits>(self().layout(), self().data(), rows, n, x, y);
    }

    /// y[0..cols) += sum_i a[i] * row(rows[i]): the transposed (down) projection.
    void axpy_rows(const std::uint32_t* rows, std::size_t n, const float* a, float* y) const {
        if (n == 0) return;
        check_ptr(rows, "rows");
        check_ptr(a, "a");
        check_ptr(y, "y");
        check_row_list(rows, n);
        kernels::axpy_rows<Bits>(self().layout(), self().data(), rows, n, a, y);
    }

protected:
    const Derived& self() const noexcept { return static_cast<const Derived&>(*this); }
    const std::uint8_t* raw_row(std::size_t row) const noexcept {
        return self().data() + row * self().layout().row_stride;
    }

    static void check_ptr(const void* p, const char* name) {
        kernels::init_kernels();  // reports a bad SPARSEINFER_ISA before any kernel runs
        if (p == nullptr) throw error(std::string("argument '") + name + "' is a null pointer");
    }
    // Output buffers are taken as non-const: GCC's -Wmaybe-uninitialized treats a
    // pointer to const as a read of the (usually uninitialized) buffer.
    static void check_ptr(void* p, const char* name) {
        kernels::init_kernels();
        if (p == nullptr) throw error(std::string("argument '") + name + "' is a null pointer");
    }
    void check_row(std::size_t row, const char* name) const {
        if (row >= self().rows())
            throw error(std::string(name) + " index " + std::to_string(row) +
                        " is out of range (rows = " + std::to_string(self().rows()) + ")");
    }
    void check_activations(const QuantizedActivations& x) const {
        kernels::init_kernels();
        check_quantized_activations(x, cols(), "the matrix has " + std::to_string(cols()) + " columns");
    }
    void check_row_list(const std::uint32_t* rows, std::size_t n) const {
        for (std::size_t i = 0; i < n; ++i)
            if (rows[i] >= self().rows())
                throw error("rows[" + std::to_string(i) + "] = " + std::to_string(rows[i]) +
                            " is out of range (rows = " + std::to_string(self().rows()) + ")");
    }
};

}  // namespace sparseinfer::detail
