// Native reductions (ReduceSum/Mean/Max/Min/L1/L2/SumSquare/LogSum/LogSumExp) and
// ArgMax/ArgMin over float32 tensors of any rank. The reduced axes, once neighbouring kept or
// reduced axes are merged, must form one run: the tensor is then [outer, len, inner] and the
// loops of loop_kernels.cpp reduce the middle axis, split over the OpenMP team by outer rows
// (or by column blocks when there are few rows). Reductions over two separate runs of axes
// (rare in models) take the reference kernel. A channels-last input (a 1-D convolution's) is
// reduced in its memory order, without a transpose.
#include <omp.h>

#include <algorithm>
#include <optional>

#include "devices/cpu/channels_last.h"
#include "devices/cpu/loop_kernels.h"
#include "devices/cpu/native_ops.h"

namespace pyflame_rt {
namespace cpu {

namespace {

// Below this many input elements a reduction runs on the calling thread alone.
constexpr int64_t kParallelMin = 1 << 15;

// Splits `x`'s dims into [outer, len, inner] around the reduced axes; false when the reduced
// axes (ignoring size-1 dims, which move freely) are not one contiguous run.
bool split_around(const Dims& dims, const std::vector<bool>& reduced, int64_t* outer, int64_t* len, int64_t* inner) {
  *outer = *len = *inner = 1;
  int phase = 0;  // 0: before the run, 1: inside it, 2: after it
  for (size_t d = 0; d < dims.size(); ++d) {
    if (dims[d] == 1) continue;
    if (reduced[d]) {
      if (phase == 2) return false;
      phase = 1;
      *len *= dims[d];
    } else {
      if (phase == 1) phase = 2;
      (phase == 0 ? *outer : *inner) *= dims[d];
    }
  }
  return true;
}

class ReduceOp : public NativeOp {
 public:
  ReduceOp(const Node& node, int64_t opset, ReduceKind kind, bool axes_input)
      : node_(node), opset_(opset), kind_(kind), axes_input_(axes_input) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    // A channels-last input is reduced where it lies, over its memory order, when the kept
    // axes keep their logical order there (the output's bytes are then its plain layout):
    // reducing N, spatial..., C over the spatial axes, say.
    ChannelsLastView view;
    if (inputs[0] && channels_last_view(*inputs[0], &view) && num_elements(view.dims) > 0) {
      std::optional<Status> done = run_channels_last(view, inputs, outputs);
      if (done) return *done;
    }
    const Tensor* x = plain_f32(inputs[0]);
    if (!x || x->numel() == 0) return run_reference(node_, opset_, inputs, outputs);
    std::vector<bool> reduced;
    if (!reduced_axes(inputs, x->dims(), &reduced)) return run_reference(node_, opset_, inputs, outputs);
    int64_t outer, len, inner;
    if (!split_around(x->dims(), reduced, &outer, &len, &inner)) return run_reference(node_, opset_, inputs, outputs);
    outputs[0] = CpuValue::from_plain(Value(reduce(x->data<float>(), x->dims(), reduced, outer, len, inner)));
    return Status::OK();
  }

 private:
  // Which logical axes are reduced (axes attribute or input, none given: all); false when an
  // axis is out of range or the op is a no-op (the reference names or handles those).
  bool reduced_axes(const std::vector<CpuValue*>& inputs, const Dims& dims, std::vector<bool>* reduced) {
    std::vector<int64_t> axes;
    if (axes_input_) {
      if (inputs.size() > 1 && inputs[1]) axes = inputs[1]->as_plain().tensor.to_int64_vector();
    } else {
      axes = node_.attr_ints("axes");
    }
    if (axes.empty() && node_.attr_int("noop_with_empty_axes", 0) != 0) return false;
    const int64_t rank = static_cast<int64_t>(dims.size());
    reduced->assign(dims.size(), axes.empty());
    for (int64_t a : axes) {
      if (a < -rank || a >= rank) return false;  // the reference names the bad axis
      (*reduced)[static_cast<size_t>(a < 0 ? a + rank : a)] = true;
    }
    return true;
  }

  // The reduction of a channels-last input in its memory order; nullopt when the output's
  // bytes would not be in its plain order (the caller then makes the input plain).
  std::optional<Status> run_channels_last(const ChannelsLastView& view, const std::vector<CpuValue*>& inputs,
                                          std::vector<CpuValue>& outputs) {
    const Dims& logical = inputs[0]->dims;
    std::vector<bool> reduced_logical, reduced;
    if (!reduced_axes(inputs, logical, &reduced_logical)) return std::nullopt;
    int64_t last_kept = -1;
    for (size_t i = 0; i < view.dims.size(); ++i) {
      const int64_t axis = view.logical_axis[i];
      reduced.push_back(reduced_logical[static_cast<size_t>(axis)]);
      if (reduced.back() || view.dims[i] == 1) continue;
      if (axis < last_kept) return std::nullopt;  // a kept axis out of its logical order
      last_kept = axis;
    }
    int64_t outer, len, inner;
    if (!split_around(view.dims, reduced, &outer, &len, &inner)) return std::nullopt;
    outputs[0] = CpuValue::from_plain(Value(reduce(view.data, logical, reduced_logical, outer, len, inner)));
    return Status::OK();
  }

