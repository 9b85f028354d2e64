// Native elementwise ops on oneDNN in the layout of their input: activations (Relu, Sigmoid,
// Clip with constant bounds, ...), unary math (Sqrt, Abs, Exp, Log, Neg) and Add/Sub/Mul/Div
// with one-sided broadcasting. Small plain tensors run on our loops instead (small_eltwise.h:
// a primitive's fixed cost is most of a tiny node's time).
#include <algorithm>
#include <cmath>

#include "devices/cpu/arith_op.h"
#include "devices/cpu/native_ops.h"
#include "devices/cpu/output_destination.h"
#include "devices/cpu/small_eltwise.h"

namespace pyflame_rt {
namespace cpu {

namespace {

using dnnl::memory;

bool f32_value(const CpuValue* v) {
  return v && (v->has_native || (v->plain.is_tensor() && v->plain.tensor.dtype() == DType::kFloat32));
}
Dims dims_of(const CpuValue* v) { return v->has_native ? v->dims : v->plain.tensor.dims(); }
memory::desc desc_of(const CpuValue* v) { return v->has_native ? v->native.get_desc() : plain_desc(v->plain.tensor.dims()); }

class ActivationOp : public NativeOp {
 public:
  ActivationOp(const Node& node, int64_t opset, std::string name, std::vector<float> params)
      : node_(node), opset_(opset), name_(std::move(name)), params_(std::move(params)),
        small_(small_activation_of(name_)) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    CpuValue* x = inputs[0];
    if (small_ != SmallActivation::kNone && f32_value(x)) {
      const Dims& d = x->has_native ? x->dims : x->plain.tensor.dims();
      const float* src = num_elements(d) <= kSmallEltwiseElements ? plain_f32_data(x) : nullptr;
      if (src) {
        Tensor y = plain_output_tensor(DType::kFloat32, d);
        small_activation(small_, params_, src, y.data<float>(), num_elements(d));
        outputs[0] = CpuValue::from_plain(Value(std::move(y)));
        return Status::OK();
      }
    }
    // plain_desc has format tags up to rank 6 only.
    if (!f32_value(x) || dims_of(x).size() > 6) return run_reference(node_, opset_, inputs, outputs);
    // oneDNN's eltwise post-op chains mishandle 1-d tensors: 0-d and 1-d ones (Faster R-CNN's
    // per-box level arithmetic) run as a [1, n] view for the ops oneDNN computes exactly, and
    // Log/Exp as std:: calls in double, as the reference does: oneDNN's log(1) is -1.4e-6, past
    // torchvision's 1e-6 epsilon before its LevelMapper's floor.
    if (dims_of(x).size() < 2) {
      const bool exact_in_dnnl = name_ == "Relu" || name_ == "LeakyRelu" || name_ == "Clip" || name_ == "Sqrt" ||
                                 name_ == "Abs" || name_ == "Neg";
      const bool by_std = name_ == "Log" || name_ == "Exp";
      if (!exact_in_dnnl && !by_std) return run_reference(node_, opset_, inputs, outputs);
      const Tensor& t = x->as_plain().tensor;
      Tensor y = plain_output_tensor(DType::kFloat32, t.dims());
      if (by_std) {
        const float* src = t.data<float>();
        float* dst = y.data<float>();
        for (int64_t i = 0; i < t.numel(); ++i) {
          dst[i] = static_cast<float>(name_ == "Log" ? std::log(static_cast<double>(src[i])) : std::exp(static_cast<double>(src[i])));
        }
      } else if (t.numel() > 0) {
        memory::desc md = plain_desc({1, t.numel()});
        ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan, plan_for(md));
        memory src(md, engine(), const_cast<void*>(t.raw_data())), dst(md, engine(), y.raw_data());
        Scratchpad scratch(plan->scratch);
        plan->prim.execute(thread_stream(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}, {DNNL_ARG_SCRATCHPAD, scratch.memory()}});
        thread_stream().wait();
      }
      outputs[0] = CpuValue::from_plain(Value(std::move(y)));
      return Status::OK();
    }
    memory::desc md = desc_of(x);
    ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan, plan_for(md));
    memory src = x->as_native(md);
    CpuValue out = CpuValue::allocate_native(md, dims_of(x));
    Scratchpad scratch(plan->scratch);
    plan->prim.execute(thread_stream(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, out.native}, {DNNL_ARG_SCRATCHPAD, scratch.memory()}});
    thread_stream().wait();
    outputs[0] = std::move(out);
    return Status::OK();
  }

 private:
  struct Plan {
    dnnl::primitive prim;
    memory::desc scratch;
  };

  // Single-step activations map to one eltwise algorithm (oneDNN's jit kernels); multi-step
  // ones (HardSigmoid) run as "linear x 1" carrying the steps as post-ops, a slower path.
  Expected<std::shared_ptr<const Plan>> plan_for(const memory::desc& md) {
    return plans_.get_or_build(md, [&] { return build_plan(md); });
  }

  Expected<std::shared_ptr<Plan>> build_plan(const memory::desc& md) {
    dnnl::post_ops steps;
    append_activation(steps, name_, params_);
    dnnl::algorithm alg = dnnl::algorithm::eltwise_linear;
    float alpha = 1.f, beta = 0.f;
    dnnl::post_ops extra = steps;
    if (steps.len() == 1) {
      float scale;
      steps.get_params_eltwise(0, scale, alg, alpha, beta);
      extra = dnnl::post_ops();
    }
    dnnl::primitive_attr attr;
    attr.set_post_ops(extra);
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    auto plan = std::make_shared<Plan>();
    try {
      dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_inference, alg, md, alpha, beta);
      dnnl::eltwise_forward::primitive_desc pd(desc, attr, engine());
      plan->prim = dnnl::eltwise_forward(pd);
      plan->scratch = pd.scratchpad_desc();
    } catch (const dnnl::error& e) {
      return node_.error(StatusCode::kRuntimeError, "oneDNN could not build the activation: ", e.what());
    }
    return plan;
  }

  Node node_;
  int64_t opset_;
  std::string name_;
  std::vector<float> params_;
  SmallActivation small_;  // kNone: small_activation does not compute it
  ShapePlanCache<Plan, memory::desc> plans_;
};

