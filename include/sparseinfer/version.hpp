// sparseinfer/version.hpp - the library version, kept equal to the CMake project version.
//
//   static_assert(SPARSEINFER_VERSION_MAJOR == 0);
#pragma once

#define SPARSEINFER_VERSION_MAJOR 0
#define SPARSEINFER_VERSION_MINOR 1
#define SPARSEINFER_VERSION_PATCH 0
#define SPARSEINFER_VERSION_STRING "0.1.0"