  // Reduces `src` viewed as [outer, len, inner] over len; the result has `dims` with the
  // `reduced` axes dropped (or 1 under keepdims).
  Tensor reduce(const float* src, const Dims& dims, const std::vector<bool>& reduced, int64_t outer, int64_t len,
                int64_t inner) const {
    bool keepdims = node_.attr_int("keepdims", 1) != 0;
    Dims out_dims;
    for (size_t d = 0; d < dims.size(); ++d) {
      if (!reduced[d]) out_dims.push_back(dims[d]);
      else if (keepdims) out_dims.push_back(1);
    }
    Tensor y(DType::kFloat32, out_dims);
    float* dst = y.data<float>();
    if (num_elements(dims) < kParallelMin || omp_get_max_threads() == 1) {
      reduce_f32(kind_, src, dst, len, inner, 0, outer, 0, inner);
    } else if (outer >= omp_get_max_threads() || inner == 1) {
#pragma omp parallel for schedule(static)
      for (int64_t o = 0; o < outer; ++o) reduce_f32(kind_, src, dst, len, inner, o, o + 1, 0, inner);
    } else {
      // Few rows: split the columns into blocks of 64 floats (whole cache lines per thread).
      const int64_t block = 64, blocks = (inner + block - 1) / block;
#pragma omp parallel for collapse(2) schedule(static)
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t b = 0; b < blocks; ++b) {
          reduce_f32(kind_, src, dst, len, inner, o, o + 1, b * block, std::min(inner, (b + 1) * block));
        }
      }
    }
    return y;
  }

  Node node_;
  int64_t opset_;
  ReduceKind kind_;
  bool axes_input_;
};

class ArgReduceOp : public NativeOp {
 public:
  ArgReduceOp(const Node& node, int64_t opset, bool is_max) : node_(node), opset_(opset), is_max_(is_max) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Tensor* x = plain_f32(inputs[0]);
    int64_t rank = x ? static_cast<int64_t>(x->rank()) : 0;
    int64_t axis = node_.attr_int("axis", 0);
    if (axis < 0) axis += rank;
    if (!x || x->numel() == 0 || axis < 0 || axis >= rank) return run_reference(node_, opset_, inputs, outputs);
    int64_t outer = 1, inner = 1, len = x->dim(static_cast<size_t>(axis));
    for (int64_t d = 0; d < rank; ++d) {
      if (d < axis) outer *= x->dim(static_cast<size_t>(d));
      if (d > axis) inner *= x->dim(static_cast<size_t>(d));
    }
    Dims out_dims = x->dims();
    if (node_.attr_int("keepdims", 1) != 0) out_dims[static_cast<size_t>(axis)] = 1;
    else out_dims.erase(out_dims.begin() + axis);
    bool last = node_.attr_int("select_last_index", 0) != 0;
    Tensor y(DType::kInt64, out_dims);
    const float* src = x->data<float>();
    int64_t* dst = y.data<int64_t>();
    if (x->numel() < kParallelMin || outer == 1) {
      arg_reduce_f32(is_max_, last, src, dst, len, inner, 0, outer);
    } else {
#pragma omp parallel for schedule(static)
      for (int64_t o = 0; o < outer; ++o) arg_reduce_f32(is_max_, last, src, dst, len, inner, o, o + 1);
    }
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
  bool is_max_;
};

}  // namespace

std::unique_ptr<NativeOp> make_reduce_op(const Node& node, int64_t opset, const Graph&) {
  static const std::pair<const char*, ReduceKind> kKinds[] = {
      {"ReduceSum", ReduceKind::kSum},         {"ReduceMean", ReduceKind::kMean},
      {"ReduceMax", ReduceKind::kMax},         {"ReduceMin", ReduceKind::kMin},
      {"ReduceL1", ReduceKind::kL1},           {"ReduceL2", ReduceKind::kL2},
      {"ReduceSumSquare", ReduceKind::kSumSquare}, {"ReduceLogSum", ReduceKind::kLogSum},
      {"ReduceLogSumExp", ReduceKind::kLogSumExp}};
  for (const auto& k : kKinds) {
    if (node.op_type != k.first) continue;
    // ReduceSum took its axes as an input from opset 13, the others from opset 18.
    bool axes_input = k.second == ReduceKind::kSum ? opset >= 13 : opset >= 18;
    return std::make_unique<ReduceOp>(node, opset, k.second, axes_input);
  }
  if (node.op_type == "ArgMax" || node.op_type == "ArgMin") {
    return std::make_unique<ArgReduceOp>(node, opset, node.op_type == "ArgMax");
  }
  return nullptr;
}

void register_reduce_ops(NativeOpTable& t) {
  for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceL1", "ReduceL2", "ReduceSumSquare",
                         "ReduceLogSum", "ReduceLogSumExp", "ArgMax", "ArgMin"}) {
    t.add({"", op, 1, kNativeAnyOpset, {DType::kFloat32}, make_reduce_op});
  }
}

}  // namespace cpu
}  // namespace pyflame_rt
