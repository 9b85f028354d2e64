#include "devices/custom_ops.h"

#include <dlfcn.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>

#include "devices/custom_op_api.h"

// The C ABI's opaque types are our C++ objects under another name.
struct PfrtKernelContext {
  pyflame_rt::KernelContext* ctx;
  std::string error;
};
struct PfrtRegistrar {
  std::string library;
  std::vector<std::string> added;
  std::string error;
};

namespace pyflame_rt {
namespace {

struct Registry {
  std::mutex mu;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<const CustomKernel>> kernels;
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: kernels may run during static teardown
  return *r;
}

std::shared_ptr<const CustomKernel> find_kernel(const std::string& domain, const std::string& op_type) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.kernels.find({canonical_domain(domain), op_type});
  return it == r.kernels.end() ? nullptr : it->second;
}

Status dispatch(KernelContext& ctx) {
  auto kernel = find_kernel(ctx.node().domain, ctx.node().op_type);
  if (!kernel) {
    return ctx.error(StatusCode::kNotImplemented, "custom op ", ctx.node().domain, ".", ctx.node().op_type,
                     " was unregistered after the session was created");
  }
  return (*kernel)(ctx);
}

// --- the C ABI (custom_op_api.h) over KernelContext ---------------------------------------

size_t c_input_count(const PfrtKernelContext* c) { return c->ctx->num_inputs(); }
size_t c_output_count(const PfrtKernelContext* c) { return c->ctx->num_outputs(); }

int c_input(const PfrtKernelContext* c, size_t index, PfrtTensor* out) {
  const Tensor* t = c->ctx->input(index);
  if (!t || !out || t->dtype() == DType::kString) return 1;
  out->dtype = static_cast<int32_t>(t->dtype());
  out->rank = t->rank();
  out->dims = t->dims().data();
  out->data = const_cast<void*>(t->raw_data());
  return 0;
}

void* c_output(PfrtKernelContext* c, size_t index, int32_t dtype, const int64_t* dims, size_t rank) {
  if (index >= c->ctx->num_outputs()) return nullptr;
  auto dt = dtype_from_onnx(dtype);
  if (!dt.ok() || *dt == DType::kString) return nullptr;
  for (size_t i = 0; i < rank; ++i) {
    if (dims[i] < 0) return nullptr;
  }
  Tensor t(*dt, Dims(dims, dims + rank));
  void* data = t.raw_data();  // tensors share their buffer: this stays the output's memory
  c->ctx->set_output(index, std::move(t));
  return data;
}

const Attribute* c_attr(const PfrtKernelContext* c, const char* name, AttrKind kind) {
  const Attribute* a = c->ctx->node().attr(name);
  return a && a->kind == kind ? a : nullptr;
}

int c_attribute_int(const PfrtKernelContext* c, const char* name, int64_t* out) {
  const Attribute* a = c_attr(c, name, AttrKind::kInt);
  if (!a) return 1;
  *out = a->i;
  return 0;
}

int c_attribute_float(const PfrtKernelContext* c, const char* name, float* out) {
  const Attribute* a = c_attr(c, name, AttrKind::kFloat);
  if (!a) return 1;
  *out = a->f;
  return 0;
}

const char* c_attribute_string(const PfrtKernelContext* c, const char* name) {
  const Attribute* a = c_attr(c, name, AttrKind::kString);
  return a ? a->s.c_str() : nullptr;
}

void c_set_error(PfrtKernelContext* c, const char* message) { c->error = message ? message : ""; }

int c_add_kernel(PfrtRegistrar* r, const char* domain, const char* op_type, PfrtKernelFn fn);

const PfrtApi kApi = {
    PFRT_CUSTOM_OP_API_VERSION, c_add_kernel, c_input_count, c_output_count, c_input, c_output,
    c_attribute_int, c_attribute_float, c_attribute_string, c_set_error,
};

int c_add_kernel(PfrtRegistrar* r, const char* domain, const char* op_type, PfrtKernelFn fn) {
  if (!domain || !op_type || !fn) {
    r->error = "add_kernel: domain, op_type and fn must not be NULL";
    return 1;
  }
  std::string library = r->library;
  CustomKernel kernel = [fn, library](KernelContext& ctx) -> Status {
    PfrtKernelContext c{&ctx, {}};
    if (fn(&c, &kApi) != 0) {
      return ctx.error(StatusCode::kRuntimeError, "custom kernel from ", library, " failed: ",
                       c.error.empty() ? "(no message)" : c.error);
    }
    return Status::OK();
  };
  Status st = register_custom_op(domain, op_type, std::move(kernel));
  if (!st.ok()) {
    r->error = st.message();
    return 1;
  }
  r->added.push_back(std::string(domain) + "." + op_type);
  return 0;
}

}  // namespace

Status register_custom_op(const std::string& domain, const std::string& op_type, CustomKernel kernel) {
  std::string d = canonical_domain(domain);
  if (d.empty() || d == "pyflame_rt") {
    return invalid_argument("custom op ", op_type, ": domain '", domain,
                            "' is built in; register custom ops in a domain of your own (e.g. 'my.ops')");
  }
  if (op_type.empty()) return invalid_argument("custom op in domain '", domain, "': op_type is empty");
  if (!kernel) return invalid_argument("custom op ", domain, ".", op_type, ": the kernel is empty");
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.kernels[{d, op_type}] = std::make_shared<const CustomKernel>(std::move(kernel));
  return Status::OK();
}

bool unregister_custom_op(const std::string& domain, const std::string& op_type) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.kernels.erase({canonical_domain(domain), op_type}) > 0;
}

bool is_custom_op(const std::string& domain, const std::string& op_type) {
  return find_kernel(domain, op_type) != nullptr;
}

std::vector<std::string> custom_op_names() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<std::string> names;
  for (const auto& kv : r.kernels) names.push_back(kv.first.first + "." + kv.first.second);
  return names;  // std::map order: already sorted
}

Expected<std::vector<std::string>> load_custom_ops_library(const std::string& path) {
  // RTLD_NODELETE: kernels point into the library, so it must never be unmapped.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (!handle) {
    const char* why = dlerror();
    return make_status(StatusCode::kNoSuchFile, "custom ops library '", path, "' cannot be loaded: ",
                       why ? why : "unknown error");
  }
  auto fn = reinterpret_cast<PfrtRegisterCustomOpsFn>(dlsym(handle, PFRT_REGISTER_SYMBOL));
  if (!fn) {
    return invalid_argument("custom ops library '", path, "' does not export ", PFRT_REGISTER_SYMBOL,
                            " (see devices/custom_op_api.h)");
  }
  PfrtRegistrar registrar;
  registrar.library = path;
  if (fn(&kApi, &registrar) != 0) {
    return make_status(StatusCode::kFail, "custom ops library '", path, "': ", PFRT_REGISTER_SYMBOL, " failed: ",
                       registrar.error.empty() ? "(no message)" : registrar.error);
  }
  return registrar.added;
}

KernelFn custom_op_dispatch_kernel() { return &dispatch; }

}  // namespace pyflame_rt
