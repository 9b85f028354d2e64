#include "session/plan_weights.h"

#include <set>
#include <utility>

#include "devices/weight_stand_in.h"

namespace pyflame_rt {

namespace {

// The kernels whose blob replaces input 1 (cpu/conv_op.cpp, cpu/matmul_op.cpp).
bool blob_replaces_input_1(const Node& n) {
  if (n.domain.empty()) return n.op_type == "Conv" || n.op_type == "MatMul" || n.op_type == "Gemm";
  return n.domain == "pyflame_rt" && (n.op_type == "FusedConv" || n.op_type == "FusedMatMul");
}

bool has_subgraphs(const Graph& g) {
  for (const Node& n : g.nodes) {
    for (const auto& [name, a] : n.attributes) {
      if (a.kind == AttrKind::kGraph || a.kind == AttrKind::kGraphs) return true;
    }
  }
  return false;
}

// Ops whose output shape can follow the values of an input (their shape-giving inputs are
// those after the first, or all of them for the ops listed without one). Such an input that is
// an initializer is a constant: the shape is static again.
bool shape_from_values(const Node& n, const Graph& g) {
  static const std::set<std::string> from_later_inputs = {
      "Reshape", "Expand", "Tile", "Slice", "Pad", "Resize", "Upsample", "Squeeze", "Unsqueeze", "Split",
      "TopK", "OneHot", "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
      "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "DFT", "STFT", "CenterCropPad", "Col2Im",
      "ConstantOfShape", "Range", "MelWeightMatrix"};
  static const std::set<std::string> always = {"NonZero", "Unique", "Compress", "NonMaxSuppression", "StringSplit",
                                               "Loop", "If", "Scan", "SequenceConstruct", "SplitToSequence"};
  if (!n.domain.empty() && n.domain != "ai.onnx" && n.domain != "pyflame_rt" && n.domain != "com.microsoft") {
    return true;  // a custom op: its shapes are its own business
  }
  if (always.count(n.op_type)) return true;
  if (!from_later_inputs.count(n.op_type)) return false;
  // ConstantOfShape, Range and MelWeightMatrix take their shape from input 0 as well.
  size_t first = n.op_type == "ConstantOfShape" || n.op_type == "Range" || n.op_type == "MelWeightMatrix" ? 0 : 1;
  for (size_t k = first; k < n.inputs.size(); ++k) {
    if (!n.inputs[k].empty() && !g.initializers.count(n.inputs[k])) return true;
  }
  return false;
}

// True when every value of `g` has one shape whatever the inputs' values: its inputs are
// fully known and no node makes a shape from values. Then each kernel sees exactly the
// shape its blob was packed for (the plan was run once on zeros of those shapes).
bool shapes_static(const Graph& g) {
  for (const auto& v : g.inputs) {
    if (!v.shape.fully_known()) return false;
  }
  for (const Node& n : g.nodes) {
    if (shape_from_values(n, g)) return false;
  }
  return true;
}

// The initializers of partition `g` that only packed kernels read.
std::set<std::string> replaced_by_blobs(const Graph& g, const PackedWeights* packed) {
  std::set<std::string> out;
  if (!packed || !packed->valid_here() || has_subgraphs(g) || !shapes_static(g)) return out;
  std::set<std::string> with_blob;
  for (const auto& b : packed->blobs) with_blob.insert(b.node);
  std::set<std::string> refused;
  for (const Node& n : g.nodes) {
    const std::string node_name = n.name.empty() ? (n.outputs.empty() ? "" : n.outputs[0]) : n.name;
    bool packed_reader = blob_replaces_input_1(n) && with_blob.count(node_name) > 0;
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      const std::string& in = n.inputs[k];
      if (!g.initializers.count(in)) continue;
      if (k == 1 && packed_reader) out.insert(in);
      else refused.insert(in);
    }
  }
  for (const auto& name : refused) out.erase(name);
  for (const auto& v : g.inputs) out.erase(v.name);
  for (const auto& v : g.outputs) out.erase(v.name);
  for (const auto& name : g.overridable_initializers) out.erase(name);
  return out;
}

}  // namespace

void leave_out_packed_weights(const CompiledModel& model, PlanContents* plan, bool stand_ins_only) {
  const auto& parts = model.partitions();
  std::vector<std::set<std::string>> replaced(parts.size());
  for (size_t i = 0; i < parts.size() && !stand_ins_only; ++i) {
    auto it = plan->packed.find(i);
    replaced[i] = replaced_by_blobs(parts[i].graph, it == plan->packed.end() ? nullptr : &it->second);
  }
  std::vector<ExternalTensor> kept;
  for (auto& w : plan->weights) {
    bool out = is_weight_stand_in(w.tensor) ||
               (w.partition < replaced.size() && replaced[w.partition].count(w.name) > 0);
    (out ? plan->left_out : kept).push_back(std::move(w));
  }
  plan->weights = std::move(kept);
}

}  // namespace pyflame_rt
