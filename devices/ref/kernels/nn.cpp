// Reference kernels: convolution and pooling over 1-3 spatial dims (Conv, ConvTranspose,
// MaxPool, AveragePool, LpPool, GlobalAveragePool, GlobalMaxPool, MaxUnpool).
//
// Conv is im2col + the reference GEMM per group; ConvTranspose is GEMM + col2im. Pooling
// walks each window directly. Everything computes in float (double for float64 inputs).
#include <cmath>
#include <limits>

#include "devices/ref/kernel_groups.h"
#include "devices/ref/kernel_util.h"
#include "devices/ref/kernels/gemm.h"
#include "devices/run_interrupt.h"
#include "graph/checked_math.h"

namespace pyflame_rt {

namespace {

// Window geometry of a conv/pool node for one input: per spatial dim.
struct Window {
  std::vector<int64_t> in, kernel, stride, dilation, pad_begin, pad_end, out;
  int64_t spatial() const { return static_cast<int64_t>(in.size()); }
};

// Reads kernel/stride/dilation/pads/auto_pad. `kernel` must already be filled. With
// `ceil_mode` the output may take one more partial window (pooling only).
Status resolve_window(const KernelContext& ctx, Window* w, bool ceil_mode) {
  const Node& n = ctx.node();
  size_t k = w->in.size();
  w->stride = n.attr_ints("strides", std::vector<int64_t>(k, 1));
  w->dilation = n.attr_ints("dilations", std::vector<int64_t>(k, 1));
  std::vector<int64_t> pads = n.attr_ints("pads", std::vector<int64_t>(2 * k, 0));
  if (w->stride.size() != k || w->dilation.size() != k || pads.size() != 2 * k || w->kernel.size() != k) {
    return ctx.error(StatusCode::kInvalidArgument, "kernel_shape/strides/dilations need ", k, " entries and pads ",
                     2 * k, " for ", k, " spatial dims");
  }
  std::string auto_pad = n.attr_string("auto_pad", "NOTSET");
  w->pad_begin.assign(pads.begin(), pads.begin() + static_cast<long>(k));
  w->pad_end.assign(pads.begin() + static_cast<long>(k), pads.end());
  w->out.resize(k);
  for (size_t i = 0; i < k; ++i) {
    if (w->stride[i] <= 0 || w->dilation[i] <= 0 || w->kernel[i] <= 0) {
      return ctx.error(StatusCode::kInvalidArgument, "kernel, strides and dilations must be positive");
    }
    // Negative pads would put a window's taps before position -2^63 (for_each_tap subtracts them).
    if (w->pad_begin[i] < 0 || w->pad_end[i] < 0) {
      return ctx.error(StatusCode::kInvalidArgument, "pads must be >= 0, got ", w->pad_begin[i], " and ", w->pad_end[i],
                       " on spatial dim ", i);
    }
    // Every term is an attribute or a dim the model chooses (pads of 2^62 overflowed the CPU
    // device's copy of this arithmetic; UBSan, kernel_run stop 15): checked, one error for all.
    const CheckedInt64 eff = (CheckedInt64(w->kernel[i]) - 1) * w->dilation[i] + 1;
    bool overflow = eff.overflowed();
    if (!overflow && (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER")) {
      const int64_t out = w->in[i] / w->stride[i] + (w->in[i] % w->stride[i] != 0);  // ceil, without in + stride
      const CheckedInt64 need = (CheckedInt64(out) - 1) * w->stride[i] + eff - w->in[i];
      overflow = need.overflowed();
      const int64_t total = overflow ? 0 : std::max<int64_t>(0, need.value());
      w->pad_begin[i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      w->pad_end[i] = total - w->pad_begin[i];
    } else if (auto_pad == "VALID") {
      w->pad_begin[i] = w->pad_end[i] = 0;
    } else if (auto_pad != "NOTSET") {
      return ctx.error(StatusCode::kInvalidArgument, "auto_pad must be NOTSET, SAME_UPPER, SAME_LOWER or VALID, got '",
                       auto_pad, "'");
    }
    const CheckedInt64 padded = CheckedInt64(w->in[i]) + w->pad_begin[i] + w->pad_end[i];
    const CheckedInt64 span = padded - eff;
    const CheckedInt64 start_limit = CheckedInt64(w->in[i]) + w->pad_begin[i];
    if (overflow || span.overflowed() || start_limit.overflowed()) {
      return ctx.error(StatusCode::kInvalidArgument, "window on spatial dim ", i, " (input ", w->in[i], ", kernel ",
                       w->kernel[i], ", dilation ", w->dilation[i], ", pads ", w->pad_begin[i], ", ", w->pad_end[i],
                       ") passes int64");
    }
    if (span.value() < 0) {
      return ctx.error(StatusCode::kInvalidArgument, "kernel extent ", eff.value(), " exceeds padded input ",
                       padded.value(), " on spatial dim ", i);
    }
    int64_t out = span.value() / w->stride[i] + 1;
    if (ceil_mode && span.value() % w->stride[i] != 0) {
      ++out;
      // The last window must start inside the input or its leading padding (a start past int64
      // is past it too).
      const CheckedInt64 last = (CheckedInt64(out) - 1) * w->stride[i];
      if (last.overflowed() || last.value() >= start_limit.value()) --out;
    }
    w->out[i] = out;
  }
  return Status::OK();
}

// Visits every (output position, kernel offset) pair of a window: f(out_flat, in_flat_or_-1, k_flat).
// A model sizes the window: one LpPool walked its taps for 32 s past a 5 s deadline (kernel_run,
// stop 15). The run's deadline and termination are read along the taps (`poll`, the caller's,
// one per kernel call): between output positions was not enough, as pads let one output
// position own a 10^6 x 10^6 window of a 1 x 1 input.
template <typename F>
Status for_each_tap(const Window& w, InterruptPoll& poll, F f) {
  size_t k = w.in.size();
  std::vector<int64_t> o(k, 0), t(k, 0);
  int64_t n_out = num_elements(w.out), n_k = num_elements(w.kernel);
  const int64_t tap_work = static_cast<int64_t>(k) + 1;
  for (int64_t of = 0; of < n_out; ++of) {
    std::fill(t.begin(), t.end(), 0);
    for (int64_t kf = 0; kf < n_k; ++kf) {
      RETURN_IF_ERROR(poll.tick(tap_work));
      int64_t in_flat = 0;
      bool inside = true;
      for (size_t d = 0; d < k; ++d) {
        int64_t pos = o[d] * w.stride[d] - w.pad_begin[d] + t[d] * w.dilation[d];
        if (pos < 0 || pos >= w.in[d]) { inside = false; break; }
        in_flat = in_flat * w.in[d] + pos;
      }
      f(of, inside ? in_flat : -1, kf, t);
      next_index(t, w.kernel);
    }
    next_index(o, w.out);
  }
  return Status::OK();
}

// The taps of every output position that fall inside the input, in for_each_tap's order:
// f(out_flat, in_flat, out_coords). Pooling reads nothing from padding (MaxPool and LpPool skip
// it, AveragePool counts it analytically: pad_counts), so the padding is not walked: per
// output position and spatial dim the kernel offsets landing inside the input are a range,
// computed. An LpPool with pads of 2^16 around a 1 x 1 input walked 2^31 padding taps for one
// output (seconds, bounded only by the run's deadline); it now visits the one tap that reads.
template <typename F>
Status for_each_inside_tap(const Window& w, InterruptPoll& poll, F f) {
  const size_t k = w.in.size();
  std::vector<int64_t> o(k, 0), lo(k), hi(k), t(k);
  const int64_t n_out = num_elements(w.out);
  for (int64_t of = 0; of < n_out; ++of, next_index(o, w.out)) {
    RETURN_IF_ERROR(poll.tick(static_cast<int64_t>(k) + 1));
    bool empty = false;
    for (size_t d = 0; d < k && !empty; ++d) {
      // The window's first position; start + t * dilation must lie in [0, in).
      const int64_t start = o[d] * w.stride[d] - w.pad_begin[d];
      lo[d] = start >= 0 ? 0 : (-start + w.dilation[d] - 1) / w.dilation[d];
      const int64_t last = w.in[d] - 1 - start;  // no overflow: resolve_window checked in + pad_begin
      hi[d] = last < 0 ? -1 : std::min(w.kernel[d] - 1, last / w.dilation[d]);
      empty = lo[d] > hi[d];
    }
    if (empty) continue;
    t = lo;
    for (bool more = true; more;) {
      RETURN_IF_ERROR(poll.tick(static_cast<int64_t>(k) + 1));
      int64_t in_flat = 0;
      for (size_t d = 0; d < k; ++d) in_flat = in_flat * w.in[d] + o[d] * w.stride[d] - w.pad_begin[d] + t[d] * w.dilation[d];
      f(of, in_flat, o);
      more = false;
      for (size_t d = k; d-- > 0;) {  // the next offset of the box [lo, hi], row-major
        if (t[d] < hi[d]) { ++t[d]; more = true; break; }
        t[d] = lo[d];
      }
    }
  }
  return Status::OK();
}

// AveragePool's count_include_pad divisor per output position: the taps inside the input or
// its declared pads (not the extra ceil_mode window), a product of per-dim counts.
std::vector<double> pad_counts(const Window& w) {
  const size_t k = w.in.size();
  std::vector<int64_t> o(k, 0);
  std::vector<double> counts(static_cast<size_t>(num_elements(w.out)));
  for (size_t of = 0; of < counts.size(); ++of, next_index(o, w.out)) {
    double c = 1;
    for (size_t d = 0; d < k; ++d) {
      // Offsets t with o * stride - pad_begin + t * dilation < in + pad_end (the start is never before -pad_begin).
      const int64_t room = w.in[d] + w.pad_end[d] + w.pad_begin[d] - 1 - o[d] * w.stride[d];
      c *= room < 0 ? 0.0 : static_cast<double>(std::min(w.kernel[d] - 1, room / w.dilation[d]) + 1);
    }
    counts[of] = c;
  }
  return counts;
}

Status check_float_input(const KernelContext& ctx, const Tensor& x, size_t min_rank, bool allow_int = false) {
  if (!dtype_is_float(x.dtype()) && !(allow_int && dtype_is_integer(x.dtype()))) {
    return ctx.error(StatusCode::kInvalidArgument, "input must be a float type, got ", dtype_name(x.dtype()));
  }
  if (x.rank() < min_rank) {
    return ctx.error(StatusCode::kInvalidArgument, "input must be [N, C, spatial...] (rank >= ", min_rank,
                     "), got ", dims_to_string(x.dims()));
  }
  return Status::OK();
}

template <typename T>
Status conv_typed(KernelContext& ctx, const Tensor& x, const Tensor& w, const Tensor* b, Window& win, int64_t group) {
  int64_t N = x.dim(0), C = x.dim(1), M = w.dim(0), Cg = C / group, Mg = M / group;
  int64_t in_sp = num_elements(win.in), out_sp = num_elements(win.out), ksz = num_elements(win.kernel);
  Dims out_dims = {N, M};
  out_dims.insert(out_dims.end(), win.out.begin(), win.out.end());
  // No image or no output channel: the empty output is the answer, however large its rows
  // (as the pools answer).
  if (N == 0 || M == 0) {
    ctx.set_output(0, Tensor(DTypeOf<T>::value, out_dims));
    return Status::OK();
  }
  // The output and the im2col buffer (channels x taps x output positions) must count their
  // elements in int64: pads a model chooses can make an output row of 2^62 (kernel_run, stop
  // 22: 54 x (2^63 - 1) in the buffer's size; num_elements saturates at 2^63 - 1).
  const CheckedInt64 y_size = CheckedInt64(N) * M * out_sp, col_size = CheckedInt64(Cg) * ksz * out_sp;
  if (out_sp == std::numeric_limits<int64_t>::max() || y_size.overflowed() || col_size.overflowed()) {
    return ctx.error(StatusCode::kInvalidArgument, "the output shape ", dims_to_string(out_dims),
                     " (or its ", Cg * ksz, " taps per output position) has more elements than int64 holds");
  }
  Tensor y(DTypeOf<T>::value, out_dims);
  std::vector<T> col(static_cast<size_t>(Cg * ksz * out_sp));
  const T* xp = x.data<T>();
  const T* wp = w.data<T>();
  T* yp = y.data<T>();
  InterruptPoll poll;
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t g = 0; g < group; ++g) {
      for (int64_t c = 0; c < Cg; ++c) {
        const T* xc = xp + (n * C + g * Cg + c) * in_sp;
        RETURN_IF_ERROR(for_each_tap(win, poll, [&](int64_t of, int64_t in_flat, int64_t kf, const std::vector<int64_t>&) {
          col[static_cast<size_t>((c * ksz + kf) * out_sp + of)] = in_flat >= 0 ? xc[in_flat] : T(0);
        }));
      }
      RETURN_IF_ERROR(ref_gemm<T>(Mg, out_sp, Cg * ksz, T(1), wp + g * Mg * Cg * ksz, Cg * ksz, false, col.data(),
                                  out_sp, false, T(0), yp + (n * M + g * Mg) * out_sp, out_sp));
    }
    if (b) {
      for (int64_t m = 0; m < M; ++m) {
        T bias = b->data<T>()[m];
        T* row = yp + (n * M + m) * out_sp;
        for (int64_t i = 0; i < out_sp; ++i) row[i] += bias;
      }
    }
  }
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

Status conv_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& x0 = *ctx.input(0);
  const Tensor& w0 = *ctx.input(1);
  RETURN_IF_ERROR(check_float_input(ctx, x0, 3));
  int64_t group = ctx.node().attr_int("group", 1);
  if (w0.rank() != x0.rank()) {
    return ctx.error(StatusCode::kInvalidArgument, "weight rank ", w0.rank(), " must equal input rank ", x0.rank());
  }
  // W's channels times group, checked: both come from the model (2^62 x 4 overflowed; UBSan).
  CheckedInt64 expected_c = CheckedInt64(w0.dim(1)) * std::max<int64_t>(group, 1);
  if (group <= 0 || x0.dim(1) % group || w0.dim(0) % group || expected_c.overflowed() ||
      expected_c.value() != x0.dim(1)) {
    return ctx.error(StatusCode::kInvalidArgument, "input has ", x0.dim(1), " channels, weight expects ",
                     expected_c.overflowed() ? std::string("more than int64 holds") : std::to_string(expected_c.value()),
                     " (", w0.dim(1), " per group x group ", group, ")");
  }
  const Tensor* b0 = ctx.input(2);
  if (b0 && b0->numel() != w0.dim(0)) {
    return ctx.error(StatusCode::kInvalidArgument, "bias has ", b0->numel(), " elements, expected ", w0.dim(0));
  }
  Window win;
  win.in.assign(x0.dims().begin() + 2, x0.dims().end());
  const Dims w_spatial(w0.dims().begin() + 2, w0.dims().end());
  win.kernel = ctx.node().attr_ints("kernel_shape", w_spatial);
  if (win.kernel != w_spatial) {  // the taps would read W by the attribute's extent (kernel_run, stop 16)
    return ctx.error(StatusCode::kInvalidArgument, "kernel_shape ", dims_to_string(win.kernel),
                     " does not match the weight's spatial dims ", dims_to_string(w_spatial));
  }
  RETURN_IF_ERROR(resolve_window(ctx, &win, false));
  DType compute = x0.dtype() == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
  Tensor x = x0.dtype() == compute ? x0 : convert_tensor(x0, compute);
  Tensor w = w0.dtype() == compute ? w0 : convert_tensor(w0, compute);
  Tensor b;
  if (b0) b = b0->dtype() == compute ? *b0 : convert_tensor(*b0, compute);
  std::vector<Value> out(1);
  KernelContext sub(ctx.node(), ctx.opset(), {}, &out, nullptr);
  Status st = compute == DType::kFloat64 ? conv_typed<double>(sub, x, w, b0 ? &b : nullptr, win, group)
                                         : conv_typed<float>(sub, x, w, b0 ? &b : nullptr, win, group);
  RETURN_IF_ERROR(st);
  const Tensor& y = out[0].tensor;
  ctx.set_output(0, y.dtype() == x0.dtype() ? y : convert_tensor(y, x0.dtype()));
  return Status::OK();
}

Status conv_transpose_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& x0 = *ctx.input(0);
  const Tensor& w0 = *ctx.input(1);
  RETURN_IF_ERROR(check_float_input(ctx, x0, 3));
  const Node& node = ctx.node();
  int64_t group = node.attr_int("group", 1);
  int64_t N = x0.dim(0), C = x0.dim(1);
  if (w0.rank() != x0.rank() || group <= 0 || w0.dim(0) != C || C % group) {
    return ctx.error(StatusCode::kInvalidArgument, "weight ", dims_to_string(w0.dims()), " does not match input ",
                     dims_to_string(x0.dims()), " with group ", group, " (weight dim 0 must equal input channels ", C, ")");
  }
  // With C = 0 any group divides C: the output channels Mg x group are checked.
  CheckedInt64 checked_m = CheckedInt64(w0.dim(1)) * group;
  if (checked_m.overflowed()) {
    return ctx.error(StatusCode::kInvalidArgument, "output channels ", w0.dim(1), " per group x group ", group,
                     " pass int64");
  }
  int64_t Mg = w0.dim(1), M = checked_m.value(), Cg = C / group;
  size_t k = x0.rank() - 2;
  std::vector<int64_t> in(x0.dims().begin() + 2, x0.dims().end());
  const Dims w_spatial(w0.dims().begin() + 2, w0.dims().end());
  std::vector<int64_t> kernel = node.attr_ints("kernel_shape", w_spatial);
  // The col2im walk reads W and the bias by these extents, as Conv's taps do (kernel_shape [6]
  // with W [4, 1, 1]: outputs changed from run to run; kernel_run stop 17 run 1).
  if (kernel != w_spatial) {
    return ctx.error(StatusCode::kInvalidArgument, "kernel_shape ", dims_to_string(kernel),
                     " does not match the weight's spatial dims ", dims_to_string(w_spatial));
  }
  if (const Tensor* b = ctx.input(2); b && b->numel() != M) {
    return ctx.error(StatusCode::kInvalidArgument, "bias has ", b->numel(), " elements, expected ", M,
                     " (the output channels)");
  }
  std::vector<int64_t> stride = node.attr_ints("strides", std::vector<int64_t>(k, 1));
  std::vector<int64_t> dil = node.attr_ints("dilations", std::vector<int64_t>(k, 1));
  std::vector<int64_t> out_pad = node.attr_ints("output_padding", std::vector<int64_t>(k, 0));
  std::vector<int64_t> pads = node.attr_ints("pads", std::vector<int64_t>(2 * k, 0));
  std::vector<int64_t> out_shape = node.attr_ints("output_shape");
  std::string auto_pad = node.attr_string("auto_pad", "NOTSET");
  if (kernel.size() != k || stride.size() != k || dil.size() != k || out_pad.size() != k || pads.size() != 2 * k) {
    return ctx.error(StatusCode::kInvalidArgument, "attributes do not match ", k, " spatial dims");
  }
  if (out_shape.size() == k + 2) out_shape.erase(out_shape.begin(), out_shape.begin() + 2);
  // output_shape is read per spatial dim below, like the lists above: [2^63 - 1, 2^63 - 1] on a
  // 3-D input was read one past its end (ASan, kernel_run corpus replay, stop 20). The CPU
  // device's geometry refused it and left the node to this kernel.
  if (!out_shape.empty() && out_shape.size() != k) {
    return ctx.error(StatusCode::kInvalidArgument, "output_shape ", dims_to_string(out_shape), " has ",
                     out_shape.size(), " values, expected ", k, " (the spatial dims) or ", k + 2);
  }
  std::vector<int64_t> out(k);
  for (size_t d = 0; d < k; ++d) {
    // Every term is an attribute or a dim the model chooses: the chain is checked once at the
    // end (kernel_shape INT64_MIN made (k - 1) overflow; UBSan, kernel_run).
    CheckedInt64 eff = (CheckedInt64(kernel[d]) - 1) * dil[d] + 1;
    CheckedInt64 full = CheckedInt64(stride[d]) * (CheckedInt64(in[d]) - 1) + out_pad[d] + eff;
    CheckedInt64 lo = pads[d], hi = pads[d + k];
    if (!out_shape.empty() || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      CheckedInt64 target = !out_shape.empty() ? CheckedInt64(out_shape[d]) : CheckedInt64(in[d]) * stride[d];
      CheckedInt64 total = full - target;
      if (!total.overflowed()) {
        bool upper = auto_pad != "SAME_LOWER";
        lo = upper ? total.value() / 2 : total.value() - total.value() / 2;
        hi = total - lo;
      } else {
        lo = total;
      }
    } else if (auto_pad == "VALID") {
      lo = hi = 0;
    }
    CheckedInt64 size = full - lo - hi;
    if (size.overflowed()) {
      return ctx.error(StatusCode::kInvalidArgument, "output size on spatial dim ", d, " (input ", in[d], ", kernel ",
                       kernel[d], ", stride ", stride[d], ", dilation ", dil[d], ", output_padding ", out_pad[d],
                       ", pads ", pads[d], ", ", pads[d + k], ") passes int64");
    }
    pads[d] = lo.value();
    pads[d + k] = hi.value();
    out[d] = size.value();
    if (out[d] <= 0) return ctx.error(StatusCode::kInvalidArgument, "output size ", out[d], " on spatial dim ", d, " is not positive");
  }
  Tensor x = convert_tensor(x0, DType::kFloat64), w = convert_tensor(w0, DType::kFloat64);
  int64_t in_sp = num_elements(in), out_sp = num_elements(out), ksz = num_elements(kernel);
  Dims out_dims = {N, M};
  out_dims.insert(out_dims.end(), out.begin(), out.end());
  Tensor y(DType::kFloat64, out_dims);
  std::vector<double> col(static_cast<size_t>(Mg * ksz * in_sp));
  std::vector<int64_t> ipos(k), t(k);
  InterruptPoll poll;  // the col2im walk below: Mg x kernel taps x input positions
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t g = 0; g < group; ++g) {
      // col[Mg*ksz, in_sp] = W_g^T [Mg*ksz, Cg] x X_g [Cg, in_sp]
      RETURN_IF_ERROR(ref_gemm<double>(Mg * ksz, in_sp, Cg, 1.0, w.data<double>() + g * Cg * Mg * ksz, Mg * ksz, true,
                                       x.data<double>() + (n * C + g * Cg) * in_sp, in_sp, false, 0.0, col.data(),
                                       in_sp));
      for (int64_t m = 0; m < Mg; ++m) {
        double* yc = y.data<double>() + (n * M + g * Mg + m) * out_sp;
        for (int64_t kf = 0; kf < ksz; ++kf) {
          RETURN_IF_ERROR(poll.tick(in_sp * (static_cast<int64_t>(k) + 1) + 1));
          int64_t rem = kf;
          for (int64_t d = static_cast<int64_t>(k) - 1; d >= 0; --d) { t[static_cast<size_t>(d)] = rem % kernel[static_cast<size_t>(d)]; rem /= kernel[static_cast<size_t>(d)]; }
          for (int64_t i = 0; i < in_sp; ++i) {
            int64_t r = i, o = 0;
            bool inside = true;
            for (int64_t d = static_cast<int64_t>(k) - 1; d >= 0; --d) { ipos[static_cast<size_t>(d)] = r % in[static_cast<size_t>(d)]; r /= in[static_cast<size_t>(d)]; }
            for (size_t d = 0; d < k && inside; ++d) {
              int64_t p = ipos[d] * stride[d] + t[d] * dil[d] - pads[d];
              if (p < 0 || p >= out[d]) inside = false;
              o = o * out[d] + p;
            }
            if (inside) yc[o] += col[static_cast<size_t>((m * ksz + kf) * in_sp + i)];
          }
        }
      }
    }
    if (const Tensor* b = ctx.input(2)) {
      for (int64_t m = 0; m < M; ++m) {
        double bias = b->value_as_double(m);
        double* yc = y.data<double>() + (n * M + m) * out_sp;
        for (int64_t i = 0; i < out_sp; ++i) yc[i] += bias;
      }
    }
  }
  ctx.set_output(0, convert_tensor(y, x0.dtype()));
  return Status::OK();
}

