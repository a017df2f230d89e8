// sparq.KVCache: the paged KV cache, appended from numpy arrays or torch tensors.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "arrays.hpp"
#include "bindings.hpp"
#include "sparq/error.hpp"
#include "sparq/kv_cache.hpp"

namespace sparq::py_bind {
namespace {

[[noreturn]] void fail(ErrorCode code, const std::string& message) {
  throw Error(code, message);
}

std::string lower_name(py::handle obj) {
  std::string s = py::isinstance<py::str>(obj) ? obj.cast<std::string>() : std::string(py::str(obj));
  for (const char* prefix : {"torch.", "<class 'numpy.", "numpy."})
    if (s.rfind(prefix, 0) == 0) s = s.substr(std::string(prefix).size());
  if (!s.empty() && s.back() == '>') s = s.substr(0, s.size() - 2);  // "<class 'numpy.float16'>"
  return s;
}

// Checks keys/values against the cache: [n_tokens, kv_heads, head_dim] (or
// [kv_heads, head_dim] for one token), or with layers > 0 [layers, n_tokens, kv_heads,
// head_dim]. Returns n_tokens.
std::size_t tokens_of(const Array& a, const CacheConfig& c, const std::string& name, std::size_t layers) {
  const bool all = layers > 0;
  const std::size_t nd = a.ndim();
  const std::string want = all ? "[layers=" + std::to_string(c.layers) +
                                     ", n_tokens, kv_heads=" + std::to_string(c.kv_heads) +
                                     ", head_dim=" + std::to_string(c.head_dim) + "]"
                               : "[n_tokens, kv_heads=" + std::to_string(c.kv_heads) +
                                     ", head_dim=" + std::to_string(c.head_dim) + "] (or [kv_heads, head_dim])";
  const bool ok = all ? nd == 4 && a.shape[0] == c.layers && a.shape[2] == c.kv_heads && a.shape[3] == c.head_dim
                      : (nd == 3 && a.shape[1] == c.kv_heads && a.shape[2] == c.head_dim) ||
                            (nd == 2 && a.shape[0] == c.kv_heads && a.shape[1] == c.head_dim);
  if (!ok) fail(ErrorCode::shape_mismatch, name + " has shape " + a.shape_string() + ": must be " + want);
  if (all) return a.shape[1];
  return nd == 3 ? a.shape[0] : 1;
}

// An input's elements as Rows: f32, f16 and bf16 in place (no widening), f64 narrowed
// into `scratch`.
Rows rows_of(const Array& a, std::vector<float>& scratch) {
  switch (a.elem) {
    case Elem::f16:
      return Rows::f16({static_cast<const std::uint16_t*>(a.data), a.size()});
    case Elem::bf16:
      return Rows::bf16({static_cast<const std::uint16_t*>(a.data), a.size()});
    case Elem::f32:
    case Elem::f64:
      break;
  }
  return as_f32(a, scratch);
}

void check_same_shape(const Array& k, const Array& v) {
  if (k.shape != v.shape)
    fail(ErrorCode::shape_mismatch,
         "values have shape " + v.shape_string() + " but keys have shape " + k.shape_string() + ": they must be equal");
}

void append_arrays(KVCache& cache, SeqId seq, std::size_t layer, const Array& k, const Array& v, std::size_t n_tokens,
                   bool all_layers) {
  check_same_shape(k, v);
  const py::gil_scoped_release nogil;
  std::vector<float> ks, vs;
  const Rows kr = rows_of(k, ks), vr = rows_of(v, vs);
  if (all_layers)
    cache.append_all_layers(seq, kr, vr, n_tokens);
  else
    cache.append(seq, layer, kr, vr, n_tokens);
}

void append_batch(KVCache& cache, const std::vector<SeqId>& seqs, std::size_t layer, const Array& k, const Array& v) {
  check_same_shape(k, v);
  const CacheConfig& c = cache.config();
  if (k.ndim() != 3 || k.shape[0] != seqs.size() || k.shape[1] != c.kv_heads || k.shape[2] != c.head_dim)
    fail(ErrorCode::shape_mismatch,
         "keys have shape " + k.shape_string() + ": must be [len(seqs)=" + std::to_string(seqs.size()) +
             ", kv_heads=" + std::to_string(c.kv_heads) + ", head_dim=" + std::to_string(c.head_dim) + "]");
  const py::gil_scoped_release nogil;
  std::vector<float> ks, vs;
  cache.append_batch(seqs, layer, rows_of(k, ks), rows_of(v, vs));
}

py::dict config_dict(const CacheConfig& c) {
  py::dict d;
  d["layers"] = c.layers;
  d["kv_heads"] = c.kv_heads;
  d["head_dim"] = c.head_dim;
  d["dtype"] = std::string(to_string(c.dtype));
  d["block_tokens"] = c.block_tokens;
  d["capacity_tokens"] = c.capacity_tokens;
  d["layouts"] = std::string(to_string(c.layouts));
  d["d_major_type"] = std::string(to_string(c.d_major_type));
  d["placement"] = std::string(to_string(c.placement));
  return d;
}

py::array_t<float> read_row(const KVCache& cache, SeqId seq, std::size_t layer, std::size_t head, std::size_t pos,
                            bool key) {
  py::array_t<float> out(py::ssize_t(cache.config().head_dim));
  const std::span<float> s(out.mutable_data(), cache.config().head_dim);
  if (key)
    cache.read_key(seq, layer, head, pos, s);
  else
    cache.read_value(seq, layer, head, pos, s);
  return out;
}

}  // namespace

DType parse_dtype_arg(py::handle obj) {
  const std::string s = lower_name(obj);
  if (s == "f32" || s == "float32" || s == "float") return DType::f32;
  if (s == "f16" || s == "float16" || s == "half") return DType::f16;
  if (s == "bf16" || s == "bfloat16") return DType::bf16;
  fail(ErrorCode::invalid_argument, "dtype='" + s + "' is unknown: must be 'f32', 'f16' or 'bf16'");
}

void bind_cache(py::module_& m) {
  py::class_<KVCache>(m, "KVCache", R"(A paged store of the keys and values of many sequences (sparq/kv_cache.hpp).

Keys and values are appended per layer as [n_tokens, kv_heads, head_dim] arrays (numpy
float32/float16/float64 or torch float32/float16/bfloat16, viewed in place when
C-contiguous) and stored as `dtype`. Every method validates its arguments before it changes
anything: on sparq.Error the cache is exactly as it was. Methods on different sequences may
run concurrently (appends and decodes release the GIL); a write to a sequence that overlaps
another use of it raises sparq.Error(code='concurrent_use').)")
      .def(py::init([](std::size_t layers, std::size_t kv_heads, std::size_t head_dim, py::object dtype,
                       std::size_t block_tokens, std::size_t capacity_tokens, const std::string& layouts,
                       const std::string& placement, const std::string& d_major_type) {
             CacheConfig c{.layers = layers,
                           .kv_heads = kv_heads,
                           .head_dim = head_dim,
                           .dtype = parse_dtype_arg(dtype),
                           .block_tokens = block_tokens,
                           .capacity_tokens = capacity_tokens};
             const auto l = parse_key_layout(layouts);
             if (!l)
               fail(ErrorCode::invalid_argument,
                    "layouts='" + layouts + "' is unknown: must be 'both', 's-major', 'd-major' or 'fused'");
             const auto t = parse_d_major_type(d_major_type);
             if (!t)
               fail(ErrorCode::invalid_argument,
                    "d_major_type='" + d_major_type + "' is unknown: must be 'same' or 'int8'");
             c.d_major_type = *t;
             const auto p = parse_placement(placement);
             if (!p)
               fail(ErrorCode::invalid_argument,
                    "placement='" + placement + "' is unknown: must be 'local', 'interleave' or 'by-head'");
             c.layouts = *l;
             c.placement = *p;
             return std::make_unique<KVCache>(c);
           }),
           py::kw_only(), py::arg("layers") = 1, py::arg("kv_heads") = 1, py::arg("head_dim") = 128,
           py::arg("dtype") = "bf16", py::arg("block_tokens") = 256, py::arg("capacity_tokens") = 1 << 16,
           py::arg("layouts") = "both", py::arg("placement") = "local", py::arg("d_major_type") = "same")
      .def_property_readonly(
          "config", [](const KVCache& c) { return config_dict(c.config()); }, "The configuration, as a dict.")
      .def_property_readonly("layers", [](const KVCache& c) { return c.config().layers; })
      .def_property_readonly("kv_heads", [](const KVCache& c) { return c.config().kv_heads; })
      .def_property_readonly("head_dim", [](const KVCache& c) { return c.config().head_dim; })
      .def_property_readonly("dtype", [](const KVCache& c) { return std::string(to_string(c.config().dtype)); })
      .def("add_sequence", &KVCache::add_sequence, "A new, empty sequence; returns its id.")
      .def("remove_sequence", &KVCache::remove_sequence, py::arg("seq"),
           "Frees the sequence's blocks (those not shared with a fork).")
      .def("fork", &KVCache::fork, py::arg("seq"), "A new sequence sharing all of seq's tokens (copy-on-write).")
      .def("truncate", &KVCache::truncate, py::arg("seq"), py::arg("n_tokens"),
           "Drops the last n_tokens of every layer (at most the shortest layer's length).")
      .def("__contains__", &KVCache::contains, py::arg("seq"))
      .def("sequences", &KVCache::sequences, "Ids of the sequences in the cache.")
      .def("length", &KVCache::length, py::arg("seq"), py::arg("layer") = 0, "Tokens of seq in one layer.")
      .def(
          "append",
          [](KVCache& cache, SeqId seq, std::size_t layer, py::handle keys, py::handle values) {
            const Array k = input_array(keys, "keys"), v = input_array(values, "values");
            const std::size_t n = tokens_of(k, cache.config(), "keys", 0);
            append_arrays(cache, seq, layer, k, v, n, false);
          },
          py::arg("seq"), py::arg("layer"), py::arg("keys"), py::arg("values"),
          R"(Appends tokens to one layer: keys and values are [n_tokens, kv_heads, head_dim]
(or [kv_heads, head_dim] for one token). float16 and bfloat16 inputs are read in place with
no float32 round trip: elements of the cache's dtype are copied bit for bit, others rounded
to nearest even (the same bits a float32 append of the same values stores). Raises
sparq.Error, changing nothing, on a shape mismatch, non-finite input, an unknown sequence,
or when the pool cannot hold the new blocks. Releases the GIL.)")
      .def(
          "append_batch",
          [](KVCache& cache, const std::vector<SeqId>& seqs, std::size_t layer, py::handle keys, py::handle values) {
            const Array k = input_array(keys, "keys"), v = input_array(values, "values");
            append_batch(cache, seqs, layer, k, v);
          },
          py::arg("seqs"), py::arg("layer"), py::arg("keys"), py::arg("values"),
          R"(Appends one token to each of the distinct sequences `seqs` at one layer (a decode
step over a server's slots): keys and values are [len(seqs), kv_heads, head_dim], row b for
seqs[b], typed as in append. All or nothing: on sparq.Error (an unknown or repeated id, a
sequence in use, a shape mismatch, non-finite input, a full pool) no sequence changes.
Releases the GIL.)")
      .def(
          "append_all_layers",
          [](KVCache& cache, SeqId seq, py::handle keys, py::handle values) {
            const Array k = input_array(keys, "keys"), v = input_array(values, "values");
            const std::size_t n = tokens_of(k, cache.config(), "keys", cache.config().layers);
            append_arrays(cache, seq, 0, k, v, n, true);
          },
          py::arg("seq"), py::arg("keys"), py::arg("values"),
          "Appends to every layer at once (all or none): keys and values are [layers, n_tokens, kv_heads, head_dim].")
      .def(
          "read_key",
          [](const KVCache& c, SeqId s, std::size_t layer, std::size_t head, std::size_t pos) {
            return read_row(c, s, layer, head, pos, true);
          },
          py::arg("seq"), py::arg("layer"), py::arg("head"), py::arg("pos"),
          "The stored key of KV head `head` at `pos`, as float32 [head_dim].")
      .def(
          "read_value",
          [](const KVCache& c, SeqId s, std::size_t layer, std::size_t head, std::size_t pos) {
            return read_row(c, s, layer, head, pos, false);
          },
          py::arg("seq"), py::arg("layer"), py::arg("head"), py::arg("pos"),
          "The stored value of KV head `head` at `pos`, as float32 [head_dim].")
      .def(
          "memory_usage",
          [](const KVCache& c) {
            const MemoryUsage u = c.memory_usage();
            py::dict d;
            d["k_s_major"] = u.k_s_major;
            d["k_d_major"] = u.k_d_major;
            d["values"] = u.values;
            d["metadata"] = u.metadata;
            d["total"] = u.total();
            d["blocks_in_use"] = u.blocks_in_use;
            d["blocks_allocated"] = u.blocks_allocated;
            d["blocks_capacity"] = u.blocks_capacity;
            return d;
          },
          "Bytes taken from the system, by part, and block counts (a dict).")
      .def("free_blocks", &KVCache::free_blocks, "Blocks not in use.")
      .def("__repr__", [](const KVCache& c) {
        const CacheConfig& k = c.config();
        return "sparq.KVCache(layers=" + std::to_string(k.layers) + ", kv_heads=" + std::to_string(k.kv_heads) +
               ", head_dim=" + std::to_string(k.head_dim) + ", dtype='" + std::string(to_string(k.dtype)) +
               "', sequences=" + std::to_string(c.sequences().size()) + ")";
      });
}

}  // namespace sparq::py_bind
