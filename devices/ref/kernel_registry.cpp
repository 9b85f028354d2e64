#include <algorithm>

#include "devices/ref/kernel.h"
#include "devices/ref/kernel_groups.h"
#include "devices/custom_ops.h"

namespace pyflame_rt {

std::string canonical_domain(const std::string& domain) {
  return domain == "ai.onnx" ? std::string() : domain;
}

Status KernelContext::require_input(size_t i) const {
  if (input(i)) return Status::OK();
  return error(StatusCode::kInvalidArgument, "input ", i, " is required but ",
               i < node_.inputs.size() && !node_.inputs[i].empty() ? "is not a tensor" : "was not given");
}

Status KernelContext::require_inputs(size_t min_count) const {
  for (size_t i = 0; i < min_count; ++i) RETURN_IF_ERROR(require_input(i));
  return Status::OK();
}

void KernelRegistry::add(KernelDef def, KernelFn fn) {
  def.domain = canonical_domain(def.domain);
  kernels_[{def.domain, def.op_type}].push_back({std::move(def), fn});
}

void KernelRegistry::add(const std::string& domain, const std::string& op_type, KernelFn fn) {
  add(KernelDef{domain, op_type}, fn);
}

KernelFn KernelRegistry::find(const std::string& domain, const std::string& op_type, int64_t opset,
                              DType dtype) const {
  auto it = kernels_.find({canonical_domain(domain), op_type});
  if (it == kernels_.end()) {
    // Kernels users registered at run time (devices/custom_ops.h) are found like ours.
    return is_custom_op(domain, op_type) ? custom_op_dispatch_kernel() : nullptr;
  }
  for (auto e = it->second.rbegin(); e != it->second.rend(); ++e) {
    const KernelDef& d = e->def;
    if (opset > 0 && (opset < d.since || opset > d.until)) continue;
    if (dtype != DType::kUndefined && !d.dtypes.empty() &&
        std::find(d.dtypes.begin(), d.dtypes.end(), dtype) == d.dtypes.end()) {
      continue;
    }
    return e->fn;
  }
  return nullptr;
}

std::vector<std::string> KernelRegistry::op_names() const {
  std::vector<std::string> names;
  for (const auto& kv : kernels_) {
    names.push_back(kv.first.first.empty() ? kv.first.second : kv.first.first + "." + kv.first.second);
  }
  return names;
}

std::vector<KernelDef> KernelRegistry::defs() const {
  std::vector<KernelDef> out;
  for (const auto& kv : kernels_) {
    for (const Entry& e : kv.second) out.push_back(e.def);
  }
  return out;
}

const KernelRegistry& KernelRegistry::reference() {
  static const KernelRegistry registry = [] {
    KernelRegistry r;
    register_unary_kernels(r);
    register_binary_kernels(r);
    register_reduction_kernels(r);
    register_tensor_kernels(r);
    register_indexing_kernels(r);
    register_nn_kernels(r);
    register_linalg_kernels(r);
    register_resize_kernels(r);
    register_rnn_kernels(r);
    register_control_flow_kernels(r);
    register_sequence_kernels(r);
    register_quantization_kernels(r);
    register_normalization_kernels(r);
    register_loss_kernels(r);
    register_signal_kernels(r);
    register_vision_kernels(r);
    register_fused_kernels(r);
    register_quantization_fused_kernels(r);
    register_attention_kernels(r);
    register_misc_kernels(r);
    register_ml_kernels(r);
    return r;
  }();
  return registry;
}

}  // namespace pyflame_rt
