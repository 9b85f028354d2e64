// Native pooling (MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool) on oneDNN, in the
// layout its input already has (a blocked conv output stays blocked).
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>

#include "devices/cpu/native_ops.h"
#include "graph/checked_math.h"

namespace pyflame_rt {
namespace cpu {

namespace {

using dnnl::memory;

std::atomic<uint64_t> g_own_avg_runs{0};

class PoolOp : public NativeOp {
 public:
  PoolOp(const Node& node, int64_t opset) : node_(node), opset_(opset) {
    global_ = node.op_type.rfind("Global", 0) == 0;
    max_ = node.op_type == "MaxPool" || node.op_type == "GlobalMaxPool";
  }

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    CpuValue* x = inputs[0];
    bool f32 = x->has_native || (x->plain.is_tensor() && x->plain.tensor.dtype() == DType::kFloat32);
    Dims xd = x->has_native ? x->dims : (x->plain.is_tensor() ? x->plain.tensor.dims() : Dims{});
    if (!f32 || xd.size() < 3 || xd.size() > 5) return run_reference(node_, opset_, inputs, outputs);
    memory::desc src_md = x->has_native ? x->native.get_desc() : plain_desc(xd);
    if (global_ && !max_ && xd.size() == 4) {
      if (src_md == memory::desc(to_dnnl(xd), memory::data_type::f32, memory::format_tag::aBcd8b)) {
        outputs[0] = global_average_blocked<8>(x->native, xd, memory::format_tag::aBcd8b);
        return Status::OK();
      }
      if (src_md == memory::desc(to_dnnl(xd), memory::data_type::f32, memory::format_tag::aBcd16b)) {
        outputs[0] = global_average_blocked<16>(x->native, xd, memory::format_tag::aBcd16b);
        return Status::OK();
      }
    }
    ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan, plan_for(xd, src_md));
    if (!plan) return run_reference(node_, opset_, inputs, outputs);
    memory src = x->as_native(plan->src);
    CpuValue out = CpuValue::allocate_native(plan->dst, plan->out_dims);
    if (plan->own != OwnLoop::kNone) {
      const float* in = static_cast<const float*>(src.get_data_handle());
      float* y = static_cast<float*>(out.native.get_data_handle());
      switch (plan->own) {
        case OwnLoop::kMax8c: max_pool_8c(in, y, xd, plan->out_dims, plan->window); break;
        case OwnLoop::kMax16c: max_pool_16c(in, y, xd, plan->out_dims, plan->window); break;
        case OwnLoop::kAvg8c: avg_pool_8c(in, y, xd, plan->out_dims, plan->window); break;
        case OwnLoop::kAvg16c: avg_pool_16c(in, y, xd, plan->out_dims, plan->window); break;
        case OwnLoop::kNone: break;
      }
      if (plan->own == OwnLoop::kAvg8c || plan->own == OwnLoop::kAvg16c) {
        g_own_avg_runs.fetch_add(1, std::memory_order_relaxed);
      }
      outputs[0] = std::move(out);
      return Status::OK();
    }
    Scratchpad scratch(plan->scratch);
    plan->prim.execute(thread_stream(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, out.native}, {DNNL_ARG_SCRATCHPAD, scratch.memory()}});
    thread_stream().wait();
    outputs[0] = std::move(out);
    return Status::OK();
  }

 private:
  // GlobalAveragePool over an nChw8c or nChw16c tensor (AVX2's and AVX-512's conv layouts):
  // per block of B channels, the sum of its H*W vectors. oneDNN's pooling kernel is built for
  // small windows: on EfficientNet-B0's 7x7 and 14x14 squeeze-excite inputs it took 20-40 us
  // each, on ResNet-50's 2048x7x7 60 us; this loop a few.
  template <int B>
  static CpuValue global_average_blocked(const memory& src, const Dims& xd, memory::format_tag tag) {
    const int64_t n = xd[0], blocks = (xd[1] + B - 1) / B, hw = xd[2] * xd[3];
    Dims out_dims = {xd[0], xd[1], 1, 1};
    CpuValue out = CpuValue::allocate_native(memory::desc(to_dnnl(out_dims), memory::data_type::f32, tag), out_dims);
    const float* in = static_cast<const float*>(src.get_data_handle());
    float* y = static_cast<float*>(out.native.get_data_handle());
    const float scale = 1.0f / static_cast<float>(hw);
#pragma omp parallel for schedule(static) if (n * blocks * hw >= (1 << 16))
    for (int64_t b = 0; b < n * blocks; ++b) {
      const float* p = in + b * hw * B;
      float acc[4][B] = {};  // four running sums: independent adds the compiler vectorises
      int64_t i = 0;
      for (; i + 4 <= hw; i += 4) {
        for (int r = 0; r < 4; ++r) {
          for (int c = 0; c < B; ++c) acc[r][c] += p[(i + r) * B + c];
        }
      }
      for (; i < hw; ++i) {
        for (int c = 0; c < B; ++c) acc[0][c] += p[i * B + c];
      }
      for (int c = 0; c < B; ++c) y[b * B + c] = (acc[0][c] + acc[1][c] + acc[2][c] + acc[3][c]) * scale;
    }
    return out;
  }

