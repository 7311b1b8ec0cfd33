// sparseinfer/gguf.hpp - reading GGUF files (llama.cpp's model format), zero copy.
//
// GgufFile validates a whole GGUF file (versions 2 and 3) held in memory:
// header, every metadata value (nested arrays included), every tensor info,
// general.alignment and the placement of every tensor's bytes. Any defect
// throws sparseinfer::format_error with its byte offset. The file's bytes
// must outlive the GgufFile and every name, string and pointer taken from it.
// Tensors of F32, F16, Q4_0, Q4_1, Q8_0, Q4_K and Q6_K dequantize bit-exactly
// as ggml does; other types are listed but refused by name when decoded.
//
//   sparseinfer::MappedFile file("model.gguf");
//   auto gguf = sparseinfer::GgufFile::from_file(file);
//   auto arch = gguf.metadata_string("general.architecture");     // std::optional<std::string_view>
//   auto ctx = gguf.metadata_uint("llama.context_length");        // std::optional<std::uint64_t>
//   if (const auto* t = gguf.find("blk.0.ffn_up.weight")) {
//       std::vector<float> w(t->rows * t->cols);                  // row-major, rows of t->cols values
//       gguf.dequantize(*t, w.data());
//   }
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "detail/ggml_blocks.hpp"
#include "detail/gguf_parse.hpp"
#include "error.hpp"
#include "ggml_types.hpp"
#include "mapped_file.hpp"

namespace sparseinfer {

/// A metadata value's type, numbered as in GGUF files.
using GgufValueType = detail::gguf::ValueType;

/// The name of a metadata value type ("uint32", "string", ...).
inline const char* gguf_value_type_name(GgufValueType t) noexcept { return detail::gguf::value_type_name(t); }

/// One metadata value (or array element) inside a validated file. The as_*
/// accessors throw format_error (naming the key and the byte offset) when the
/// stored type does not fit the request.
class GgufValue {
public:
    /// The stored type.
    GgufValueType type() const noexcept { return type_; }
    /// The key (points into the file's bytes).
    std::string_view key() const noexcept { return key_; }
    /// Byte offset of the value in the file.
    std::size_t offset() const noexcept { return at_; }

    /// Any integer type holding a value >= 0.
    std::uint64_t as_uint() const {
        if (is_signed()) {
            const std::int64_t v = signed_value();
            if (v < 0) mismatch("a negative " + std::string(type_name()) + " (" + std::to_string(v) + ")", "unsigned");
            return static_cast<std::uint64_t>(v);
        }
        if (!is_unsigned()) mismatch(std::string("a ") + type_name(), "an unsigned integer");
        return unsigned_value();
    }
    /// Any integer type holding a value that fits int64.
    std::int64_t as_int() const {
        if (is_signed()) return signed_value();
        if (!is_unsigned()) mismatch(std::string("a ") + type_name(), "an integer");
        const std::uint64_t v = unsigned_value();
        if (v > static_cast<std::uint64_t>(INT64_MAX)) mismatch("a uint64 above 2^63 - 1", "an int64");
        return static_cast<std::int64_t>(v);
    }
    /// float32 or float64.
    double as_float() const {
        if (type_ == GgufValueType::float32) {
            float f;
            std::memcpy(&f, p_ + at_, 4);
            return f;
        }
        if (type_ != GgufValueType::float64) mismatch(std::string("a ") + type_name(), "a float");
        double d;
        std::memcpy(&d, p_ + at_, 8);
        return d;
    }
    /// A bool value.
    bool as_bool() const {
        if (type_ != GgufValueType::boolean) mismatch(std::string("a ") + type_name(), "a bool");
        return p_[at_] != 0;
    }
    /// Points into the file's bytes.
    std::string_view as_string() const {
        if (type_ != GgufValueType::string) mismatch(std::string("a ") + type_name(), "a string");
        return std::string_view(reinterpret_cast<const char*>(p_ + at_ + 8),
                                static_cast<std::size_t>(detail::load_u64(p_ + at_)));
    }
    /// An array's element type and count.
    GgufValueType array_type() const {
        require_array();
        return static_cast<GgufValueType>(detail::load_u32(p_ + at_));
    }
    /// An array's element count.
    std::size_t array_size() const {
        require_array();
        return static_cast<std::size_t>(detail::load_u64(p_ + at_ + 4));
    }
    /// An array's elements, in order.
    std::vector<GgufValue> array() const {
        const GgufValueType et = array_type();
        const std::size_t n = array_size();
        std::vector<GgufValue> out;
        out.reserve(n);  // bounded: the count was checked against the file's bytes
        detail::gguf::Reader r{p_, size_, at_ + 12};
        for (std::size_t i = 0; i < n; ++i) {
            out.emplace_back(p_, size_, key_, et, r.at);
            r.skip_value(et, 1);
        }
        return out;
    }

