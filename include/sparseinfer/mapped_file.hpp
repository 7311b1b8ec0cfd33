// sparseinfer/mapped_file.hpp - a read-only file mapped into memory.
//
// On POSIX systems the file is mapped with mmap (pages are read on first
// touch, shared with the page cache); elsewhere it is read into memory once,
// so code written against MappedFile runs everywhere.
//
//   sparseinfer::MappedFile file("model.sitf");
//   auto tensors = sparseinfer::TensorFile::from_bytes(file.data(), file.size());
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "error.hpp"

#if defined(__unix__) || defined(__APPLE__)
#define SPARSEINFER_HAS_MMAP 1
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#else
#define SPARSEINFER_HAS_MMAP 0
#include <fstream>
#include <vector>
#endif

namespace sparseinfer {

/// A whole file, read-only, in memory (mapped where the OS allows). Move-only.
class MappedFile {
public:
    /// Opens and maps `path`; throws sparseinfer::error if it cannot.
    explicit MappedFile(const std::string& path) {
#if SPARSEINFER_HAS_MMAP
        const int fd = ::open(path.c_str(), O_RDONLY);
        if (fd < 0) throw error("cannot open '" + path + "': " + std::strerror(errno));
        struct stat st;
        if (::fstat(fd, &st) != 0) {
            const int e = errno;
            ::close(fd);
            throw error("cannot stat '" + path + "': " + std::strerror(e));
        }
        size_ = static_cast<std::size_t>(st.st_size);
        if (size_ > 0) {
            void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
            if (p == MAP_FAILED) {
                const int e = errno;
                ::close(fd);
                throw error("cannot map '" + path + "': " + std::strerror(e));
            }
            data_ = static_cast<const std::uint8_t*>(p);
        }
        ::close(fd);  // the mapping keeps the file alive
#else
        std::ifstream is(path, std::ios::binary | std::ios::ate);
        if (!is) throw error("cannot open '" + path + "'");
        const std::streamoff n = is.tellg();
        if (n < 0) throw error("cannot size '" + path + "'");
        buffer_.resize(static_cast<std::size_t>(n));
        is.seekg(0);
        if (n > 0 && !is.read(reinterpret_cast<char*>(buffer_.data()), n)) throw error("cannot read '" + path + "'");
        data_ = buffer_.data();
        size_ = buffer_.size();
#endif
    }

    /// Takes over the mapping; `o` is left empty.
    MappedFile(MappedFile&& o) noexcept { swap(o); }
    /// Unmaps this file and takes over `o`'s mapping.
    MappedFile& operator=(MappedFile&& o) noexcept {
        MappedFile tmp(std::move(o));
        swap(tmp);
        return *this;
    }
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    ~MappedFile() {
#if SPARSEINFER_HAS_MMAP
        if (data_ != nullptr) ::munmap(const_cast<std::uint8_t*>(data_), size_);
#endif
    }

    /// The file's bytes (nullptr for an empty file); page aligned when mapped.
    const std::uint8_t* data() const noexcept { return data_; }
    /// The file's size in bytes.
    std::size_t size() const noexcept { return size_; }

private:
    MappedFile() = default;
    void swap(MappedFile& o) noexcept {
        std::swap(data_, o.data_);
        std::swap(size_, o.size_);
#if !SPARSEINFER_HAS_MMAP
        std::swap(buffer_, o.buffer_);
#endif
    }

    const std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0;
#if !SPARSEINFER_HAS_MMAP
    std::vector<std::uint8_t> buffer_;
#endif
};

}  // namespace sparseinfer
