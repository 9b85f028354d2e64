#include "devices/cpu/half_weights.h"

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include "devices/cpu/native_op.h"
#include "graph/logging.h"

namespace pyflame_rt {
namespace cpu {

namespace {

bool weight_op(const Node& n) {
  if (n.domain.empty()) return n.op_type == "Conv" || n.op_type == "MatMul" || n.op_type == "Gemm";
  return n.domain == "pyflame_rt" && (n.op_type == "FusedConv" || n.op_type == "FusedMatMul");
}

// The half initializer a Cast to float reads, or nullptr.
const Tensor* cast_of_half(const Graph& g, const Node& n) {
  if (!n.domain.empty() || n.op_type != "Cast" || n.inputs.size() != 1 || n.outputs.size() != 1) return nullptr;
  if (n.attr_int("to", 0) != static_cast<int64_t>(DType::kFloat32)) return nullptr;
  auto it = g.initializers.find(n.inputs[0]);
  return it != g.initializers.end() && is_half(it->second.dtype()) ? &it->second : nullptr;
}

std::atomic<uint64_t> bf16_declined{0};

}  // namespace

bool is_half(DType t) { return t == DType::kFloat16 || t == DType::kBFloat16; }

dnnl::memory::data_type dnnl_type(DType t) {
  if (t == DType::kBFloat16) return dnnl::memory::data_type::bf16;
  if (t == DType::kFloat16) return dnnl::memory::data_type::f16;
  return dnnl::memory::data_type::f32;
}

bool native_bf16() {
  // cpu_isa values are bit sets: avx512_core_amx contains avx512_core_bf16's bits, avx2_vnni
  // (0x407, numerically larger) does not, so the test is on bits, not order.
  static const bool ok = [] {
    auto need = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
    return (static_cast<unsigned>(dnnl::get_effective_cpu_isa()) & need) == need;
  }();
  return ok;
}

dnnl::memory::data_type compute_type(DType weights) {
  return weights == DType::kBFloat16 && native_bf16() ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
}

Tensor to_float(const Tensor& t) {
  if (t.dtype() == DType::kFloat32) return t;
  Tensor out(DType::kFloat32, t.dims());
  float* dst = out.data<float>();
  const int64_t n = t.numel();
  if (t.dtype() == DType::kBFloat16) {
    const uint16_t* src = static_cast<const uint16_t*>(t.raw_data());
    for (int64_t i = 0; i < n; ++i) dst[i] = BFloat16::to_float(src[i]);
  } else {
    const uint16_t* src = static_cast<const uint16_t*>(t.raw_data());
    for (int64_t i = 0; i < n; ++i) dst[i] = Float16::to_float(src[i]);
  }
  return out;
}

void absorb_half_weights(Graph& graph) {
  std::map<std::string, size_t> cast_of;  // Cast output -> index of the Cast
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    if (cast_of_half(graph, graph.nodes[i])) cast_of[graph.nodes[i].outputs[0]] = i;
  }
  if (cast_of.empty()) return;
  for (Node& n : graph.nodes) {
    if (!weight_op(n) || n.inputs.size() < 2) continue;
    auto c = cast_of.find(n.inputs[1]);
    if (c == cast_of.end() || n.inputs[0] == n.inputs[1]) continue;
    // The native op decides: one that would not take half weights keeps the Cast (and the
    // node stays a plain float node the reference kernel runs).
    Node rewired = n;
    rewired.inputs[1] = graph.nodes[c->second].inputs[0];
    if (make_native_op(rewired, graph.opset(rewired.domain), graph)) n.inputs[1] = rewired.inputs[1];
  }
  // Casts nobody reads any more (not graph outputs: cast_of_half's outputs feed weights only
  // when constant folding kept them, but a kNone graph keeps every Cast).
  std::set<std::string> read;
  for (const Node& n : graph.nodes) {
    for (const auto& in : n.inputs) read.insert(in);
    for (const auto& kv : n.attributes) {
      if (kv.second.g || !kv.second.graphs.empty()) return;  // subgraphs may read it: keep all
    }
  }
  for (const auto& o : graph.outputs) read.insert(o.name);
  std::vector<Node> kept;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& n = graph.nodes[i];
    bool dead = cast_of.count(n.outputs.empty() ? "" : n.outputs[0]) && !read.count(n.outputs[0]);
    if (!dead) kept.push_back(std::move(n));
  }
  graph.nodes = std::move(kept);
}

