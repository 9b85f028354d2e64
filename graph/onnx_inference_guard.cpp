#include "graph/onnx_inference_guard.h"

#include <onnx/defs/schema.h>
#include <onnx/defs/shape_inference.h>
#include <onnx/defs/tensor_proto_util.h>

#include <initializer_list>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace pyflame_rt {

namespace {

// Runs `check` before `schema`'s own inference; `check` fails the node's inference (throws
// through fail_shape_inference) on what the original would read unchecked.
template <typename Check>
void check_before_inference(const onnx::OpSchema* schema, Check check) {
  auto* s = const_cast<onnx::OpSchema*>(schema);  // the registry hands out const schemas only
  onnx::InferenceFunction original = s->GetTypeAndShapeInferenceFunction();
  if (!original) return;
  s->TypeAndShapeInferenceFunction([original, check](onnx::InferenceContext& ctx) {
    check(ctx);
    original(ctx);
  });
}

// Input `input` must have at least `min_rank` dims when its shape is known (declared, or
// inferred from an earlier node).
void require_input_rank(const onnx::OpSchema* schema, size_t input, int min_rank) {
  check_before_inference(schema, [op = schema->Name(), input, min_rank](onnx::InferenceContext& ctx) {
    if (onnx::hasInputShape(ctx, input) && onnx::getInputShape(ctx, input).dim_size() < min_rank) {
      fail_shape_inference(op, ": input ", input, " has rank ", onnx::getInputShape(ctx, input).dim_size(),
                           ", expected ", min_rank);
    }
  });
}

// When both shapes are known, input `b` must have the rank of input `a`, and `a` at least
// `min_rank` dims.
void require_equal_ranks(const onnx::OpSchema* schema, size_t a, size_t b, int min_rank) {
  check_before_inference(schema, [op = schema->Name(), a, b, min_rank](onnx::InferenceContext& ctx) {
    if (!onnx::hasInputShape(ctx, a)) return;
    const int ra = onnx::getInputShape(ctx, a).dim_size();
    if (ra < min_rank) fail_shape_inference(op, ": input ", a, " has rank ", ra, ", expected at least ", min_rank);
    if (onnx::hasInputShape(ctx, b) && onnx::getInputShape(ctx, b).dim_size() != ra) {
      fail_shape_inference(op, ": input ", b, " has rank ", onnx::getInputShape(ctx, b).dim_size(), ", input ", a,
                           " has rank ", ra);
    }
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

// The int attribute `name`, when set, must be in [lo, the smallest known rank of `inputs`)
// (checked as int64, before libonnx narrows it to int).
void require_attribute_below_ranks(const onnx::OpSchema* schema, const char* name, int64_t lo,
                                   std::initializer_list<size_t> inputs) {
  check_before_inference(schema, [op = schema->Name(), attr = std::string(name), lo,
                                  ins = std::vector<size_t>(inputs)](onnx::InferenceContext& ctx) {
    const onnx::AttributeProto* a = ctx.getAttribute(attr);
    if (!a) return;
    if (a->i() < lo) fail_shape_inference(op, ": ", attr, " is ", a->i(), ", expected at least ", lo);
    for (size_t i : ins) {
      if (onnx::hasInputShape(ctx, i) && a->i() >= onnx::getInputShape(ctx, i).dim_size()) {
        fail_shape_inference(op, ": ", attr, " is ", a->i(), ", input ", i, " has rank ",
                             onnx::getInputShape(ctx, i).dim_size());
      }
    }
  });
}

// The int attribute `name`, when set, must be in [lo, hi].
void require_attribute_in(const onnx::OpSchema* schema, const char* name, int64_t lo, int64_t hi) {
  check_before_inference(schema, [op = schema->Name(), attr = std::string(name), lo, hi](onnx::InferenceContext& ctx) {
    const onnx::AttributeProto* a = ctx.getAttribute(attr);
    if (a && (a->i() < lo || a->i() > hi)) {
      fail_shape_inference(op, ": ", attr, " is ", a->i(), ", expected [", lo, ", ", hi, "]");
    }
  });
}

// The axis attribute `name`, when set and input `input`'s rank is known, must be in
// [-rank, rank).
void require_axis_in_rank(const onnx::OpSchema* schema, const char* name, size_t input) {
  check_before_inference(schema, [op = schema->Name(), attr = std::string(name), input](onnx::InferenceContext& ctx) {
    const onnx::AttributeProto* a = ctx.getAttribute(attr);
    if (!a || !onnx::hasInputShape(ctx, input)) return;
    const int64_t rank = onnx::getInputShape(ctx, input).dim_size();
    if (a->i() < -rank || a->i() >= rank) {
      fail_shape_inference(op, ": ", attr, " is ", a->i(), ", input ", input, " has rank ", rank);
    }
  });
}

// The int attribute `name`, when set, must count at most the node's inputs (Scan's
// num_scan_inputs: libonnx sizes a vector by it before any check, and 2^31 made a 16 GB
// allocation that the kernel's overcommit let through until the OOM killer ended the process;
// kernel_run).
void require_attribute_at_most_inputs(const onnx::OpSchema* schema, const char* name) {
  check_before_inference(schema, [op = schema->Name(), attr = std::string(name)](onnx::InferenceContext& ctx) {
    const onnx::AttributeProto* a = ctx.getAttribute(attr);
    const int64_t inputs = static_cast<int64_t>(ctx.getNumInputs());
    if (a && (a->i() < 0 || a->i() > inputs)) {
      fail_shape_inference(op, ": ", attr, " is ", a->i(), ", the node has ", inputs, " inputs");
    }
  });
}

// MaxUnpool's inference, once X's shape is known, reads I's dim 1 whether or not I's shape is
// (a rank-0 or unknown I was SIGSEGV; kernel_run). I must be known with rank >= 2.
void require_known_indices(const onnx::OpSchema* schema) {
  check_before_inference(schema, [](onnx::InferenceContext& ctx) {
    if (onnx::hasInputShape(ctx, 0) && ctx.getNumInputs() > 1 &&
        (!onnx::hasInputShape(ctx, 1) || onnx::getInputShape(ctx, 1).dim_size() < 2)) {
      fail_shape_inference("MaxUnpool: input 1 (I) needs a known shape of rank >= 2");
    }
  });
}

// SplitToSequence-11's inference divides the split axis by a constant scalar `split` unchecked:
// a scalar 0 initializer was SIGFPE at import (kernel_run, stop 15). A constant scalar split
// must be positive, as the kernels require.
void require_positive_scalar_split(const onnx::OpSchema* schema) {
  check_before_inference(schema, [](onnx::InferenceContext& ctx) {
    const onnx::TensorProto* split = ctx.getNumInputs() > 1 ? ctx.getInputData(1) : nullptr;
    if (!split || split->dims_size() != 0) return;
    std::vector<int64_t> v;
    if (split->data_type() == onnx::TensorProto::INT64) {
      v = onnx::ParseData<int64_t>(split);
    } else if (split->data_type() == onnx::TensorProto::INT32) {
      for (int32_t x : onnx::ParseData<int32_t>(split)) v.push_back(x);
    }
    if (v.size() == 1 && v[0] <= 0) fail_shape_inference("SplitToSequence: a scalar split must be positive, got ", v[0]);
  });
}

// Einsum's implicit output (no "->") counts its labels in a table indexed by label - 'a': an
// upper-case label wrote before the table (heap corruption, "UPPER" on a rank-5 input; found
// by kernel_run, stop 16). Such an equation is left uninferred (the kernels take it).
void require_lower_case_implicit_einsum(const onnx::OpSchema* schema) {
  check_before_inference(schema, [](onnx::InferenceContext& ctx) {
    const onnx::AttributeProto* eq = ctx.getAttribute("equation");
    if (!eq || !eq->has_s() || eq->s().find("->") != std::string::npos) return;
    for (char c : eq->s()) {
      if (c >= 'A' && c <= 'Z') fail_shape_inference("Einsum: an implicit output with upper-case labels ('", eq->s(), "')");
    }
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
    // convPoolShapeInference (Conv-1/11, ConvInteger-10, QLinearConv-10) takes the kernel
    // shape from W's dims and indexes X's per-spatial-dim lists with it: a W of higher rank
    // than X (Conv with X [6, 1] and W [3, 6, 6]) was SIGSEGV (found by kernel_run; the probe's
    // higher-rank cases then found the other three). W must have X's rank.
    auto guard_weights = [](const char* op, int version, size_t w) {
      const onnx::OpSchema* s = onnx::OpSchemaRegistry::Schema(op, version, "");
      if (s && s->SinceVersion() == version) require_equal_ranks(s, 0, w, 2);
    };
    guard_weights("Conv", 1, 1);
    guard_weights("Conv", 11, 1);
    guard_weights("ConvInteger", 10, 1);
    guard_weights("QLinearConv", 10, 3);
    // GatherND-12/13's inference starts copying data's dims at (indices' last dim + batch_dims)
    // unchecked below: a batch_dims of -9 read dims before the first (SIGSEGV, kernel_run).
    for (int v : {12, 13}) {
      const onnx::OpSchema* s = onnx::OpSchemaRegistry::Schema("GatherND", v, "");
      if (s && s->SinceVersion() == v) require_attribute_below_ranks(s, "batch_dims", 0, {0, 1});
    }
    // Found by probing every schema's int and ints attributes with -9, -1, 0, 2^31, 2^62 and
    // INT64_MIN on inputs of rank 3 and 4 (tools/onnx_inference_probe.py --attributes):
    // DepthToSpace divides by blocksize squared (2^62: the square overflows to 0, SIGFPE);
    // LayerNormalization-17 reads X's dims from its axis unchecked (-9, 2^31: SIGSEGV). Conv's
    // zero strides are refused before inference (onnx_import.cpp).
    for (int v : {1, 11, 13}) {
      const onnx::OpSchema* s = onnx::OpSchemaRegistry::Schema("DepthToSpace", v, "");
      if (s && s->SinceVersion() == v) require_attribute_in(s, "blocksize", 1, int64_t{1} << 31);
    }
    if (const onnx::OpSchema* s = onnx::OpSchemaRegistry::Schema("LayerNormalization", 17, "")) {
      if (s->SinceVersion() == 17) require_axis_in_rank(s, "axis", 0);
    }
    for (int v : {9, 11}) {
      const onnx::OpSchema* s = onnx::OpSchemaRegistry::Schema("MaxUnpool", v, "");
      if (s && s->SinceVersion() == v) require_known_indices(s);
    }
    for (int v : {8, 9, 11, 16}) {
      const onnx::OpSchema* s = onnx::OpSchemaRegistry::Schema("Scan", v, "");
      if (s && s->SinceVersion() == v) require_attribute_at_most_inputs(s, "num_scan_inputs");
    }
    if (const onnx::OpSchema* s = onnx::OpSchemaRegistry::Schema("SplitToSequence", 11, "")) {
      if (s->SinceVersion() == 11) require_positive_scalar_split(s);
    }
    if (const onnx::OpSchema* s = onnx::OpSchemaRegistry::Schema("Einsum", 12, "")) {
      if (s->SinceVersion() == 12) require_lower_case_implicit_einsum(s);
    }
  });
}

}  // namespace pyflame_rt
