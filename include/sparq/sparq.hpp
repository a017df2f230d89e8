// sparq: bandwidth-efficient decode attention (SparQ Attention) on CPUs.
// Umbrella header of the serving core (sparq::sparq): everything a server links against.
// The tools library's headers (roofline, machine ceilings, .npy, eval, model) are under
// sparq/tools/ and are not part of it.
#pragma once

#include "sparq/decode.hpp"
#include "sparq/error.hpp"
#include "sparq/isa.hpp"
#include "sparq/kv_cache.hpp"
#include "sparq/method.hpp"
#include "sparq/profile.hpp"
#include "sparq/rows.hpp"
#include "sparq/topology.hpp"
#include "sparq/types.hpp"
#include "sparq/version.hpp"
#include "sparq/workspace.hpp"