bool float_weights_for_reference(const Node& node, const Value& activations, const Value& weights, Value* out) {
  if (!weight_op(node) || !activations.is_tensor() || activations.tensor.dtype() != DType::kFloat32 ||
      !weights.is_tensor() || !is_half(weights.tensor.dtype())) {
    return false;
  }
  *out = Value(to_float(weights.tensor));
  return true;
}

void note_bf16_declined(const Node& node, const std::string& impl) {
  bf16_declined.fetch_add(1);
  static std::mutex mu;
  static std::set<std::string> seen;
  std::lock_guard<std::mutex> lock(mu);
  if (seen.insert(node.name).second) {
    log_at(LogSeverity::kWarning, LogScope{}, "node '", node.name, "' (", node.op_type,
           "): oneDNN has only a reference bf16 kernel here (", impl, "); it computes in f32 with its bf16 "
           "weights converted to f32 packed weights");
  }
}

std::string weights_report_json(const Graph& graph) {
  std::map<std::string, uint64_t> by_dtype;
  uint64_t total = 0;
  for (const auto& kv : graph.initializers) {
    if (graph.find_input(kv.first)) continue;
    by_dtype[dtype_name(kv.second.dtype())] += kv.second.nbytes();
    total += kv.second.nbytes();
  }
  std::map<DType, int> half_nodes;
  for (const Node& n : graph.nodes) {
    if (!weight_op(n) || n.inputs.size() < 2) continue;
    auto it = graph.initializers.find(n.inputs[1]);
    if (it != graph.initializers.end() && is_half(it->second.dtype())) ++half_nodes[it->second.dtype()];
  }
  std::ostringstream os;
  os << "{\"initializer_bytes\": " << total << ", \"initializer_bytes_by_dtype\": {";
  bool first = true;
  for (const auto& kv : by_dtype) {
    os << (first ? "" : ", ") << "\"" << kv.first << "\": " << kv.second;
    first = false;
  }
  int bf16 = half_nodes[DType::kBFloat16], fp16 = half_nodes[DType::kFloat16];
  bool halved = fp16 == 0 && (bf16 == 0 || native_bf16());
  os << "}, \"half_weight_nodes\": {\"bfloat16\": " << bf16 << ", \"float16\": " << fp16 << "}"
     << ", \"half_compute\": {\"bfloat16\": \"" << (native_bf16() ? "bf16" : "f32") << "\", \"float16\": \"f32\"}"
     << ", \"bf16_kernels_declined\": " << bf16_declined.load()
     << ", \"packed_weights_halved\": " << (bf16 + fp16 == 0 ? "null" : halved ? "true" : "false") << ", \"note\": \"";
  if (bf16 + fp16 == 0) {
    os << "no half-precision weights reach a native convolution or matmul";
  } else if (halved) {
    os << "bf16 weights run on oneDNN's bf16 kernels (bf16 source and weights, f32 accumulation and output); "
          "stored and packed weights are bf16 (depthwise convolutions compute in f32: their few weights are "
          "packed f32)";
  } else {
    os << "stored weights are half; ";
    if (fp16) os << "fp16 weights are converted once to f32 packed weights (oneDNN 2.6 has no f16 CPU kernels); ";
    if (bf16 && !native_bf16()) {
      os << "this CPU (oneDNN ISA 0x" << std::hex << static_cast<unsigned>(dnnl::get_effective_cpu_isa()) << std::dec
         << ") has no native bf16 math: bf16 weights are converted once to f32 packed weights; ";
    }
    os << "packed weights are f32, so the weights in memory are not halved on this CPU";
  }
  os << "\"}";
  return os.str();
}

}  // namespace cpu
}  // namespace pyflame_rt
