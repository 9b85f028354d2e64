// Native MatMul and Gemm on oneDNN's matmul primitive. Constant weights (initializers) are
// reordered once into the kernel's preferred layout; MatMul of two activations (attention)
// runs batched. Operands and results are plain row-major tensors.
#include <atomic>
#include <mutex>
#include <numeric>
#include <optional>

#include "devices/cpu/half_weights.h"
#include "devices/cpu/native_ops.h"
#include "devices/cpu/output_destination.h"
#include "devices/cpu/packed_dnnl.h"
#include "devices/cpu/rows_times_matrix.h"
#include "devices/cpu/small_eltwise.h"

namespace pyflame_rt {
namespace cpu {

namespace {

using dnnl::memory;

std::atomic<uint64_t> g_small_products{0};

class MatMulOp : public NativeOp {
 public:
  // `weights` is the constant [K,N] operand (or undefined when B is a run-time input);
  // `weights_transposed` when it is stored [N,K] (Gemm transB); `bias` is [N] or undefined.
  MatMulOp(const Node& node, int64_t opset, Tensor weights, bool weights_transposed, Tensor bias)
      : node_(node), opset_(opset), weights_(std::move(weights)), transposed_(weights_transposed), bias_(std::move(bias)) {
    activation_ = fused_activation(node);
    activation_params_ = fused_activation_params(node);
    small_act_ = small_activation_of(activation_);
    small_weights_ = weights_.defined() && weights_.dtype() == DType::kFloat32 && weights_.rank() == 2 &&
                     weights_.numel() <= kSmallProduct && (activation_.empty() || small_act_ != SmallActivation::kNone);
  }

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    CpuValue* a = inputs[0];
    const Value& av = a->as_plain();
    if (!av.is_tensor() || av.tensor.dtype() != DType::kFloat32 || av.tensor.rank() < 2) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    const Tensor& A = av.tensor;
    int64_t K = A.dim(A.rank() - 1), M = A.numel() / std::max<int64_t>(K, 1);
    if (weights_.defined()) {
      int64_t wk = transposed_ ? weights_.dim(1) : weights_.dim(0);
      if (wk != K) return run_reference(node_, opset_, inputs, outputs);  // ref names the mismatch
      int64_t N = transposed_ ? weights_.dim(0) : weights_.dim(1);
      if (small_product_fits(M, K, N)) return small_product(A, M, K, N, outputs);
      ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan, plan_for({M, K}, {K, N}, /*batch=*/1));
      Dims out_dims(A.dims().begin(), A.dims().end() - 1);
      out_dims.push_back(N);
      Tensor y = plain_output_tensor(DType::kFloat32, out_dims);  // a bound output: the caller's buffer
      // Half weights on an f32 kernel: the packed weights expanded for this run.
      execute(*plan, A, plan->half ? plan->half->expand() : plan->weights, y);
      outputs[0] = CpuValue::from_plain(Value(std::move(y)));
      return Status::OK();
    }
    // Two run-time operands with equal batch dims: [b..., M, K] x [b..., K, N].
    CpuValue* b = inputs[1];
    const Value& bv = b->as_plain();
    if (!bv.is_tensor() || bv.tensor.dtype() != DType::kFloat32 || bv.tensor.rank() != A.rank() ||
        !std::equal(A.dims().begin(), A.dims().end() - 2, bv.tensor.dims().begin()) ||
        bv.tensor.dim(bv.tensor.rank() - 2) != K) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    const Tensor& B = bv.tensor;
    int64_t rows = A.dim(A.rank() - 2), N = B.dim(B.rank() - 1);
    int64_t batch = A.numel() / std::max<int64_t>(rows * K, 1);
    ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan, plan_for({batch, rows, K}, {batch, K, N}, batch));
    Dims out_dims(A.dims().begin(), A.dims().end() - 1);
    out_dims.push_back(N);
    Tensor y = plain_output_tensor(DType::kFloat32, out_dims);  // a bound output: the caller's buffer
    memory bm(plan->w_desc, engine(), const_cast<void*>(B.raw_data()));
    execute(*plan, A, bm, y);
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  // Few rows times small constant weights: rows_times_panels (rows_times_matrix.h) on the
  // weights packed once, not oneDNN's matmul, whose fixed cost per execution (~2 us) is most of
  // such a product's time. Measured (10 chained Gemms [M, K] x [K, K]ᵀ, 1 thread, minimum per
  // run, Xeon with AVX-512, load 8-10, stop 17), oneDNN against ours: K 64 M 1 31 against 12 us,
  // M 16 42 against 21; K 256 M 1 117 against 85, M 16 209 against 196; K 512 M 1 451 against
  // 401, M 4 452 against 429, M 16 786 against 821; K 1024 M 1 1693 against 1576, M 4 1762
  // against 1837. At 2 threads oneDNN did not split these and the order was the same. Hence at
  // most 16 rows and 2^20 multiply-adds.
  static constexpr int64_t kSmallRows = 16, kSmallProduct = int64_t{1} << 20;
  bool small_product_fits(int64_t M, int64_t K, int64_t N) const {
    return small_weights_ && M <= kSmallRows && M * K * N <= kSmallProduct;
  }

