/* sparq.h: the C API of the serving core (libsparq.so), for servers written in C, Rust,
 * Go, or anything else with a C FFI. C99; no C++ types. The same library and semantics
 * as the C++ API (sparq/sparq.hpp): read its headers for the algorithm and the cache.
 *
 * Conventions (docs/c-api.md has the ABI rules):
 * - Every function that can fail returns a sparq_status; SPARQ_OK (0) is success. On
 *   failure nothing was changed (a failed append leaves the cache as it was; out
 *   parameters are left untouched), and sparq_last_error() returns a message naming the
 *   argument and the rule it broke, the same text the C++ API's sparq::Error carries.
 * - No function throws, aborts or crashes on bad input: NULL pointers, counts of 0 where
 *   one is needed, sizes that overflow and values out of range are reported as
 *   SPARQ_ERR_INVALID_ARGUMENT or SPARQ_ERR_SHAPE_MISMATCH. Buffers are described by
 *   their shape (n_tokens, q_heads) and must hold what the shape implies: a buffer
 *   shorter than that cannot be detected.
 * - Handles (sparq_cache, sparq_method) are opaque and owned by the caller, released with
 *   their _destroy function (which accepts NULL).
 * - Every struct except sparq_decode_item and sparq_phase_stats starts with
 *   `struct_size`: fill it with its _init function (which sets struct_size and the
 *   defaults) or set it to sizeof the struct, then change fields. Later minor versions
 *   may append fields: a library accepts every struct_size from this first version's up
 *   to its own, and rejects a larger one (a caller built against a newer sparq.h) with
 *   SPARQ_ERR_UNSUPPORTED rather than ignore fields it does not know.
 * - Thread safety: as the C++ KVCache (sparq/kv_cache.hpp): calls on different sequences
 *   may run concurrently, and so may any number of decodes of one sequence; a write to a
 *   sequence (append, truncate, remove) that overlaps another use of it fails with
 *   SPARQ_ERR_CONCURRENT_USE instead of racing. A cache must not be destroyed while
 *   another thread uses it. Methods are immutable after creation and may be shared.
 */
