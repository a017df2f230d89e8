/* The C API from C: results against a reference computed here, 16-bit appends against f32
 * appends of the same values, and every entry point's error paths (NULL pointers, bad
 * sizes and values), each leaving the cache unchanged. Compiled as C99 with -pedantic. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "capi_test_util.h"

int g_failures = 0;
int g_checks = 0;

enum { LAYERS = 2, KV = 2, D = 16, G = 2, QH = KV * G, B = 4 };

static uint32_t g_rng = 12345u;
static float rnd(void) { /* uniform in [-1, 1) */
  g_rng = g_rng * 1664525u + 1013904223u;
  return (float)((g_rng >> 8) & 0xffffu) / 32768.0f - 1.0f;
}
static void fill(float* x, size_t n) {
  size_t i;
  for (i = 0; i < n; ++i) x[i] = rnd();
}

static sparq_cache* make_cache(int32_t dtype, size_t capacity) {
  sparq_cache_config c;
  sparq_cache* cache = NULL;
  sparq_cache_config_init(&c);
  c.layers = LAYERS;
  c.kv_heads = KV;
  c.head_dim = D;
  c.dtype = dtype;
  c.block_tokens = B;
  c.capacity_tokens = capacity;
  CHECK_OK(sparq_cache_create(&c, &cache));
  return cache;
}

/* Dense attention in double over the f32 rows k, v ([S][KV][D]) for q [QH][D]. */
static void reference(const float* k, const float* v, size_t S, const float* q, double* out, double* lse) {
  size_t h, j, i;
  for (h = 0; h < QH; ++h) {
    const size_t kv = h / G;
    double mx = -INFINITY, sum = 0.0;
    double* s = malloc(S * sizeof(double));
    for (j = 0; j < S; ++j) {
      double dot = 0.0;
      for (i = 0; i < D; ++i) dot += (double)q[h * D + i] * k[(j * KV + kv) * D + i];
      s[j] = dot / sqrt((double)D);
      if (s[j] > mx) mx = s[j];
    }
    for (j = 0; j < S; ++j) sum += exp(s[j] - mx);
    for (i = 0; i < D; ++i) {
      double y = 0.0;
      for (j = 0; j < S; ++j) y += exp(s[j] - mx) / sum * v[(j * KV + kv) * D + i];
      out[h * D + i] = y;
    }
    lse[h] = mx + log(sum);
    free(s);
  }
}

static int close_to(double got, double want, double tol) {
  return fabs(got - want) <= tol * (1.0 + fabs(want));
}

static void test_decode_matches_reference(void) {
  enum { S = 11 };
  sparq_cache* cache = make_cache(SPARQ_DTYPE_F32, 256);
  sparq_method *dense = NULL, *sparq = NULL;
  sparq_sparq_params p;
  sparq_seq_id seq = 0;
  float k[S * KV * D], v[S * KV * D], q[QH * D], y[QH * D], lse[QH], alpha[QH], y2[QH * D];
  double want[QH * D], want_lse[QH];
  size_t len = 0, i;
  sparq_decode_item item;
  sparq_decode_options o;
  sparq_profile prof;
  int is_sparq = -1;

  fill(k, S * KV * D);
  fill(v, S * KV * D);
  fill(q, QH * D);
  CHECK_OK(sparq_cache_add_sequence(cache, &seq));
  CHECK_OK(sparq_cache_append(cache, seq, 0, k, v, S));
  CHECK_OK(sparq_cache_length(cache, seq, 0, &len));
  CHECK(len == S);
  CHECK_OK(sparq_cache_length(cache, seq, 1, &len));
  CHECK(len == 0);
  CHECK(strcmp(sparq_last_error(), "") == 0);

  CHECK_OK(sparq_method_dense(&dense));
  CHECK_OK(sparq_method_is_sparq(dense, &is_sparq));
  CHECK(is_sparq == 0);
  item.seq = seq;
  item.q = q;
  item.out = y;
  item.lse = lse;
  item.alpha = alpha;
  sparq_decode_options_init(&o);
  sparq_profile_init(&prof);
  o.profile = &prof;
  CHECK_OK(sparq_decode(cache, 0, dense, QH, &item, 1, &o));
  reference(k, v, S, q, want, want_lse);
  for (i = 0; i < QH * D; ++i) CHECK(close_to(y[i], want[i], 1e-5));
  for (i = 0; i < QH; ++i) CHECK(close_to(lse[i], want_lse[i], 1e-5) && alpha[i] == 1.0f);
  CHECK(prof.phases[SPARQ_PHASE_DENSE].calls == 1 && prof.phases[SPARQ_PHASE_DENSE].bytes_read > 0);
  CHECK(prof.isa == sparq_active_isa() && prof.threads >= 1);

  /* SparQ with k >= S fetches every position: dense up to rounding, alpha = 1. */
  sparq_sparq_params_init(&p);
  p.k = 1000;
  CHECK_OK(sparq_method_sparq(&p, &sparq));
  CHECK_OK(sparq_method_is_sparq(sparq, &is_sparq));
  CHECK(is_sparq == 1);
  item.out = y2;
  CHECK_OK(sparq_decode(cache, 0, sparq, QH, &item, 1, NULL));
  for (i = 0; i < QH * D; ++i) CHECK(close_to(y2[i], want[i], 1e-5));
  for (i = 0; i < QH; ++i) CHECK(alpha[i] == 1.0f);

  /* One tensor-parallel rank's share: KV head 1 only, its G query heads. */
  o.profile = NULL;
  o.kv_head_begin = 1;
  o.kv_head_end = 2;
  item.q = q + G * D;
  item.out = y2;
  item.lse = NULL;
  item.alpha = NULL;
  CHECK_OK(sparq_decode(cache, 0, dense, G, &item, 1, &o));
  for (i = 0; i < G * D; ++i) CHECK(close_to(y2[i], want[G * D + i], 1e-5));

  /* Causal prefill attention: the last query of a chunk sees everything. */
  {
    float qc[3 * QH * D], yc[3 * QH * D];
    memset(qc, 0, sizeof qc);
    memcpy(qc + 2 * QH * D, q, sizeof q);
    CHECK_OK(sparq_decode_causal(cache, 0, seq, QH, qc, yc, 3, NULL));
    for (i = 0; i < QH * D; ++i) CHECK(close_to(yc[2 * QH * D + i], want[i], 1e-5));
  }
  sparq_method_destroy(dense);
  sparq_method_destroy(sparq);
  sparq_cache_destroy(cache);
}

