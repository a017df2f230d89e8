// sparq.Dense, sparq.SparQ, sparq.Profile, sparq.decode and sparq.decode_causal.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "bindings.hpp"
#include "sparq/decode.hpp"
#include "sparq/error.hpp"
#include "sparq/method.hpp"
#include "sparq/profile.hpp"

namespace sparq::py_bind {
namespace {

[[noreturn]] void fail(ErrorCode code, const std::string& message) {
  throw Error(code, message);
}

void check_sparq(const SparQ& m) {
  if (!std::isfinite(m.ratio) || m.ratio < 1.0)
    fail(ErrorCode::invalid_argument,
         "ratio=" + std::to_string(m.ratio) + " is invalid: the compression ratio must be a finite number >= 1");
  if (m.r && *m.r == 0) fail(ErrorCode::invalid_argument, "r=0 is invalid: r must be in [1, head_dim] (or None)");
  if (m.k && *m.k == 0)
    fail(ErrorCode::invalid_argument, "k=0: the number of fetched positions must be at least 1 (or None)");
}

GqaSelection parse_gqa_arg(const std::string& s) {
  const auto g = parse_gqa_selection(s);
  if (!g) fail(ErrorCode::invalid_argument, "gqa='" + s + "' is unknown: must be 'shared' or 'per-head'");
  return *g;
}

Method method_arg(py::handle obj) {
  if (py::isinstance<Dense>(obj)) return Dense{};
  if (py::isinstance<SparQ>(obj)) return obj.cast<SparQ>();
  fail(ErrorCode::invalid_argument, "method is a " + std::string(py::str(obj.get_type().attr("__name__"))) +
                                        ": must be sparq.Dense() or sparq.SparQ(...)");
}

py::dict stats_dict(const PhaseStats& s) {
  py::dict d;
  d["bytes_read"] = s.bytes_read;
  d["flops"] = s.flops;
  d["seconds"] = s.seconds;
  d["calls"] = s.calls;
  return d;
}

// Call-wide options shared by decode and decode_causal.
struct CallArgs {
  DecodeOptions options;
  std::size_t head_dim = 0;
};

CallArgs call_args(const KVCache& cache, std::size_t kv_head_begin, std::optional<std::size_t> kv_head_end, float scale,
                   Profile* profile) {
  CallArgs a;
  a.options.scale = scale;
  a.options.kv_head_begin = kv_head_begin;
  a.options.kv_head_end = kv_head_end ? *kv_head_end : ~std::size_t{0};
  a.options.profile = profile;
  a.head_dim = cache.config().head_dim;
  return a;
}

// A new output like q: same kind (numpy or torch) and float type, float32 for float64.
py::object new_like(py::handle q, const Array& qa) {
  if (py::hasattr(q, "new_empty") && !py::isinstance<py::array>(q)) return q.attr("new_empty")(q.attr("shape"));
  const char* dt = qa.elem == Elem::f16 ? "float16" : "float32";
  return py::module_::import("numpy").attr("empty")(py::cast(qa.shape), dt);
}

// Optional [rows..., q_heads] float32 output (lse, alpha).
std::optional<Array> per_head_out(py::handle obj, const std::string& name, std::size_t expect) {
  if (obj.is_none()) return std::nullopt;
  Array a = output_array(obj, name);
  if (a.elem != Elem::f32) fail(ErrorCode::invalid_argument, name + " must be float32, not " + to_string(a.elem));
  if (a.size() != expect)
    fail(ErrorCode::shape_mismatch, name + " has shape " + a.shape_string() + " (" + std::to_string(a.size()) +
                                        " elements), expected " + std::to_string(expect) + " (batch x q_heads)");
  return a;
}

py::object decode_py(const KVCache& cache, std::size_t layer, py::handle method, py::handle seqs, py::handle q,
                     py::object out, py::handle lse, py::handle alpha, py::object selected, std::size_t kv_head_begin,
                     std::optional<std::size_t> kv_head_end, float scale, Profile* profile) {
  const Method m = method_arg(method);
  const CallArgs c = call_args(cache, kv_head_begin, kv_head_end, scale, profile);
  // One sequence: q [q_heads, d]; a batch: seqs a sequence of ids, q [batch, q_heads, d].
  const bool single = py::isinstance<py::int_>(seqs);
  std::vector<SeqId> ids;
  if (single)
    ids.push_back(seqs.cast<SeqId>());
  else
    for (py::handle s : seqs) ids.push_back(s.cast<SeqId>());
  const Array qa = input_array(q, "q");
  const std::size_t want_nd = single ? 2 : 3;
  if (qa.ndim() != want_nd || qa.shape.back() != c.head_dim || (!single && qa.shape[0] != ids.size()))
    fail(ErrorCode::shape_mismatch,
         "q has shape " + qa.shape_string() + ": must be " +
             (single ? "[q_heads, head_dim=" + std::to_string(c.head_dim) + "] for one sequence"
                     : "[batch=len(seqs)=" + std::to_string(ids.size()) +
                           ", q_heads, head_dim=" + std::to_string(c.head_dim) + "]"));
  const std::size_t n_q = qa.shape[want_nd - 2], per_item = n_q * c.head_dim;
  if (out.is_none()) out = new_like(q, qa);
  const Array oa = output_array(out, "out");
  if (oa.shape != qa.shape)
    fail(ErrorCode::shape_mismatch,
         "out has shape " + oa.shape_string() + ", q has " + qa.shape_string() + ": they must be equal");
  const auto la = per_head_out(lse, "lse", ids.size() * n_q), aa = per_head_out(alpha, "alpha", ids.size() * n_q);
  if (!selected.is_none() && !py::isinstance<py::list>(selected))
    fail(ErrorCode::invalid_argument, "selected must be a list (filled with one list per sequence) or None");

  std::vector<float> q_scratch;
  const std::span<const float> qf = as_f32(qa, q_scratch);
  F32Out of(oa);
  std::vector<std::vector<std::vector<std::uint32_t>>> sel(selected.is_none() ? 0 : ids.size());
  std::vector<DecodeItem> batch(ids.size());
  for (std::size_t b = 0; b < ids.size(); ++b) {
    DecodeItem& it = batch[b];
    it.seq = ids[b];
    it.q = qf.subspan(b * per_item, per_item);
    it.out = of.span().subspan(b * per_item, per_item);
    if (la) it.lse = {static_cast<float*>(la->data) + b * n_q, n_q};
    if (aa) it.alpha = {static_cast<float*>(aa->data) + b * n_q, n_q};
    if (!sel.empty()) it.selected = &sel[b];
  }
  {
    const py::gil_scoped_release nogil;
    decode(cache, layer, m, batch, c.options);
    of.finish();
  }
  if (!selected.is_none()) {
    py::list dst = selected.cast<py::list>();
    for (const auto& heads : sel) {
      py::list per_head;
      for (const auto& positions : heads)
        per_head.append(py::array_t<std::uint32_t>(py::ssize_t(positions.size()), positions.data()));
      dst.append(per_head);
    }
  }
  return out;
}

py::object decode_causal_py(const KVCache& cache, std::size_t layer, SeqId seq, py::handle q, py::object out,
                            std::size_t kv_head_begin, std::optional<std::size_t> kv_head_end, float scale,
                            Profile* profile) {
  const CallArgs c = call_args(cache, kv_head_begin, kv_head_end, scale, profile);
  const Array qa = input_array(q, "q");
  if (qa.ndim() != 3 || qa.shape[2] != c.head_dim)
    fail(ErrorCode::shape_mismatch, "q has shape " + qa.shape_string() +
                                        ": must be [n_new, q_heads, head_dim=" + std::to_string(c.head_dim) + "]");
  if (out.is_none()) out = new_like(q, qa);
  const Array oa = output_array(out, "out");
  if (oa.shape != qa.shape)
    fail(ErrorCode::shape_mismatch,
         "out has shape " + oa.shape_string() + ", q has " + qa.shape_string() + ": they must be equal");
  std::vector<float> q_scratch;
  const std::span<const float> qf = as_f32(qa, q_scratch);
  F32Out of(oa);
  {
    const py::gil_scoped_release nogil;
    decode_causal(cache, layer, seq, qf, of.span(), qa.shape[0], c.options);
    of.finish();
  }
  return out;
}

}  // namespace

void bind_methods(py::module_& m) {
  py::class_<Dense>(m, "Dense", "Exact dense attention over every cached position.")
      .def(py::init<>())
      .def("__repr__", [](const Dense&) { return "sparq.Dense()"; });

  py::class_<SparQ>(m, "SparQ", R"(SparQ Attention (DESIGN §1) with compression ratio `ratio`.

r = clamp(round(d / ratio), 1, d) query components and k = max(1, round(S / (2 ratio)))
positions (recomputed from the current S at each call), window l = k // 4, reallocation on
for MHA and off for GQA; each explicitly given value overrides its derived one. `gqa` is
'shared' (one selection per KV head) or 'per-head'.)")
      .def(py::init([](double ratio, std::optional<std::size_t> r, std::optional<std::size_t> k,
                       std::optional<std::size_t> window, std::optional<bool> reallocation, const std::string& gqa) {
             SparQ s = SparQ::for_ratio(ratio);
             s.r = r;
             s.k = k;
             s.window = window;
             s.reallocation = reallocation;
             s.gqa = parse_gqa_arg(gqa);
             check_sparq(s);
             return s;
           }),
           py::arg("ratio") = 8.0, py::kw_only(), py::arg("r") = py::none(), py::arg("k") = py::none(),
           py::arg("window") = py::none(), py::arg("reallocation") = py::none(), py::arg("gqa") = "shared")
      .def_readonly("ratio", &SparQ::ratio)
      .def_readonly("r", &SparQ::r)
      .def_readonly("k", &SparQ::k)
      .def_readonly("window", &SparQ::window)
      .def_readonly("reallocation", &SparQ::reallocation)
      .def_property_readonly("gqa", [](const SparQ& s) { return std::string(to_string(s.gqa)); })
      .def(
          "resolve",
          [](const SparQ& s, std::size_t head_dim, std::size_t seq_len, std::size_t group) {
            const SparQResolved r = s.resolve(head_dim, seq_len, group);
            py::dict d;
            d["r"] = r.r;
            d["k"] = r.k;
            d["window"] = r.window;
            d["reallocation"] = r.reallocation;
            d["gqa"] = std::string(to_string(r.gqa));
            return d;
          },
          py::arg("head_dim"), py::arg("seq_len"), py::arg("group") = 1,
          "The parameters a call with this head_dim, sequence length and GQA group size uses (a dict).")
      .def("__repr__", [](const SparQ& s) {
        auto opt = [](const std::optional<std::size_t>& v) { return v ? std::to_string(*v) : std::string("None"); };
        return "sparq.SparQ(" + std::string(py::repr(py::float_(s.ratio))) + ", r=" + opt(s.r) + ", k=" + opt(s.k) +
               ", window=" + opt(s.window) +
               ", reallocation=" + (s.reallocation ? (*s.reallocation ? "True" : "False") : "None") + ", gqa='" +
               std::string(to_string(s.gqa)) + "')";
      });

  py::class_<Profile>(m, "Profile", R"(What decode calls moved and how long each phase took,
accumulated over every call it is given to. Bytes are counted from the cache lines the kernels
touched.)")
      .def(py::init<>())
      .def_property_readonly("isa", [](const Profile& p) { return std::string(to_string(p.isa)); })
      .def_readonly("threads", &Profile::threads)
      .def_property_readonly(
          "phases",
          [](const Profile& p) {
            py::dict d;
            for (std::size_t i = 0; i < kPhaseCount; ++i)
              d[py::str(std::string(to_string(Phase(i))))] = stats_dict(p.phases[i]);
            return d;
          },
          "Per phase (dense, stage1, topk, stage2, reallocation): bytes_read, flops, seconds, calls.")
      .def_property_readonly(
          "total", [](const Profile& p) { return stats_dict(p.total()); }, "All phases together.")
      .def("reset", &Profile::reset);
}

void bind_decode(py::module_& m) {
  m.def("decode", &decode_py, py::arg("cache"), py::arg("layer"), py::arg("method"), py::arg("seqs"), py::arg("q"),
        py::arg("out") = py::none(), py::kw_only(), py::arg("lse") = py::none(), py::arg("alpha") = py::none(),
        py::arg("selected") = py::none(), py::arg("kv_head_begin") = 0, py::arg("kv_head_end") = py::none(),
        py::arg("scale") = 0.0f, py::arg("profile") = py::none(),
        R"(One decode step for one sequence or a batch.

seqs is a sequence id with q [q_heads, head_dim], or a list of ids with q [batch, q_heads,
head_dim] (float32, float16, bfloat16 or float64). Query head h reads KV head
kv_head_begin + h // (q_heads / n_kv) where n_kv = kv_head_end - kv_head_begin (default: all).
Returns `out` (written in place when given; else a new array of q's kind and type). Optional
outputs, written in place: lse and alpha, float32 [batch, q_heads] (log-sum-exp of the attended
scaled scores; SparQ's estimated score mass fetched, 1 for dense); selected, a list that gets
one list per sequence of one uint32 array per query head with the positions SparQ fetched
(ascending; empty lists for Dense).
Validates everything before any output is written; releases the GIL while decoding.)");
  m.def("decode_causal", &decode_causal_py, py::arg("cache"), py::arg("layer"), py::arg("seq"), py::arg("q"),
        py::arg("out") = py::none(), py::kw_only(), py::arg("kv_head_begin") = 0, py::arg("kv_head_end") = py::none(),
        py::arg("scale") = 0.0f, py::arg("profile") = py::none(),
        R"(Dense causal attention of the last n_new positions of seq (already appended): q and out
are [n_new, q_heads, head_dim]; query i attends to positions [0, S - n_new + i]. For prefill.
Releases the GIL.)");
}

}  // namespace sparq::py_bind