  // y = A W (+ bias, activation) on rows_times_panels, W packed into column panels on first use.
  Status small_product(const Tensor& A, int64_t M, int64_t K, int64_t N, std::vector<CpuValue>& outputs) {
    std::call_once(panels_once_, [&] {
      const float* w = weights_.data<float>();
      panels_ = transposed_ ? pack_transposed_panels(w, N, K, K) : pack_column_panels(w, K, N, N);
    });
    Dims out_dims(A.dims().begin(), A.dims().end() - 1);
    out_dims.push_back(N);
    Tensor y = plain_output_tensor(DType::kFloat32, out_dims);
    float* out = y.data<float>();
    rows_times_panels(A.data<float>(), M, K, K, panels_.data(), N, out, N);
    g_small_products.fetch_add(1, std::memory_order_relaxed);
    if (bias_.defined()) {
      const float* b = bias_.data<float>();
      for (int64_t r = 0; r < M; ++r) {
        for (int64_t j = 0; j < N; ++j) out[r * N + j] += b[j];
      }
    }
    if (!activation_.empty()) small_activation(small_act_, activation_params_, out, out, M * N);
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

  struct Plan {
    dnnl::primitive prim;  // a matmul, or a 1x1 convolution over the rows (see conv_plan)
    memory::desc src, w_desc, dst, scratch;
    memory weights, bias;
    std::optional<PReluStep> prelu;
    std::string impl;        // the primitive's kernel (what its packed weights are for)
    bool reference = false;  // oneDNN's reference kernel
    Tensor packed_keep;      // imported packed weights that `weights` views
    std::shared_ptr<const HalfPacked> half;  // set (and `weights` empty): f32 kernel, half weights
  };

  void export_packed(const std::string& node, std::vector<PackedBlob>* out) const override {
    if (!weights_.defined()) return;  // run-time operands: nothing packed
    plans_.for_each([&](const Dims& key, const std::shared_ptr<const Plan>& plan) {
      if (plan && plan->weights) out->push_back(dnnl_blob(node, key, plan->impl, plan->weights));
      if (plan && plan->half) out->push_back(dnnl_blob(node, key, plan->impl, plan->half->expand_copy()));
    });
  }
  void import_packed(std::vector<PackedBlob> blobs) override {
    std::lock_guard<std::mutex> lock(imported_mu_);
    imported_ = std::move(blobs);
  }
  // `key` is a plan key of constant weights: {M, K} then {K, N}.
  Status prepare(const Dims& key) override {
    if (!weights_.defined() || key.size() != 4) {
      return node_.error(StatusCode::kInvalidArgument, "packed weights for ", dims_to_string(key),
                         " do not fit a matmul with constant weights");
    }
    return plan_for({key[0], key[1]}, {key[2], key[3]}, 1).status();
  }

  // The primitive's weights: imported packed bytes when they fit it (kernel `impl`, layout
  // `want`), else `user_w` reordered.
  void pack_weights(Plan& plan, const Dims& key, const std::string& impl, const memory::desc& want,
                    memory& user_w) {
    plan.impl = impl;
    std::string node = node_.name.empty() ? node_.outputs[0] : node_.name;
    std::lock_guard<std::mutex> lock(imported_mu_);
    // An f32 kernel on half weights keeps them half (plan.half; half_weights.h): `user_w` is
    // then the half weights described as f32, converted on the way.
    const bool half = is_half(weights_.dtype()) && want.data_type() == memory::data_type::f32;
    if (auto w = take_dnnl_blob(imported_, node, key, impl, want)) {
      if (half) {
        plan.half = std::make_shared<const HalfPacked>(w->memory, weights_.dtype());
        return;
      }
      plan.weights = w->memory;
      plan.packed_keep = w->bytes;
      return;
    }
    if (half) {
      plan.half = pack_half_for_f32(user_w.get_data_handle(), weights_.dtype(), user_w.get_desc(), want);
      return;
    }
    plan.weights = memory(want, engine());
    dnnl::reorder(user_w, plan.weights).execute(thread_stream(), user_w, plan.weights);
    thread_stream().wait();
  }

  void execute(const Plan& plan, const Tensor& A, const memory& w, Tensor& y) {
    memory src = source(plan, A);
    memory dst(plan.dst, engine(), y.raw_data());
    Scratchpad scratch(plan.scratch);
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, dst},
                                            {DNNL_ARG_SCRATCHPAD, scratch.memory()}};
    if (bias_.defined()) args[DNNL_ARG_BIAS] = plan.bias;
    plan.prim.execute(thread_stream(), args);
    if (plan.prelu) plan.prelu->execute(dst);
    thread_stream().wait();
  }

