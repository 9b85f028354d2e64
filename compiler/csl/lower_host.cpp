// Movement ops (Reshape, Flatten, Squeeze, Unsqueeze, Dropout, Expand, Transpose, Concat, Slice):
// run.py applies them to the host's copy of the tensor between launches, in numpy. On a real
// system these would be fabric transfers between the producer's and the consumer's tiles; the
// generated program keeps them on the host, which costs a round trip (docs/wse.md says so).
#include "compiler/csl/lowering.h"

namespace pyflame_rt::csl {

Status lower_host(const CslOpSpec& spec, LowerContext& ctx, OpCode& op) {
  const std::string& t = spec.op_type;
  if (spec.inputs.empty()) return invalid_argument("has no inputs");
  auto src = [&](const CslTensor& x) { return x.weight ? "w('" + x.name + "')" : py_tensor(x.name); };
  std::string expr;
  if (t == "Transpose") {
    auto it = spec.ints.find("perm");
    std::string perm;
    if (it != spec.ints.end()) {
      perm = ", (";
      for (size_t i = 0; i < it->second.size(); ++i) perm += (i ? ", " : "") + std::to_string(it->second[i]);
      perm += it->second.size() == 1 ? ",)" : ")";
    }
    expr = "np.transpose(" + src(spec.inputs[0]) + perm + ")";
  } else if (t == "Concat") {
    auto it = spec.ints.find("axis");
    expr = "np.concatenate([";
    for (size_t i = 0; i < spec.inputs.size(); ++i) expr += (i ? ", " : "") + src(spec.inputs[i]);
    expr += "], axis=" + std::to_string(it == spec.ints.end() || it->second.empty() ? 0 : it->second[0]) + ")";
  } else if (t == "Slice") {  // starts/ends/axes/steps: constant inputs (from_mesh_plan) or attributes
    auto list = [&](const char* k) {
      auto it = spec.ints.find(k);
      return it == spec.ints.end() ? std::vector<int64_t>{} : it->second;
    };
    const std::vector<int64_t> starts = list("starts"), ends = list("ends"), steps = list("steps");
    std::vector<int64_t> axes = list("axes");
    const int64_t rank = static_cast<int64_t>(spec.inputs[0].shape.size());
    if (starts.empty() || starts.size() != ends.size()) {
      return not_implemented("Slice needs constant starts and ends of equal length, got ", starts.size(), " and ",
                             ends.size());
    }
    if (axes.empty()) {
      for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    }
    std::vector<std::string> idx(static_cast<size_t>(rank), ":");
    for (size_t i = 0; i < starts.size() && i < axes.size(); ++i) {
      const int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i];
      if (a < 0 || a >= rank) return invalid_argument("Slice axis ", axes[i], " is outside rank ", rank);
      const int64_t step = i < steps.size() ? steps[i] : 1;
      // numpy clamps starts/ends as ONNX does; a huge end (INT64_MAX) is just past the end.
      idx[static_cast<size_t>(a)] = std::to_string(starts[i]) + ":" + std::to_string(ends[i]) + ":" + std::to_string(step);
    }
    std::string sl;
    for (size_t i = 0; i < idx.size(); ++i) sl += (i ? ", " : "") + idx[i];
    expr = "np.asarray(" + src(spec.inputs[0]) + ")[" + sl + "]";
  } else if (t == "Expand") {
    expr = "np.broadcast_to(" + src(spec.inputs[0]) + ", " + py_shape(spec.output.shape) + ")";
  } else {  // Reshape, Flatten, Squeeze, Unsqueeze, Dropout (inference): the same elements
    expr = "np.reshape(" + src(spec.inputs[0]) + ", " + py_shape(spec.output.shape) + ")";
  }
  op.launch.clear();
  op.roles.clear();
  op.host_code = py_tensor(spec.output.name) + " = np.ascontiguousarray(" + expr + ", dtype=np.float32)";
  // Slice reads only its data (starts, ends, ... are in the code); the others all their inputs.
  const size_t reads = t == "Slice" ? 1 : spec.inputs.size();
  for (size_t i = 0; i < reads; ++i) {
    const CslTensor& x = spec.inputs[i];
    if (x.weight) ctx.prog.host_weights.push_back(x.name);
    else op.host_reads.push_back(x.name);
  }
  op.after.push_back({false, "", PeSet{}, 0, "", false, spec.output.name});  // marks the output as produced
  return Status::OK();
}

}  // namespace pyflame_rt::csl