#ifndef SPARQ_SPARQ_H
#define SPARQ_SPARQ_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define SPARQ_C_EXPORT __attribute__((visibility("default")))
#else
#define SPARQ_C_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Version of this C API: bumped when functions or struct fields are added (minor) or
 * when anything changes incompatibly (major, with libsparq's SOVERSION). */
#define SPARQ_C_API_VERSION_MAJOR 0
#define SPARQ_C_API_VERSION_MINOR 2

/* Status codes. 1-10 mirror sparq::ErrorCode in order (sparq/error.hpp). */
typedef enum sparq_status {
  SPARQ_OK = 0,
  SPARQ_ERR_INVALID_ARGUMENT = 1,   /* a parameter outside its range, or a NULL pointer */
  SPARQ_ERR_SHAPE_MISMATCH = 2,     /* sizes that disagree with the cache or each other */
  SPARQ_ERR_UNKNOWN_SEQUENCE = 3,   /* a sequence never added, or already removed */
  SPARQ_ERR_CAPACITY_EXHAUSTED = 4, /* the block pool cannot hold it; nothing was changed */
  SPARQ_ERR_NON_FINITE_INPUT = 5,   /* NaN or Inf where finite values are required */
  SPARQ_ERR_EMPTY_SEQUENCE = 6,     /* attention over S = 0 positions */
  SPARQ_ERR_BAD_FILE = 7,
  SPARQ_ERR_IO = 8,
  SPARQ_ERR_UNSUPPORTED = 9,     /* valid, but not on this build or machine */
  SPARQ_ERR_CONCURRENT_USE = 10, /* a thread-safety rule was broken (detected, not raced) */
  SPARQ_ERR_OUT_OF_MEMORY = 11,  /* the system refused memory */
  SPARQ_ERR_INTERNAL = 12        /* a bug in sparq: please report the message */
} sparq_status;

/* Storage type of the cached K/V. */
typedef enum sparq_dtype { SPARQ_DTYPE_F32 = 0, SPARQ_DTYPE_F16 = 1, SPARQ_DTYPE_BF16 = 2 } sparq_dtype;
/* Which copies of the keys the cache keeps (SparQ's fast path needs an S-major and a
 * d-major copy: BOTH, or FUSED with each position's key and value side by side). */
typedef enum sparq_key_layout {
  SPARQ_LAYOUT_BOTH = 0,
  SPARQ_LAYOUT_S_MAJOR = 1,
  SPARQ_LAYOUT_D_MAJOR = 2,
  SPARQ_LAYOUT_FUSED = 3
} sparq_key_layout;
/* Element type of the d-major key copy: the cache's dtype, or int8 with per-block scales
 * (half the bytes of SparQ's stage 1; needs BOTH or FUSED). */
typedef enum sparq_d_major_type { SPARQ_D_MAJOR_SAME = 0, SPARQ_D_MAJOR_INT8 = 1 } sparq_d_major_type;
typedef enum sparq_placement {
  SPARQ_PLACEMENT_LOCAL = 0,
  SPARQ_PLACEMENT_INTERLEAVE = 1,
  SPARQ_PLACEMENT_BY_HEAD = 2
} sparq_placement;
/* How a GQA group chooses the positions it fetches (sparq/method.hpp). */
typedef enum sparq_gqa_selection { SPARQ_GQA_SHARED = 0, SPARQ_GQA_PER_HEAD = 1 } sparq_gqa_selection;
/* Kernel instruction sets; SPARQ_ISA_AUTO returns to the automatic choice. */
typedef enum sparq_isa {
  SPARQ_ISA_AUTO = -1,
  SPARQ_ISA_AVX512 = 0,
  SPARQ_ISA_AVX2 = 1,
  SPARQ_ISA_GENERIC = 2
} sparq_isa;

typedef uint64_t sparq_seq_id;
typedef struct sparq_cache sparq_cache;
typedef struct sparq_method sparq_method;
typedef struct sparq_workspace sparq_workspace;

/* "Derive this value" for the SparQ parameters r, k, window. */
#define SPARQ_AUTO ((size_t)-1)
/* kv_head_end meaning "every KV head of the cache". */
#define SPARQ_ALL_HEADS ((size_t)-1)

/* ---- errors and version ---- */

/* The message of the last failed call on this thread; "" after a successful one. Valid
 * until the next sparq call on this thread. Never NULL. */
SPARQ_C_EXPORT const char* sparq_last_error(void);
/* "ok", "invalid_argument", ... ; "unknown" for any other value (an int, so that any value
 * is safe to pass). */
SPARQ_C_EXPORT const char* sparq_status_name(int status);
/* The library's version, e.g. "0.1.0". */
SPARQ_C_EXPORT const char* sparq_version(void);

/* ---- KV cache ---- */

/* Enum-typed fields are int32_t so the layout does not depend on the compiler's enum size. */
typedef struct sparq_cache_config {
  size_t struct_size;
  size_t layers;          /* default 1 */
  size_t kv_heads;        /* default 1 */
  size_t head_dim;        /* d; default 128 */
  int32_t dtype;          /* sparq_dtype; default SPARQ_DTYPE_BF16 */
  int32_t layouts;        /* sparq_key_layout; default SPARQ_LAYOUT_BOTH */
  int32_t placement;      /* sparq_placement; default SPARQ_PLACEMENT_LOCAL */
  size_t block_tokens;    /* B; default 256 */
  size_t capacity_tokens; /* all sequences together; default 65536 */
  /* Since 0.2: older callers' shorter struct_size leaves it SPARQ_D_MAJOR_SAME. */
  int32_t d_major_type; /* sparq_d_major_type; default SPARQ_D_MAJOR_SAME */
} sparq_cache_config;

/* Fills *config with struct_size and the defaults. NULL is ignored. */
SPARQ_C_EXPORT void sparq_cache_config_init(sparq_cache_config* config);
/* A new, empty cache. *out is set only on success. */
SPARQ_C_EXPORT sparq_status sparq_cache_create(const sparq_cache_config* config, sparq_cache** out);
/* Frees the cache and every sequence in it. NULL is ignored. */
SPARQ_C_EXPORT void sparq_cache_destroy(sparq_cache* cache);
/* The configuration the cache was created with (up to config->struct_size, which the
 * caller sets, e.g. with sparq_cache_config_init). */
SPARQ_C_EXPORT sparq_status sparq_cache_get_config(const sparq_cache* cache, sparq_cache_config* config);

/* Sequences. */
SPARQ_C_EXPORT sparq_status sparq_cache_add_sequence(sparq_cache* cache, sparq_seq_id* out);
SPARQ_C_EXPORT sparq_status sparq_cache_remove_sequence(sparq_cache* cache, sparq_seq_id seq);
/* A new sequence sharing all of seq's tokens, copy-on-write. */
SPARQ_C_EXPORT sparq_status sparq_cache_fork(sparq_cache* cache, sparq_seq_id seq, sparq_seq_id* out);
/* Drops the last n_tokens of every layer (at most the shortest layer's length). */
SPARQ_C_EXPORT sparq_status sparq_cache_truncate(sparq_cache* cache, sparq_seq_id seq, size_t n_tokens);
/* *out = 1 when the cache holds seq, else 0. */
SPARQ_C_EXPORT sparq_status sparq_cache_contains(const sparq_cache* cache, sparq_seq_id seq, int* out);
/* Tokens of seq in one layer. */
SPARQ_C_EXPORT sparq_status sparq_cache_length(const sparq_cache* cache, sparq_seq_id seq, size_t layer, size_t* out);

/* Appends n_tokens to one layer of seq. keys and values are [n_tokens][kv_heads][head_dim],
 * converted to the cache's storage type. Fails, changing nothing, on non-finite input or
 * when the pool cannot hold the new blocks. n_tokens = 0 does nothing (pointers must still
 * be non-NULL). */
SPARQ_C_EXPORT sparq_status sparq_cache_append(sparq_cache* cache, sparq_seq_id seq, size_t layer, const float* keys,
                                               const float* values, size_t n_tokens);
/* The same from IEEE binary16 or bfloat16 bit patterns (e.g. a model's f16 or bf16
 * activations), read in place: no f32 buffer is made. An element of the cache's dtype is
 * copied bit for bit, any other converted (round to nearest even), so the cache stores
 * exactly what sparq_cache_append of the same values (widened exactly) stores. Non-finite
 * values and values beyond the storage's range are rejected as there. */
SPARQ_C_EXPORT sparq_status sparq_cache_append_f16(sparq_cache* cache, sparq_seq_id seq, size_t layer,
                                                   const uint16_t* keys, const uint16_t* values, size_t n_tokens);
SPARQ_C_EXPORT sparq_status sparq_cache_append_bf16(sparq_cache* cache, sparq_seq_id seq, size_t layer,
                                                    const uint16_t* keys, const uint16_t* values, size_t n_tokens);
/* Since 0.2. Appends one token to each of n_seqs distinct sequences at one layer (a
 * server's decode step over its slots). keys and values are [n_seqs][kv_heads][head_dim]
 * elements of `dtype` (a sparq_dtype: float for F32, uint16_t bit patterns for F16 and
 * BF16), row b for seqs[b]. All or nothing: when any id is unknown, repeated
 * (SPARQ_ERR_INVALID_ARGUMENT) or in use by another thread, any value non-finite, or the
 * pool cannot hold every new block, no sequence changes. n_seqs = 0 does nothing
 * (pointers must still be non-NULL). */
SPARQ_C_EXPORT sparq_status sparq_cache_append_batch(sparq_cache* cache, size_t layer, const sparq_seq_id* seqs,
                                                     size_t n_seqs, int32_t dtype, const void* keys,
                                                     const void* values);

/* One stored key or value row of KV head `head` at position pos, as f32 (the stored,
 * rounded value): out has head_dim floats. */
SPARQ_C_EXPORT sparq_status sparq_cache_read_key(const sparq_cache* cache, sparq_seq_id seq, size_t layer, size_t head,
                                                 size_t pos, float* out);
SPARQ_C_EXPORT sparq_status sparq_cache_read_value(const sparq_cache* cache, sparq_seq_id seq, size_t layer,
                                                   size_t head, size_t pos, float* out);

/* Bytes taken from the system, by part (sparq::MemoryUsage). */
typedef struct sparq_memory_usage {
  size_t struct_size;
  size_t k_s_major;
  size_t k_d_major;
  size_t values;
  size_t metadata;
  size_t total;
  size_t blocks_in_use;
  size_t blocks_allocated;
  size_t blocks_capacity;
} sparq_memory_usage;
/* out->struct_size must be set (sizeof(sparq_memory_usage)). */
SPARQ_C_EXPORT sparq_status sparq_cache_memory_usage(const sparq_cache* cache, sparq_memory_usage* out);

/* ---- methods ---- */

/* SparQ parameters (DESIGN §1): r, k and window are SPARQ_AUTO to derive them from the
 * ratio; reallocation is -1 (derived: on for MHA, off for GQA), 0 or 1. */
typedef struct sparq_sparq_params {
  size_t struct_size;
  double ratio; /* compression ratio c >= 1; default 8 */
  size_t r;     /* query components kept, 1 <= r <= head_dim */
  size_t k;     /* positions fetched (window included), >= 1 */
  size_t window;
  int32_t reallocation;
  int32_t gqa; /* sparq_gqa_selection; default SPARQ_GQA_SHARED */
} sparq_sparq_params;

SPARQ_C_EXPORT void sparq_sparq_params_init(sparq_sparq_params* params);
/* Exact dense attention. */
SPARQ_C_EXPORT sparq_status sparq_method_dense(sparq_method** out);
/* SparQ; parameters that depend on head_dim (r <= d) are checked at decode. */
SPARQ_C_EXPORT sparq_status sparq_method_sparq(const sparq_sparq_params* params, sparq_method** out);
SPARQ_C_EXPORT void sparq_method_destroy(sparq_method* method);
/* *out = 1 for SparQ, 0 for dense. */
SPARQ_C_EXPORT sparq_status sparq_method_is_sparq(const sparq_method* method, int* out);

/* ---- decode ---- */

/* Profile phases, in sparq::Phase order. */
enum { SPARQ_PHASE_DENSE = 0, SPARQ_PHASE_STAGE1, SPARQ_PHASE_TOPK, SPARQ_PHASE_STAGE2, SPARQ_PHASE_REALLOCATION };
#define SPARQ_PHASE_COUNT 5

typedef struct sparq_phase_stats {
  uint64_t bytes_read; /* counted from the cache lines the kernels touched */
  uint64_t flops;
  double seconds;
  uint64_t calls;
} sparq_phase_stats;

/* Accumulated into by every decode that is given it (zero it to start). */
typedef struct sparq_profile {
  size_t struct_size;
  sparq_phase_stats phases[SPARQ_PHASE_COUNT];
  int32_t isa;    /* sparq_isa of the last call */
  size_t threads; /* concurrency of the arena that ran the last call */
} sparq_profile;
SPARQ_C_EXPORT void sparq_profile_init(sparq_profile* profile);

typedef struct sparq_decode_options {
  size_t struct_size;
  float scale;            /* softmax scale; 0 means 1/sqrt(head_dim) */
  size_t kv_head_begin;   /* the call covers KV heads [begin, end): default 0 */
  size_t kv_head_end;     /* default SPARQ_ALL_HEADS; must not exceed kv_heads otherwise */
  sparq_profile* profile; /* NULL: no profile */
  /* Since 0.2: caller-owned scratch (sparq_workspace_create); NULL: the library's
   * per-thread scratch. Older callers' shorter struct_size leaves it NULL. */
  sparq_workspace* workspace;
} sparq_decode_options;
SPARQ_C_EXPORT void sparq_decode_options_init(sparq_decode_options* options);

/* Since 0.2. Caller-owned scratch for decode (sparq/workspace.hpp): without one, every
 * thread that runs part of a decode keeps its scratch for the thread's life; with one,
 * the scratch lives in the workspace (bounded by the largest call it served) and is
 * freed by sparq_workspace_release or _destroy. Outputs are the same bits either way.
 * One decode at a time per workspace: a second gets SPARQ_ERR_CONCURRENT_USE. */
SPARQ_C_EXPORT sparq_status sparq_workspace_create(sparq_workspace** out);
SPARQ_C_EXPORT void sparq_workspace_destroy(sparq_workspace* workspace); /* NULL is ignored */
/* Bytes of scratch it holds now (0 for NULL). Not while a decode uses it. */
SPARQ_C_EXPORT size_t sparq_workspace_bytes(const sparq_workspace* workspace);
/* Frees its scratch; it stays usable. NULL is ignored. Not while a decode uses it. */
SPARQ_C_EXPORT void sparq_workspace_release(sparq_workspace* workspace);

/* One sequence's query of a decode step. q and out are [q_heads][head_dim]; lse and alpha
 * are [q_heads] or NULL (log-sum-exp of the attended scaled scores; SparQ's estimated
 * score mass fetched, 1 for dense). */
typedef struct sparq_decode_item {
  sparq_seq_id seq;
  const float* q;
  float* out;
  float* lse;
  float* alpha;
} sparq_decode_item;

/* One decode step for n_items sequences. q_heads is the number of query heads of the
 * call's KV-head range (a positive multiple of its KV heads; query head h reads KV head
 * kv_head_begin + h / (q_heads / n_kv)). options may be NULL (defaults). Everything is
 * validated before any output is written. Deterministic whatever the thread count. */
SPARQ_C_EXPORT sparq_status sparq_decode(const sparq_cache* cache, size_t layer, const sparq_method* method,
                                         size_t q_heads, const sparq_decode_item* items, size_t n_items,
                                         const sparq_decode_options* options);
/* Dense causal attention of the last n_new positions of seq (already appended): query i
 * attends to positions [0, S - n_new + i]. q and out are [n_new][q_heads][head_dim]. */
SPARQ_C_EXPORT sparq_status sparq_decode_causal(const sparq_cache* cache, size_t layer, sparq_seq_id seq,
                                                size_t q_heads, const float* q, float* out, size_t n_new,
                                                const sparq_decode_options* options);

/* ---- instruction set ---- */

/* "avx512", "avx2", "generic"; "auto" for SPARQ_ISA_AUTO; "unknown" otherwise. */
SPARQ_C_EXPORT const char* sparq_isa_name(int32_t isa);
/* The variant decode uses now (after SPARQ_ISA and sparq_force_isa). */
SPARQ_C_EXPORT int32_t sparq_active_isa(void);
/* 1 when this build has the variant and this CPU can run it, else 0. */
SPARQ_C_EXPORT int sparq_cpu_supports_isa(int32_t isa);
/* Forces a variant for the whole process (SPARQ_ISA_AUTO: automatic again). Fails with
 * SPARQ_ERR_UNSUPPORTED when the CPU cannot run it. */
SPARQ_C_EXPORT sparq_status sparq_force_isa(int32_t isa);

#ifdef __cplusplus
}
#endif

#endif /* SPARQ_SPARQ_H */
