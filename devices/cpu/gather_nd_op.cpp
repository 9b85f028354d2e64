// Native GatherND (with batch_dims) for every fixed-width dtype and int64/int32 indices: each
// index tuple becomes one offset and its slice one memcpy, split over the OpenMP team when the
// copy is large. Detection post-processing gathers the boxes and scores NonZero selected. A
// bad shape, batch_dims or out-of-range index goes to the reference kernel, which names it.
#include <omp.h>

#include <cstring>

#include "devices/cpu/native_ops.h"

namespace pyflame_rt {
namespace cpu {

namespace {

// Below this many bytes the copy runs on the calling thread alone.
constexpr int64_t kParallelBytes = 1 << 18;

class GatherNDOp : public NativeOp {
 public:
  GatherNDOp(const Node& node, int64_t opset) : node_(node), opset_(opset) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Tensor* x = plain_fixed(inputs[0]);
    const Tensor* idx = inputs.size() > 1 ? plain_fixed(inputs[1]) : nullptr;
    if (!x || !idx || (idx->dtype() != DType::kInt64 && idx->dtype() != DType::kInt32)) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    const int64_t b = opset_ >= 12 ? node_.attr_int("batch_dims", 0) : 0;
    const int64_t x_rank = static_cast<int64_t>(x->rank()), i_rank = static_cast<int64_t>(idx->rank());
    if (i_rank < 1 || b < 0 || b >= std::min(x_rank, i_rank)) return run_reference(node_, opset_, inputs, outputs);
    for (int64_t d = 0; d < b; ++d) {
      if (idx->dim(static_cast<size_t>(d)) != x->dim(static_cast<size_t>(d))) return run_reference(node_, opset_, inputs, outputs);
    }
    const int64_t depth = idx->dim(idx->rank() - 1);
    if (b + depth > x_rank) return run_reference(node_, opset_, inputs, outputs);
    Dims out_dims(idx->dims().begin(), idx->dims().end() - 1);
    int64_t slice = 1;
    for (size_t d = static_cast<size_t>(b + depth); d < x->rank(); ++d) {
      out_dims.push_back(x->dim(d));
      slice *= x->dim(d);
    }
    int64_t batches = 1, batch_elems = 1, rows = 1;
    for (int64_t d = 0; d < b; ++d) batches *= x->dim(static_cast<size_t>(d));
    for (size_t d = static_cast<size_t>(b); d < x->rank(); ++d) batch_elems *= x->dim(d);
    for (size_t d = 0; d + 1 < idx->rank(); ++d) rows *= idx->dim(d);
    const int64_t rows_per_batch = batches > 0 ? rows / batches : 0;
    // Element strides of data's addressed dims b .. b+depth-1.
    std::vector<int64_t> stride(static_cast<size_t>(depth), 0);
    int64_t s = slice;
    for (int64_t j = depth - 1; j >= 0; --j) {
      stride[static_cast<size_t>(j)] = s;
      s *= x->dim(static_cast<size_t>(b + j));
    }
    // Every row's source offset first: an out-of-range index falls back before any copy.
    std::vector<int64_t> offsets(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      int64_t off = rows_per_batch > 0 ? (r / rows_per_batch) * batch_elems : 0;
      for (int64_t j = 0; j < depth; ++j) {
        const int64_t raw = idx->dtype() == DType::kInt64 ? idx->data<int64_t>()[r * depth + j]
                                                          : idx->data<int32_t>()[r * depth + j];
        const int64_t size = x->dim(static_cast<size_t>(b + j));
        const int64_t v = raw < 0 ? raw + size : raw;
        if (v < 0 || v >= size) return run_reference(node_, opset_, inputs, outputs);
        off += v * stride[static_cast<size_t>(j)];
      }
      offsets[static_cast<size_t>(r)] = off;
    }
    Tensor y = plain_output_tensor(x->dtype(), out_dims);
    const size_t es = dtype_size(x->dtype());
    const size_t bytes = static_cast<size_t>(slice) * es;
    const char* src = static_cast<const char*>(x->raw_data());
    char* dst = static_cast<char*>(y.raw_data());
    if (bytes > 0) {
      const bool parallel = static_cast<int64_t>(bytes) * rows >= kParallelBytes && rows > 1 && omp_get_max_threads() > 1;
#pragma omp parallel for schedule(static) if (parallel)
      for (int64_t r = 0; r < rows; ++r) {
        std::memcpy(dst + static_cast<size_t>(r) * bytes, src + static_cast<size_t>(offsets[static_cast<size_t>(r)]) * es, bytes);
      }
    }
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
};

}  // namespace

std::unique_ptr<NativeOp> make_gather_nd_op(const Node& node, int64_t opset, const Graph& graph) {
  (void)graph;
  if (node.op_type != "GatherND") return nullptr;
  return std::make_unique<GatherNDOp>(node, opset);
}

void register_gather_nd_ops(NativeOpTable& t) {
  t.add({"", "GatherND", 11, kNativeAnyOpset, fixed_width_dtypes(), make_gather_nd_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
