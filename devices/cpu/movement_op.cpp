// Native data movement: Transpose as a view where it only moves unit axes, as our batched 2-D
// transpose where it is one (4-byte elements: NCHW <-> NHWC, a matrix's transpose), else a oneDNN reorder (the source viewed
// through permuted strides, copied into a plain output in one pass) for float and our strided
// copy for the other fixed-width dtypes; Slice as our strided copy.
#include <algorithm>

#include "devices/cpu/loop_kernels.h"
#include "devices/cpu/native_ops.h"
#include "devices/cpu/transpose_2d.h"
#include "devices/ref/kernel_util.h"

namespace pyflame_rt {
namespace cpu {

namespace {

using dnnl::memory;

// Elements in a run of the last axis from which a Transpose that keeps that axis last copies
// the runs with memcpy (strided_copy) instead of a oneDNN reorder; shorter runs keep the
// reorder (not measured against each other).
constexpr int64_t kMinContiguousRun = 16;

// A non-empty f32 tensor of rank 1-6 (what the plain format tags cover), else nullptr.
const Tensor* viewable_f32(CpuValue* v) {
  const Tensor* t = plain_f32(v);
  return t && t->rank() >= 1 && t->rank() <= 6 && t->numel() > 0 ? t : nullptr;
}

void copy_view(const memory::desc& view, const Tensor& x, Tensor& y) {
  memory src(view, engine(), const_cast<void*>(x.raw_data()));
  memory dst(plain_desc(y.dims()), engine(), y.raw_data());
  dnnl::reorder(src, dst).execute(thread_stream(), src, dst);
  thread_stream().wait();
}

class TransposeOp : public NativeOp {
 public:
  TransposeOp(const Node& node, int64_t opset) : node_(node), opset_(opset) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    CpuValue* in = inputs[0];
    // A value in a native layout (a convolution's blocked output) is permuted by one oneDNN
    // reorder into the output: made plain first, it would be copied twice (ConvNeXt's
    // NCHW -> NHWC after each depthwise convolution).
    const bool native_f32 = in && in->has_native && !in->has_plain &&
                            in->native.get_desc().data_type() == memory::data_type::f32 && !in->dims.empty() &&
                            num_elements(in->dims) > 0;
    const Tensor* x = native_f32 ? nullptr : plain_fixed(in);
    if (!native_f32 && (!x || x->rank() == 0)) return run_reference(node_, opset_, inputs, outputs);
    const Dims& in_dims = native_f32 ? in->dims : x->dims();
    const size_t rank = in_dims.size();
    std::vector<int64_t> perm = node_.attr_ints("perm");
    if (!perm.empty() && perm.size() != rank) return run_reference(node_, opset_, inputs, outputs);
    if (perm.empty()) for (int64_t i = static_cast<int64_t>(rank) - 1; i >= 0; --i) perm.push_back(i);
    const std::vector<int64_t> in_strides = strides_of(in_dims);
    Dims out_dims;
    memory::dims strides;  // the source's stride along each output axis
    std::vector<bool> seen(rank, false);
    for (int64_t p : perm) {
      if (p < 0 || p >= static_cast<int64_t>(rank) || seen[static_cast<size_t>(p)]) {
        return run_reference(node_, opset_, inputs, outputs);  // the reference reports the bad perm
      }
      seen[static_cast<size_t>(p)] = true;
      out_dims.push_back(in_dims[static_cast<size_t>(p)]);
      strides.push_back(in_strides[static_cast<size_t>(p)]);
    }
    if (!native_f32 && keeps_element_order(in_dims, perm)) {
      // Only unit axes move (a GRU's [1, 50, 64] -> [50, 1, 64]): a view, as Reshape is; a
      // oneDNN reorder took 3-4 us here for a 13 KB copy.
      outputs[0] = CpuValue::from_plain(Value(x->reshaped(out_dims)));
      return Status::OK();
    }
    Tensor y = plain_output_tensor(native_f32 ? DType::kFloat32 : x->dtype(), out_dims);
    int64_t batch = 0, rows = 0, cols = 0;
    if (native_f32) {
      // The output seen in the source's axis order: source axis perm[i] steps as output axis i.
      const std::vector<int64_t> out_strides = strides_of(out_dims);
      memory::dims dst_strides(rank);
      for (size_t i = 0; i < rank; ++i) dst_strides[static_cast<size_t>(perm[i])] = out_strides[i];
      memory dst(memory::desc(to_dnnl(in_dims), memory::data_type::f32, dst_strides), engine(), y.raw_data());
      dnnl::reorder(in->native, dst).execute(thread_stream(), in->native, dst);
      thread_stream().wait();
    } else if (dtype_size(x->dtype()) == 4 && x->numel() > 0 &&
               as_batched_transpose(x->dims(), perm, &batch, &rows, &cols)) {
      transpose_2d_4byte(x->raw_data(), y.raw_data(), batch, rows, cols);
    } else if (perm.back() == static_cast<int64_t>(rank) - 1 && in_dims.back() >= kMinContiguousRun) {
      // The last axis stays last (ShuffleNet's channel shuffle [1, 2, C/2, H, W] -> [1, C/2, 2, H, W]):
      // a memcpy per run of it. For ShuffleNetV2's 364 KB ones a oneDNN reorder took 13-14 us at
      // one thread and 37 at two (medians, Zen 5), these copies 11 and 21.
      strided_copy(static_cast<const char*>(x->raw_data()), static_cast<int64_t>(dtype_size(x->dtype())), out_dims,
                   std::vector<int64_t>(strides.begin(), strides.end()), static_cast<char*>(y.raw_data()));
    } else if (viewable_f32(in)) {
      copy_view(memory::desc(to_dnnl(out_dims), memory::data_type::f32, strides), *x, y);
    } else if (x->numel() > 0) {
      // Other dtypes (detection heads transpose int64 indices): our strided copy.
      strided_copy(static_cast<const char*>(x->raw_data()), static_cast<int64_t>(dtype_size(x->dtype())), out_dims,
                   std::vector<int64_t>(strides.begin(), strides.end()), static_cast<char*>(y.raw_data()));
    }
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
};

// Slice with any steps (PatchMerging's x[:, 0::2, 1::2, :], reversals) as one strided copy:
// memcpy runs wherever the innermost kept dim is contiguous. Any dtype but strings.
class SliceOp : public NativeOp {
 public:
  SliceOp(const Node& node, int64_t opset) : node_(node), opset_(opset) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Value& v = inputs[0]->as_plain();
    auto ints = [&](size_t i) {
      return i < inputs.size() && inputs[i] ? inputs[i]->as_plain().tensor.to_int64_vector() : std::vector<int64_t>{};
    };
    if (!v.is_tensor() || v.tensor.dtype() == DType::kString || v.tensor.rank() == 0 || v.tensor.numel() == 0 ||
        inputs.size() < 3 || !inputs[1] || !inputs[2]) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    const Tensor& x = v.tensor;
    std::vector<int64_t> starts = ints(1), ends = ints(2), axes = ints(3), steps = ints(4);
    const int64_t rank = static_cast<int64_t>(x.rank());
    if (axes.empty()) for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    if (steps.empty()) steps.assign(starts.size(), 1);
    if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size()) {
      return run_reference(node_, opset_, inputs, outputs);  // it reports the mismatch
    }
    Dims out_dims = x.dims();
    std::vector<int64_t> strides = strides_of(x.dims());
    std::vector<bool> seen(x.rank(), false);
    int64_t offset = 0;
    for (size_t i = 0; i < starts.size(); ++i) {
      const int64_t ax = axes[i] < 0 ? axes[i] + rank : axes[i];
      if (ax < 0 || ax >= rank || seen[static_cast<size_t>(ax)] || steps[i] == 0) {
        return run_reference(node_, opset_, inputs, outputs);
      }
      seen[static_cast<size_t>(ax)] = true;
      const int64_t dim = x.dim(static_cast<size_t>(ax)), step = steps[i];
      int64_t s = starts[i] < 0 ? starts[i] + dim : starts[i], e = ends[i] < 0 ? ends[i] + dim : ends[i];
      // ceil(span / |step|) in unsigned arithmetic: a step is the model's, up to 2^63 in size
      // (kernel_run stop 16: e - s + step - 1 overflowed).
      const uint64_t magnitude = step > 0 ? static_cast<uint64_t>(step) : 0 - static_cast<uint64_t>(step);
      int64_t span;
      if (step > 0) {
        s = std::clamp<int64_t>(s, 0, dim);
        e = std::clamp<int64_t>(e, 0, dim);
        span = e - s;
      } else {
        s = std::clamp<int64_t>(s, 0, dim - 1);
        e = std::clamp<int64_t>(e, -1, dim - 1);
        span = s - e;
      }
      if (span <= 0) return run_reference(node_, opset_, inputs, outputs);  // an empty result
      const int64_t count = static_cast<int64_t>((static_cast<uint64_t>(span) - 1) / magnitude + 1);
      offset += s * strides[static_cast<size_t>(ax)];
      // Two or more elements: |step| < dim, so stride x step stays inside the tensor's size.
      strides[static_cast<size_t>(ax)] = count > 1 ? strides[static_cast<size_t>(ax)] * step : 0;
      out_dims[static_cast<size_t>(ax)] = count;
    }
    Tensor y = plain_output_tensor(x.dtype(), out_dims);
    const int64_t elem = static_cast<int64_t>(dtype_size(x.dtype()));
    strided_copy(static_cast<const char*>(x.raw_data()) + offset * elem, elem, out_dims, strides,
                 static_cast<char*>(y.raw_data()));
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
};

}  // namespace

std::unique_ptr<NativeOp> make_movement_op(const Node& node, int64_t opset, const Graph&) {
  if (node.op_type == "Transpose") return std::make_unique<TransposeOp>(node, opset);
  if (node.op_type == "Slice") return std::make_unique<SliceOp>(node, opset);
  return nullptr;
}

// Slice from opset 10 (starts/ends as inputs; before, attributes the kernel does not read).
void register_movement_ops(NativeOpTable& t) {
  t.add({"", "Transpose", 1, kNativeAnyOpset, fixed_width_dtypes(), make_movement_op});
  t.add({"", "Slice", 10, kNativeAnyOpset, fixed_width_dtypes(), make_movement_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
