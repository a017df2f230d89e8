// Decode traces on disk: manifest.json plus q/k/v .npy per layer (see trace.hpp and
// docs/eval-traces.md).
#include "sparq/tools/eval/trace.hpp"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "io/atomic_file.hpp"
#include "sparq/error.hpp"
#include "sparq/tools/npy.hpp"

namespace sparq::eval {

namespace {

using json = nlohmann::json;

std::string str(std::size_t v) {
  return std::to_string(v);
}

[[noreturn]] void fail(ErrorCode code, const std::string& message) {
  throw Error(code, message);
}

// A non-negative integer field of the manifest.
std::size_t count_field(const json& j, const char* key, const std::string& file) {
  if (!j.contains(key)) fail(ErrorCode::bad_file, file + ": missing field \"" + key + "\"");
  const json& v = j.at(key);
  if (!v.is_number_unsigned())
    fail(ErrorCode::bad_file, file + ": field \"" + key + "\" must be a non-negative integer, got " + v.dump());
  return v.get<std::size_t>();
}

}  // namespace

double TraceManifest::softmax_scale() const {
  return scale ? *scale : 1.0 / std::sqrt(double(shape.head_dim));
}

void TraceManifest::validate() const {
  shape.validate();
  if (positions == 0) fail(ErrorCode::empty_sequence, "positions=0: a trace needs at least one position");
  if (prefill >= positions)
    fail(ErrorCode::invalid_argument, "prefill=" + str(prefill) + " with positions=" + str(positions) +
                                          ": prefill must be in [0, positions) so that there is a decode step");
  if (scale && !(std::isfinite(*scale) && *scale > 0))
    fail(ErrorCode::invalid_argument, "scale=" + std::to_string(*scale) + ": the softmax scale must be finite and > 0");
  if (!files.empty() && files.size() != shape.layers)
    fail(ErrorCode::invalid_argument,
         "files lists " + str(files.size()) + " layers but layers=" + str(shape.layers) + ": one entry per layer");
}

std::string trace_file(char which, std::size_t layer) {
  return "layer" + str(layer) + "_" + which + ".npy";
}

LayerFiles TraceManifest::layer_files(std::size_t layer) const {
  if (layer < files.size()) return files[layer];
  return {trace_file('q', layer), trace_file('k', layer), trace_file('v', layer)};
}

TraceManifest read_trace_manifest(const std::filesystem::path& dir) {
  const std::filesystem::path path = dir / kManifestFile;
  const std::string file = path.string();
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    fail(ErrorCode::io_error, dir.string() + ": not a directory (a trace is a directory with " + kManifestFile + ")");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::io_error, file + ": cannot open (missing manifest: is this a sparq trace directory?)");
  std::ostringstream text;
  text << in.rdbuf();
  json j;
  try {
    j = json::parse(text.str());
  } catch (const json::exception& e) {
    fail(ErrorCode::bad_file, file + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) fail(ErrorCode::bad_file, file + ": must hold a JSON object");
  if (j.value("format", std::string()) != kTraceFormat)
    fail(ErrorCode::bad_file, file + ": field \"format\" must be \"" + kTraceFormat + "\"");
  if (!j.contains("version") || !j["version"].is_number_integer() || j["version"].get<int>() != kTraceVersion)
    fail(ErrorCode::bad_file, file + ": field \"version\" must be " + std::to_string(kTraceVersion) +
                                  " (this build reads version " + std::to_string(kTraceVersion) + ")");
  if (j.contains("dtype") && j["dtype"] != "float32")
    fail(ErrorCode::bad_file, file + ": field \"dtype\" must be \"float32\", got " + j["dtype"].dump());

  TraceManifest m;
  m.shape.layers = count_field(j, "layers", file);
  m.shape.q_heads = count_field(j, "q_heads", file);
  m.shape.kv_heads = count_field(j, "kv_heads", file);
  m.shape.head_dim = count_field(j, "head_dim", file);
  m.positions = count_field(j, "positions", file);
  m.prefill = j.contains("prefill") ? count_field(j, "prefill", file) : 0;
  for (const char* key : {"source", "producer"})
    if (j.contains(key) && m.source.empty()) {
      if (!j[key].is_string()) fail(ErrorCode::bad_file, file + ": field \"" + key + "\" must be a string");
      m.source = j[key].get<std::string>();
    }
  if (j.contains("causal") && j["causal"] != true)
    fail(ErrorCode::bad_file, file + ": field \"causal\" must be true (each query attends to positions [0, t])");
  if (j.contains("scale") && !j["scale"].is_null()) {
    if (!j["scale"].is_number()) fail(ErrorCode::bad_file, file + ": field \"scale\" must be a number");
    m.scale = j["scale"].get<double>();
  }
  if (j.contains("rope") && !j["rope"].is_null()) {  // informational
    const json& r = j["rope"];
    if (!r.is_object()) fail(ErrorCode::bad_file, file + ": field \"rope\" must be an object");
    RopeInfo info;
    for (const char* key : {"base", "theta"})
      if (r.contains(key) && r[key].is_number()) info.base = r[key].get<double>();
    if (r.contains("pairs") && r["pairs"].is_string()) info.pairs = r["pairs"].get<std::string>();
    m.rope = info;
  }
  if (j.contains("files")) {
    const json& f = j["files"];
    if (!f.is_array() || f.size() != m.shape.layers)
      fail(ErrorCode::bad_file, file + ": field \"files\" must be an array of " + str(m.shape.layers) +
                                    " {\"q\", \"k\", \"v\"} objects, one per layer");
    for (std::size_t l = 0; l < f.size(); ++l) {
      LayerFiles names;
      for (auto [key, into] : {std::pair{"q", &names.q}, std::pair{"k", &names.k}, std::pair{"v", &names.v}}) {
        if (!f[l].is_object() || !f[l].contains(key) || !f[l][key].is_string())
          fail(ErrorCode::bad_file, file + ": files[" + str(l) + "] needs a string \"" + key + "\"");
        *into = f[l][key].get<std::string>();
        const std::filesystem::path rel(*into);
        if (into->empty() || rel.is_absolute() || *rel.begin() == "..")
          fail(ErrorCode::bad_file, file + ": files[" + str(l) + "]." + key + " = \"" + *into +
                                        "\" must be a file name inside the trace directory");
      }
      m.files.push_back(std::move(names));
    }
  }
  try {
    m.validate();
  } catch (const Error& e) {
    fail(e.code(), file + ": " + e.what());
  }
  return m;
}

TraceLayer read_trace_layer(const std::filesystem::path& dir, const TraceManifest& manifest, std::size_t layer) {
  if (layer >= manifest.shape.layers)
    fail(ErrorCode::invalid_argument,
         "layer=" + str(layer) + " is out of range: the trace has layers [0, " + str(manifest.shape.layers) + ")");
  TraceLayer t;
  t.layer = layer;
  t.positions = manifest.positions;
  t.q_heads = manifest.shape.q_heads;
  t.kv_heads = manifest.shape.kv_heads;
  t.head_dim = manifest.shape.head_dim;
  const LayerFiles names = manifest.layer_files(layer);
  auto load = [&](char which, std::size_t heads, std::vector<float>& into) {
    const std::string& name = which == 'q' ? names.q : which == 'k' ? names.k : names.v;
    const std::filesystem::path path = dir / name;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
      fail(ErrorCode::io_error, path.string() + ": missing (the manifest declares " + str(manifest.shape.layers) +
                                    " layers, so layer " + str(layer) + "'s " + which + " array " + name +
                                    " must exist)");
    NpyArray a = read_npy(path);
    const std::vector<std::size_t> want = {t.positions, heads, t.head_dim};
    if (a.shape != want)
      fail(ErrorCode::shape_mismatch, path.string() + ": shape " + shape_to_string(a.shape) + " disagrees with " +
                                          kManifestFile + ", which implies " + shape_to_string(want) + " [positions, " +
                                          (which == 'q' ? "q_heads" : "kv_heads") + ", head_dim]");
    for (std::size_t i = 0; i < a.data.size(); ++i)
      if (!std::isfinite(a.data[i])) {
        const std::size_t per_pos = heads * t.head_dim;
        fail(ErrorCode::non_finite_input, path.string() + ": element [" + str(i / per_pos) + ", " +
                                              str(i % per_pos / t.head_dim) + ", " + str(i % t.head_dim) + "] is " +
                                              (std::isnan(a.data[i]) ? "NaN" : "Inf") +
                                              ": trace values must be finite");
      }
    into = std::move(a.data);
  };
  load('q', t.q_heads, t.q);
  load('k', t.kv_heads, t.k);
  load('v', t.kv_heads, t.v);
  return t;
}

void write_trace_manifest(const std::filesystem::path& dir, const TraceManifest& manifest) {
  manifest.validate();
  nlohmann::ordered_json j;
  j["format"] = kTraceFormat;
  j["version"] = kTraceVersion;
  j["source"] = manifest.source;
  j["layers"] = manifest.shape.layers;
  j["q_heads"] = manifest.shape.q_heads;
  j["kv_heads"] = manifest.shape.kv_heads;
  j["head_dim"] = manifest.shape.head_dim;
  j["positions"] = manifest.positions;
  j["prefill"] = manifest.prefill;
  j["causal"] = true;
  j["dtype"] = "float32";
  j["scale"] = manifest.softmax_scale();
  if (manifest.rope) j["rope"] = {{"base", manifest.rope->base}, {"pairs", manifest.rope->pairs}, {"applied", true}};
  nlohmann::ordered_json files = nlohmann::ordered_json::array();
  for (std::size_t l = 0; l < manifest.shape.layers; ++l) {
    const LayerFiles f = manifest.layer_files(l);
    files.push_back({{"q", f.q}, {"k", f.k}, {"v", f.v}});
  }
  j["files"] = files;
  const std::string text = j.dump(2) + "\n";
  io::write_file_atomically(dir / kManifestFile, std::as_bytes(std::span(text.data(), text.size())));
}

void write_trace_layer(const std::filesystem::path& dir, const TraceManifest& manifest, const TraceLayer& layer) {
  const std::size_t n = manifest.positions, d = manifest.shape.head_dim;
  if (layer.layer >= manifest.shape.layers)
    fail(ErrorCode::invalid_argument,
         "layer=" + str(layer.layer) + " is out of range [0, " + str(manifest.shape.layers) + ")");
  const LayerFiles names = manifest.layer_files(layer.layer);
  auto write = [&](char which, std::size_t heads, const std::vector<float>& data) {
    const std::string& name = which == 'q' ? names.q : which == 'k' ? names.k : names.v;
    const std::size_t shape[] = {n, heads, d};
    if (data.size() != n * heads * d)
      fail(ErrorCode::shape_mismatch,
           name + ": " + str(data.size()) + " floats, expected " + shape_to_string(shape) + " = " + str(n * heads * d));
    write_npy(dir / name, data, shape);
  };
  write('q', manifest.shape.q_heads, layer.q);
  write('k', manifest.shape.kv_heads, layer.k);
  write('v', manifest.shape.kv_heads, layer.v);
}

TraceWriter::TraceWriter(std::filesystem::path dir, TraceManifest manifest)
    : dir_(std::move(dir)), manifest_(std::move(manifest)) {
  manifest_.shape.validate();
  layers_.resize(manifest_.shape.layers);
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    layers_[l].layer = l;
    layers_[l].q_heads = manifest_.shape.q_heads;
    layers_[l].kv_heads = manifest_.shape.kv_heads;
    layers_[l].head_dim = manifest_.shape.head_dim;
  }
}