  struct Window {
    int64_t kh, kw, sh, sw, pad_top, pad_left;
  };

  // MaxPool over nChw8c, 2-D: per output pixel the max of its window's in-range 8-channel
  // vectors (ONNX ignores padding). oneDNN's jit kernel took 0.76 ms on ResNet-50's
  // 64x112x112 3x3/2 pool here; ONNX Runtime takes 0.18.
  // Half of an 8-channel block: GCC's vector extension at the baseline SSE width (a 32-byte
  // type without AVX enabled compiles to slow emulation).
  typedef float Vec4 __attribute__((vector_size(16)));

  static void max_pool_8c(const float* in, float* out, const Dims& xd, const Dims& od, const Window& w) {
    const int64_t planes = xd[0] * ((xd[1] + 7) / 8), h = xd[2], wd = xd[3], oh_n = od[2], ow_n = od[3];
#pragma omp parallel for collapse(2) schedule(static) if (planes * oh_n * ow_n >= 4096)
    for (int64_t p = 0; p < planes; ++p) {
      for (int64_t oh = 0; oh < oh_n; ++oh) {
        const float* plane = in + p * h * wd * 8;
        float* row = out + (p * oh_n + oh) * ow_n * 8;
        const int64_t y0 = oh * w.sh - w.pad_top;
        const int64_t ys = std::max<int64_t>(y0, 0), ye = std::min(y0 + w.kh, h);
        for (int64_t ow = 0; ow < ow_n; ++ow) {
          const int64_t x0 = ow * w.sw - w.pad_left;
          const int64_t xs = std::max<int64_t>(x0, 0), xe = std::min(x0 + w.kw, wd);
          Vec4 lo = Vec4{} - std::numeric_limits<float>::infinity(), hi = lo;
          for (int64_t y = ys; y < ye; ++y) {
            for (int64_t x = xs; x < xe; ++x) {
              Vec4 a, b;
              std::memcpy(&a, plane + (y * wd + x) * 8, sizeof(a));
              std::memcpy(&b, plane + (y * wd + x) * 8 + 4, sizeof(b));
              lo = lo > a ? lo : a;
              hi = hi > b ? hi : b;
            }
          }
          std::memcpy(row + ow * 8, &lo, sizeof(lo));
          std::memcpy(row + ow * 8 + 4, &hi, sizeof(hi));
        }
      }
    }
  }

  // The same over nChw16c (AVX-512's conv layout), one 16-float vector per tap: oneDNN's jit
  // kernel took 0.34-0.35 ms on ResNet-50's 64x112x112 3x3/2 pool here, ONNX Runtime 0.20-0.22
  // (stop 19, docs/performance.md). GCC 12 warns about _mm512_max_ps's own undefined
  // pass-through operand (never read), as in winograd_conv.cpp.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
  // One output row. It is a function of its own because clang does not give the OpenMP region
  // outlined from max_pool_16c the target attribute of its enclosing function (the fuzz and
  // sanitizer builds are clang's).
  __attribute__((target("avx512f"))) static void max_pool_16c_row(const float* plane, float* row, int64_t oh,
                                                                  const Dims& xd, const Dims& od, const Window& w) {
    const int64_t h = xd[2], wd = xd[3], ow_n = od[3];
    const int64_t y0 = oh * w.sh - w.pad_top;
    const int64_t ys = std::max<int64_t>(y0, 0), ye = std::min(y0 + w.kh, h);
    for (int64_t ow = 0; ow < ow_n; ++ow) {
      const int64_t x0 = ow * w.sw - w.pad_left;
      const int64_t xs = std::max<int64_t>(x0, 0), xe = std::min(x0 + w.kw, wd);
      __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
      for (int64_t y = ys; y < ye; ++y) {
        for (int64_t x = xs; x < xe; ++x) m = _mm512_max_ps(m, _mm512_loadu_ps(plane + (y * wd + x) * 16));
      }
      _mm512_storeu_ps(row + ow * 16, m);
    }
  }
#pragma GCC diagnostic pop

