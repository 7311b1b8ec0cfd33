// sparseinfer/gguf_writer.hpp - writing GGUF files (version 3).
//
// GgufWriter collects metadata and float matrices, quantizes each matrix when
// it is added (F32, F16, Q4_0 or Q8_0, byte for byte as ggml's reference
// quantizers do: fp16 rounded to nearest even, quantize_row_q4_0_ref,
// quantize_row_q8_0_ref) and writes a GGUF file: header, metadata in the
// order first set, tensor infos in the order added, then each tensor's bytes
// at a multiple of general.alignment (32 unless set as a uint32).
//
//   sparseinfer::GgufWriter out;
//   out.set("general.architecture", "llama");
//   out.set("llama.context_length", std::uint32_t{2048});
//   out.set("tokenizer.ggml.tokens", std::vector<std::string>{"<unk>", "<s>"});
//   out.add("blk.0.ffn_up.weight", w.data(), 11008, 4096, sparseinfer::GgmlType::q4_0);  // rows of 4096
//   out.write("model.gguf");
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "detail/ggml_blocks.hpp"
#include "detail/gguf_parse.hpp"
#include "detail/write_file.hpp"
#include "error.hpp"
#include "ggml_types.hpp"

namespace sparseinfer {

/// Builds a GGUF file in memory and writes it.
class GgufWriter {
public:
    /// Sets metadata `key` (replacing an earlier value, keeping its place).
    /// Strings (std::string, std::string_view, const char*), bool, every
    /// integer type of 8 to 64 bits (stored with its own width and sign),
    /// float (float32), double (float64), and std::vector of strings or of
    /// those numbers (arrays).
    template <class T>
    void set(const std::string& key, const T& value) {
        std::vector<std::uint8_t> bytes;
        put_value(bytes, value, /*with_type=*/true);
        set_raw(key, std::move(bytes));
    }
    /// A C string is stored as a GGUF string.
    void set(const std::string& key, const char* value) { set(key, std::string_view(value)); }

    /// Adds a rows x cols row-major float matrix as a tensor of GGUF shape
    /// ne = {cols, rows}, quantized to `type` now (the floats are not kept).
    /// Q4_0 and Q8_0 need cols to be a multiple of 32. Every value must be
    /// finite and every stored fp16 (values for F16, block scales for Q4_0
    /// and Q8_0) within fp16's range, or this throws sparseinfer::error.
    void add(const std::string& name, const float* data, std::size_t rows, std::size_t cols, GgmlType type) {
        namespace g = detail::ggml;
        if (name.empty()) throw error("GGUF tensor name is empty");
        for (const auto& t : tensors_)
            if (t.name == name) throw error("GGUF tensor '" + name + "' is already in the file");
        if (type != GgmlType::f32 && type != GgmlType::f16 && type != GgmlType::q4_0 && type != GgmlType::q8_0)
            throw error("GGUF tensor '" + name + "': the writer quantizes to F32, F16, Q4_0 and Q8_0, not " +
                        ggml_type_info(type).name);
        const GgmlTypeInfo& info = ggml_type_info(type);
        if (cols % info.block_values != 0)
            throw error("GGUF tensor '" + name + "': cols " + std::to_string(cols) + " is not a multiple of " +
                        info.name + "'s block of " + std::to_string(info.block_values));
        std::size_t n = 0, row_bytes = 0, bytes = 0;
        if (!detail::checked_mul(rows, cols, n) ||
            !detail::checked_mul(cols / info.block_values, info.block_bytes, row_bytes) ||
            !detail::checked_mul(rows, row_bytes, bytes))
            throw error("GGUF tensor '" + name + "': rows * cols overflows");
        if (n != 0 && data == nullptr) throw error("argument 'data' is a null pointer");
        for (std::size_t i = 0; i < n; ++i)
            if (!std::isfinite(data[i]))
                throw error("GGUF tensor '" + name + "': value " + std::to_string(i) + " (row " +
                            std::to_string(i / cols) + ") is not finite");
        Tensor t{name, type, rows, cols, std::vector<std::uint8_t>(bytes)};
        std::uint8_t* dst = t.bytes.data();
        switch (type) {
        case GgmlType::f32: g::quantize_f32(data, n, dst); break;
        case GgmlType::f16: g::quantize_f16(data, n, dst); break;
        case GgmlType::q4_0: g::quantize_q4_0(data, n, dst); break;
        default: g::quantize_q8_0(data, n, dst); break;
        }
        check_fp16(t, info);
        tensors_.push_back(std::move(t));
    }

    /// Number of tensors added.
    std::size_t size() const noexcept { return tensors_.size(); }

    /// Writes the file; throws sparseinfer::error if the stream fails.
    void write(std::ostream& os) const {
        const std::size_t align = alignment();
        std::vector<std::uint8_t> head;
        head.insert(head.end(), detail::gguf::magic, detail::gguf::magic + 4);
        put_u32(head, 3);
        put_u64(head, tensors_.size());
        put_u64(head, kvs_.size());
        for (const auto& kv : kvs_) {
            put_string(head, kv.key);
            head.insert(head.end(), kv.value.begin(), kv.value.end());
        }
        std::size_t offset = 0;
        for (const auto& t : tensors_) {
            put_string(head, t.name);
            put_u32(head, 2);
            put_u64(head, t.cols);
            put_u64(head, t.rows);
            put_u32(head, static_cast<std::uint32_t>(t.type));
            put_u64(head, offset);
            offset += padded(t.bytes.size(), align);
        }
        head.resize(padded(head.size(), align), 0);
        os.write(reinterpret_cast<const char*>(head.data()), static_cast<std::streamsize>(head.size()));
        const std::vector<char> zeros(align, 0);
        for (const auto& t : tensors_) {
            os.write(reinterpret_cast<const char*>(t.bytes.data()), static_cast<std::streamsize>(t.bytes.size()));
            os.write(zeros.data(), static_cast<std::streamsize>(padded(t.bytes.size(), align) - t.bytes.size()));
        }
        if (!os) throw error("writing the GGUF file failed");
    }