void TraceWriter::append(std::size_t layer, std::span<const float> q, std::span<const float> k,
                         std::span<const float> v, std::size_t n) {
  if (layer >= layers_.size())
    fail(ErrorCode::invalid_argument,
         "TraceWriter::append: layer=" + str(layer) + " is out of range [0, " + str(layers_.size()) + ")");
  TraceLayer& t = layers_[layer];
  const std::size_t nq = n * t.q_heads * t.head_dim, nkv = n * t.kv_heads * t.head_dim;
  auto check = [&](std::span<const float> x, std::size_t want, const char* name, const char* rule) {
    if (x.size() != want)
      fail(ErrorCode::shape_mismatch, std::string("TraceWriter::append: ") + name + " has " + str(x.size()) +
                                          " floats, expected " + rule + " = " + str(want));
    for (float f : x)
      if (!std::isfinite(f))
        fail(ErrorCode::non_finite_input, std::string("TraceWriter::append: ") + name + " of layer " + str(layer) +
                                              " holds NaN or Inf: trace values must be finite");
  };
  check(q, nq, "q", "n*q_heads*head_dim");
  check(k, nkv, "k", "n*kv_heads*head_dim");
  check(v, nkv, "v", "n*kv_heads*head_dim");
  t.q.insert(t.q.end(), q.begin(), q.end());
  t.k.insert(t.k.end(), k.begin(), k.end());
  t.v.insert(t.v.end(), v.begin(), v.end());
  t.positions += n;
}

std::size_t TraceWriter::positions(std::size_t layer) const {
  return layer < layers_.size() ? layers_[layer].positions : 0;
}

void TraceWriter::finish(std::size_t prefill) {
  const std::size_t n = layers_.front().positions;
  for (const TraceLayer& t : layers_)
    if (t.positions != n)
      fail(ErrorCode::shape_mismatch, "TraceWriter::finish: layer " + str(t.layer) + " has " + str(t.positions) +
                                          " positions but layer 0 has " + str(n) + ": every layer needs the same");
  manifest_.positions = n;
  manifest_.prefill = prefill;
  manifest_.validate();
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) fail(ErrorCode::io_error, dir_.string() + ": cannot create the trace directory: " + ec.message());
  for (const TraceLayer& t : layers_) write_trace_layer(dir_, manifest_, t);
  write_trace_manifest(dir_, manifest_);  // last: its presence marks a complete trace
}

}  // namespace sparq::eval