    /// A value of `type` at byte offset `at` of the `size` bytes at `p` (GgufFile::metadata makes them).
    GgufValue(const std::uint8_t* p, std::size_t size, std::string_view key, GgufValueType type, std::size_t at)
        : p_(p), size_(size), key_(key), type_(type), at_(at) {}

private:
    const char* type_name() const noexcept { return detail::gguf::value_type_name(type_); }
    bool is_signed() const noexcept {
        return type_ == GgufValueType::int8 || type_ == GgufValueType::int16 || type_ == GgufValueType::int32 ||
               type_ == GgufValueType::int64;
    }
    bool is_unsigned() const noexcept {
        return type_ == GgufValueType::uint8 || type_ == GgufValueType::uint16 || type_ == GgufValueType::uint32 ||
               type_ == GgufValueType::uint64;
    }
    std::uint64_t unsigned_value() const noexcept {
        const std::size_t n = detail::gguf::fixed_size(type_);
        std::uint64_t v = 0;
        for (std::size_t i = n; i-- > 0;) v = v << 8 | p_[at_ + i];
        return v;
    }
    std::int64_t signed_value() const noexcept {
        const std::size_t n = detail::gguf::fixed_size(type_);
        const std::uint64_t u = unsigned_value();
        if (n == 8) return static_cast<std::int64_t>(u);
        const std::uint64_t sign = std::uint64_t{1} << (8 * n - 1);
        return static_cast<std::int64_t>(u ^ sign) - static_cast<std::int64_t>(sign);  // sign-extend
    }
    void require_array() const {
        if (type_ != GgufValueType::array) mismatch(std::string("a ") + type_name(), "an array");
    }
    [[noreturn]] void mismatch(const std::string& stored, const char* wanted) const {
        detail::gguf::fail(at_, "metadata '" + std::string(key_) + "' is " + stored + ", not " + wanted);
    }

    const std::uint8_t* p_;
    std::size_t size_;
    std::string_view key_;
    GgufValueType type_;
    std::size_t at_;
};

/// One tensor of a GGUF file. GGUF's ne[0] is the row length: a tensor of
/// shape ne = {cols, ne1, ne2, ne3} is rows = ne1 * ne2 * ne3 rows of cols values.
struct GgufTensor {
    std::string_view name;               ///< points into the file's bytes
    GgmlType type = GgmlType::f32;       ///< encoding of the data
    std::size_t rows = 0;                ///< ne1 * ne2 * ne3
    std::size_t cols = 0;                ///< ne[0], the row length
    const std::uint8_t* data = nullptr;  ///< the tensor's bytes in the file
    std::size_t bytes = 0;               ///< of the data
    std::uint32_t n_dims = 0;            ///< dimensions as stored, 1 to 4
    std::uint64_t ne[4] = {1, 1, 1, 1};  ///< GGUF shape, unused dimensions 1
    std::size_t offset = 0;              ///< of the data from the start of the file

    /// The type's name as ggml spells it.
    const char* type_name() const noexcept { return ggml_type_info(type).name; }
};

/// A validated GGUF file over caller-owned bytes.
class GgufFile {
public:
    /// Validates the GGUF file in [data, data + size); throws format_error
    /// naming the defect and its byte offset.
    static GgufFile from_bytes(const void* data, std::size_t size) {
        if (data == nullptr && size != 0) throw error("argument 'data' is a null pointer");
        GgufFile f;
        f.p_ = static_cast<const std::uint8_t*>(data);
        f.size_ = size;
        static const std::uint8_t empty = 0;
        if (f.p_ == nullptr) f.p_ = &empty;  // size 0: parse reports the missing magic
        f.parsed_ = detail::gguf::parse(f.p_, size);
        f.tensors_.reserve(f.parsed_.tensors.size());
        for (const auto& t : f.parsed_.tensors) {
            GgufTensor g;
            g.name = t.name;
            g.type = t.type->type;
            g.rows = t.rows;
            g.cols = t.cols;
            g.data = f.p_ + t.data_at;
            g.bytes = t.bytes;
            g.n_dims = t.n_dims;
            for (std::size_t d = 0; d < 4; ++d) g.ne[d] = t.ne[d];
            g.offset = t.data_at;
            f.tensors_.push_back(g);
        }
        return f;
    }
    /// The same over a mapped file, which must outlive the GgufFile.
    static GgufFile from_file(const MappedFile& file) { return from_bytes(file.data(), file.size()); }

