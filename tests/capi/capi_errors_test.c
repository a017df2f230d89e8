/* Error paths of every C API entry point: the status, a message naming the argument, and
 * the cache (lengths, memory, stored rows) and outputs left exactly as they were. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "capi_test_util.h"

enum { KV = 2, D = 8, QH = 4, B = 4 };

void run_error_tests(void);

/* A snapshot of what a failed call must not change. */
typedef struct {
  size_t len0, len1, blocks_in_use, total;
  float last_key[D];
} state;

static state snapshot(sparq_cache* c, sparq_seq_id s) {
  state st;
  sparq_memory_usage mu;
  memset(&st, 0, sizeof st);
  memset(&mu, 0, sizeof mu);
  mu.struct_size = sizeof mu;
  CHECK_OK(sparq_cache_length(c, s, 0, &st.len0));
  CHECK_OK(sparq_cache_length(c, s, 1, &st.len1));
  CHECK_OK(sparq_cache_memory_usage(c, &mu));
  st.blocks_in_use = mu.blocks_in_use;
  st.total = mu.total;
  if (st.len0 > 0) CHECK_OK(sparq_cache_read_key(c, s, 0, 1, st.len0 - 1, st.last_key));
  return st;
}

static int same(state a, state b) {
  return memcmp(&a, &b, sizeof a) == 0;
}

static void config_errors(void) {
  sparq_cache_config c;
  sparq_cache* cache = (sparq_cache*)&c; /* must stay untouched on failure */
  sparq_cache_config_init(&c);
  CHECK_ERR(sparq_cache_create(NULL, &cache), SPARQ_ERR_INVALID_ARGUMENT, "config is NULL");
  CHECK_ERR(sparq_cache_create(&c, NULL), SPARQ_ERR_INVALID_ARGUMENT, "out is NULL");
  c.head_dim = 0;
  CHECK_ERR(sparq_cache_create(&c, &cache), SPARQ_ERR_INVALID_ARGUMENT, "head_dim");
  sparq_cache_config_init(&c);
  c.dtype = 7;
  CHECK_ERR(sparq_cache_create(&c, &cache), SPARQ_ERR_INVALID_ARGUMENT, "config.dtype=7");
  sparq_cache_config_init(&c);
  c.placement = -1;
  CHECK_ERR(sparq_cache_create(&c, &cache), SPARQ_ERR_INVALID_ARGUMENT, "config.placement=-1");
  sparq_cache_config_init(&c);
  c.struct_size = 8;
  CHECK_ERR(sparq_cache_create(&c, &cache), SPARQ_ERR_INVALID_ARGUMENT, "struct_size=8 is too small");
  c.struct_size = sizeof c + 8;
  CHECK_ERR(sparq_cache_create(&c, &cache), SPARQ_ERR_UNSUPPORTED, "newer sparq.h");
  CHECK(cache == (sparq_cache*)&c);
  sparq_cache_destroy(NULL);  /* accepted */
  sparq_method_destroy(NULL); /* accepted */
  sparq_cache_config_init(NULL);
  sparq_sparq_params_init(NULL);
  sparq_decode_options_init(NULL);
  sparq_profile_init(NULL);
}

