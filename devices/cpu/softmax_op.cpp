// Native Softmax and LogSoftmax over any axis. From opset 13 the op normalises along
// one axis: the input is viewed as [outer, D, inner] and the middle axis normalised in place
// (a channel softmax of a segmentation head, say, with no transposes): by oneDNN when inner is
// 1, by our loop otherwise. Before opset 13 the
// input is flattened to [outer, rest] at `axis` and normalised over the whole rest. From opset
// 13 a channels-last input (a 1-D convolution's output) is normalised in its memory order.
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "devices/cpu/channels_last.h"
#include "devices/cpu/loop_kernels.h"
#include "devices/cpu/small_eltwise.h"
#include "devices/cpu/native_ops.h"
#include "devices/target_clones.h"

namespace pyflame_rt {
namespace cpu {

namespace {

using dnnl::memory;

// Below this many elements the loop stays on the calling thread.
constexpr int64_t kParallelElements = int64_t{1} << 15;

// Up to this many rows (and small_eltwise.h's 4,096 elements) a last-axis softmax runs our loop
// (softmax_last_f32), not oneDNN's primitive, whose execution costs ~2 us whatever the size.
// 20 chained Softmaxes, minimum per run, 1 thread (stop 17, load 10): [1, 10] 39 -> 13 us,
// [1, 1000] 54 -> 21, [4, 1000] 88 -> 51, [16, 64] 59 -> 38, [8, 256] 64 -> 35; but [64, 64]
// 97 -> 118 (our per-row passes cost more than oneDNN's kernel over many short rows).
constexpr int64_t kSmallRows = 16;

// oneDNN's exp returns 0 below FLT_MIN (x - max < -87.3); ONNX Runtime's, like std::exp, gives
// the denormal down to 1.4e-45. A score threshold of 0 (torchvision's `scores > 0` with
// score_thresh=0) keeps a denormal score and drops a zero: SSD300's candidates differed (8725
// here against ORT's 8732). Each row holding a zero gets its zeros recomputed as
// exp(x - max + log(y_max)), y_max = 1 / sum being the row's largest output (restore_denormals;
// for the oneDNN path, rows along the last axis: our middle-axis loop gets them right itself).
// Not where only matrix products read the output (attention's softmax(QK^T) V): a product with
// a denormal operand takes a microcode assist, ~100x its cost, and the denormal changes its
// result by less than 1.2e-38 per term. Swin-T's shifted windows add a -100 mask: restored, its
// Softmax outputs made three MatMuls take 8 ms each against 0.3 ms for the others (stop 16).

// Whether every reader of `value` is a matrix product and the value is no graph output: no
// comparison or threshold can see a denormal there. A graph with subgraphs (If, Loop, Scan)
// may read it from inside one: not counted as products only.
bool read_only_by_products(const Graph& graph, const std::string& value) {
  for (const ValueInfo& out : graph.outputs) {
    if (out.name == value) return false;
  }
  bool read = false;
  for (const Node& n : graph.nodes) {
    for (const auto& [name, attr] : n.attributes) {
      if (attr.kind == AttrKind::kGraph || attr.kind == AttrKind::kGraphs) return false;
    }
    if (std::find(n.inputs.begin(), n.inputs.end(), value) == n.inputs.end()) continue;
    const bool product = (n.domain.empty() && (n.op_type == "MatMul" || n.op_type == "Gemm" || n.op_type == "Einsum")) ||
                         (n.domain == "pyflame_rt" && n.op_type == "FusedMatMul");
    if (!product) return false;
    read = true;
  }
  return read;
}

// Whether any of y[0, n) is zero: one vectorised pass (the common case ends here; a per-row scan
// with an early exit doubled a [12, 197, 197] attention softmax's time).
PFRT_TARGET_CLONES bool any_zero(const float* y, int64_t n) {
  int zeros = 0;
  for (int64_t k = 0; k < n; ++k) zeros |= y[k] == 0.f;
  return zeros != 0;
}

void restore_denormals(const float* x, float* y, int64_t outer, int64_t d, int64_t inner) {
  if (!any_zero(y, outer * d * inner)) return;
  const int64_t rows = outer * inner;
  auto row = [&](int64_t r) {
    const int64_t o = r / inner, i = r % inner;
    const float* xr = x + o * d * inner + i;
    float* yr = y + o * d * inner + i;
    bool zero = false;
    for (int64_t j = 0; j < d && !zero; ++j) zero = yr[j * inner] == 0.f;
    if (!zero) return;
    int64_t top = 0;
    for (int64_t j = 1; j < d; ++j) if (xr[j * inner] > xr[top * inner]) top = j;
    const double m = xr[top * inner], ymax = yr[top * inner];
    if (!std::isfinite(m) || !(ymax > 0)) return;  // NaN or infinite rows keep oneDNN's answer
    const double shift = std::log(ymax) - m;
    for (int64_t j = 0; j < d; ++j) {
      if (yr[j * inner] == 0.f) yr[j * inner] = static_cast<float>(std::exp(static_cast<double>(xr[j * inner]) + shift));
    }
  };
  if (rows * d < (1 << 16) || omp_get_max_threads() == 1) {
    for (int64_t r = 0; r < rows; ++r) row(r);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) row(r);
}

class SoftmaxOp : public NativeOp {
 public:
  // `restore`: recompute the outputs oneDNN flushed to zero as the denormals they are (above).
  SoftmaxOp(const Node& node, int64_t opset, bool log, bool restore)
      : node_(node), opset_(opset), log_(log), restore_(restore) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    ChannelsLastView view;
    if (opset_ >= 13 && inputs[0] && channels_last_view(*inputs[0], &view) && num_elements(view.dims) > 0) {
      // Normalised in its memory order ([N, spatial..., C]: the axis is one of them), the
      // output in the same layout: no transpose either way (the next op, often a Mul with the
      // convolution's channels-last output, takes it as it is).
      int64_t axis = node_.attr_int("axis", -1);
      if (axis < 0) axis += static_cast<int64_t>(view.dims.size());
      const auto at = std::find(view.logical_axis.begin(), view.logical_axis.end(), axis);
      if (at != view.logical_axis.end()) {
        CpuValue y = CpuValue::allocate_native(inputs[0]->native.get_desc(), inputs[0]->dims);
        RETURN_IF_ERROR(normalise(view.data, static_cast<float*>(y.native.get_data_handle()), view.dims,
                                  at - view.logical_axis.begin()));
        outputs[0] = std::move(y);
        return Status::OK();
      }
    }
    const Value& p = inputs[0]->as_plain();
    if (!p.is_tensor() || p.tensor.dtype() != DType::kFloat32 || p.tensor.rank() < 1 || p.tensor.numel() == 0) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    const Tensor& x = p.tensor;
    int64_t rank = static_cast<int64_t>(x.rank());
    int64_t axis = node_.attr_int("axis", opset_ < 13 ? 1 : -1);
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= rank) return run_reference(node_, opset_, inputs, outputs);  // it names the bad axis
    Dims dims = x.dims();
    if (opset_ < 13) {  // [outer, the rest]: one axis
      int64_t rest = 1;
      for (int64_t i = axis; i < rank; ++i) rest *= dims[static_cast<size_t>(i)];
      dims.resize(static_cast<size_t>(axis));
      dims.push_back(rest);
    }
    Tensor y = plain_output_tensor(DType::kFloat32, x.dims());
    RETURN_IF_ERROR(normalise(x.data<float>(), y.data<float>(), dims, axis));
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  // y = softmax of x (row-major `dims`) along `axis`. [outer, D] with nothing after the axis goes
  // to oneDNN's last-axis kernels; otherwise our loop with vector lanes along the inner axis
  // (oneDNN 2.6 has only its reference kernel there), split by columns over the team when large.
  Status normalise(const float* x, float* y, const Dims& dims, int64_t axis) {
    int64_t outer = 1, d = 1, inner = 1;
    for (int64_t i = 0; i < static_cast<int64_t>(dims.size()); ++i) {
      const int64_t n = dims[static_cast<size_t>(i)];
      (i < axis ? outer : i == axis ? d : inner) *= n;
    }
    if (inner > 1) {
      const bool parallel = outer * d * inner >= kParallelElements && omp_get_max_threads() > 1;
      // Split into blocks of 64 columns over a team; on one thread a row's columns in one call.
      const int64_t block = parallel ? 64 : inner, blocks = (inner + block - 1) / block;
#pragma omp parallel for collapse(2) schedule(static) if (parallel)
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t b = 0; b < blocks; ++b) {
          softmax_middle_f32(x, y, d, inner, o, o + 1, b * block, std::min(inner, (b + 1) * block), log_);
        }
      }
      return Status::OK();
    }
    if (outer <= kSmallRows && outer * d <= kSmallEltwiseElements) {
      softmax_last_f32(x, y, outer, d, log_);
      return Status::OK();
    }
    ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan, plan_for({outer, d}));
    memory src(plan->data, engine(), const_cast<float*>(x));
    memory dst(plan->data, engine(), y);
    Scratchpad scratch(plan->scratch);
    plan->prim.execute(thread_stream(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}, {DNNL_ARG_SCRATCHPAD, scratch.memory()}});
    thread_stream().wait();
    if (!log_ && restore_) restore_denormals(x, y, outer, d, 1);
    return Status::OK();
  }

  struct Plan {
    dnnl::primitive prim;
    memory::desc data, scratch;
  };

  Expected<std::shared_ptr<const Plan>> plan_for(const std::vector<int64_t>& shape) {
    return plans_.get_or_build(shape, [&] { return build_plan(shape); });
  }

  Expected<std::shared_ptr<Plan>> build_plan(const std::vector<int64_t>& shape) {
    auto plan = std::make_shared<Plan>();
    try {
      // [outer, D]: the axis is the last one, oneDNN's fast (jit) case.
      plan->data = memory::desc({shape[0], shape[1]}, memory::data_type::f32, memory::format_tag::ab);
      dnnl::primitive_attr attr;
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      if (log_) {
        dnnl::logsoftmax_forward::desc desc(dnnl::prop_kind::forward_inference, plan->data, 1);
        dnnl::logsoftmax_forward::primitive_desc pd(desc, attr, engine());
        plan->prim = dnnl::logsoftmax_forward(pd);
        plan->scratch = pd.scratchpad_desc();
      } else {
        dnnl::softmax_forward::desc desc(dnnl::prop_kind::forward_inference, plan->data, 1);
        dnnl::softmax_forward::primitive_desc pd(desc, attr, engine());
        plan->prim = dnnl::softmax_forward(pd);
        plan->scratch = pd.scratchpad_desc();
      }
    } catch (const dnnl::error& e) {
      return node_.error(StatusCode::kRuntimeError, "oneDNN could not build the ", log_ ? "log-" : "", "softmax: ", e.what());
    }
    return plan;
  }

  Node node_;
  int64_t opset_;
  bool log_;
  bool restore_;
  ShapePlanCache<Plan> plans_;  // by [outer, axis]
};

}  // namespace

std::unique_ptr<NativeOp> make_softmax_op(const Node& node, int64_t opset, const Graph& graph) {
  if (node.op_type == "Softmax") {
    return std::make_unique<SoftmaxOp>(node, opset, false, !read_only_by_products(graph, node.outputs[0]));
  }
  if (node.op_type == "LogSoftmax") return std::make_unique<SoftmaxOp>(node, opset, true, false);
  return nullptr;
}

// Both axis semantics: before opset 13 the input is coerced to 2-D at `axis`, from 13 one axis.
void register_softmax_ops(NativeOpTable& t) {
  t.add({"", "Softmax", 1, kNativeAnyOpset, {DType::kFloat32}, make_softmax_op});
  t.add({"", "LogSoftmax", 1, kNativeAnyOpset, {DType::kFloat32}, make_softmax_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
