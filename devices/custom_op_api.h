/* The C ABI of custom-op libraries: what a shared library includes to add kernels to PyFlameRT.
 *
 * Plain C on purpose: a library built separately (another compiler, other flags) must not
 * depend on our C++ types, so it sees tensors as (element type, dims, data) and calls back
 * through a table of functions, the shape of ONNX Runtime's OrtApi. The library exports one
 * function, found by name when it is loaded
 * (InferenceSession options: `SessionOptions.register_custom_ops_library(path)` in Python,
 * `load_custom_ops_library(path)` in C++):
 *
 *   #include "devices/custom_op_api.h"
 *
 *   static int add_one(PfrtKernelContext* ctx, const PfrtApi* api) {
 *     PfrtTensor x;
 *     if (api->input(ctx, 0, &x) != 0 || x.dtype != PFRT_FLOAT) {
 *       api->set_error(ctx, "AddOne: input 0 must be a float tensor");
 *       return 1;
 *     }
 *     float* y = (float*)api->output(ctx, 0, PFRT_FLOAT, x.dims, x.rank);
 *     for (int64_t i = 0; i < pfrt_numel(&x); ++i) y[i] = ((const float*)x.data)[i] + 1.0f;
 *     return 0;
 *   }
 *
 *   PFRT_EXPORT int PyFlameRT_RegisterCustomOps(const PfrtApi* api, PfrtRegistrar* registrar) {
 *     return api->add_kernel(registrar, "my.domain", "AddOne", add_one);
 *   }
 *
 * Kernels run on the session's threads, possibly several at once: keep them reentrant.
 */
#ifndef PYFLAME_RT_CUSTOM_OP_API_H_
#define PYFLAME_RT_CUSTOM_OP_API_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PFRT_CUSTOM_OP_API_VERSION 1
#define PFRT_REGISTER_SYMBOL "PyFlameRT_RegisterCustomOps"
#define PFRT_EXPORT __attribute__((visibility("default")))

/* Element types: ONNX's TensorProto codes (the same numbers as ORT's ONNXTensorElementDataType). */
enum {
  PFRT_FLOAT = 1, PFRT_UINT8 = 2, PFRT_INT8 = 3, PFRT_UINT16 = 4, PFRT_INT16 = 5, PFRT_INT32 = 6,
  PFRT_INT64 = 7, PFRT_BOOL = 9, PFRT_FLOAT16 = 10, PFRT_DOUBLE = 11, PFRT_UINT32 = 12,
  PFRT_UINT64 = 13, PFRT_BFLOAT16 = 16
};

/* A tensor seen by a kernel; dims and data stay valid for the duration of the kernel call. */
typedef struct PfrtTensor {
  int32_t dtype;        /* PFRT_FLOAT, ... */
  size_t rank;
  const int64_t* dims;
  void* data;           /* C order; read-only for inputs */
} PfrtTensor;

typedef struct PfrtKernelContext PfrtKernelContext;
typedef struct PfrtRegistrar PfrtRegistrar;
struct PfrtApi;

/* Returns 0 on success; otherwise call api->set_error first (the run fails with that message). */
typedef int (*PfrtKernelFn)(PfrtKernelContext* ctx, const struct PfrtApi* api);

typedef struct PfrtApi {
  uint32_t version; /* PFRT_CUSTOM_OP_API_VERSION of the runtime */
  /* Registration (only inside PyFlameRT_RegisterCustomOps): 0 on success. */
  int (*add_kernel)(PfrtRegistrar* registrar, const char* domain, const char* op_type, PfrtKernelFn fn);
  /* Kernel context. */
  size_t (*input_count)(const PfrtKernelContext* ctx);
  size_t (*output_count)(const PfrtKernelContext* ctx);
  /* 0 and *out filled when input `index` is a tensor; non-zero when absent. */
  int (*input)(const PfrtKernelContext* ctx, size_t index, PfrtTensor* out);
  /* Allocates output `index` (zero-filled) and returns its data; NULL on a bad index or type. */
  void* (*output)(PfrtKernelContext* ctx, size_t index, int32_t dtype, const int64_t* dims, size_t rank);
  /* Node attributes: 0 and *out filled when present with that type; non-zero otherwise. */
  int (*attribute_int)(const PfrtKernelContext* ctx, const char* name, int64_t* out);
  int (*attribute_float)(const PfrtKernelContext* ctx, const char* name, float* out);
  /* The string attribute (valid during the call) or NULL. */
  const char* (*attribute_string)(const PfrtKernelContext* ctx, const char* name);
  void (*set_error)(PfrtKernelContext* ctx, const char* message);
} PfrtApi;

/* The function a custom-op library exports (named PFRT_REGISTER_SYMBOL); 0 on success. */
typedef int (*PfrtRegisterCustomOpsFn)(const PfrtApi* api, PfrtRegistrar* registrar);

static inline int64_t pfrt_numel(const PfrtTensor* t) {
  int64_t n = 1;
  for (size_t i = 0; i < t->rank; ++i) n *= t->dims[i];
  return n;
}

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* PYFLAME_RT_CUSTOM_OP_API_H_ */