    /// The GGUF version (2 or 3).
    std::uint32_t version() const noexcept { return parsed_.version; }
    /// general.alignment, or 32 when absent.
    std::size_t alignment() const noexcept { return parsed_.alignment; }

    /// The tensors in file order.
    const std::vector<GgufTensor>& tensors() const noexcept { return tensors_; }
    /// Iteration over tensors().
    std::vector<GgufTensor>::const_iterator begin() const noexcept { return tensors_.begin(); }
    /// End of tensors().
    std::vector<GgufTensor>::const_iterator end() const noexcept { return tensors_.end(); }
    /// Number of tensors.
    std::size_t size() const noexcept { return tensors_.size(); }

    /// The tensor named `name`, or nullptr.
    const GgufTensor* find(std::string_view name) const {
        const auto& idx = parsed_.tensor_by_name;
        const auto it = std::lower_bound(idx.begin(), idx.end(), name,
                                         [&](std::size_t i, std::string_view n) { return tensors_[i].name < n; });
        return it != idx.end() && tensors_[*it].name == name ? &tensors_[*it] : nullptr;
    }

    /// Decodes a tensor of this file into out[0, rows * cols), row-major.
    /// Throws sparseinfer::error naming the type when it is not one of F32,
    /// F16, Q4_0, Q4_1, Q8_0, Q4_K, Q6_K.
    void dequantize(const GgufTensor& t, float* out) const {
        check_decodable(t);
        if (t.bytes != 0 && out == nullptr) throw error("argument 'out' is a null pointer");
        decode_rows(t, 0, t.rows, out);
    }
    /// The decoded tensor as a new vector.
    std::vector<float> dequantize(const GgufTensor& t) const {
        std::vector<float> out(t.rows * t.cols);
        dequantize(t, out.data());
        return out;
    }
    /// Decodes a tensor transposed: out[c * rows + r] = value (r, c), i.e. a
    /// row-major cols x rows matrix. GGUF stores ffn_down with a row per output
    /// ([d_model][hidden]); a sparse layer wants a row per neuron, and this
    /// gives it in one pass, e.g. for SparseFfn's down^T or a PowerInfer
    /// ffn_down_t back to a row per output. Same errors as dequantize.
    void dequantize_transposed(const GgufTensor& t, float* out) const {
        check_decodable(t);
        if (t.bytes != 0 && out == nullptr) throw error("argument 'out' is a null pointer");
        // A tile of rows at a time, so each output row is written in runs of `tile` values.
        constexpr std::size_t tile = 16;
        std::vector<float> buf(tile * t.cols);  // bounded: t.cols <= the tensor's values
        for (std::size_t r0 = 0; r0 < t.rows; r0 += tile) {
            const std::size_t nr = std::min(tile, t.rows - r0);
            decode_rows(t, r0, nr, buf.data());
            for (std::size_t c = 0; c < t.cols; ++c)
                for (std::size_t r = 0; r < nr; ++r) out[c * t.rows + r0 + r] = buf[r * t.cols + c];
        }
    }
    /// The tensor decoded transposed, as a new vector (cols x rows).
    std::vector<float> dequantize_transposed(const GgufTensor& t) const {
        std::vector<float> out(t.rows * t.cols);
        dequantize_transposed(t, out.data());
        return out;
    }

private:
    /// Refuses a type sparseinfer cannot decode, or a tensor that is not this file's.
    void check_decodable(const GgufTensor& t) const {
        const GgmlTypeInfo& info = ggml_type_info(t.type);
        if (!info.dequantizable)
            throw error("GGUF tensor '" + std::string(t.name) + "' has ggml type " + info.name + " (id " +
                        std::to_string(static_cast<std::uint32_t>(t.type)) +
                        "), which sparseinfer cannot dequantize; supported: F32, F16, Q4_0, Q4_1, Q8_0, Q4_K, Q6_K");
        if (t.data < p_ || t.bytes > size_ || t.data - p_ > static_cast<std::ptrdiff_t>(size_ - t.bytes) ||
            t.cols % info.block_values != 0 || t.rows * (t.cols / info.block_values * info.block_bytes) != t.bytes)
            throw error("GGUF tensor '" + std::string(t.name) + "' is not a tensor of this file");
    }
    /// Decodes rows [r0, r0 + nr) of a checked tensor into out[0, nr * cols).
    static void decode_rows(const GgufTensor& t, std::size_t r0, std::size_t nr, float* out) noexcept {
        namespace g = detail::ggml;
        const GgmlTypeInfo& info = ggml_type_info(t.type);
        const std::size_t row_bytes = t.cols / info.block_values * info.block_bytes;
        const std::uint8_t* src = t.data + r0 * row_bytes;
        const std::size_t n = nr * t.cols;  // fits: n <= bytes * 32 / 17 and bytes <= the file's size
        switch (t.type) {
        case GgmlType::f32: g::dequantize_f32(src, n, out); break;
        case GgmlType::f16: g::dequantize_f16(src, n, out); break;
        case GgmlType::q4_0: g::dequantize_q4_0(src, n, out); break;
        case GgmlType::q4_1: g::dequantize_q4_1(src, n, out); break;
        case GgmlType::q8_0: g::dequantize_q8_0(src, n, out); break;
        case GgmlType::q4_k: g::dequantize_q4_k(src, n, out); break;
        case GgmlType::q6_k: g::dequantize_q6_k(src, n, out); break;
        default: break;  // not dequantizable: refused by check_decodable
        }
    }

public:
    /// The metadata keys in file order.
    std::vector<std::string_view> metadata_keys() const {
        std::vector<std::string_view> keys;
        keys.reserve(parsed_.kvs.size());
        for (const auto& kv : parsed_.kvs) keys.push_back(kv.key);
        return keys;
    }
    /// The value stored under `key`, or an empty optional.
    std::optional<GgufValue> metadata(std::string_view key) const {
        const auto& idx = parsed_.kv_by_key;
        const auto it = std::lower_bound(idx.begin(), idx.end(), key,
                                         [&](std::size_t i, std::string_view k) { return parsed_.kvs[i].key < k; });
        if (it == idx.end() || parsed_.kvs[*it].key != key) return std::nullopt;
        const auto& kv = parsed_.kvs[*it];
        return GgufValue(p_, size_, kv.key, kv.type, kv.value_at);
    }

