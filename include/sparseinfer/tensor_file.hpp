// sparseinfer/tensor_file.hpp - several named quantized matrices in one file.
//
// A tensor file holds any number of named matrices of any width (e.g. one FFN
// layer's gate, up and down, or a whole model's FFNs) behind a table of
// contents, each stored as a complete weights file (serialize.hpp) starting
// 64-byte aligned, so an engine maps one file and takes zero-copy views.
// From version 2 it may also hold plain one-dimensional arrays of int8 or
// float32 (detail/array_file.hpp), for data without a quantized row format
// such as a low-rank predictor's int8 panels; a file without arrays is
// written as version 1, so older readers still read it.
// The byte layout is in docs/format.md; in short:
//
//   offset  size        field
//        0     8        magic 89 'S' 'I' 'T' 'F' 0D 0A 1A
//        8     4        u32 format version (1; 2 when it holds arrays)
//       12     4        u32 reserved, zero
//       16     8        u64 tensor count n
//       24     8        u64 names bytes
//       32     8        u64 data offset: align64(64 + 32 n + names bytes)
//       40     8        u64 file bytes
//       48     8        u64 reserved, zero
//       56     8        u64 checksum: Checksum64 of [0, 56) then [64, data offset)
//       64     32 n     table: per tensor u64 name offset, u64 name bytes,
//                       u64 tensor offset, u64 tensor bytes
//  64+32n      .        names, back to back, then zero padding to the data offset
//  data offset .        tensors in table order, each a weights file (or, from
//                       version 2, an array file) starting 64-byte aligned right
//                       after the previous one (zero padding)
//
// Writing:
//   sparseinfer::TensorFileWriter out;
//   out.add("layers.0.ffn.up", up);          // a QuantizedWeights or a view; kept by reference
//   out.add("layers.0.ffn.down", down);
//   out.write("ffn.sitf");
// Reading (zero copy):
//   sparseinfer::MappedFile file("ffn.sitf");
//   auto tf = sparseinfer::TensorFile::from_bytes(file.data(), file.size());
//   auto up = tf.view<4>("layers.0.ffn.up");
//   for (const auto& t : tf) std::printf("%.*s %zux%zu\n", int(t.name.size()), t.name.data(), t.rows, t.cols);
// Arrays:
//   out.add_array("layers.0.predictor.sigma", sigma.data(), sigma.size());   // float: copied
//   auto sigma = tf.array<float>("layers.0.predictor.sigma");               // sigma[i] reads in place
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/array_file.hpp"
#include "detail/checksum.hpp"
#include "detail/row_format.hpp"
#include "detail/tensor_file_parse.hpp"
#include "detail/weights_file.hpp"
#include "detail/write_file.hpp"
#include "error.hpp"
#include "quantized_weights.hpp"
#include "quantized_weights_view.hpp"

namespace sparseinfer {

/// Writes a tensor file. Matrices are kept by reference: they must outlive write().
class TensorFileWriter {
public:
    /// Adds a matrix under `name` (non-empty, no NUL byte, unique in the file).
    template <int Bits>
    void add(const std::string& name, const QuantizedWeights<Bits>& w) {
        add_raw(name, w.layout(), w.rows(), w.data());
    }
    /// Adds a viewed matrix (as above).
    template <int Bits>
    void add(const std::string& name, const QuantizedWeightsView<Bits>& w) {
        add_raw(name, w.layout(), w.rows(), w.data());
    }

