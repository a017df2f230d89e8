# Paged KV cache store.
list(APPEND SPARQ_SOURCES cache/block_pool.cpp cache/kv_cache.cpp cache/cache_config.cpp)