    /// Typed look-ups: empty when the key is absent, format_error when the
    /// stored type does not fit (see GgufValue::as_uint and friends).
    std::optional<std::string_view> metadata_string(std::string_view key) const {
        const auto v = metadata(key);
        return v ? std::optional<std::string_view>(v->as_string()) : std::nullopt;
    }
    /// As metadata_string, for unsigned integers.
    std::optional<std::uint64_t> metadata_uint(std::string_view key) const {
        const auto v = metadata(key);
        return v ? std::optional<std::uint64_t>(v->as_uint()) : std::nullopt;
    }
    /// As metadata_string, for signed integers.
    std::optional<std::int64_t> metadata_int(std::string_view key) const {
        const auto v = metadata(key);
        return v ? std::optional<std::int64_t>(v->as_int()) : std::nullopt;
    }
    /// As metadata_string, for floats.
    std::optional<double> metadata_float(std::string_view key) const {
        const auto v = metadata(key);
        return v ? std::optional<double>(v->as_float()) : std::nullopt;
    }
    /// As metadata_string, for bools.
    std::optional<bool> metadata_bool(std::string_view key) const {
        const auto v = metadata(key);
        return v ? std::optional<bool>(v->as_bool()) : std::nullopt;
    }
    /// An array of strings (e.g. tokenizer.ggml.tokens).
    std::optional<std::vector<std::string_view>> metadata_strings(std::string_view key) const {
        const auto v = metadata(key);
        if (!v) return std::nullopt;
        if (v->type() == GgufValueType::array && v->array_type() != GgufValueType::string)
            detail::gguf::fail(v->offset(), "metadata '" + std::string(key) + "' is an array of " +
                                                gguf_value_type_name(v->array_type()) + ", not of strings");
        std::vector<std::string_view> out;
        for (const auto& e : v->array()) out.push_back(e.as_string());
        return out;
    }

private:
    GgufFile() = default;

    const std::uint8_t* p_ = nullptr;
    std::size_t size_ = 0;
    detail::gguf::Parsed parsed_;
    std::vector<GgufTensor> tensors_;
};

}  // namespace sparseinfer
