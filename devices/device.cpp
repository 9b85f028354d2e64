// The Device interface's optional members: what a device gets when it does not override them.
#include "devices/device.h"

#include <algorithm>

#include "devices/ref/kernel.h"

namespace pyflame_rt {

Expected<std::vector<Value>> Executable::run(std::vector<Value> inputs, const RunContext& ctx) const {
  RETURN_IF_ERROR(ctx.check());
  return run(std::move(inputs));
}

Expected<std::vector<Value>> Executable::run_profiled(std::vector<Value> inputs,
                                                       std::vector<NodeTiming>* timings) const {
  auto start = std::chrono::steady_clock::now();
  auto out = run(std::move(inputs));
  timings->push_back({"whole graph", "Graph",
                      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count()});
  return out;
}

std::vector<std::string> Executable::fallback_nodes() const {
  std::vector<std::string> out;
  for (const NodeKernel& k : node_kernels()) {
    if (k.kernel == "reference") out.push_back(k.op_type + " '" + k.node + "'");
  }
  return out;
}

namespace {

// The dtype of a value as far as the graph knows it (kUndefined when it does not).
DType value_dtype(const Graph& graph, const std::string& name) {
  if (auto w = graph.initializers.find(name); w != graph.initializers.end()) return w->second.dtype();
  const ValueInfo* info = graph.find_value_info(name);
  return info ? info->dtype : DType::kUndefined;
}

}  // namespace

std::string DeviceCapabilities::why_not(const Graph& graph, const Node& node) const {
  int64_t opset = graph.opset(node.domain == "ai.onnx" ? "" : node.domain);
  bool op_ok = false;
  if (any_op) {
    op_ok = KernelRegistry::reference().find(node.domain, node.op_type, opset) != nullptr;
  } else {
    for (const OpSupport& s : ops) {
      if (s.op_type == node.op_type && s.domain == node.domain && (opset == 0 || (opset >= s.since && opset <= s.until))) {
        op_ok = true;
        break;
      }
    }
  }
  if (!op_ok) {
    return "op '" + node.op_type + "'" + (node.domain.empty() ? "" : " of domain '" + node.domain + "'") +
           (opset > 0 ? " (opset " + std::to_string(opset) + ")" : "") + " is not supported";
  }
  if (dtypes.empty()) return "";
  auto check = [&](const std::string& name, const char* role) -> std::string {
    if (name.empty()) return "";
    DType t = value_dtype(graph, name);
    if (t == DType::kUndefined || std::find(dtypes.begin(), dtypes.end(), t) != dtypes.end()) return "";
    return std::string("dtype ") + dtype_onnx_name(t) + " of " + role + " '" + name + "' is not supported";
  };
  for (const auto& in : node.inputs) if (auto why = check(in, "input"); !why.empty()) return why;
  for (const auto& out : node.outputs) if (auto why = check(out, "output"); !why.empty()) return why;
  return "";
}

DeviceClaim Device::claim(const Graph& graph, const std::vector<bool>& taken) const {
  DeviceClaim claim;
  std::vector<size_t> run;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    std::string why = taken[i] ? "taken" : why_not(graph, graph.nodes[i]);
    if (why.empty()) {
      run.push_back(i);
      continue;
    }
    if (!taken[i]) claim.declined[i] = why;
    if (!run.empty()) claim.groups.push_back(std::move(run));
    run.clear();
  }
  if (!run.empty()) claim.groups.push_back(std::move(run));
  return claim;
}

}  // namespace pyflame_rt