static void method_errors(void) {
  sparq_sparq_params p;
  sparq_method* m = NULL;
  CHECK_ERR(sparq_method_dense(NULL), SPARQ_ERR_INVALID_ARGUMENT, "out is NULL");
  CHECK_ERR(sparq_method_sparq(NULL, &m), SPARQ_ERR_INVALID_ARGUMENT, "params is NULL");
  sparq_sparq_params_init(&p);
  CHECK_ERR(sparq_method_sparq(&p, NULL), SPARQ_ERR_INVALID_ARGUMENT, "out is NULL");
  p.ratio = 0.5;
  CHECK_ERR(sparq_method_sparq(&p, &m), SPARQ_ERR_INVALID_ARGUMENT, "ratio=0.5");
  p.ratio = NAN;
  CHECK_ERR(sparq_method_sparq(&p, &m), SPARQ_ERR_INVALID_ARGUMENT, "ratio=nan");
  sparq_sparq_params_init(&p);
  p.r = 0;
  CHECK_ERR(sparq_method_sparq(&p, &m), SPARQ_ERR_INVALID_ARGUMENT, "r=0");
  sparq_sparq_params_init(&p);
  p.k = 0;
  CHECK_ERR(sparq_method_sparq(&p, &m), SPARQ_ERR_INVALID_ARGUMENT, "k=0");
  sparq_sparq_params_init(&p);
  p.reallocation = 2;
  CHECK_ERR(sparq_method_sparq(&p, &m), SPARQ_ERR_INVALID_ARGUMENT, "reallocation=2");
  sparq_sparq_params_init(&p);
  p.gqa = 3;
  CHECK_ERR(sparq_method_sparq(&p, &m), SPARQ_ERR_INVALID_ARGUMENT, "gqa=3");
  CHECK(m == NULL);
  CHECK_ERR(sparq_method_is_sparq(NULL, NULL), SPARQ_ERR_INVALID_ARGUMENT, "method is NULL");
}