    /// Adds an int8 array of `count` values under `name` (a name as for add);
    /// kept by reference: `data` must outlive write(). Throws on a null pointer
    /// or count 0.
    void add_array(const std::string& name, const std::int8_t* data, std::size_t count) {
        check_array(name, data, count);
        add_item(name, Item{name, ArrayType::int8, {}, count, reinterpret_cast<const std::uint8_t*>(data), nullptr});
    }
    /// Adds an int8 array copied into the writer: for bytes made only for the
    /// file. Throws on an empty array.
    void add_array(const std::string& name, const std::vector<std::int8_t>& values) {
        check_array(name, values.data(), values.size());
        auto bytes = std::make_shared<std::vector<std::uint8_t>>(values.size());
        std::memcpy(bytes->data(), values.data(), values.size());
        add_item(name, Item{name, ArrayType::int8, {}, values.size(), bytes->data(), bytes});
    }
    /// Adds a float32 array (as above), copied now into its stored little-endian bytes.
    void add_array(const std::string& name, const float* data, std::size_t count) {
        check_array(name, data, count);
        auto bytes = std::make_shared<std::vector<std::uint8_t>>(count * 4);
        for (std::size_t i = 0; i < count; ++i) detail::store_f32(bytes->data() + 4 * i, data[i]);
        add_item(name, Item{name, ArrayType::float32, {}, count, bytes->data(), bytes});
    }

    /// Number of tensors (matrices and arrays) added.
    std::size_t size() const noexcept { return items_.size(); }

    /// Writes the file; throws sparseinfer::error if the stream fails.
    void write(std::ostream& os) const {
        namespace f = detail::tensor_field;
        const std::size_t n = items_.size();
        std::size_t names_bytes = 0;
        for (const auto& it : items_) names_bytes += it.name.size();
        std::size_t data_offset = 0;
        if (!detail::align_file_offset(
                detail::tensor_file_header_bytes + detail::tensor_toc_entry_bytes * n + names_bytes, data_offset))
            throw error("tensor file metadata size overflows");
        // Metadata: header, table, names and padding, built in memory (small).
        std::vector<std::uint8_t> meta(data_offset, 0);
        std::size_t name_at = 0, offset = data_offset, file_bytes = data_offset;
        std::vector<std::size_t> offsets(n);
        bool arrays = false;
        for (std::size_t i = 0; i < n; ++i) {
            const auto& it = items_[i];
            arrays = arrays || it.array != ArrayType::none;
            const std::size_t bytes = it.file_bytes();
            if (!detail::align_file_offset(file_bytes, offset) || !detail::checked_add(offset, bytes, file_bytes))
                throw error("tensor file size overflows");
            offsets[i] = offset;
            std::uint8_t* e = meta.data() + detail::tensor_file_header_bytes + detail::tensor_toc_entry_bytes * i;
            detail::store_u64(e, name_at);
            detail::store_u64(e + 8, it.name.size());
            detail::store_u64(e + 16, offset);
            detail::store_u64(e + 24, bytes);
            std::memcpy(meta.data() + detail::tensor_file_header_bytes + detail::tensor_toc_entry_bytes * n + name_at,
                        it.name.data(), it.name.size());
            name_at += it.name.size();
        }
        std::uint8_t* h = meta.data();
        std::memcpy(h, detail::tensor_file_magic, sizeof detail::tensor_file_magic);
        detail::store_u32(h + f::version, arrays ? detail::tensor_file_version_arrays : detail::tensor_file_version);
        detail::store_u64(h + f::count, n);
        detail::store_u64(h + f::names_bytes, names_bytes);
        detail::store_u64(h + f::data_offset, data_offset);
        detail::store_u64(h + f::file_bytes, file_bytes);
        detail::Checksum64 c;
        c.update(h, f::checksum);
        c.update(h + detail::tensor_file_header_bytes, data_offset - detail::tensor_file_header_bytes);
        detail::store_u64(h + f::checksum, c.digest());
        os.write(reinterpret_cast<const char*>(meta.data()), static_cast<std::streamsize>(meta.size()));
        std::size_t at = data_offset;
        static const char zeros[detail::file_alignment] = {};
        for (std::size_t i = 0; i < n && os; ++i) {
            const Item& it = items_[i];
            os.write(zeros, static_cast<std::streamsize>(offsets[i] - at));
            if (it.array != ArrayType::none)
                detail::write_array_file(os, it.array, it.rows, it.data);
            else
                detail::write_weights_file(os, it.layout, it.rows, it.data);
            at = offsets[i] + it.file_bytes();
        }
        if (!os) throw error("writing the tensor file failed");
    }