  // A as the plan's source: itself when the plan computes in f32, else converted (bf16).
  static memory source(const Plan& plan, const Tensor& A) {
    if (plan.src.data_type() == memory::data_type::f32) return memory(plan.src, engine(), const_cast<void*>(A.raw_data()));
    // Only matmul plans compute in bf16 (conv_plan is f32): their source is plain row-major.
    memory plain(memory::desc(plan.src.dims(), memory::data_type::f32, plain_tag(plan.src.dims().size())), engine(),
                 const_cast<void*>(A.raw_data()));
    memory converted(plan.src, engine());
    dnnl::reorder(plain, converted).execute(thread_stream(), plain, converted);
    return converted;
  }

  Expected<std::shared_ptr<const Plan>> plan_for(const Dims& src_dims, const Dims& w_dims, int64_t batch) {
    Dims key = src_dims;
    key.insert(key.end(), w_dims.begin(), w_dims.end());
    return plans_.get_or_build(key, [&]() -> Expected<std::shared_ptr<Plan>> {
      const memory::data_type cdt = weights_.defined() ? compute_type(weights_.dtype()) : memory::data_type::f32;
      Expected<std::shared_ptr<Plan>> plan = build_plan(src_dims, w_dims, batch, cdt);
      if (plan.ok() && cdt != memory::data_type::f32 && (*plan)->reference) {
        // oneDNN has only a reference bf16 kernel here: f32 with the weights converted instead.
        note_bf16_declined(node_, (*plan)->impl);
        plan = build_plan(src_dims, w_dims, batch, memory::data_type::f32);
      } else if (!plan.ok() && cdt != memory::data_type::f32) {
        note_bf16_declined(node_, plan.status().message());
        plan = build_plan(src_dims, w_dims, batch, memory::data_type::f32);
      }
      return plan;
    });
  }