// Add/Sub/Mul/Div with numpy broadcasting where the larger operand fixes the output shape (the
// other may have 1s or fewer dims, like a [N,C,1,1] channel scale); runs in the larger
// operand's layout, so a blocked conv output stays blocked.
class BinaryOp : public NativeOp {
 public:
  BinaryOp(const Node& node, int64_t opset, dnnl::algorithm alg, bool commutative)
      : node_(node), opset_(opset), alg_(alg), commutative_(commutative) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    CpuValue* a = inputs[0];
    CpuValue* b = inputs[1];
    if (!f32_value(a) || !f32_value(b)) return plain_arith(node_, opset_, inputs, outputs);  // int64 index math
    Dims da = dims_of(a), db = dims_of(b);
    // The shapes below have no oneDNN primitive here: our plain loop (arith_op.h).
    if (da.size() < db.size() || (da.size() == db.size() && da != db && num_elements(da) < num_elements(db))) {
      if (!commutative_) return plain_arith(node_, opset_, inputs, outputs);
      std::swap(a, b);
      std::swap(da, db);
    }
    if (small_binary_run(a, b, da, db, outputs)) return Status::OK();
    // b must broadcast to a: same rank after leading 1s, each dim equal or 1 (rank <= 6: the
    // plain format tags there are).
    if (da.size() < 2 || da.size() > 6) return plain_arith(node_, opset_, inputs, outputs);
    Dims bd(da.size() - db.size(), 1);
    bd.insert(bd.end(), db.begin(), db.end());
    for (size_t i = 0; i < da.size(); ++i) {
      if (bd[i] != da[i] && bd[i] != 1) return plain_arith(node_, opset_, inputs, outputs);
    }
    memory::desc md0 = desc_of(a);
    if (db != da && md0 == plain_desc(da) && merged_plain_binary(a, b, da, bd, outputs)) return Status::OK();
    memory src1;
    memory::desc md1;
    if (db == da) {
      src1 = b->as_native(md0);
      md1 = md0;
    } else {
      // Broadcast operands are small: laid out like the big one when oneDNN has a jit kernel
      // for that pair (a [1,C,1,1] scale next to a blocked conv output: the plain/blocked pair
      // only has the reference kernel on AVX2, 50x slower), else plain, viewed with the padded dims.
      memory::desc same = same_layout(md0, da, bd);
      std::shared_ptr<const Plan> fast;
      if (!same.is_zero()) {
        Expected<std::shared_ptr<const Plan>> p = plan_for(md0, same);
        if (p.ok()) fast = *p;
      }
      bool use_same = fast && !fast->reference;
      if (use_same && b->has_native && b->native.get_desc() == same) {
        src1 = b->native;  // already in that layout (a squeeze-excite gate from a blocked conv)
        md1 = same;
        return run_binary(a, da, md0, src1, md1, inputs, outputs);
      }
      const Tensor& t = b->as_plain().tensor;
      // No jit kernel for the layout pair (an nChw8c conv output on AVX-512, say) and b one
      // value per channel: our loop over a's layout instead of oneDNN's reference kernel.
      if (!use_same && channel_loop(a, da, bd, md0, t, outputs)) return Status::OK();
      memory plain(plain_desc(bd), engine(), const_cast<void*>(t.raw_data()));
      md1 = use_same ? same : plain.get_desc();
      if (md1 == plain.get_desc()) {
        src1 = plain;
      } else {
        src1 = memory(md1, engine());
        dnnl::reorder(plain, src1).execute(thread_stream(), plain, src1);
      }
    }
    return run_binary(a, da, md0, src1, md1, inputs, outputs);
  }

 private:
  // Small plain operands where b is a's size, one value or a row of a's last dims: our loop
  // (small_eltwise.h). False for anything else.
  bool small_binary_run(CpuValue* a, CpuValue* b, const Dims& da, const Dims& db, std::vector<CpuValue>& outputs) {
    const int64_t n = num_elements(da);
    if (n > kSmallEltwiseElements) return false;
    size_t lead = 0;  // b's leading 1s: [1, C] or [C] on [T, C] alike
    while (lead < db.size() && db[lead] == 1) ++lead;
    const size_t core = db.size() - lead;
    if (core > da.size() || !std::equal(db.begin() + static_cast<std::ptrdiff_t>(lead), db.end(),
                                        da.end() - static_cast<std::ptrdiff_t>(core))) {
      return false;
    }
    const float* pa = plain_f32_data(a);
    const float* pb = pa ? plain_f32_data(b) : nullptr;
    if (!pb || n == 0) return false;
    Tensor y = plain_output_tensor(DType::kFloat32, da);
    small_binary(alg_, pa, pb, num_elements(db), y.data<float>(), n);
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return true;
  }

  // a (op) src1 into a fresh output, or over a when it is read for the last time; the
  // node's reference kernel when oneDNN has no kernel for the layout pair.
  Status run_binary(CpuValue* a, const Dims& da, const memory::desc& md0, const memory& src1, const memory::desc& md1,
                    const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) {
    ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan, plan_for(md0, md1));
    if (!plan) return run_reference(node_, opset_, inputs, outputs);
    memory s0 = a->as_native(md0);
    // The big operand read for the last time (EfficientNet's squeeze-excite scale): the result
    // overwrites it, sharing its buffer, instead of taking a fresh one (oneDNN binary allows
    // dst == src0).
    // Not when the output is bound by the caller (IOBinding): it goes straight to that buffer.
    bool in_place = a->last_use && a->has_native && a->native.get_desc() == md0 && a->native != src1 &&
                    !OutputDestination::pending();
    CpuValue out = in_place ? CpuValue::from_native(a->native, da, a->buffer) : CpuValue::allocate_native(md0, da);
    Scratchpad scratch(plan->scratch);
    plan->prim.execute(thread_stream(), {{DNNL_ARG_SRC_0, s0}, {DNNL_ARG_SRC_1, src1}, {DNNL_ARG_DST, out.native},
                                         {DNNL_ARG_SCRATCHPAD, scratch.memory()}});
    thread_stream().wait();
    outputs[0] = std::move(out);
    return Status::OK();
  }

  // Plain operands viewed with neighbouring dims merged where both broadcast alike: oneDNN has
  // jit kernels for few dims but takes its reference kernel for some broadcasts (Swin's
  // [1,64,3,49,49] + [1,64,1,49,49]: 100x slower; a transformer's bias [C] next to [T,1,C]:
  // 1000x), which merge to [64,3,2401] + [64,1,2401] and [T,C] + [1,C].
  // False when nothing merges or oneDNN still has only its reference kernel.
  bool merged_plain_binary(CpuValue* a, CpuValue* b, const Dims& da, const Dims& bd, std::vector<CpuValue>& outputs) {
    Dims ma, mb;
    int last = -1;  // 0: b matches a along the run, 1: b broadcasts along it
    for (size_t i = 0; i < da.size(); ++i) {
      if (da[i] == 1) continue;  // size-1 dims belong to any run
      int kind = bd[i] == da[i] ? 0 : 1;
      if (kind == last) {
        ma.back() *= da[i];
        mb.back() *= bd[i];
      } else {
        ma.push_back(da[i]);
        mb.push_back(bd[i]);
        last = kind;
      }
    }
    if (ma.empty() || ma.size() >= da.size()) return false;
    if (ma.size() == 1) {  // oneDNN's plain tags start at rank 1, but keep a leading 1 for 2-D kernels
      ma.insert(ma.begin(), 1);
      mb.insert(mb.begin(), 1);
    }
    memory::desc m0 = plain_desc(ma), m1 = plain_desc(mb);
    Expected<std::shared_ptr<const Plan>> plan = plan_for(m0, m1);
    if (!plan.ok() || !*plan || (*plan)->reference) return false;
    memory s0(m0, engine(), a->as_native(plain_desc(da)).get_data_handle());
    const Tensor& t = b->as_plain().tensor;
    memory s1(m1, engine(), const_cast<void*>(t.raw_data()));
    CpuValue out = CpuValue::allocate_native(plain_desc(da), da);
    memory dst(m0, engine(), out.native.get_data_handle());
    Scratchpad scratch((*plan)->scratch);
    (*plan)->prim.execute(thread_stream(), {{DNNL_ARG_SRC_0, s0}, {DNNL_ARG_SRC_1, s1}, {DNNL_ARG_DST, dst},
                                            {DNNL_ARG_SCRATCHPAD, scratch.memory()}});
    thread_stream().wait();
    outputs[0] = std::move(out);
    return true;
  }

  // y = a (op) b[n?, c] where bd is [1 or N, C, 1, ...]: channels-last and 4/8/16-channel blocked
  // layouts of a (blocked padding lanes are written 0). False for anything else (plain pairs
  // have oneDNN's jit kernel).
  bool channel_loop(CpuValue* a, const Dims& da, const Dims& bd, const memory::desc& md0, const Tensor& b,
                    std::vector<CpuValue>& outputs) {
    const size_t rank = da.size();
    if (rank < 3 || rank > 5 || bd[1] != da[1] || (bd[0] != 1 && bd[0] != da[0])) return false;
    for (size_t i = 2; i < rank; ++i) if (bd[i] != 1) return false;
    using tag = memory::format_tag;
    static const tag kLast[] = {tag::undef, tag::undef, tag::undef, tag::acb, tag::acdb, tag::acdeb};
    static const tag k4[] = {tag::undef, tag::undef, tag::undef, tag::aBc4b, tag::aBcd4b, tag::aBcde4b};
    static const tag k8[] = {tag::undef, tag::undef, tag::undef, tag::aBc8b, tag::aBcd8b, tag::aBcde8b};
    static const tag k16[] = {tag::undef, tag::undef, tag::undef, tag::aBc16b, tag::aBcd16b, tag::aBcde16b};
    auto is = [&](tag t) { return md0 == memory::desc(to_dnnl(da), memory::data_type::f32, t); };
    int64_t block;  // channels innermost in runs of `block`
    if (is(kLast[rank])) block = da[1];
    else if (is(k4[rank])) block = 4;
    else if (is(k8[rank])) block = 8;
    else if (is(k16[rank])) block = 16;
    else return false;
    const int64_t n = da[0], c = da[1], spatial = num_elements(da) / (n * c);
    const int64_t blocks = (c + block - 1) / block;
    const bool per_sample = bd[0] != 1;
    memory src = a->as_native(md0);
    CpuValue out = CpuValue::allocate_native(md0, da);
    const float* x = static_cast<const float*>(src.get_data_handle());
    float* y = static_cast<float*>(out.native.get_data_handle());
    const float* bv = b.data<float>();
    const dnnl::algorithm alg = alg_;
    auto apply = [alg](float v, float w) {
      switch (alg) {
        case dnnl::algorithm::binary_add: return v + w;
        case dnnl::algorithm::binary_sub: return v - w;
        case dnnl::algorithm::binary_mul: return v * w;
        default: return v / w;
      }
    };
    const int64_t rows = block == c ? n * spatial : n * blocks * spatial;
#pragma omp parallel for if (rows * block >= (1 << 15)) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      if (block == c) {  // channels-last: row r = (sample, position)
        const float* w = bv + (per_sample ? (r / spatial) * c : 0);
        for (int64_t i = 0; i < c; ++i) y[r * c + i] = apply(x[r * c + i], w[i]);
      } else {  // blocked: row r = (sample, channel block, position)
        const int64_t sample = r / (blocks * spatial), cb = (r / spatial) % blocks;
        const float* w = bv + (per_sample ? sample * c : 0);
        for (int64_t l = 0; l < block; ++l) {
          int64_t ch = cb * block + l;
          y[r * block + l] = ch < c ? apply(x[r * block + l], w[ch]) : 0.f;
        }
      }
    }
    outputs[0] = std::move(out);
    return true;
  }

  struct Plan {
    dnnl::binary prim;
    memory::desc scratch;
    bool reference = false;  // oneDNN chose its reference kernel
  };

  // A desc for dims `small` in the layout md0 (dims `big`) has, when it is one of the plain or
  // channel-blocked layouts; an empty desc otherwise.
  static memory::desc same_layout(const memory::desc& md0, const Dims& big, const Dims& small) {
    using tag = memory::format_tag;
    std::vector<tag> tags;
    if (big.size() == 3) tags = {tag::aBc8b, tag::aBc16b, tag::acb};
    if (big.size() == 4) tags = {tag::aBcd8b, tag::aBcd16b, tag::acdb};
    if (big.size() == 5) tags = {tag::aBcde8b, tag::aBcde16b, tag::acdeb};
    for (tag t : tags) {
      if (memory::desc(to_dnnl(big), memory::data_type::f32, t) == md0) {
        return memory::desc(to_dnnl(small), memory::data_type::f32, t);
      }
    }
    return memory::desc();
  }

  // nullptr (OK status) when oneDNN has no kernel for this layout pair.
  Expected<std::shared_ptr<const Plan>> plan_for(const memory::desc& md0, const memory::desc& md1) {
    return plans_.get_or_build({md0, md1}, [&] { return build_plan(md0, md1); });
  }

  std::shared_ptr<Plan> build_plan(const memory::desc& md0, const memory::desc& md1) {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    std::shared_ptr<Plan> plan;
    try {
      dnnl::binary::desc desc(alg_, md0, md1, md0);
      dnnl::binary::primitive_desc pd(desc, attr, engine());
      plan = std::make_shared<Plan>();
      plan->prim = dnnl::binary(pd);
      plan->scratch = pd.scratchpad_desc();
      plan->reference = std::string(pd.impl_info_str()).rfind("ref", 0) == 0;
    } catch (const dnnl::error&) {
      plan = nullptr;  // cached, so the reference path is taken without retrying
    }
    return plan;
  }

  Node node_;
  int64_t opset_;
  dnnl::algorithm alg_;
  bool commutative_;
  ShapePlanCache<Plan, std::pair<memory::desc, memory::desc>> plans_;
};

}  // namespace

