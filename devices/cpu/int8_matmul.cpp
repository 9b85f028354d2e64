// Native int8 matmul: ONNX QLinearMatMul and MatMulInteger, and pyflame_rt.QMatMul (made from
// QDQ groups by compiler/quantization/qdq_matmul_fusion), on oneDNN's int8 matmul: u8 or s8
// activations [..., K] (rows flattened) x constant s8 weights [K, N] (reordered once into the
// kernel's packed layout), s32 accumulation, then
//   dst = out_scale[n] * (acc + bias_acc[n]) [relu] + y_zero_point
// with out_scale = a_scale * b_scale[n] / y_scale (1 for MatMulInteger's s32 output), the
// activations' zero point as a oneDNN run-time zero point, and dst u8 / s8 / f32 / s32.
// oneDNN picks the kernel for the CPU it finds (brgemm with VNNI/AMX, an int8 gemm on AVX2).
// Operands and results are plain row-major tensors (matmuls sit between reshapes and
// elementwise ops that want them plain).
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "devices/cpu/int8_ops.h"
#include "devices/cpu/packed_dnnl.h"
#include "graph/logging.h"

namespace pyflame_rt {
namespace cpu {

namespace {

using dnnl::memory;

const Tensor* constant(const Graph& g, const Node& n, size_t i) {
  if (i >= n.inputs.size() || n.inputs[i].empty()) return nullptr;
  auto it = g.initializers.find(n.inputs[i]);
  return it == g.initializers.end() ? nullptr : &it->second;
}

memory::data_type dnnl_type(DType t) {
  switch (t) {
    case DType::kUInt8: return memory::data_type::u8;
    case DType::kInt8: return memory::data_type::s8;
    case DType::kInt32: return memory::data_type::s32;
    default: return memory::data_type::f32;
  }
}

DType dtype_of(memory::data_type t) {
  switch (t) {
    case memory::data_type::u8: return DType::kUInt8;
    case memory::data_type::s8: return DType::kInt8;
    case memory::data_type::s32: return DType::kInt32;
    default: return DType::kFloat32;
  }
}

// What one node computes, settled at compile time.
struct Int8MatMulSpec {
  DType src = DType::kUInt8;
  memory::data_type dst = memory::data_type::u8;
  Tensor weights;             // s8 [K, N]
  std::vector<float> scales;  // output scale per column, or one
  Tensor bias;                // f32 [N] in accumulator units (oneDNN adds it before the scales), or undefined
  int32_t x_zp = 0, y_zp = 0;
  int x_zp_input = -1;        // MatMulInteger: the a_zero_point input, read on every run
  bool src_zp = true;         // oneDNN gets the activations' zero point (else 0, or folded into bias)
  bool relu = false;
};

class Int8MatMulOp : public NativeOp {
 public:
  Int8MatMulOp(const Node& node, int64_t opset, Int8MatMulSpec spec)
      : node_(node), opset_(opset), spec_(std::move(spec)) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Value& av = inputs[0]->as_plain();
    const int64_t K = spec_.weights.dim(0), N = spec_.weights.dim(1);
    if (!av.is_tensor() || av.tensor.dtype() != spec_.src || av.tensor.rank() < 2 ||
        av.tensor.dim(av.tensor.rank() - 1) != K) {
      return run_reference(node_, opset_, inputs, outputs);  // the reference names what is wrong
    }
    int32_t x_zp = spec_.x_zp;
    if (spec_.x_zp_input >= 0) {
      CpuValue* z = static_cast<size_t>(spec_.x_zp_input) < inputs.size() ? inputs[spec_.x_zp_input] : nullptr;
      if (z) {
        const Value& zv = z->as_plain();
        if (!zv.is_tensor() || zv.tensor.numel() != 1) return run_reference(node_, opset_, inputs, outputs);
        x_zp = static_cast<int32_t>(zv.tensor.value_as_int64(0));
      }
    }
    const Tensor& A = av.tensor;
    const int64_t M = A.numel() / K;
    auto plan = plan_for(M);
    if (!plan.ok()) return run_reference(node_, opset_, inputs, outputs);  // logged once
    const Plan& p = **plan;
    Dims out_dims(A.dims().begin(), A.dims().end() - 1);
    out_dims.push_back(N);
    Tensor y(dtype_of(spec_.dst), out_dims);
    memory src(p.src, engine(), const_cast<void*>(A.raw_data()));
    memory dst(p.dst, engine(), y.raw_data());
    memory::desc zp_md({1}, memory::data_type::s32, memory::format_tag::x);
    memory x_zp_m(zp_md, engine(), &x_zp);
    Scratchpad scratch(p.scratch);
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, p.weights},
                                            {DNNL_ARG_DST, dst}, {DNNL_ARG_SCRATCHPAD, scratch.memory()},
                                            {DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST, p.y_zp}};
    if (spec_.src_zp) args[DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC] = x_zp_m;
    if (spec_.bias.defined()) args[DNNL_ARG_BIAS] = p.bias;
    p.prim.execute(thread_stream(), args);
    thread_stream().wait();
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  struct Plan {
    dnnl::matmul prim;
    memory::desc src, dst, scratch;
    memory weights, bias, y_zp;
    std::string impl;    // the primitive's kernel (what its packed weights are for)
    Tensor packed_keep;  // imported packed weights that `weights` views
  };