static void cache_errors(void) {
  sparq_cache_config c;
  sparq_cache* cache = NULL;
  sparq_seq_id s = 0, other = 99;
  enum { N = 24 * KV * D }; /* 24 tokens: more than the capacity */
  float k[N], v[N], row[D];
  uint16_t kh[N], vh[N];
  size_t i, len = 7;
  int has = 7;
  state before;
  sparq_memory_usage mu;

  sparq_cache_config_init(&c);
  c.layers = 2;
  c.kv_heads = KV;
  c.head_dim = D;
  c.dtype = SPARQ_DTYPE_F16;
  c.block_tokens = B;
  c.capacity_tokens = 2 * B; /* 2 blocks per layer and head */
  CHECK_OK(sparq_cache_create(&c, &cache));
  for (i = 0; i < N; ++i) k[i] = (float)i / 64.0f, v[i] = 1.0f - (float)i / 32.0f;
  for (i = 0; i < N; ++i) kh[i] = 0x3c00u, vh[i] = 0x4000u; /* 1.0, 2.0 */

  CHECK_ERR(sparq_cache_add_sequence(NULL, &s), SPARQ_ERR_INVALID_ARGUMENT, "cache is NULL");
  CHECK_ERR(sparq_cache_add_sequence(cache, NULL), SPARQ_ERR_INVALID_ARGUMENT, "out is NULL");
  CHECK_OK(sparq_cache_add_sequence(cache, &s));
  CHECK_OK(sparq_cache_append(cache, s, 0, k, v, 3));
  before = snapshot(cache, s);

  /* Appends: NULLs, bad layer, unknown sequence, overflow, non-finite, capacity. */
  CHECK_ERR(sparq_cache_append(NULL, s, 0, k, v, 1), SPARQ_ERR_INVALID_ARGUMENT, "cache is NULL");
  CHECK_ERR(sparq_cache_append(cache, s, 0, NULL, v, 1), SPARQ_ERR_INVALID_ARGUMENT, "keys is NULL");
  CHECK_ERR(sparq_cache_append(cache, s, 0, k, NULL, 1), SPARQ_ERR_INVALID_ARGUMENT, "values is NULL");
  CHECK_ERR(sparq_cache_append_f16(cache, s, 0, NULL, vh, 1), SPARQ_ERR_INVALID_ARGUMENT, "keys is NULL");
  CHECK_ERR(sparq_cache_append_bf16(cache, s, 0, kh, NULL, 1), SPARQ_ERR_INVALID_ARGUMENT, "values is NULL");
  CHECK_ERR(sparq_cache_append(cache, s, 2, k, v, 1), SPARQ_ERR_INVALID_ARGUMENT, "layer=2");
  CHECK_ERR(sparq_cache_append_bf16(cache, s, 5, kh, vh, 1), SPARQ_ERR_INVALID_ARGUMENT, "layer=5");
  CHECK_ERR(sparq_cache_append(cache, other, 0, k, v, 1), SPARQ_ERR_UNKNOWN_SEQUENCE, "99");
  CHECK_ERR(sparq_cache_append_f16(cache, other, 0, kh, vh, 1), SPARQ_ERR_UNKNOWN_SEQUENCE, "99");
  CHECK_ERR(sparq_cache_append(cache, s, 0, k, v, SIZE_MAX / 4), SPARQ_ERR_INVALID_ARGUMENT, "overflows");
  CHECK_ERR(sparq_cache_append_f16(cache, s, 0, kh, vh, SIZE_MAX / 4), SPARQ_ERR_INVALID_ARGUMENT, "overflows");
  k[KV * D + 3] = INFINITY;
  CHECK_ERR(sparq_cache_append(cache, s, 0, k, v, 2), SPARQ_ERR_NON_FINITE_INPUT, "keys[token 1, head 0, component 3]");
  k[KV * D + 3] = 0.0f;
  vh[5] = 0x7c00u; /* f16 +Inf */
  CHECK_ERR(sparq_cache_append_f16(cache, s, 0, kh, vh, 1), SPARQ_ERR_NON_FINITE_INPUT,
            "values[token 0, head 0, component 5]");
  vh[5] = 0x7fc0u; /* bf16 NaN */
  CHECK_ERR(sparq_cache_append_bf16(cache, s, 0, kh, vh, 1), SPARQ_ERR_NON_FINITE_INPUT,
            "values[token 0, head 0, component 5]");
  vh[5] = 0x4000u;
  CHECK_ERR(sparq_cache_append(cache, s, 0, k, v, 20), SPARQ_ERR_CAPACITY_EXHAUSTED, "");
  CHECK_ERR(sparq_cache_append_f16(cache, s, 0, kh, vh, 20), SPARQ_ERR_CAPACITY_EXHAUSTED, "");
  CHECK(same(snapshot(cache, s), before));

  /* Sequences and reads. */
  CHECK_ERR(sparq_cache_fork(cache, s, NULL), SPARQ_ERR_INVALID_ARGUMENT, "out is NULL");
  CHECK_ERR(sparq_cache_fork(cache, other, &other), SPARQ_ERR_UNKNOWN_SEQUENCE, "99");
  CHECK_ERR(sparq_cache_truncate(cache, s, 1), SPARQ_ERR_INVALID_ARGUMENT, "shortest layer"); /* layer 1 is empty */
  CHECK_ERR(sparq_cache_truncate(NULL, s, 1), SPARQ_ERR_INVALID_ARGUMENT, "cache is NULL");
  CHECK_ERR(sparq_cache_remove_sequence(cache, other), SPARQ_ERR_UNKNOWN_SEQUENCE, "99");
  CHECK_ERR(sparq_cache_contains(cache, s, NULL), SPARQ_ERR_INVALID_ARGUMENT, "out is NULL");
  CHECK_ERR(sparq_cache_contains(NULL, s, &has), SPARQ_ERR_INVALID_ARGUMENT, "cache is NULL");
  CHECK_ERR(sparq_cache_length(cache, s, 2, &len), SPARQ_ERR_INVALID_ARGUMENT, "layer=2");
  CHECK_ERR(sparq_cache_length(cache, other, 0, &len), SPARQ_ERR_UNKNOWN_SEQUENCE, "99");
  CHECK(len == 7 && has == 7);
  CHECK_ERR(sparq_cache_read_key(cache, s, 0, 2, 0, row), SPARQ_ERR_INVALID_ARGUMENT, "head=2");
  CHECK_ERR(sparq_cache_read_value(cache, s, 0, 0, 3, row), SPARQ_ERR_INVALID_ARGUMENT, "pos=3");
  CHECK_ERR(sparq_cache_read_value(cache, s, 0, 0, 0, NULL), SPARQ_ERR_INVALID_ARGUMENT, "out is NULL");
  CHECK_ERR(sparq_cache_get_config(cache, NULL), SPARQ_ERR_INVALID_ARGUMENT, "config is NULL");
  memset(&mu, 0, sizeof mu);
  CHECK_ERR(sparq_cache_memory_usage(cache, &mu), SPARQ_ERR_INVALID_ARGUMENT, "sparq_memory_usage.struct_size=0");
  mu.struct_size = sizeof mu * 2;
  CHECK_ERR(sparq_cache_memory_usage(cache, &mu), SPARQ_ERR_UNSUPPORTED, "newer sparq.h");
  CHECK(same(snapshot(cache, s), before));
  CHECK(strcmp(sparq_last_error(), "") == 0); /* cleared by snapshot's successful calls */
  sparq_cache_destroy(cache);
}