    /// Writes the file to `path` (created or truncated).
    void write(const std::string& path) const {
        detail::write_file(path, "TensorFileWriter::write", [this](std::ostream& os) { write(os); });
    }

private:
    struct Item {
        std::string name;
        ArrayType array;           // none for a matrix
        detail::RowLayout layout;  // a matrix's
        std::size_t rows;          // a matrix's rows, an array's elements
        const std::uint8_t* data;
        std::shared_ptr<const std::vector<std::uint8_t>> owned;  // stored bytes the writer keeps

        /// Bytes of the item's weights or array file; throws if that overflows.
        std::size_t file_bytes() const {
            std::size_t bytes = 0;
            const std::size_t unit = array != ArrayType::none ? detail::array_element_bytes(array) : layout.row_bytes;
            const std::size_t header =
                array != ArrayType::none ? detail::array_header_bytes : detail::weights_header_bytes;
            if (!detail::checked_mul(rows, unit, bytes) || !detail::checked_add(bytes, header, bytes))
                throw error("tensor file size overflows");
            return bytes;
        }
    };

    void add_raw(const std::string& name, const detail::RowLayout& layout, std::size_t rows, const std::uint8_t* data) {
        if (layout.row_stride != layout.row_bytes)
            throw error("tensor '" + name + "': cannot save a matrix whose rows are bundled with others");
        add_item(name, Item{name, ArrayType::none, layout, rows, data, nullptr});
    }

    template <class T>
    static void check_array(const std::string& name, const T* data, std::size_t count) {
        if (data == nullptr) throw error("array '" + name + "': argument 'data' is a null pointer");
        if (count == 0) throw error("array '" + name + "' is empty (count is 0)");
    }

    void add_item(const std::string& name, Item item) {
        if (name.empty()) throw error("tensor name is empty");
        if (name.find('\0') != std::string::npos) throw error("tensor name contains a NUL byte");
        for (const auto& it : items_)
            if (it.name == name) throw error("tensor name '" + name + "' is already in the file");
        items_.push_back(std::move(item));
    }

    std::vector<Item> items_;
};

/// A plain array of a tensor file, read in place (TensorFile::array). T is
/// std::int8_t or float; elements are read little-endian at any alignment.
template <class T>
class TensorArray {
    static_assert(std::is_same_v<T, std::int8_t> || std::is_same_v<T, float>, "arrays hold int8 or float");

public:
    /// An empty array, to be assigned.
    TensorArray() = default;
    /// Number of elements.
    std::size_t size() const noexcept { return count_; }
    /// The stored bytes (count * sizeof(T)), as aligned as the file's bytes plus a multiple of 64.
    const std::uint8_t* bytes() const noexcept { return bytes_; }
    /// Element i (i < size(), unchecked).
    T operator[](std::size_t i) const noexcept {
        if constexpr (std::is_same_v<T, float>)
            return detail::load_f32(bytes_ + 4 * i);
        else
            return static_cast<std::int8_t>(bytes_[i]);
    }
    /// A copy of every element.
    std::vector<T> to_vector() const {
        std::vector<T> v(count_);
        for (std::size_t i = 0; i < count_; ++i) v[i] = (*this)[i];
        return v;
    }

private:
    friend class TensorFile;
    TensorArray(const std::uint8_t* bytes, std::size_t count) noexcept : bytes_(bytes), count_(count) {}
    const std::uint8_t* bytes_ = nullptr;
    std::size_t count_ = 0;
};

/// A validated tensor file over caller-owned bytes; hands out zero-copy views.
/// The bytes must outlive the TensorFile and every view taken from it.
class TensorFile {
public:
    /// One matrix of the file.
    struct Entry {
        std::string_view name;              ///< points into the file's bytes
        int bits = 0;                       ///< 2, 3, 4 or 8; 0 for an array
        ArrayType array = ArrayType::none;  ///< an array's element type; none for a matrix
        std::size_t group_size = 0;         ///< values per quantization group (0 for an array)
        std::size_t rows = 0;               ///< rows of the matrix; an array's element count
        std::size_t cols = 0;               ///< values per row (1 for an array)
        std::size_t offset = 0;             ///< of the tensor's weights file within the file
        std::size_t bytes = 0;              ///< of the tensor's weights file
    };