  // A blob's key: {rows, K, N} (the plan's rows, then the weights' dims).
  void export_packed(const std::string& node, std::vector<PackedBlob>* out) const override {
    const int64_t K = spec_.weights.dim(0), N = spec_.weights.dim(1);
    plans_.for_each([&](const int64_t& m, const std::shared_ptr<const Plan>& plan) {
      if (plan && plan->weights) out->push_back(dnnl_blob(node, {m, K, N}, plan->impl, plan->weights));
    });
  }
  void import_packed(std::vector<PackedBlob> blobs) override {
    std::lock_guard<std::mutex> lock(imported_mu_);
    imported_ = std::move(blobs);
  }
  Status prepare(const Dims& key) override {
    if (key.size() != 3 || key[0] <= 0 || key[1] != spec_.weights.dim(0) || key[2] != spec_.weights.dim(1)) {
      return node_.error(StatusCode::kInvalidArgument, "packed weights for ", dims_to_string(key),
                         " do not fit an int8 matmul with weights ", spec_.weights.summary());
    }
    return plan_for(key[0]).status();
  }

  Expected<std::shared_ptr<const Plan>> plan_for(int64_t m) {
    ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan, plans_.get_or_build(m, [&]() -> std::shared_ptr<Plan> {
      auto built = build(m);
      if (built.ok()) return *built;
      // Not silent: this node now runs the (slow) reference kernel for this input shape. The
      // null plan is cached: a failure is remembered, no rebuild per run.
      log_at(LogSeverity::kWarning, LogScope{}, "int8 matmul ", node_.describe(),
             " runs on the reference kernel: ", built.status().to_string());
      return nullptr;
    }));
    if (!plan) return node_.error(StatusCode::kNotImplemented, "no int8 matmul for ", m, " rows");
    return plan;
  }

  Expected<std::shared_ptr<Plan>> build(int64_t m) {
    const int64_t K = spec_.weights.dim(0), N = spec_.weights.dim(1);
    memory::desc src_md({m, K}, dnnl_type(spec_.src), memory::format_tag::ab);
    memory::desc w_md({K, N}, memory::data_type::s8, memory::format_tag::any);
    memory::desc b_md({1, N}, memory::data_type::f32, memory::format_tag::ab);
    memory::desc dst_md({m, N}, spec_.dst, memory::format_tag::ab);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (spec_.dst != memory::data_type::s32) attr.set_output_scales(spec_.scales.size() > 1 ? 1 << 1 : 0, spec_.scales);
    if (spec_.src_zp) attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
    if (spec_.dst != memory::data_type::s32 && spec_.dst != memory::data_type::f32) {
      attr.set_zero_points(DNNL_ARG_DST, 0, {DNNL_RUNTIME_S32_VAL});
    }
    if (spec_.relu) {
      dnnl::post_ops ops;
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
      attr.set_post_ops(ops);
    }
    auto plan = std::make_shared<Plan>();
    try {
      auto desc = spec_.bias.defined() ? dnnl::matmul::desc(src_md, w_md, b_md, dst_md)
                                       : dnnl::matmul::desc(src_md, w_md, dst_md);
      dnnl::matmul::primitive_desc pd(desc, attr, engine());
      // A reference int8 kernel would be far slower than fp32: not worth it.
      std::string impl = pd.impl_info_str();
      if (impl.find("ref") != std::string::npos) {
        return node_.error(StatusCode::kNotImplemented, "oneDNN has only a reference int8 matmul (", impl, ")");
      }
      plan->prim = dnnl::matmul(pd);
      plan->src = pd.src_desc();
      plan->dst = pd.dst_desc();
      plan->scratch = pd.scratchpad_desc();
      plan->impl = impl;
      std::unique_lock<std::mutex> lock(imported_mu_);
      const std::string node = node_.name.empty() ? node_.outputs[0] : node_.name;
      if (auto w = take_dnnl_blob(imported_, node, {m, K, N}, impl, pd.weights_desc())) {
        plan->weights = w->memory;
        plan->packed_keep = w->bytes;
      } else {
        lock.unlock();
        memory user_w(memory::desc({K, N}, memory::data_type::s8, memory::format_tag::ab), engine(),
                      const_cast<void*>(spec_.weights.raw_data()));
        plan->weights = memory(pd.weights_desc(), engine());
        dnnl::reorder(user_w, plan->weights).execute(thread_stream(), user_w, plan->weights);
      }
      if (spec_.bias.defined()) plan->bias = memory(b_md, engine(), const_cast<void*>(spec_.bias.raw_data()));
      plan->y_zp = memory(memory::desc({1}, memory::data_type::s32, memory::format_tag::x), engine());
      *static_cast<int32_t*>(plan->y_zp.get_data_handle()) = spec_.y_zp;
      thread_stream().wait();
    } catch (const dnnl::error& e) {
      return node_.error(StatusCode::kNotImplemented, "oneDNN has no int8 matmul for it: ", e.what());
    }
    return plan;
  }

