/* 16-bit appends into caches of another dtype, and sparq_cache_append_batch: both store
 * what sparq_cache_append of the same (widened) values stores, bit for bit; a batch that
 * fails for any of its sequences changes none of them. */
#include <stdint.h>
#include <string.h>

#include "capi_test_util.h"

enum { KV = 2, D = 8, NSEQ = 3 };

static sparq_cache* cache_of(int32_t dtype, int32_t layouts) {
  sparq_cache_config c;
  sparq_cache* cache = NULL;
  sparq_cache_config_init(&c);
  c.layers = 2;
  c.kv_heads = KV;
  c.head_dim = D;
  c.dtype = dtype;
  c.layouts = layouts;
  c.block_tokens = 2;
  c.capacity_tokens = 64;
  CHECK_OK(sparq_cache_create(&c, &cache));
  return cache;
}

static float bf16_value(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* f16 bit patterns of normal numbers, and their exact values. */
static uint16_t f16_bits(unsigned i) {
  return (uint16_t)(((i * 7919u) % 0x7800u + 0x0400u) | ((i & 1u) << 15));
}
static float f16_value(uint16_t h) {
  int e = (h >> 10) & 0x1f;
  float m = 1.0f + (float)(h & 0x3ff) / 1024.0f, x = m;
  for (; e > 15; --e) x *= 2.0f;
  for (; e < 15; ++e) x /= 2.0f;
  return (h & 0x8000u) ? -x : x;
}

/* Every stored key and value row of layer `layer` of a and b are equal as f32 (and so as
 * stored bits: widening to f32 is one-to-one). */
static int same_rows(const sparq_cache* ca, sparq_seq_id a, const sparq_cache* cb, sparq_seq_id b, size_t layer) {
  size_t la = 0, lb = 0, j, h;
  float ra[D], rb[D];
  if (sparq_cache_length(ca, a, layer, &la) != SPARQ_OK || sparq_cache_length(cb, b, layer, &lb) != SPARQ_OK ||
      la != lb)
    return 0;
  for (j = 0; j < la; ++j)
    for (h = 0; h < KV; ++h) {
      if (sparq_cache_read_key(ca, a, layer, h, j, ra) || sparq_cache_read_key(cb, b, layer, h, j, rb) ||
          memcmp(ra, rb, sizeof ra) != 0)
        return 0;
      if (sparq_cache_read_value(ca, a, layer, h, j, ra) || sparq_cache_read_value(cb, b, layer, h, j, rb) ||
          memcmp(ra, rb, sizeof ra) != 0)
        return 0;
    }
  return 1;
}

static void test_cross_type_appends(void) {
  enum { S = 5, N = S * KV * D };
  int32_t dtypes[3] = {SPARQ_DTYPE_F32, SPARQ_DTYPE_F16, SPARQ_DTYPE_BF16};
  int32_t layouts[2] = {SPARQ_LAYOUT_D_MAJOR, SPARQ_LAYOUT_FUSED};
  uint16_t h16[N], b16[N];
  float h32[N], b32[N];
  size_t i;
  int t, l;
  for (i = 0; i < N; ++i) {
    h16[i] = f16_bits((unsigned)i);
    h32[i] = f16_value(h16[i]);
    b16[i] = (uint16_t)(0x3000u + (i * 97u) % 0x1780u); /* bf16 in [2^-31, 65280]: f16 holds it (or rounds it to 0) */
    b32[i] = bf16_value(b16[i]);
  }
  for (t = 0; t < 3; ++t)
    for (l = 0; l < 2; ++l) {
      sparq_cache *x = cache_of(dtypes[t], layouts[l]), *y = cache_of(dtypes[t], layouts[l]);
      sparq_seq_id a = 0, b = 0;
      CHECK_OK(sparq_cache_add_sequence(x, &a));
      CHECK_OK(sparq_cache_add_sequence(y, &b));
      CHECK_OK(sparq_cache_append_f16(x, a, 0, h16, h16, S));
      CHECK_OK(sparq_cache_append(y, b, 0, h32, h32, S));
      CHECK_OK(sparq_cache_append_bf16(x, a, 1, b16, b16, S));
      CHECK_OK(sparq_cache_append(y, b, 1, b32, b32, S));
      CHECK(same_rows(x, a, y, b, 0));
      CHECK(same_rows(x, a, y, b, 1));
      sparq_cache_destroy(x);
      sparq_cache_destroy(y);
    }
}

static void test_append_batch(void) {
  enum { ROW = KV * D, N = NSEQ * ROW };
  sparq_cache *x = cache_of(SPARQ_DTYPE_BF16, SPARQ_LAYOUT_BOTH), *y = cache_of(SPARQ_DTYPE_BF16, SPARQ_LAYOUT_BOTH);
  sparq_seq_id a[NSEQ], b[NSEQ], dup[NSEQ], unknown[NSEQ];
  uint16_t k16[N], v16[N], bad16[N];
  float k32[N], v32[N];
  size_t i, len = 0;
  int s, step;
  for (s = 0; s < NSEQ; ++s) {
    CHECK_OK(sparq_cache_add_sequence(x, &a[s]));
    CHECK_OK(sparq_cache_add_sequence(y, &b[s]));
  }
  for (step = 0; step < 3; ++step) { /* three steps: blocks of 2 tokens fill and open */
    for (i = 0; i < N; ++i) {
      k16[i] = f16_bits((unsigned)(i + 100u * (unsigned)step));
      v16[i] = f16_bits((unsigned)(i * 3u + 7u));
      k32[i] = f16_value(k16[i]);
      v32[i] = f16_value(v16[i]);
    }
    CHECK_OK(sparq_cache_append_batch(x, 1, a, NSEQ, SPARQ_DTYPE_F16, k16, v16));
    for (s = 0; s < NSEQ; ++s) CHECK_OK(sparq_cache_append(y, b[s], 1, k32 + s * ROW, v32 + s * ROW, 1));
  }
  for (s = 0; s < NSEQ; ++s) CHECK(same_rows(x, a[s], y, b[s], 1));
  CHECK_OK(sparq_cache_append_batch(x, 0, a, NSEQ, SPARQ_DTYPE_F32, k32, v32)); /* f32 too */
  CHECK_OK(sparq_cache_length(x, a[2], 0, &len));
  CHECK(len == 1);

  /* Errors: nothing changes in any sequence. */
  memcpy(dup, a, sizeof dup);
  dup[2] = a[0];
  memcpy(unknown, a, sizeof unknown);
  unknown[1] = 777;
  memcpy(bad16, k16, sizeof bad16);
  bad16[2 * ROW + D + 1] = 0x7c00u; /* f16 inf at batch row 2, head 1, component 1 */
  CHECK_ERR(sparq_cache_append_batch(x, 1, dup, NSEQ, SPARQ_DTYPE_F16, k16, v16), SPARQ_ERR_INVALID_ARGUMENT,
            "repeats seqs[0]");
  CHECK_ERR(sparq_cache_append_batch(x, 1, unknown, NSEQ, SPARQ_DTYPE_F16, k16, v16), SPARQ_ERR_UNKNOWN_SEQUENCE,
            "sequence 777");
  CHECK_ERR(sparq_cache_append_batch(x, 1, a, NSEQ, SPARQ_DTYPE_F16, bad16, v16), SPARQ_ERR_NON_FINITE_INPUT,
            "keys[batch row 2, head 1, component 1] is infinite");
  CHECK_ERR(sparq_cache_append_batch(x, 1, a, NSEQ, 3, k16, v16), SPARQ_ERR_INVALID_ARGUMENT, "dtype=3");
  CHECK_ERR(sparq_cache_append_batch(x, 1, NULL, NSEQ, SPARQ_DTYPE_F16, k16, v16), SPARQ_ERR_INVALID_ARGUMENT, "seqs");
  CHECK_ERR(sparq_cache_append_batch(x, 1, a, NSEQ, SPARQ_DTYPE_F16, k16, NULL), SPARQ_ERR_INVALID_ARGUMENT, "values");
  CHECK_ERR(sparq_cache_append_batch(x, 2, a, NSEQ, SPARQ_DTYPE_F16, k16, v16), SPARQ_ERR_INVALID_ARGUMENT, "layer=2");
  CHECK_ERR(sparq_cache_append_batch(NULL, 1, a, NSEQ, SPARQ_DTYPE_F16, k16, v16), SPARQ_ERR_INVALID_ARGUMENT, "cache");
  CHECK_OK(sparq_cache_append_batch(x, 1, a, 0, SPARQ_DTYPE_F16, k16, v16)); /* empty: nothing */
  for (s = 0; s < NSEQ; ++s) CHECK(same_rows(x, a[s], y, b[s], 1));
  sparq_cache_destroy(x);
  sparq_cache_destroy(y);
}

void run_append_tests(void) {
  test_cross_type_appends();
  test_append_batch();
}