std::unique_ptr<NativeOp> make_eltwise_op(const Node& node, int64_t opset, const Graph& graph) {
  const std::string& op = node.op_type;
  if (node.inputs.size() == 2) {
    using A = dnnl::algorithm;
    if (op == "Add") return std::make_unique<BinaryOp>(node, opset, A::binary_add, true);
    if (op == "Mul") return std::make_unique<BinaryOp>(node, opset, A::binary_mul, true);
    if (op == "Sub") return std::make_unique<BinaryOp>(node, opset, A::binary_sub, false);
    if (op == "Div") return std::make_unique<BinaryOp>(node, opset, A::binary_div, false);
  }
  std::vector<float> params;
  if (op == "LeakyRelu") params = {node.attr_float("alpha", 0.01f)};
  if (op == "Elu") params = {node.attr_float("alpha", 1.0f)};
  if (op == "HardSigmoid") params = {node.attr_float("alpha", 0.2f), node.attr_float("beta", 0.5f)};
  if (op == "Clip") {
    if (opset < 11) {
      params = {node.attr_float("min", -3.4e38f), node.attr_float("max", 3.4e38f)};
    } else {
      params = {-3.4e38f, 3.4e38f};
      for (size_t i = 1; i <= 2 && i < node.inputs.size(); ++i) {
        if (node.inputs[i].empty()) continue;
        auto it = graph.initializers.find(node.inputs[i]);
        if (it == graph.initializers.end() || it->second.numel() != 1) return nullptr;  // run-time bounds
        params[i - 1] = static_cast<float>(it->second.value_as_double(0));
      }
    }
  }
  // Sqrt..Neg: plain unary math (attentive statistics pooling's Sqrt), never fused into convs.
  static const char* kActivations[] = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid", "Clip", "Elu",
                                       "Sqrt", "Abs", "Exp", "Log", "Neg"};
  for (const char* a : kActivations) {
    if (op != a) continue;
    dnnl::post_ops probe;  // parameters oneDNN cannot take as ONNX means them go to the reference
    if (!append_activation(probe, op, params)) return nullptr;
    return std::make_unique<ActivationOp>(node, opset, op, params);
  }
  return nullptr;
}

// The binary ops from opset 7: before it they broadcast by a `broadcast`/`axis` attribute
// (legacy, not numpy) rules, which BinaryOp does not implement.
void register_eltwise_ops(NativeOpTable& t) {
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) t.add({"", op, 7, kNativeAnyOpset, {DType::kFloat32}, make_eltwise_op});
  for (const char* op : {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSwish", "HardSigmoid", "Clip", "Elu", "Sqrt", "Abs",
                         "Exp", "Log", "Neg"}) {
    t.add({"", op, 1, kNativeAnyOpset, {DType::kFloat32}, make_eltwise_op});
  }
}

}  // namespace cpu
}  // namespace pyflame_rt
