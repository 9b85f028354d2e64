#include "graph/onnx_inference_guard.h"

#include <onnx/defs/schema.h>
#include <onnx/defs/shape_inference.h>

#include <initializer_list>
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

// Wraps `schema`'s inference: when both shapes are known, input `b` must have the rank of
// input `a`, and `a` at least `min_rank` dims.
void require_equal_ranks(const onnx::OpSchema* schema, size_t a, size_t b, int min_rank) {
  auto* s = const_cast<onnx::OpSchema*>(schema);
  onnx::InferenceFunction original = s->GetTypeAndShapeInferenceFunction();
  if (!original) return;
  const std::string op = s->Name();
  s->TypeAndShapeInferenceFunction([original, a, b, min_rank, op](onnx::InferenceContext& ctx) {
    if (onnx::hasInputShape(ctx, a)) {
      const int ra = onnx::getInputShape(ctx, a).dim_size();
      if (ra < min_rank) fail_shape_inference(op, ": input ", a, " has rank ", ra, ", expected at least ", min_rank);
      if (onnx::hasInputShape(ctx, b) && onnx::getInputShape(ctx, b).dim_size() != ra) {
        fail_shape_inference(op, ": input ", b, " has rank ", onnx::getInputShape(ctx, b).dim_size(), ", input ", a,
                             " has rank ", ra);
      }
    }
    original(ctx);
  });
}

// Wraps `schema`'s data propagation (the shape arithmetic libonnx computes on values):
// skipped while an input has no type. libonnx 1.12's propagators read their inputs' types
// unchecked: Shape of a graph input declared without a type (make_empty_tensor_value_info;
// ONNX Runtime accepts such a model) was SIGSEGV at session creation.
void require_typed_inputs_for_data_propagation(const onnx::OpSchema* schema) {
  auto* s = const_cast<onnx::OpSchema*>(schema);
  onnx::DataPropagationFunction original = s->GetDataPropagationFunction();
  s->PartialDataPropagationFunction([original](onnx::DataPropagationContext& ctx) {
    for (size_t i = 0; i < ctx.getNumInputs(); ++i) {
      const onnx::TypeProto* t = ctx.getInputType(i);
      if (!t || t->value_case() == onnx::TypeProto::VALUE_NOT_SET) return;
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
    // Found by probing every default-domain schema with inputs of rank 0 and 1 (each in a
    // forked process, libonnx 1.12 as Debian ships it): Gemm-6 reads A's and B's dims,
    // STFT-17 the signal's dim 1, LayerNormalization-17 X's dims by its axis.
    auto guard = [](const char* op, int version, std::initializer_list<size_t> inputs, int min_rank) {
      const onnx::OpSchema* s = onnx::OpSchemaRegistry::Schema(op, version, "");
      if (!s || s->SinceVersion() != version) return;
      for (size_t i : inputs) require_input_rank(s, i, min_rank);
    };
    guard("Gemm", 6, {0, 1}, 2);
    guard("STFT", 17, {0}, 2);
    guard("LayerNormalization", 17, {0}, 1);
    // convTransposeShapeInference (ConvTranspose-1 and -11) reads W's dims by X's rank: a W
    // of lower rank than X was SIGSEGV (found by kernel_run; a probe of every schema with X of
    // rank 3-4 and the other inputs of rank 0-2 found no other).
    for (int v : {1, 11}) {
      const onnx::OpSchema* s = onnx::OpSchemaRegistry::Schema("ConvTranspose", v, "");
      if (s && s->SinceVersion() == v) require_equal_ranks(s, 0, 1, 3);
    }
    // Every schema with a data propagator (Shape, Size, Gather, Concat, Slice, the binary
    // arithmetic, ...), in every domain and version.
    for (const onnx::OpSchema& copy : onnx::OpSchemaRegistry::get_all_schemas_with_history()) {
      if (!copy.has_data_propagation_function()) continue;
      const onnx::OpSchema* s = onnx::OpSchemaRegistry::Schema(copy.Name(), copy.SinceVersion(), copy.domain());
      if (s && s->SinceVersion() == copy.SinceVersion()) require_typed_inputs_for_data_propagation(s);
    }
  });
}

}  // namespace pyflame_rt
