// What the C API's opaque handles hold.
#pragma once

#include "sparq/kv_cache.hpp"
#include "sparq/method.hpp"
#include "sparq/sparq.h"
#include "sparq/workspace.hpp"

struct sparq_cache {
  explicit sparq_cache(const sparq::CacheConfig& config) : cache(config) {}
  sparq::KVCache cache;
};

struct sparq_method {
  sparq::Method method;
};

struct sparq_workspace {
  sparq::Workspace workspace;
};
