// sparq: bandwidth-efficient decode attention (SparQ Attention) on CPUs.
// Umbrella header: everything a server links against.
#pragma once

#include "sparq/decode.hpp"
#include "sparq/error.hpp"
#include "sparq/isa.hpp"
#include "sparq/kv_cache.hpp"
#include "sparq/machine.hpp"
#include "sparq/method.hpp"
#include "sparq/npy.hpp"
#include "sparq/profile.hpp"
#include "sparq/roofline.hpp"
#include "sparq/topology.hpp"
#include "sparq/types.hpp"
#include "sparq/version.hpp"