    /// Validates the tensor file in [data, data + size): header, table, names
    /// (non-empty, no NUL, unique), every tensor's header and placement and the
    /// zero padding between them, always; with Verify::full (default) also every
    /// tensor's checksum and row contents (an array's checksum; its values
    /// mean what its reader says). Throws sparseinfer::format_error
    /// naming what was wrong and its byte offset.
    static TensorFile from_bytes(const void* data, std::size_t size, Verify verify = Verify::full) {
        if (data == nullptr && size != 0) throw error("argument 'data' is a null pointer");
        TensorFile tf;
        tf.data_ = static_cast<const std::uint8_t*>(data);
        detail::parse_tensor_file(tf.data_, size, verify, tf.entries_, tf.by_name_);
        return tf;
    }

    /// Number of tensors.
    std::size_t size() const noexcept { return entries_.size(); }
    /// Tensors in file order.
    const Entry& operator[](std::size_t i) const noexcept { return entries_[i]; }
    /// Iteration over the tensors in file order.
    std::vector<Entry>::const_iterator begin() const noexcept { return entries_.begin(); }
    /// End of the tensors.
    std::vector<Entry>::const_iterator end() const noexcept { return entries_.end(); }

    /// The tensor named `name`, or nullptr (binary search).
    const Entry* find(std::string_view name) const noexcept {
        auto it = std::lower_bound(by_name_.begin(), by_name_.end(), name,
                                   [&](std::size_t i, std::string_view n) { return entries_[i].name < n; });
        return it != by_name_.end() && entries_[*it].name == name ? &entries_[*it] : nullptr;
    }

    /// A zero-copy view of tensor `name`; throws sparseinfer::error if there is no
    /// such tensor or it is not Bits wide.
    template <int Bits>
    QuantizedWeightsView<Bits> view(std::string_view name) const {
        const Entry* e = find(name);
        if (e == nullptr) throw error("tensor file has no tensor named '" + std::string(name) + "'");
        return view<Bits>(*e);
    }

    /// A zero-copy view of an entry of this file.
    template <int Bits>
    QuantizedWeightsView<Bits> view(const Entry& e) const {
        if (e.array != ArrayType::none)
            throw error("tensor '" + std::string(e.name) + "' is an array of " + detail::array_type_name(e.array) +
                        ", not a matrix");
        if (e.bits != Bits)
            throw error("tensor '" + std::string(e.name) + "' holds " + std::to_string(e.bits) + "-bit weights, not " +
                        std::to_string(Bits) + "-bit");
        // Already validated when the file was opened; re-reading the header is O(1).
        return QuantizedWeightsView<Bits>::from_bytes(data_ + e.offset, e.bytes, Verify::structure);
    }

    /// Array `name` read in place (T std::int8_t or float); throws sparseinfer::error
    /// if there is no such tensor or it is not an array of T.
    template <class T>
    TensorArray<T> array(std::string_view name) const {
        const Entry* e = find(name);
        if (e == nullptr) throw error("tensor file has no tensor named '" + std::string(name) + "'");
        return array<T>(*e);
    }
    /// Array entry `e` of this file read in place (as above).
    template <class T>
    TensorArray<T> array(const Entry& e) const {
        const ArrayType want = std::is_same_v<T, float> ? ArrayType::float32 : ArrayType::int8;
        if (e.array != want)
            throw error("tensor '" + std::string(e.name) + "' is " +
                        (e.array == ArrayType::none ? std::string("a matrix")
                                                    : std::string("an array of ") + detail::array_type_name(e.array)) +
                        ", not an array of " + detail::array_type_name(want));
        return TensorArray<T>(data_ + e.offset + detail::array_header_bytes, e.rows);
    }

private:
    TensorFile() = default;

    const std::uint8_t* data_ = nullptr;
    std::vector<Entry> entries_;
    std::vector<std::size_t> by_name_;
};

}  // namespace sparseinfer