enum class PoolKind { kMax, kAverage, kLp };

template <PoolKind kKind>
Status pool_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  RETURN_IF_ERROR(check_float_input(ctx, x, 3, kKind == PoolKind::kMax));
  const Node& node = ctx.node();
  Window win;
  win.in.assign(x.dims().begin() + 2, x.dims().end());
  win.kernel = node.attr_ints("kernel_shape");
  if (win.kernel.size() != win.in.size()) {
    return ctx.error(StatusCode::kInvalidArgument, "kernel_shape must have ", win.in.size(), " entries, got ",
                     win.kernel.size());
  }
  RETURN_IF_ERROR(resolve_window(ctx, &win, node.attr_int("ceil_mode", 0) != 0));
  bool include_pad = node.attr_int("count_include_pad", 0) != 0;
  double p = node.attr_int("p", 2);
  int64_t N = x.dim(0), C = x.dim(1), in_sp = num_elements(win.in), out_sp = num_elements(win.out);
  Dims out_dims = {N, C};
  out_dims.insert(out_dims.end(), win.out.begin(), win.out.end());
  Tensor y(x.dtype(), out_dims);
  Tensor indices(DType::kInt64, out_dims);
  bool col_major = node.attr_int("storage_order", 0) != 0;
  // The per-plane scratch below is sized by the output plane alone, which no tensor's charge
  // bounds when there are no planes: N or C 0 with pads of 2^62 asked for 32 GiB (ASan
  // out-of-memory, replay of kernel_run's corpus, stop 20). An empty output is the answer.
  if (y.numel() == 0) {
    ctx.set_output(0, std::move(y));
    if (kKind == PoolKind::kMax && ctx.output_wanted(1)) ctx.set_output(1, std::move(indices));
    return Status::OK();
  }
  std::vector<double> acc(static_cast<size_t>(out_sp));
  std::vector<double> cnt(static_cast<size_t>(out_sp));
  std::vector<int64_t> arg(static_cast<size_t>(out_sp));
  const std::vector<double> padded_cnt = kKind == PoolKind::kAverage && include_pad ? pad_counts(win) : std::vector<double>();
  std::vector<double> xin(static_cast<size_t>(in_sp));
  InterruptPoll poll;
  for (int64_t nc = 0; nc < N * C; ++nc) {
    for (int64_t i = 0; i < in_sp; ++i) xin[static_cast<size_t>(i)] = x.value_as_double(nc * in_sp + i);
    std::fill(acc.begin(), acc.end(), kKind == PoolKind::kMax ? -std::numeric_limits<double>::infinity() : 0.0);
    std::fill(cnt.begin(), cnt.end(), 0.0);
    std::fill(arg.begin(), arg.end(), -1);
    RETURN_IF_ERROR(for_each_inside_tap(win, poll, [&](int64_t of, int64_t in_flat, const std::vector<int64_t>&) {
      size_t o = static_cast<size_t>(of);
      double v = xin[static_cast<size_t>(in_flat)];
      if (kKind == PoolKind::kMax) {
        if (v > acc[o] || arg[o] < 0) { acc[o] = v; arg[o] = in_flat; }
      } else if (kKind == PoolKind::kAverage) {
        acc[o] += v;
        ++cnt[o];
      } else {
        acc[o] += std::pow(std::fabs(v), p);
      }
    }));
    if (kKind == PoolKind::kAverage && include_pad) cnt = padded_cnt;
    for (int64_t o = 0; o < out_sp; ++o) {
      size_t i = static_cast<size_t>(o);
      double v = acc[i];
      if (kKind == PoolKind::kAverage) v = cnt[i] ? v / cnt[i] : 0.0;
      if (kKind == PoolKind::kLp) v = std::pow(v, 1.0 / p);
      dispatch_numeric(x.dtype(), [&](auto tag) {
        using T = typename decltype(tag)::type;
        T out = from_double<T>(v);
        // A max window that covers only padding holds T's lowest value, as in ONNX Runtime and
        // oneDNN (the reference gave -inf; kernel_run found the devices disagreeing).
        if constexpr (std::numeric_limits<T>::is_specialized) {
          if (kKind == PoolKind::kMax && arg[i] < 0) out = std::numeric_limits<T>::lowest();
        }
        y.data<T>()[nc * out_sp + o] = out;
      });
      if (kKind == PoolKind::kMax) {
        int64_t flat = arg[i];
        // A window of only padding has no element (flat -1): nothing to re-linearise, and with
        // an empty spatial dim the walk divided by it (UBSan, kernel_run stop 17 run 4).
        if (col_major && flat >= 0) {  // re-linearise the spatial index column-major
          int64_t rem = flat, cm = 0, mul = 1;
          std::vector<int64_t> coord(win.in.size());
          for (int64_t d = win.spatial() - 1; d >= 0; --d) { coord[static_cast<size_t>(d)] = rem % win.in[static_cast<size_t>(d)]; rem /= win.in[static_cast<size_t>(d)]; }
          for (size_t d = 0; d < coord.size(); ++d) { cm += coord[d] * mul; mul *= win.in[d]; }
          flat = cm;
        }
        indices.data<int64_t>()[nc * out_sp + o] = nc * in_sp + flat;
      }
    }
  }
  ctx.set_output(0, std::move(y));
  if (kKind == PoolKind::kMax && ctx.output_wanted(1)) ctx.set_output(1, std::move(indices));
  return Status::OK();
}

