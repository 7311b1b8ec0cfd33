// Hides the difference between Catch2 v2 (Debian's 2.13) and v3 from the tests.
#pragma once

#if SPARSEINFER_CATCH_MAJOR == 2
#include <catch2/catch.hpp>
#else
#include <catch2/catch_all.hpp>
#endif

// Path of ../shared/data (the real test model); tests skip when it is absent.
#ifndef SPARSEINFER_TEST_DATA_DIR
#define SPARSEINFER_TEST_DATA_DIR ""
#endif