    /// Writes the file to `path` (created or truncated).
    void write(const std::string& path) const {
        detail::write_file(path, "GgufWriter::write", [this](std::ostream& os) { write(os); });
    }

private:
    struct Kv {
        std::string key;
        std::vector<std::uint8_t> value;  ///< u32 type, then the value
    };
    struct Tensor {
        std::string name;
        GgmlType type;
        std::size_t rows, cols;
        std::vector<std::uint8_t> bytes;
    };
    using VT = detail::gguf::ValueType;

    template <class T>
    struct is_vector : std::false_type {};
    template <class E, class A>
    struct is_vector<std::vector<E, A>> : std::true_type {};

    static void put_u32(std::vector<std::uint8_t>& b, std::uint32_t v) {
        for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    }
    static void put_u64(std::vector<std::uint8_t>& b, std::uint64_t v) {
        for (int i = 0; i < 8; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    }
    static void put_string(std::vector<std::uint8_t>& b, std::string_view s) {
        put_u64(b, s.size());
        b.insert(b.end(), s.begin(), s.end());
    }
    static std::size_t padded(std::size_t n, std::size_t align) { return (n + align - 1) / align * align; }

    /// The GGUF type of a C++ scalar type; void for anything else.
    template <class T>
    static constexpr VT scalar_type() {
        if constexpr (std::is_same_v<T, bool>)
            return VT::boolean;
        else if constexpr (std::is_same_v<T, float>)
            return VT::float32;
        else if constexpr (std::is_same_v<T, double>)
            return VT::float64;
        else if constexpr (std::is_convertible_v<T, std::string_view>)
            return VT::string;
        else {
            static_assert(std::is_integral_v<T> && sizeof(T) <= 8, "GgufWriter::set: unsupported value type");
            constexpr bool s = std::is_signed_v<T>;
            return sizeof(T) == 1   ? (s ? VT::int8 : VT::uint8)
                   : sizeof(T) == 2 ? (s ? VT::int16 : VT::uint16)
                   : sizeof(T) == 4 ? (s ? VT::int32 : VT::uint32)
                                    : (s ? VT::int64 : VT::uint64);
        }
    }

    template <class T>
    static void put_value(std::vector<std::uint8_t>& b, const T& v, bool with_type) {
        if constexpr (std::is_same_v<T, std::vector<bool>>) {
            static_assert(!std::is_same_v<T, T>, "GgufWriter::set: use std::vector<std::uint8_t> for bools");
        } else if constexpr (is_vector<T>::value) {
            if (with_type) put_u32(b, static_cast<std::uint32_t>(VT::array));
            put_u32(b, static_cast<std::uint32_t>(scalar_type<typename T::value_type>()));
            put_u64(b, v.size());
            for (const auto& e : v) put_value(b, e, false);
        } else {
            constexpr VT t = scalar_type<T>();
            if (with_type) put_u32(b, static_cast<std::uint32_t>(t));
            if constexpr (t == VT::string) {
                put_string(b, std::string_view(v));
            } else if constexpr (t == VT::boolean) {
                b.push_back(v ? 1 : 0);
            } else {
                std::uint8_t raw[sizeof(T)];
                std::memcpy(raw, &v, sizeof(T));  // little-endian hosts (as every target of this library)
                // Byte by byte: GCC 12 reports a range insert here as an overflow (-Wstringop-overflow, wrongly).
                for (std::uint8_t byte : raw) b.push_back(byte);
            }
        }
    }

    void set_raw(const std::string& key, std::vector<std::uint8_t> value) {
        if (key.empty()) throw error("GGUF metadata key is empty");
        if (key == "general.alignment") {
            if (detail::load_u32(value.data()) != static_cast<std::uint32_t>(VT::uint32))
                throw error("GGUF metadata 'general.alignment' must be a uint32");
            const std::uint32_t a = detail::load_u32(value.data() + 4);
            if (a == 0 || (a & (a - 1)) != 0)
                throw error("GGUF metadata 'general.alignment' is " + std::to_string(a) +
                            "; it must be a power of two");
        }
        for (auto& kv : kvs_)
            if (kv.key == key) {
                kv.value = std::move(value);
                return;
            }
        kvs_.push_back(Kv{key, std::move(value)});
    }

    std::size_t alignment() const {
        for (const auto& kv : kvs_)
            if (kv.key == "general.alignment") return detail::load_u32(kv.value.data() + 4);
        return detail::gguf::default_alignment;
    }

    /// Refuses a tensor whose values (F16) or block scales (Q4_0, Q8_0) overflowed fp16.
    static void check_fp16(const Tensor& t, const GgmlTypeInfo& info) {
        if (t.type == GgmlType::f32) return;
        const std::size_t stride = t.type == GgmlType::f16 ? 2 : info.block_bytes;
        for (std::size_t at = 0; at < t.bytes.size(); at += stride)
            if ((detail::ggml::load_u16(t.bytes.data() + at) & 0x7C00u) == 0x7C00u)
                throw error("GGUF tensor '" + t.name + "': " +
                            (t.type == GgmlType::f16 ? "value " + std::to_string(at / 2)
                                                     : "the scale of block " + std::to_string(at / stride)) +
                            " overflows fp16 (|x| >= 65520" + (t.type == GgmlType::f16 ? ")" : " after scaling)"));
    }

    std::vector<Kv> kvs_;
    std::vector<Tensor> tensors_;
};

}  // namespace sparseinfer