  // The plan computing in `cdt` (f32, or bf16 for bf16 weights where the CPU has bf16 math).
  Expected<std::shared_ptr<Plan>> build_plan(const Dims& src_dims, const Dims& w_dims, int64_t batch,
                                             memory::data_type cdt) {
    Dims key = src_dims;  // the plan's cache key, which names its packed weights
    key.insert(key.end(), w_dims.begin(), w_dims.end());
    auto plan = std::make_shared<Plan>();
    bool constant = weights_.defined();
    Dims dst_dims = src_dims;
    dst_dims.back() = w_dims.back();
    memory::desc src_md(to_dnnl(src_dims), cdt, plain_tag(src_dims.size()));
    memory::desc dst_md(to_dnnl(dst_dims), memory::data_type::f32, plain_tag(dst_dims.size()));
    memory::desc w_md = constant ? memory::desc(to_dnnl(w_dims), cdt, memory::format_tag::any)
                                 : memory::desc(to_dnnl(w_dims), memory::data_type::f32, plain_tag(w_dims.size()));
    memory::desc b_md({1, w_dims.back()}, memory::data_type::f32, memory::format_tag::ab);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (!activation_.empty() && activation_ != "PRelu") {
      dnnl::post_ops ops;
      append_activation(ops, activation_, activation_params_);
      attr.set_post_ops(ops);
    }
    try {
      auto desc = bias_.defined() ? dnnl::matmul::desc(src_md, w_md, b_md, dst_md) : dnnl::matmul::desc(src_md, w_md, dst_md);
      dnnl::matmul::primitive_desc pd(desc, attr, engine());
      plan->impl = pd.impl_info_str();
      plan->reference = plan->impl.rfind("ref", 0) == 0;
      if (constant && cdt == memory::data_type::f32 && plan->impl.rfind("gemm", 0) == 0 &&
          src_dims[0] >= kMinConvRows) {
        if (std::shared_ptr<Plan> conv = conv_plan(key, src_dims[0], w_dims[0], w_dims[1], attr)) return conv;
      }
      plan->prim = dnnl::matmul(pd);
      plan->src = pd.src_desc();
      plan->dst = pd.dst_desc();
      plan->w_desc = pd.weights_desc();
      plan->scratch = pd.scratchpad_desc();
      if (constant) {
        // bf16 kernels take the bf16 weights as stored, f32 kernels f32 ones (half weights
        // are converted in pack_weights: oneDNN 2.6 has no f16 -> packed f32 reorder).
        memory::desc user(to_dnnl(w_dims), cdt == memory::data_type::f32 ? cdt : dnnl_type(weights_.dtype()),
                          transposed_ ? memory::format_tag::ba : memory::format_tag::ab);
        memory user_w(user, engine(), const_cast<void*>(weights_.raw_data()));
        pack_weights(*plan, key, pd.impl_info_str(), pd.weights_desc(), user_w);
      }
      if (bias_.defined()) plan->bias = memory(b_md, engine(), const_cast<void*>(bias_.raw_data()));
      if (activation_ == "PRelu") {
        plan->prelu = make_prelu_step(plan->dst, activation_params_, static_cast<int>(dst_dims.size()) - 1);
      }
    } catch (const dnnl::error& e) {
      return node_.error(StatusCode::kRuntimeError, "oneDNN could not build the matmul: ", e.what());
    }
    (void)batch;
    return plan;
  }

  // Where oneDNN has no packed matmul for this ISA (gemm-based "gemm:jit" on AVX2 repacks the
  // weights on every call), rows x constant weights run as a 1x1 convolution over M positions
  // in NHWC, whose jit kernel keeps the weights packed: 1.5-3x faster for M = 128 here. The
  // plain [M,K] rows are NHWC [1,K,M,1] as they are, so no reorder is needed. nullptr when the
  // convolution would be a reference kernel.
  static constexpr int64_t kMinConvRows = 16;
  std::shared_ptr<Plan> conv_plan(const Dims& key, int64_t M, int64_t K, int64_t N, const dnnl::primitive_attr& attr) {
    using tag = memory::format_tag;
    auto f32 = memory::data_type::f32;
    try {
      memory::desc src({1, K, M, 1}, f32, tag::acdb), dst({1, N, M, 1}, f32, tag::acdb);
      memory::desc w_any({N, K, 1, 1}, f32, tag::any), b_md({N}, f32, tag::a);
      auto desc = bias_.defined()
                      ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                        dnnl::algorithm::convolution_direct, src, w_any, b_md, dst,
                                                        {1, 1}, {0, 0}, {0, 0})
                      : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                        dnnl::algorithm::convolution_direct, src, w_any, dst, {1, 1},
                                                        {0, 0}, {0, 0});
      dnnl::convolution_forward::primitive_desc pd(desc, attr, engine());
      if (std::string(pd.impl_info_str()).rfind("jit", 0) != 0) return nullptr;
      auto plan = std::make_shared<Plan>();
      plan->prim = dnnl::convolution_forward(pd);
      plan->src = src;
      plan->dst = dst;
      plan->w_desc = pd.weights_desc();
      plan->scratch = pd.scratchpad_desc();
      // Weights [K,N] (or [N,K] when transposed) as OIhw [N,K,1,1]: K-major is "bacd".
      // An f32 kernel: half weights are converted in pack_weights (see build_plan).
      memory user_w(memory::desc({N, K, 1, 1}, f32, transposed_ ? tag::abcd : tag::bacd), engine(),
                    const_cast<void*>(weights_.raw_data()));
      pack_weights(*plan, key, pd.impl_info_str(), pd.weights_desc(), user_w);
      if (bias_.defined()) plan->bias = memory(b_md, engine(), const_cast<void*>(bias_.raw_data()));
      if (activation_ == "PRelu") plan->prelu = make_prelu_step(dst, activation_params_, 1);
      return plan;
    } catch (const dnnl::error&) {
      return nullptr;  // the matmul runs it
    }
  }

  Node node_;
  int64_t opset_;
  Tensor weights_;
  bool transposed_;
  Tensor bias_;
  std::string activation_;
  std::vector<float> activation_params_;
  SmallActivation small_act_ = SmallActivation::kNone;  // the fused activation, when small_activation has it
  bool small_weights_ = false;  // constant f32 weights small_product can take (small_product_fits)
  std::once_flag panels_once_;
  Panels panels_;  // the weights as rows_times_panels reads them, packed on first use
  ShapePlanCache<Plan> plans_;
  std::mutex imported_mu_;
  std::vector<PackedBlob> imported_;  // import_packed(): used as plans are built
};

