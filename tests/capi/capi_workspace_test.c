/* sparq_workspace: decodes with a caller-owned workspace give the same bits as without
 * one, the workspace holds scratch until released, and a 0.1 caller's shorter
 * sparq_decode_options (no workspace field) is still accepted. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "capi_test_util.h"

enum { KV = 2, QH = 8, D = 32, S = 300 };

static void decode_into(const sparq_cache* cache, const sparq_method* m, sparq_seq_id seq, const float* q, float* y,
                        const sparq_decode_options* o) {
  sparq_decode_item item;
  memset(&item, 0, sizeof item);
  item.seq = seq;
  item.q = q;
  item.out = y;
  CHECK_OK(sparq_decode(cache, 0, m, QH, &item, 1, o));
}

void run_workspace_tests(void) {
  static float k[S * KV * D], v[S * KV * D];
  float q[QH * D], plain[QH * D], with_ws[QH * D];
  sparq_cache_config c;
  sparq_cache* cache = NULL;
  sparq_seq_id seq = 0;
  sparq_method* methods[2] = {NULL, NULL};
  sparq_sparq_params p;
  sparq_decode_options o;
  sparq_workspace* ws = NULL;
  size_t i, m;

  sparq_cache_config_init(&c);
  c.layers = 1;
  c.kv_heads = KV;
  c.head_dim = D;
  c.block_tokens = 16;
  c.capacity_tokens = 512;
  CHECK_OK(sparq_cache_create(&c, &cache));
  CHECK_OK(sparq_cache_add_sequence(cache, &seq));
  for (i = 0; i < S * KV * D; ++i) {
    k[i] = (float)((i * 37u) % 101u) / 50.0f - 1.0f;
    v[i] = (float)((i * 11u) % 53u) / 26.0f - 1.0f;
  }
  for (i = 0; i < QH * D; ++i) q[i] = (float)((i * 7u) % 13u) / 6.0f - 1.0f;
  CHECK_OK(sparq_cache_append(cache, seq, 0, k, v, S));
  CHECK_OK(sparq_method_dense(&methods[0]));
  sparq_sparq_params_init(&p);
  p.ratio = 8.0;
  CHECK_OK(sparq_method_sparq(&p, &methods[1]));
  CHECK_OK(sparq_workspace_create(&ws));
  CHECK(sparq_workspace_bytes(ws) == 0);

  for (m = 0; m < 2; ++m) {
    decode_into(cache, methods[m], seq, q, plain, NULL);
    sparq_decode_options_init(&o);
    o.workspace = ws;
    memset(with_ws, 0xff, sizeof with_ws);
    decode_into(cache, methods[m], seq, q, with_ws, &o);
    CHECK(memcmp(plain, with_ws, sizeof plain) == 0);
    CHECK(sparq_workspace_bytes(ws) > 0); /* the scratch now lives in the workspace */
    /* A caller built against 0.1's sparq.h: struct_size ends before `workspace`. */
    sparq_decode_options_init(&o);
    o.struct_size = offsetof(sparq_decode_options, workspace);
    memset(with_ws, 0xff, sizeof with_ws);
    decode_into(cache, methods[m], seq, q, with_ws, &o);
    CHECK(memcmp(plain, with_ws, sizeof plain) == 0);
  }
  sparq_workspace_release(ws);
  CHECK(sparq_workspace_bytes(ws) == 0);
  sparq_decode_options_init(&o);
  o.workspace = ws; /* usable after release */
  decode_into(cache, methods[1], seq, q, with_ws, &o);
  CHECK(memcmp(plain, with_ws, sizeof plain) == 0);

  CHECK_ERR(sparq_workspace_create(NULL), SPARQ_ERR_INVALID_ARGUMENT, "out");
  CHECK(sparq_workspace_bytes(NULL) == 0);
  sparq_workspace_release(NULL);
  sparq_workspace_destroy(NULL);
  sparq_workspace_destroy(ws);
  sparq_method_destroy(methods[0]);
  sparq_method_destroy(methods[1]);
  sparq_cache_destroy(cache);
}
