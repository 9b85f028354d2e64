#include "graph/onnx_inference_guard.h"

#include <onnx/defs/schema.h>
#include <onnx/defs/shape_inference.h>

#include <mutex>
#include <set>
#include <string>

namespace pyflame_rt {

namespace {

// Wraps `schema`'s inference: input `input` must have at least `min_rank` dims when its
// shape is known (declared, or inferred from an earlier node).
void require_input_rank(const onnx::OpSchema* schema, size_t input, int min_rank) {
  auto* s = const_cast<onnx::OpSchema*>(schema);  // the registry hands out const schemas only
  onnx::InferenceFunction original = s->GetTypeAndShapeInferenceFunction();
  if (!original) return;
  const std::string op = s->Name();
  s->TypeAndShapeInferenceFunction([original, input, min_rank, op](onnx::InferenceContext& ctx) {
    if (onnx::hasInputShape(ctx, input) && onnx::getInputShape(ctx, input).dim_size() < min_rank) {
      fail_shape_inference(op, ": input ", input, " has rank ", onnx::getInputShape(ctx, input).dim_size(),
                           ", expected ", min_rank);
    }
    original(ctx);
  });
}

}  // namespace

void guard_onnx_shape_inference() {
  static std::once_flag once;
  std::call_once(once, [] {
    // RNNShapeInference1 (RNN-1, GRU-1/3, LSTM-1) reads X's dims 0 and 1 unchecked: an X of
    // rank 0 or 1 was SIGSEGV inside libonnx (found by the kernel_run fuzzer). Versions 7+
    // check the rank themselves.
    for (const char* op : {"RNN", "GRU", "LSTM"}) {
      std::set<const onnx::OpSchema*> old;
      for (int v = 1; v < 7; ++v) {
        const onnx::OpSchema* s = onnx::OpSchemaRegistry::Schema(op, v, "");
        if (s && s->SinceVersion() < 7) old.insert(s);
      }
      for (const onnx::OpSchema* s : old) require_input_rank(s, 0, 2);
    }
  });
}

}  // namespace pyflame_rt
