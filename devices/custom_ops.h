// Custom ops: kernels users add at run time for op types in their own domain.
//
//   pyflame_rt::register_custom_op("my.domain", "AddOne", [](pyflame_rt::KernelContext& ctx) {
//     RETURN_IF_ERROR(ctx.require_input(0));
//     pyflame_rt::Tensor y = ctx.input(0)->clone();
//     for (int64_t i = 0; i < y.numel(); ++i) y.data<float>()[i] += 1.0f;
//     ctx.set_output(0, std::move(y));
//     return pyflame_rt::Status::OK();
//   });
//   RETURN_IF_ERROR(pyflame_rt::load_custom_ops_library("libmy_ops.so"));  // C ABI: custom_op_api.h
//
// The registry is process-wide (ONNX Runtime keeps it per SessionOptions; here a kernel is
// found by every session created after it was registered). Built-in domains ("", "ai.onnx",
// "pyflame_rt") are refused so a custom kernel never silently replaces one of ours.
// KernelRegistry::find falls back to this registry, so every device that runs reference
// kernels (ref, and cpu for ops it has no native kernel for) runs custom ops too.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "devices/ref/kernel.h"

namespace pyflame_rt {

using CustomKernel = std::function<Status(KernelContext&)>;

// Adds or replaces the kernel of (domain, op_type).
Status register_custom_op(const std::string& domain, const std::string& op_type, CustomKernel kernel);
// False when nothing was registered under that name.
bool unregister_custom_op(const std::string& domain, const std::string& op_type);
bool is_custom_op(const std::string& domain, const std::string& op_type);
// "domain.op_type" of every registered custom op, sorted.
std::vector<std::string> custom_op_names();

// Opens a shared library and calls its PyFlameRT_RegisterCustomOps (devices/custom_op_api.h).
// The library stays loaded for the life of the process (its kernels may run at any time).
// Returns the ops it registered.
Expected<std::vector<std::string>> load_custom_ops_library(const std::string& path);

// The KernelFn every custom op is looked up as: it finds the node's custom kernel at run time.
KernelFn custom_op_dispatch_kernel();

}  // namespace pyflame_rt
