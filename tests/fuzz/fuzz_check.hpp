// The one way a fuzz target reports a broken rule: print what broke and abort, which
// libFuzzer records as a crash (with the input) and ctest as a failed test.
#pragma once

#include <cstdio>
#include <cstdlib>

#define SPARQ_FUZZ_CHECK(cond, ...)                                                        \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "fuzz check failed at %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                                   \
      std::fprintf(stderr, "\n");                                                          \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)