  static void max_pool_16c(const float* in, float* out, const Dims& xd, const Dims& od, const Window& w) {
    const int64_t planes = xd[0] * ((xd[1] + 15) / 16), h = xd[2], wd = xd[3], oh_n = od[2], ow_n = od[3];
#pragma omp parallel for collapse(2) schedule(static) if (planes * oh_n * ow_n >= 4096)
    for (int64_t p = 0; p < planes; ++p) {
      for (int64_t oh = 0; oh < oh_n; ++oh) {
        max_pool_16c_row(in + p * h * wd * 16, out + (p * oh_n + oh) * ow_n * 16, oh, xd, od, w);
      }
    }
  }

  // AveragePool over nChw16c / nChw8c with every window inside the input (no padding, no
  // ceil-mode overhang: every window has kh*kw taps): the sum of its vectors times 1/(kh*kw).
  // oneDNN's jit kernel took 138 us on DenseNet-121's first transition (128x56x56, 2x2/2) here,
  // ORT 75 (docs/performance.md, "DenseNet-121 and ResNet-50 (perf20, stop 20)").
  __attribute__((target("avx512f"))) static void avg_pool_16c_row(const float* plane, float* row, int64_t oh,
                                                                  const Dims& xd, const Dims& od, const Window& w) {
    const int64_t wd = xd[3], ow_n = od[3];
    const __m512 scale = _mm512_set1_ps(1.0f / static_cast<float>(w.kh * w.kw));
    const float* top = plane + oh * w.sh * wd * 16;
    for (int64_t ow = 0; ow < ow_n; ++ow) {
      const float* win = top + ow * w.sw * 16;
      __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();  // two chains: rows alternate
      for (int64_t y = 0; y < w.kh; ++y) {
        const float* r = win + y * wd * 16;
        __m512& acc = (y & 1) ? b : a;
        for (int64_t x = 0; x < w.kw; ++x) acc = _mm512_add_ps(acc, _mm512_loadu_ps(r + x * 16));
      }
      _mm512_storeu_ps(row + ow * 16, _mm512_mul_ps(_mm512_add_ps(a, b), scale));
    }
  }

  static void avg_pool_16c(const float* in, float* out, const Dims& xd, const Dims& od, const Window& w) {
    const int64_t planes = xd[0] * ((xd[1] + 15) / 16), h = xd[2], wd = xd[3], oh_n = od[2], ow_n = od[3];
#pragma omp parallel for collapse(2) schedule(static) if (planes * oh_n * ow_n >= 4096)
    for (int64_t p = 0; p < planes; ++p) {
      for (int64_t oh = 0; oh < oh_n; ++oh) {
        avg_pool_16c_row(in + p * h * wd * 16, out + (p * oh_n + oh) * ow_n * 16, oh, xd, od, w);
      }
    }
  }

  static void avg_pool_8c(const float* in, float* out, const Dims& xd, const Dims& od, const Window& w) {
    const int64_t planes = xd[0] * ((xd[1] + 7) / 8), h = xd[2], wd = xd[3], oh_n = od[2], ow_n = od[3];
    const float s = 1.0f / static_cast<float>(w.kh * w.kw);
    const Vec4 scale = {s, s, s, s};
#pragma omp parallel for collapse(2) schedule(static) if (planes * oh_n * ow_n >= 4096)
    for (int64_t p = 0; p < planes; ++p) {
      for (int64_t oh = 0; oh < oh_n; ++oh) {
        const float* top = in + p * h * wd * 8 + oh * w.sh * wd * 8;
        float* row = out + (p * oh_n + oh) * ow_n * 8;
        for (int64_t ow = 0; ow < ow_n; ++ow) {
          const float* win = top + ow * w.sw * 8;
          Vec4 lo = {}, hi = {};
          for (int64_t y = 0; y < w.kh; ++y) {
            for (int64_t x = 0; x < w.kw; ++x) {
              Vec4 a, b;
              std::memcpy(&a, win + (y * wd + x) * 8, sizeof(a));
              std::memcpy(&b, win + (y * wd + x) * 8 + 4, sizeof(b));
              lo += a;
              hi += b;
            }
          }
          lo *= scale;
          hi *= scale;
          std::memcpy(row + ow * 8, &lo, sizeof(lo));
          std::memcpy(row + ow * 8 + 4, &hi, sizeof(hi));
        }
      }
    }
  }

