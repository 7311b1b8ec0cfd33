// sparseinfer/error.hpp - the library's exception types.
//
// Every error sparseinfer throws derives from sparseinfer::error, itself a
// std::runtime_error, and its message names what was wrong (which argument,
// row, column or byte offset).
//
//   try { auto w = sparseinfer::QuantizedWeights<4>::from_f32(p, 0, 8); }
//   catch (const sparseinfer::error& e) { std::puts(e.what()); }  // "... rows is 0 ..."
#pragma once

#include <stdexcept>
#include <string>

namespace sparseinfer {

/// Base class of every exception the library throws.
class error : public std::runtime_error {
public:
    /// `what` says what was wrong; what() prefixes it with "sparseinfer: ".
    explicit error(const std::string& what) : std::runtime_error("sparseinfer: " + what) {}
};

/// Thrown when bytes read from a file or buffer are not a valid sparseinfer file.
class format_error : public error {
public:
    /// `what` names the problem and its byte offset.
    explicit format_error(const std::string& what) : error(what) {}
};

}  // namespace sparseinfer