  Node node_;
  int64_t opset_;
  Int8MatMulSpec spec_;
  ShapePlanCache<Plan, int64_t> plans_;
  std::mutex imported_mu_;
  std::vector<PackedBlob> imported_;  // from a plan file (import_packed)
};

bool scalar(const Tensor* t, double& out) {
  if (!t || t->numel() != 1) return false;
  out = t->value_as_double(0);
  return true;
}

// The activations' zero point as a bias: sum_k (a[k] - zp) * w[k,n] = sum_k a[k] * w[k,n] - zp *
// colsum_n(w), a constant per column. In the f32 bias (accumulator units) when every such
// constant is an exact float (below 2^24), so that the matmul runs without oneDNN's zero-point
// compensation. A zero point of 0 needs neither.
void fold_zero_point(Int8MatMulSpec& spec) {
  if (spec.x_zp_input >= 0) return;  // known only at run time
  if (spec.x_zp == 0) {
    spec.src_zp = false;
    return;
  }
  const int64_t K = spec.weights.dim(0), N = spec.weights.dim(1);
  std::vector<int64_t> colsum(static_cast<size_t>(N), 0);
  const int8_t* w = spec.weights.data<int8_t>();
  for (int64_t k = 0; k < K; ++k) {
    for (int64_t n = 0; n < N; ++n) colsum[n] += w[k * N + n];
  }
  for (int64_t n = 0; n < N; ++n) {
    if (std::llabs(static_cast<long long>(spec.x_zp) * colsum[n]) >= (1LL << 24)) return;
  }
  Tensor bias(DType::kFloat32, {1, N});
  for (int64_t n = 0; n < N; ++n) {
    float b = spec.bias.defined() ? spec.bias.data<float>()[n] : 0.f;
    bias.data<float>()[n] = b - static_cast<float>(static_cast<int64_t>(spec.x_zp) * colsum[n]);
  }
  spec.bias = std::move(bias);
  spec.x_zp = 0;
  spec.src_zp = false;
}

}  // namespace