template <bool kMax>
Status global_pool_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  RETURN_IF_ERROR(check_float_input(ctx, x, 3));
  int64_t N = x.dim(0), C = x.dim(1), sp = x.numel() / std::max<int64_t>(N * C, 1);
  Dims out_dims(x.rank(), 1);
  out_dims[0] = N;
  out_dims[1] = C;
  std::vector<double> r(static_cast<size_t>(N * C));
  for (int64_t nc = 0; nc < N * C; ++nc) {
    double acc = kMax ? -INFINITY : 0.0;
    for (int64_t i = 0; i < sp; ++i) {
      double v = x.value_as_double(nc * sp + i);
      acc = kMax ? std::max(acc, v) : acc + v;
    }
    r[static_cast<size_t>(nc)] = kMax ? acc : acc / static_cast<double>(sp);
  }
  ctx.set_output(0, convert_tensor(Tensor::from_vector<double>(out_dims, r), x.dtype()));
  return Status::OK();
}

Status max_unpool_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& x = *ctx.input(0);
  const Tensor& idx = *ctx.input(1);
  if (x.rank() < 3 || idx.dims() != x.dims()) {
    return ctx.error(StatusCode::kInvalidArgument, "X ", dims_to_string(x.dims()),
                     " must be [N, C, spatial...] and I must have its shape, got I ", dims_to_string(idx.dims()));
  }
  Dims out_dims;
  if (const Tensor* s = ctx.input(2)) {
    out_dims = s->to_int64_vector();
  } else {
    Window win;
    win.in.assign(x.dims().begin() + 2, x.dims().end());
    win.kernel = ctx.node().attr_ints("kernel_shape");
    win.stride = ctx.node().attr_ints("strides", std::vector<int64_t>(win.in.size(), 1));
    std::vector<int64_t> pads = ctx.node().attr_ints("pads", std::vector<int64_t>(2 * win.in.size(), 0));
    // Read per spatial dim below: a shorter list would be read past its end.
    if (win.kernel.size() != win.in.size() || win.stride.size() != win.in.size() || pads.size() != 2 * win.in.size()) {
      return ctx.error(StatusCode::kInvalidArgument, "kernel_shape (", win.kernel.size(), " values), strides (",
                       win.stride.size(), ") and pads (", pads.size(), ") must match the input's ", win.in.size(),
                       " spatial dims (pads twice)");
    }
    out_dims = {x.dim(0), x.dim(1)};
    for (size_t d = 0; d < win.in.size(); ++d) {
      // Attributes the model chooses: checked (kernel_shape INT64_MAX overflowed; UBSan).
      CheckedInt64 size = (CheckedInt64(win.in[d]) - 1) * win.stride[d] + win.kernel[d] - pads[d] -
                          pads[d + win.in.size()];
      if (size.overflowed()) {
        return ctx.error(StatusCode::kInvalidArgument, "output size on spatial dim ", d, " (input ", win.in[d],
                         ", stride ", win.stride[d], ", kernel ", win.kernel[d], ", pads ", pads[d], ", ",
                         pads[d + win.in.size()], ") passes int64");
      }
      out_dims.push_back(size.value());
    }
  }
  Tensor y(x.dtype(), out_dims);
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t target = idx.value_as_int64(i);
    if (target < 0 || target >= y.numel()) {
      return ctx.error(StatusCode::kInvalidArgument, "index ", target, " at position ", i, " is outside the output of ",
                       y.numel(), " elements");
    }
    copy_elements(x, i, y, target, 1);
  }
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

}  // namespace

void register_nn_kernels(KernelRegistry& r) {
  r.add("", "Conv", conv_kernel);
  r.add("", "ConvTranspose", conv_transpose_kernel);
  r.add("", "MaxPool", pool_kernel<PoolKind::kMax>);
  r.add("", "AveragePool", pool_kernel<PoolKind::kAverage>);
  r.add("", "LpPool", pool_kernel<PoolKind::kLp>);
  r.add("", "GlobalAveragePool", global_pool_kernel<false>);
  r.add("", "GlobalMaxPool", global_pool_kernel<true>);
  r.add("", "MaxUnpool", max_unpool_kernel);
}

}  // namespace pyflame_rt
