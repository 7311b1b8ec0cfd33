// sparseinfer/serialize.hpp - saving, loading and mapping quantized weights.
//
// One matrix per file ("weights file", magic 89 'SIQW' 0D 0A 1A) or several
// named matrices in one ("tensor file", tensor_file.hpp). Both are versioned,
// little-endian, start every payload 64-byte aligned, fill every gap with zero
// bytes (checked) and carry a 64-bit checksum, so no byte of a file goes
// unchecked. docs/format.md gives the byte layout; detail/weights_file.hpp is
// the code.
//
//   auto w = sparseinfer::QuantizedWeights<4>::from_f32(data, rows, cols);
//   w.save("down.siqw");                                       // or save(std::ostream&)
//   auto owned = sparseinfer::QuantizedWeights<4>::load("down.siqw");
//
//   sparseinfer::MappedFile file("down.siqw");                 // zero copy
//   auto view = sparseinfer::QuantizedWeightsView<4>::from_bytes(file.data(), file.size());
//
// Readers never trust the bytes: every rejection throws
// sparseinfer::format_error naming what was wrong and at which byte offset;
// sizes read from a file are checked for overflow and against the bytes
// actually present before anything is allocated or read. A full check
// (Verify::full, the default) also rejects what the writer never produces:
// non-finite per-row units, a min code of -128 and non-zero padding codes. No
// payload byte can make a kernel read out of bounds (codes are bounded by
// their width), so Verify::structure, which skips the checksum pass, is safe
// for memory but not for numbers: use it for files you trust.
#pragma once

#include "detail/weights_file.hpp"
#include "error.hpp"
#include "mapped_file.hpp"
#include "quantized_weights.hpp"
#include "quantized_weights_view.hpp"
#include "tensor_file.hpp"
