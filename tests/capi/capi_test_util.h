/* Minimal assertions for the C API tests (C99): each failure prints its location, the
 * expression and the library's last error, and the test's exit status counts failures. */
#ifndef SPARQ_CAPI_TEST_UTIL_H
#define SPARQ_CAPI_TEST_UTIL_H

#include <stdio.h>
#include <string.h>

#include "sparq/sparq.h"

/* Defined once, in capi_test.c, so every file's checks count toward one exit status. */
extern int g_failures;
extern int g_checks;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    ++g_checks;                                                                                    \
    if (!(cond)) {                                                                                 \
      ++g_failures;                                                                                \
      fprintf(stderr, "%s:%d: CHECK(%s) failed (last error: \"%s\")\n", __FILE__, __LINE__, #cond, \
              sparq_last_error());                                                                 \
    }                                                                                              \
  } while (0)

#define CHECK_OK(call)                                                                                  \
  do {                                                                                                  \
    sparq_status st_ = (call);                                                                          \
    ++g_checks;                                                                                         \
    if (st_ != SPARQ_OK) {                                                                              \
      ++g_failures;                                                                                     \
      fprintf(stderr, "%s:%d: %s returned %s: %s\n", __FILE__, __LINE__, #call, sparq_status_name(st_), \
              sparq_last_error());                                                                      \
    }                                                                                                   \
  } while (0)

/* The call must fail with `status`, and its message must contain `needle`. */
#define CHECK_ERR(call, status, needle)                                                                     \
  do {                                                                                                      \
    sparq_status st_ = (call);                                                                              \
    ++g_checks;                                                                                             \
    if (st_ != (status) || strstr(sparq_last_error(), (needle)) == NULL) {                                  \
      ++g_failures;                                                                                         \
      fprintf(stderr, "%s:%d: %s returned %s \"%s\"; expected %s with \"%s\"\n", __FILE__, __LINE__, #call, \
              sparq_status_name(st_), sparq_last_error(), sparq_status_name(status), (needle));             \
    }                                                                                                       \
  } while (0)

#endif