  // Our loops over oneDNN's blocked layouts, where they beat its pooling kernel.
  enum class OwnLoop { kNone, kMax8c, kMax16c, kAvg8c, kAvg16c };

  struct Plan {
    dnnl::pooling_forward prim;
    memory::desc src, dst, scratch;
    Dims out_dims;
    OwnLoop own = OwnLoop::kNone;  // one of our loops instead of prim
    Window window{};
  };

  // nullptr (with OK status) when this configuration is one oneDNN cannot express.
  // The source layout is part of the key: a blocked and a plain input of one shape are two plans.
  Expected<std::shared_ptr<const Plan>> plan_for(const Dims& xd, const memory::desc& src_md) {
    return plans_.get_or_build({xd, src_md}, [&] { return build_plan(xd, src_md); });
  }

  Expected<std::shared_ptr<Plan>> build_plan(const Dims& xd, const memory::desc& src_md) {
    size_t k = xd.size() - 2;
    Dims in(xd.begin() + 2, xd.end());
    Dims kernel = global_ ? in : node_.attr_ints("kernel_shape");
    std::vector<int64_t> strides = global_ ? std::vector<int64_t>(k, 1) : node_.attr_ints("strides", std::vector<int64_t>(k, 1));
    std::vector<int64_t> pads = global_ ? std::vector<int64_t>(2 * k, 0) : node_.attr_ints("pads", std::vector<int64_t>(2 * k, 0));
    std::vector<int64_t> dil = node_.attr_ints("dilations", std::vector<int64_t>(k, 1));
    std::string auto_pad = node_.attr_string("auto_pad", "NOTSET");
    bool ceil_mode = node_.attr_int("ceil_mode", 0) != 0;
    bool include_pad = node_.attr_int("count_include_pad", 0) != 0;
    if (kernel.size() != k || strides.size() != k || pads.size() != 2 * k ||
        std::any_of(dil.begin(), dil.end(), [](int64_t d) { return d != 1; }) ||
        (auto_pad != "NOTSET" && auto_pad != "VALID")) {
      return std::shared_ptr<Plan>();
    }
    if (auto_pad == "VALID") std::fill(pads.begin(), pads.end(), 0);
    // oneDNN sizes a window in int: a 65536 x 65536 average (a 1 x 1 input in huge pads) gave
    // inf (its divisor wrapped to 0). Windows past int32's elements run on the reference kernel,
    // which reads only the taps inside the input (devices/ref/kernels/nn.cpp).
    CheckedInt64 window = 1;
    for (int64_t kd : kernel) window = window * kd;
    if (window.overflowed() || window.value() > std::numeric_limits<int32_t>::max()) return std::shared_ptr<Plan>();
    memory::dims pad_l(k), pad_r(k);
    Dims out = {xd[0], xd[1]};
    for (size_t d = 0; d < k; ++d) {
      // Pads and kernel are the model's (pads of 2^62 overflowed; UBSan, kernel_run stop 15):
      // past int64 the reference kernel names the problem.
      const CheckedInt64 checked_span = CheckedInt64(in[d]) + pads[d] + pads[d + k] - kernel[d];
      if (checked_span.overflowed() || (CheckedInt64(in[d]) + pads[d]).overflowed()) return std::shared_ptr<Plan>();
      int64_t span = checked_span.value();
      if (span < 0 || strides[d] <= 0) return std::shared_ptr<Plan>();
      int64_t o = span / strides[d] + 1;
      if (ceil_mode && span % strides[d] != 0) {
        ++o;
        const CheckedInt64 last = (CheckedInt64(o) - 1) * strides[d];
        if (last.overflowed() || last.value() >= in[d] + pads[d]) --o;
      }
      int64_t right = (o - 1) * strides[d] + kernel[d] - in[d] - pads[d];
      // Padding oneDNN would have to count but ONNX does not (ceil_mode windows).
      if (!max_ && include_pad && right != pads[d + k]) return std::shared_ptr<Plan>();
      pad_l[d] = pads[d];
      pad_r[d] = std::max<int64_t>(right, 0);
      out.push_back(o);
    }
    auto alg = max_ ? dnnl::algorithm::pooling_max
                    : (include_pad ? dnnl::algorithm::pooling_avg_include_padding : dnnl::algorithm::pooling_avg_exclude_padding);
    memory::desc dst_md(to_dnnl(out), memory::data_type::f32, memory::format_tag::any);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    auto plan = std::make_shared<Plan>();
    try {
      dnnl::pooling_forward::desc desc(dnnl::prop_kind::forward_inference, alg, src_md, dst_md,
                                       memory::dims(strides.begin(), strides.end()),
                                       memory::dims(kernel.begin(), kernel.end()), pad_l, pad_r);
      dnnl::pooling_forward::primitive_desc pd(desc, attr, engine());
      plan->prim = dnnl::pooling_forward(pd);
      plan->src = pd.src_desc();
      plan->dst = pd.dst_desc();
      plan->scratch = pd.scratchpad_desc();
    } catch (const dnnl::error& e) {
      return node_.error(StatusCode::kRuntimeError, "oneDNN could not build the pooling: ", e.what());
    }
    plan->out_dims = out;
    auto blocked_8c = [](const Dims& d) {  // only for rank 4: the tag has 4 dims
      return memory::desc(to_dnnl(d), memory::data_type::f32, memory::format_tag::aBcd8b);
    };
    if (max_ && !global_ && k == 2 && plan->src == blocked_8c(xd) && plan->dst == blocked_8c(out)) {
      plan->own = OwnLoop::kMax8c;
      plan->window = {kernel[0], kernel[1], strides[0], strides[1], pads[0], pads[1]};
    }
    auto blocked_16c = [](const Dims& d) {
      return memory::desc(to_dnnl(d), memory::data_type::f32, memory::format_tag::aBcd16b);
    };
    if (max_ && !global_ && k == 2 && __builtin_cpu_supports("avx512f") && plan->src == blocked_16c(xd) &&
        plan->dst == blocked_16c(out)) {
      plan->own = OwnLoop::kMax16c;
      plan->window = {kernel[0], kernel[1], strides[0], strides[1], pads[0], pads[1]};
    }
    // Every window whole (no padding on either side): our average loops.
    const bool whole_windows = std::all_of(pads.begin(), pads.end(), [](int64_t p) { return p == 0; }) &&
                               std::all_of(pad_r.begin(), pad_r.end(), [](int64_t p) { return p == 0; });
    if (!max_ && !global_ && k == 2 && whole_windows) {
      plan->window = {kernel[0], kernel[1], strides[0], strides[1], 0, 0};
      if (__builtin_cpu_supports("avx512f") && plan->src == blocked_16c(xd) && plan->dst == blocked_16c(out)) {
        plan->own = OwnLoop::kAvg16c;
      } else if (plan->src == blocked_8c(xd) && plan->dst == blocked_8c(out)) {
        plan->own = OwnLoop::kAvg8c;
      }
    }
    return plan;
  }

  Node node_;
  int64_t opset_;
  bool global_ = false, max_ = false;
  ShapePlanCache<Plan, std::pair<Dims, memory::desc>> plans_;
};

}  // namespace

uint64_t own_average_pool_runs() { return g_own_avg_runs.load(std::memory_order_relaxed); }

std::unique_ptr<NativeOp> make_pool_op(const Node& node, int64_t opset, const Graph&) {
  if (node.op_type == "MaxPool" && node.outputs.size() > 1 && !node.outputs[1].empty()) return nullptr;  // Indices
  return std::make_unique<PoolOp>(node, opset);
}

void register_pool_ops(NativeOpTable& t) {
  for (const char* op : {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"}) {
    t.add({"", op, 1, kNativeAnyOpset, {DType::kFloat32}, make_pool_op});
  }
}

}  // namespace cpu
}  // namespace pyflame_rt