/* 16-bit appends store what an f32 append of the widened values stores (bit for bit). */
static float widen_bf16(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static void test_half_appends(void) {
  enum { S = 9, N = S * KV * D };
  int32_t dtypes[2] = {SPARQ_DTYPE_BF16, SPARQ_DTYPE_F16};
  int t;
  for (t = 0; t < 2; ++t) {
    sparq_cache* cache = make_cache(dtypes[t], 256);
    sparq_seq_id a = 0, b = 0;
    uint16_t kh[N], vh[N];
    float kf[N], vf[N], q[QH * D], ya[QH * D], yb[QH * D], row_a[D], row_b[D];
    sparq_method* dense = NULL;
    sparq_decode_item item;
    size_t i;
    for (i = 0; i < N; ++i) {
      if (t == 0) { /* bf16: any finite pattern (exponent not all ones) */
        kh[i] = (uint16_t)(0x3c00u + (rnd() + 1.0f) * 1000.0f);
        vh[i] = (uint16_t)(0xbc00u + (rnd() + 1.0f) * 1000.0f);
        kf[i] = widen_bf16(kh[i]);
        vf[i] = widen_bf16(vh[i]);
      } else { /* f16: small integers and halves, exact in f16 */
        kf[i] = (float)((int)(rnd() * 16.0f)) / 2.0f;
        vf[i] = (float)((int)(rnd() * 16.0f)) / 4.0f;
      }
    }
    if (t == 1) { /* encode the f16 values by hand: |x| = m * 2^e with few mantissa bits */
      for (i = 0; i < N; ++i) {
        int side;
        for (side = 0; side < 2; ++side) {
          float x = side ? vf[i] : kf[i];
          uint16_t h = 0;
          if (x != 0.0f) {
            int e = 0;
            float m = frexpf(fabsf(x), &e); /* x = m * 2^e, m in [0.5, 1) */
            h = (uint16_t)(((uint32_t)(e - 1 + 15) << 10) | (uint32_t)((m * 2.0f - 1.0f) * 1024.0f));
            if (x < 0) h |= 0x8000u;
          }
          if (side)
            vh[i] = h;
          else
            kh[i] = h;
        }
      }
    }
    fill(q, QH * D);
    CHECK_OK(sparq_cache_add_sequence(cache, &a));
    CHECK_OK(sparq_cache_add_sequence(cache, &b));
    CHECK_OK(t == 0 ? sparq_cache_append_bf16(cache, a, 1, kh, vh, S) : sparq_cache_append_f16(cache, a, 1, kh, vh, S));
    CHECK_OK(sparq_cache_append(cache, b, 1, kf, vf, S));
    for (i = 0; i < S; ++i) {
      CHECK_OK(sparq_cache_read_key(cache, a, 1, 1, i, row_a));
      CHECK_OK(sparq_cache_read_key(cache, b, 1, 1, i, row_b));
      CHECK(memcmp(row_a, row_b, sizeof row_a) == 0);
      CHECK(row_a[3] == kf[(i * KV + 1) * D + 3]);
      CHECK_OK(sparq_cache_read_value(cache, a, 1, 0, i, row_a));
      CHECK(row_a[5] == vf[(i * KV + 0) * D + 5]);
    }
    CHECK_OK(sparq_method_dense(&dense));
    item.seq = a;
    item.q = q;
    item.out = ya;
    item.lse = NULL;
    item.alpha = NULL;
    CHECK_OK(sparq_decode(cache, 1, dense, QH, &item, 1, NULL));
    item.seq = b;
    item.out = yb;
    CHECK_OK(sparq_decode(cache, 1, dense, QH, &item, 1, NULL));
    CHECK(memcmp(ya, yb, sizeof ya) == 0);
    sparq_method_destroy(dense);
    sparq_cache_destroy(cache);
  }
}

static void test_sequences(void) {
  enum { S = 6 };
  sparq_cache* cache = make_cache(SPARQ_DTYPE_F32, 256);
  sparq_seq_id s = 0, f = 0;
  float k[S * KV * D], v[S * KV * D];
  size_t len = 0;
  int has = -1;
  sparq_memory_usage mu;
  fill(k, S * KV * D);
  fill(v, S * KV * D);
  CHECK_OK(sparq_cache_add_sequence(cache, &s));
  CHECK_OK(sparq_cache_append(cache, s, 0, k, v, S));
  CHECK_OK(sparq_cache_append(cache, s, 1, k, v, S));
  CHECK_OK(sparq_cache_fork(cache, s, &f));
  CHECK(f != s);
  CHECK_OK(sparq_cache_length(cache, f, 1, &len));
  CHECK(len == S);
  CHECK_OK(sparq_cache_truncate(cache, f, 2));
  CHECK_OK(sparq_cache_length(cache, f, 0, &len));
  CHECK(len == S - 2);
  CHECK_OK(sparq_cache_length(cache, s, 0, &len));
  CHECK(len == S);
  memset(&mu, 0, sizeof mu);
  mu.struct_size = sizeof mu;
  CHECK_OK(sparq_cache_memory_usage(cache, &mu));
  CHECK(mu.blocks_in_use > 0 && mu.total == mu.k_s_major + mu.k_d_major + mu.values + mu.metadata);
  CHECK_OK(sparq_cache_remove_sequence(cache, s));
  CHECK_OK(sparq_cache_contains(cache, s, &has));
  CHECK(has == 0);
  CHECK_OK(sparq_cache_contains(cache, f, &has));
  CHECK(has == 1);
  CHECK_ERR(sparq_cache_remove_sequence(cache, s), SPARQ_ERR_UNKNOWN_SEQUENCE, "not in the cache");
  {
    sparq_cache_config c;
    sparq_cache_config_init(&c);
    CHECK_OK(sparq_cache_get_config(cache, &c));
    CHECK(c.layers == LAYERS && c.kv_heads == KV && c.head_dim == D && c.dtype == SPARQ_DTYPE_F32 &&
          c.block_tokens == B && c.capacity_tokens == 256);
  }
  sparq_cache_destroy(cache);
}

static void test_isa(void) {
  const int32_t active = sparq_active_isa();
  CHECK(sparq_cpu_supports_isa(active) == 1);
  CHECK(sparq_cpu_supports_isa(SPARQ_ISA_GENERIC) == 1);
  CHECK(sparq_cpu_supports_isa(42) == 0);
  CHECK(strcmp(sparq_isa_name(SPARQ_ISA_GENERIC), "generic") == 0);
  CHECK(strcmp(sparq_isa_name(SPARQ_ISA_AUTO), "auto") == 0);
  CHECK(strcmp(sparq_isa_name(7), "unknown") == 0);
  CHECK_OK(sparq_force_isa(SPARQ_ISA_GENERIC));
  CHECK(sparq_active_isa() == SPARQ_ISA_GENERIC);
  CHECK_OK(sparq_force_isa(SPARQ_ISA_AUTO));
  CHECK(sparq_active_isa() == active);
  CHECK_ERR(sparq_force_isa(9), SPARQ_ERR_INVALID_ARGUMENT, "isa=9");
  if (!sparq_cpu_supports_isa(SPARQ_ISA_AVX512))
    CHECK_ERR(sparq_force_isa(SPARQ_ISA_AVX512), SPARQ_ERR_UNSUPPORTED, "not supported by this CPU");
  CHECK(strcmp(sparq_status_name(SPARQ_ERR_CAPACITY_EXHAUSTED), "capacity_exhausted") == 0);
  CHECK(strcmp(sparq_status_name(SPARQ_ERR_INTERNAL), "internal") == 0);
  CHECK(strcmp(sparq_status_name(99), "unknown") == 0);
  CHECK(strlen(sparq_version()) >= 5);
}

void run_error_tests(void);     /* capi_errors_test.c */
void run_append_tests(void);    /* capi_append_test.c */
void run_workspace_tests(void); /* capi_workspace_test.c */

int main(void) {
  test_decode_matches_reference();
  test_half_appends();
  test_sequences();
  test_isa();
  run_error_tests();
  run_append_tests();
  run_workspace_tests();
  printf("capi_test: %d checks, %d failed\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
