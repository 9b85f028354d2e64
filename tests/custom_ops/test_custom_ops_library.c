/* A custom-op library as a user would write it, in plain C against devices/custom_op_api.h:
 * test.ops.ScaleAdd(x) = x * scale + bias (float attributes), test.ops.CountPositive(x) = the
 * number of x > 0 as an int64 scalar. Loaded by tests/actors/custom_ops_test.cpp and
 * tests/python/test_custom_ops.py. */
#include <stdio.h>

#include "devices/custom_op_api.h"

static int scale_add(PfrtKernelContext* ctx, const PfrtApi* api) {
  PfrtTensor x;
  if (api->input(ctx, 0, &x) != 0 || x.dtype != PFRT_FLOAT) {
    api->set_error(ctx, "ScaleAdd: input 0 must be a float tensor");
    return 1;
  }
  float scale = 1.0f, bias = 0.0f;
  api->attribute_float(ctx, "scale", &scale);
  api->attribute_float(ctx, "bias", &bias);
  float* y = (float*)api->output(ctx, 0, PFRT_FLOAT, x.dims, x.rank);
  const float* in = (const float*)x.data;
  for (int64_t i = 0; i < pfrt_numel(&x); ++i) y[i] = in[i] * scale + bias;
  return 0;
}

static int count_positive(PfrtKernelContext* ctx, const PfrtApi* api) {
  PfrtTensor x;
  if (api->input(ctx, 0, &x) != 0 || x.dtype != PFRT_FLOAT) {
    char message[96];
    snprintf(message, sizeof message, "CountPositive: input 0 must be a float tensor, got element type %d",
             (int)x.dtype);
    api->set_error(ctx, message);
    return 1;
  }
  int64_t* n = (int64_t*)api->output(ctx, 0, PFRT_INT64, NULL, 0);
  const float* in = (const float*)x.data;
  *n = 0;
  for (int64_t i = 0; i < pfrt_numel(&x); ++i) *n += in[i] > 0.0f;
  return 0;
}

PFRT_EXPORT int PyFlameRT_RegisterCustomOps(const PfrtApi* api, PfrtRegistrar* registrar) {
  if (api->version < PFRT_CUSTOM_OP_API_VERSION) return 1;
  if (api->add_kernel(registrar, "test.ops", "ScaleAdd", scale_add) != 0) return 1;
  return api->add_kernel(registrar, "test.ops", "CountPositive", count_positive);
}