static void decode_errors(void) {
  sparq_cache_config c;
  sparq_cache* cache = NULL;
  sparq_method *dense = NULL, *sparq = NULL;
  sparq_sparq_params p;
  sparq_seq_id s = 0, empty = 0;
  float k[5 * KV * D], v[5 * KV * D], q[2 * QH * D], out[2 * QH * D], lse[QH];
  sparq_decode_item item;
  sparq_decode_options o;
  sparq_profile prof;
  size_t i;

  sparq_cache_config_init(&c);
  c.kv_heads = KV;
  c.head_dim = D;
  c.dtype = SPARQ_DTYPE_F32;
  c.block_tokens = B;
  CHECK_OK(sparq_cache_create(&c, &cache));
  for (i = 0; i < 5 * KV * D; ++i) k[i] = (float)(i % 7) - 3.0f, v[i] = (float)(i % 5);
  for (i = 0; i < 2 * QH * D; ++i) q[i] = (float)(i % 3) - 1.0f, out[i] = -7.0f;
  for (i = 0; i < QH; ++i) lse[i] = -7.0f;
  CHECK_OK(sparq_cache_add_sequence(cache, &s));
  CHECK_OK(sparq_cache_add_sequence(cache, &empty));
  CHECK_OK(sparq_cache_append(cache, s, 0, k, v, 5));
  CHECK_OK(sparq_method_dense(&dense));
  sparq_sparq_params_init(&p);
  p.r = D + 1;
  CHECK_OK(sparq_method_sparq(&p, &sparq));
  item.seq = s;
  item.q = q;
  item.out = out;
  item.lse = lse;
  item.alpha = NULL;
  sparq_decode_options_init(&o);

  CHECK_ERR(sparq_decode(NULL, 0, dense, QH, &item, 1, NULL), SPARQ_ERR_INVALID_ARGUMENT, "cache is NULL");
  CHECK_ERR(sparq_decode(cache, 0, NULL, QH, &item, 1, NULL), SPARQ_ERR_INVALID_ARGUMENT, "method is NULL");
  CHECK_ERR(sparq_decode(cache, 0, dense, QH, NULL, 1, NULL), SPARQ_ERR_INVALID_ARGUMENT, "items is NULL");
  CHECK_ERR(sparq_decode(cache, 0, dense, 0, &item, 1, NULL), SPARQ_ERR_INVALID_ARGUMENT, "q_heads=0");
  CHECK_ERR(sparq_decode(cache, 0, dense, 3, &item, 1, NULL), SPARQ_ERR_SHAPE_MISMATCH, "multiple of the call's 2");
  CHECK_ERR(sparq_decode(cache, 1, dense, QH, &item, 1, NULL), SPARQ_ERR_INVALID_ARGUMENT, "layer=1");
  CHECK_ERR(sparq_decode(cache, 0, sparq, QH, &item, 1, NULL), SPARQ_ERR_INVALID_ARGUMENT, "r=9");
  item.q = NULL;
  CHECK_ERR(sparq_decode(cache, 0, dense, QH, &item, 1, NULL), SPARQ_ERR_INVALID_ARGUMENT, "items[0].q is NULL");
  item.q = q;
  item.out = NULL;
  CHECK_ERR(sparq_decode(cache, 0, dense, QH, &item, 1, NULL), SPARQ_ERR_INVALID_ARGUMENT, "items[0].out is NULL");
  item.out = out;
  item.seq = 77;
  CHECK_ERR(sparq_decode(cache, 0, dense, QH, &item, 1, NULL), SPARQ_ERR_UNKNOWN_SEQUENCE, "77");
  item.seq = empty;
  CHECK_ERR(sparq_decode(cache, 0, dense, QH, &item, 1, NULL), SPARQ_ERR_EMPTY_SEQUENCE, "no tokens");
  item.seq = s;
  q[6] = NAN;
  CHECK_ERR(sparq_decode(cache, 0, dense, QH, &item, 1, NULL), SPARQ_ERR_NON_FINITE_INPUT, "batch[0].q[6]");
  q[6] = 0.0f;
  /* The KV-head range: past the cache's heads is an error, not clamped. */
  o.kv_head_end = 3;
  CHECK_ERR(sparq_decode(cache, 0, dense, QH, &item, 1, &o), SPARQ_ERR_INVALID_ARGUMENT, "kv_head_end=3 exceeds");
  o.kv_head_begin = 2;
  o.kv_head_end = SPARQ_ALL_HEADS;
  CHECK_ERR(sparq_decode(cache, 0, dense, QH, &item, 1, &o), SPARQ_ERR_INVALID_ARGUMENT, "kv_head_begin=2");
  sparq_decode_options_init(&o);
  o.scale = -1.0f;
  CHECK_ERR(sparq_decode(cache, 0, dense, QH, &item, 1, &o), SPARQ_ERR_INVALID_ARGUMENT, "scale");
  sparq_decode_options_init(&o);
  o.struct_size = 4;
  CHECK_ERR(sparq_decode(cache, 0, dense, QH, &item, 1, &o), SPARQ_ERR_INVALID_ARGUMENT, "struct_size=4");
  sparq_decode_options_init(&o);
  memset(&prof, 0, sizeof prof);
  o.profile = &prof;
  CHECK_ERR(sparq_decode(cache, 0, dense, QH, &item, 1, &o), SPARQ_ERR_INVALID_ARGUMENT, "sparq_profile");
  /* Nothing was written by any failed call. */
  for (i = 0; i < 2 * QH * D; ++i) CHECK(out[i] == -7.0f);
  for (i = 0; i < QH; ++i) CHECK(lse[i] == -7.0f);
  for (i = 0; i < SPARQ_PHASE_COUNT; ++i) CHECK(prof.phases[i].calls == 0);
  /* An empty batch is fine and touches nothing. */
  CHECK_OK(sparq_decode(cache, 0, dense, QH, NULL, 0, NULL));

  CHECK_ERR(sparq_decode_causal(NULL, 0, s, QH, q, out, 1, NULL), SPARQ_ERR_INVALID_ARGUMENT, "cache is NULL");
  CHECK_ERR(sparq_decode_causal(cache, 0, s, QH, NULL, out, 1, NULL), SPARQ_ERR_INVALID_ARGUMENT, "q is NULL");
  CHECK_ERR(sparq_decode_causal(cache, 0, s, QH, q, NULL, 1, NULL), SPARQ_ERR_INVALID_ARGUMENT, "out is NULL");
  CHECK_ERR(sparq_decode_causal(cache, 0, s, QH, q, out, 0, NULL), SPARQ_ERR_INVALID_ARGUMENT, "n_new=0");
  CHECK_ERR(sparq_decode_causal(cache, 0, s, QH, q, out, 6, NULL), SPARQ_ERR_INVALID_ARGUMENT, "n_new=6");
  CHECK_ERR(sparq_decode_causal(cache, 0, s, 0, q, out, 1, NULL), SPARQ_ERR_INVALID_ARGUMENT, "q_heads=0");
  CHECK_ERR(sparq_decode_causal(cache, 0, s, QH, q, out, SIZE_MAX / 8, NULL), SPARQ_ERR_INVALID_ARGUMENT, "overflows");
  CHECK_ERR(sparq_decode_causal(cache, 0, 77, QH, q, out, 1, NULL), SPARQ_ERR_UNKNOWN_SEQUENCE, "77");
  for (i = 0; i < 2 * QH * D; ++i) CHECK(out[i] == -7.0f);
  sparq_method_destroy(dense);
  sparq_method_destroy(sparq);
  sparq_cache_destroy(cache);
}

void run_error_tests(void) {
  config_errors();
  method_errors();
  cache_errors();
  decode_errors();
}