std::unique_ptr<NativeOp> make_int8_matmul_op(const Node& node, int64_t opset, const Graph& graph) {
  const bool integer = node.op_type == "MatMulInteger";
  const bool fused = node.domain == "pyflame_rt";  // QMatMul: optional output quantization, bias
  Int8MatMulSpec spec;
  const Tensor* a_zp = constant(graph, node, 2);
  const Tensor* w = constant(graph, node, integer ? 1 : 3);
  if (!w || w->dtype() != DType::kInt8 || w->rank() != 2 || node.inputs.empty()) return nullptr;
  const int64_t N = w->dim(1);
  // The weights' zero points must be 0 (oneDNN 2.6's int8 matmul takes none on the weights).
  const Tensor* w_zp = constant(graph, node, integer ? 3 : 5);
  size_t w_zp_index = integer ? 3 : 5;
  if (!w_zp && w_zp_index < node.inputs.size() && !node.inputs[w_zp_index].empty()) return nullptr;  // run-time
  for (int64_t k = 0; w_zp && k < w_zp->numel(); ++k) if (w_zp->value_as_int64(k) != 0) return nullptr;
  if (integer) {
    // A's type is known only at run time; its zero point's type tells it when present.
    if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
      if (a_zp) {
        if (a_zp->numel() != 1) return nullptr;  // per-row zero points
        spec.src = a_zp->dtype();
        spec.x_zp = static_cast<int32_t>(a_zp->value_as_int64(0));
      } else {
        spec.x_zp_input = 2;  // DynamicQuantizeLinear's output: uint8
      }
    }
    if (spec.src != DType::kUInt8 && spec.src != DType::kInt8) return nullptr;
    spec.dst = memory::data_type::s32;
    spec.scales = {1.f};
  } else {
    double as, az;
    if (!scalar(constant(graph, node, 1), as) || !a_zp || !scalar(a_zp, az)) return nullptr;
    spec.src = a_zp->dtype();
    if (spec.src != DType::kUInt8 && spec.src != DType::kInt8) return nullptr;
    spec.x_zp = static_cast<int32_t>(az);
    const Tensor* ws = constant(graph, node, 4);
    if (!ws || ws->dtype() != DType::kFloat32 || (ws->numel() != 1 && ws->numel() != N)) return nullptr;
    const bool quantized_out = node.inputs.size() > 6 && !node.inputs[6].empty();
    double ys = 1.0, yz = 0.0;
    if (quantized_out) {
      const Tensor* yzt = constant(graph, node, 7);
      if (!scalar(constant(graph, node, 6), ys) || !yzt || !scalar(yzt, yz) || !(ys > 0)) return nullptr;
      if (yzt->dtype() != DType::kUInt8 && yzt->dtype() != DType::kInt8) return nullptr;
      spec.dst = dnnl_type(yzt->dtype());
      spec.y_zp = static_cast<int32_t>(yz);
    } else if (fused) {
      spec.dst = memory::data_type::f32;
    } else {
      return nullptr;
    }
    spec.scales.resize(static_cast<size_t>(ws->numel()));
    for (size_t c = 0; c < spec.scales.size(); ++c) spec.scales[c] = static_cast<float>(as * ws->data<float>()[c] / ys);
    if (fused && node.inputs.size() > 8 && !node.inputs[8].empty()) {
      const Tensor* b = constant(graph, node, 8);
      if (!b || b->dtype() != DType::kFloat32 || b->numel() != N) return nullptr;
      // oneDNN 2.x adds the bias to the accumulator, before the output scales.
      spec.bias = Tensor(DType::kFloat32, {1, N});
      for (int64_t c = 0; c < N; ++c) {
        double acc_scale = as * ws->data<float>()[ws->numel() == 1 ? 0 : c];
        spec.bias.data<float>()[c] = static_cast<float>(b->data<float>()[c] / acc_scale);
      }
    }
    spec.relu = fused_activation(node) == "Relu";
  }
  spec.weights = *w;
  if (!has_vnni()) {
    // Without VNNI oneDNN sums u8 x s8 products in pairs into saturating int16 (vpmaddubsw):
    // 2 * 255 * 127 overflows. Weights with 7 bits (halved, twice the scale) cannot overflow.
    bool wide = false;
    for (int64_t k = 0; k < w->numel(); ++k) wide |= w->data<int8_t>()[k] > 63 || w->data<int8_t>()[k] < -64;
    if (wide) {
      if (integer) return nullptr;  // exact int32 results wanted: the reference kernel
      spec.weights = w->clone();
      int8_t* q = spec.weights.data<int8_t>();
      for (int64_t k = 0; k < spec.weights.numel(); ++k) q[k] = static_cast<int8_t>(std::nearbyint(q[k] / 2.0f));
      for (float& s : spec.scales) s *= 2.f;
      if (spec.bias.defined()) {
        for (int64_t c = 0; c < N; ++c) spec.bias.data<float>()[c] /= 2.f;
      }
    }
  }
  if (!integer) fold_zero_point(spec);
  return std::make_unique<Int8MatMulOp>(node, opset, std::move(spec));
}

void register_int8_matmul_ops(NativeOpTable& t) {
  const std::vector<DType> int8 = {DType::kUInt8, DType::kInt8};
  t.add({"", "QLinearMatMul", 10, kNativeAnyOpset, int8, make_int8_matmul_op});
  t.add({"", "MatMulInteger", 10, kNativeAnyOpset, int8, make_int8_matmul_op});
  t.add({"pyflame_rt", "QMatMul", 1, kNativeAnyOpset, int8, make_int8_matmul_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
