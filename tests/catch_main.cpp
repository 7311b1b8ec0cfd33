// The Catch2 v2 main; with Catch2 v3 the library's Catch2WithMain is used instead.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