const Tensor* f32_initializer(const Graph& g, const std::string& name) {
  auto it = g.initializers.find(name);
  return it != g.initializers.end() && it->second.dtype() == DType::kFloat32 ? &it->second : nullptr;
}

// Constant weights: f32, or half absorbed from the quantizer's Cast (half_weights.h).
const Tensor* weight_initializer(const Graph& g, const std::string& name) {
  auto it = g.initializers.find(name);
  if (it == g.initializers.end()) return nullptr;
  return it->second.dtype() == DType::kFloat32 || is_half(it->second.dtype()) ? &it->second : nullptr;
}

}  // namespace

uint64_t small_matmul_runs() { return g_small_products.load(std::memory_order_relaxed); }

std::unique_ptr<NativeOp> make_matmul_op(const Node& node, int64_t opset, const Graph& graph) {
  if (node.inputs.size() < 2) return nullptr;
  const Tensor* w = weight_initializer(graph, node.inputs[1]);
  if (node.op_type == "FusedMatMul") {
    // Constant [K,N] weights, optional constant bias over N, optional activation post-op.
    std::string act = fused_activation(node);
    std::vector<float> params = fused_activation_params(node);
    dnnl::post_ops probe;
    if (!w || w->rank() != 2) return nullptr;
    if (act == "PRelu") {
      if (params.size() != 1 && static_cast<int64_t>(params.size()) != w->dim(1)) return nullptr;
    } else if (!act.empty() && !append_activation(probe, act, params)) {
      return nullptr;
    }
    Tensor bias;
    if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
      const Tensor* c = f32_initializer(graph, node.inputs[2]);
      if (!c || c->numel() != w->dim(1)) return nullptr;
      bias = c->reshaped({1, w->dim(1)});
    }
    return std::make_unique<MatMulOp>(node, opset, *w, false, bias);
  }
  if (node.op_type == "MatMul") {
    if (w && w->rank() != 2) return nullptr;
    return std::make_unique<MatMulOp>(node, opset, w ? *w : Tensor(), false, Tensor());
  }
  // Gemm: C (if any) must be a constant bias of N elements; alpha/transA stay with the reference.
  if (!w || w->rank() != 2 || node.attr_int("transA", 0) != 0 || node.attr_float("alpha", 1.0f) != 1.0f) return nullptr;
  bool tb = node.attr_int("transB", 0) != 0;
  int64_t N = tb ? w->dim(0) : w->dim(1);
  Tensor bias;
  if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
    const Tensor* c = f32_initializer(graph, node.inputs[2]);
    if (!c || c->numel() != N || (c->rank() == 2 && c->dim(0) != 1)) return nullptr;
    bias = Tensor(DType::kFloat32, {1, N});
    float beta = node.attr_float("beta", 1.0f);
    for (int64_t i = 0; i < N; ++i) bias.data<float>()[i] = beta * c->data<float>()[i];
  }
  return std::make_unique<MatMulOp>(node, opset, *w, tb, bias);
}

void register_matmul_ops(NativeOpTable& t) {
  t.add({"", "MatMul", 1, kNativeAnyOpset, {DType::kFloat32}, make_matmul_op});
  t.add({"", "Gemm", 1, kNativeAnyOpset, {DType::kFloat32}, make_matmul_op});
  t.add({"pyflame_rt", "FusedMatMul", 1, kNativeAnyOpset, {DType::kFloat32}, make_matmul_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
