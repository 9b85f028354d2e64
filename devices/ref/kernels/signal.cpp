// Reference kernels: signal processing of opset 17 (DFT, STFT, Hann/Hamming/Blackman windows,
// MelWeightMatrix). Complex tensors are real tensors with a trailing dim of 2 (re, im).
// Transforms are direct O(n^2) sums in double: the reference, not the fast path.
#include <algorithm>
#include <cmath>

#include "devices/ref/kernel_groups.h"
#include "devices/ref/kernel_util.h"
#include "devices/run_interrupt.h"
#include "graph/memory_budget.h"

namespace pyflame_rt {

namespace {

constexpr double kPi = 3.14159265358979323846;

// DFT of `n` complex samples (re[i], im[i]) of length `len` zero-padded/truncated to `len`.
// `len` is a model's value and the sum is O(n len): the run's deadline and terminate flag are
// read per output bin through the caller's `poll` (one per kernel call: STFT's frames of a
// 16 M-sample signal at frame_step 1 are each short, together 10^11 steps or more).
Status dft(const std::vector<double>& re, const std::vector<double>& im, int64_t len, bool inverse,
           InterruptPoll& poll, std::vector<double>* out_re, std::vector<double>* out_im) {
  out_re->assign(static_cast<size_t>(len), 0.0);
  out_im->assign(static_cast<size_t>(len), 0.0);
  double sign = inverse ? 1.0 : -1.0;
  int64_t n = std::min<int64_t>(len, static_cast<int64_t>(re.size()));
  for (int64_t k = 0; k < len; ++k) {
    RETURN_IF_ERROR(poll.tick(16 * n + 1));  // a cos and a sin per step
    double sr = 0, si = 0;
    for (int64_t t = 0; t < n; ++t) {
      double angle = sign * 2 * kPi * static_cast<double>(k * t % len) / static_cast<double>(len);
      double c = std::cos(angle), s = std::sin(angle);
      sr += re[static_cast<size_t>(t)] * c - im[static_cast<size_t>(t)] * s;
      si += re[static_cast<size_t>(t)] * s + im[static_cast<size_t>(t)] * c;
    }
    if (inverse) { sr /= static_cast<double>(len); si /= static_cast<double>(len); }
    (*out_re)[static_cast<size_t>(k)] = sr;
    (*out_im)[static_cast<size_t>(k)] = si;
  }
  return Status::OK();
}

Status dft_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  if (x.rank() < 3 || (x.dim(x.rank() - 1) != 1 && x.dim(x.rank() - 1) != 2)) {
    return ctx.error(StatusCode::kInvalidArgument, "input must be [batch, ..., 1 or 2], got ", dims_to_string(x.dims()));
  }
  int64_t signal_rank = static_cast<int64_t>(x.rank()) - 1;
  int64_t axis = 0;
  RETURN_IF_ERROR(normalize_axis(ctx, ctx.node().attr_int("axis", 1), signal_rank, &axis));
  if (axis == 0) return ctx.error(StatusCode::kInvalidArgument, "axis 0 is the batch axis");
  bool inverse = ctx.node().attr_int("inverse", 0) != 0, onesided = ctx.node().attr_int("onesided", 0) != 0;
  bool complex_in = x.dim(x.rank() - 1) == 2;
  int64_t n = x.dim(static_cast<size_t>(axis));
  int64_t len = ctx.input(1) ? ctx.input(1)->value_as_int64(0) : n;
  if (len <= 0) return ctx.error(StatusCode::kInvalidArgument, "dft_length must be positive, got ", len);
  int64_t out_len = onesided ? len / 2 + 1 : len;
  Dims out_dims = x.dims();
  out_dims[static_cast<size_t>(axis)] = out_len;
  out_dims.back() = 2;
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.dim(static_cast<size_t>(d));
  for (int64_t d = axis + 1; d < signal_rank; ++d) inner *= x.dim(static_cast<size_t>(d));
  int64_t comp = x.dim(x.rank() - 1);
  // dft_length is a value: the output and the transform's buffers are charged before they exist.
  ScratchCharge charge_y(num_elements(out_dims), sizeof(double)), charge_f(num_elements({len, 2}), sizeof(double));
  std::vector<double> y(static_cast<size_t>(num_elements(out_dims)));
  std::vector<double> re(static_cast<size_t>(n)), im(static_cast<size_t>(n)), fr, fi;
  InterruptPoll poll;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      for (int64_t t = 0; t < n; ++t) {
        int64_t base = ((o * n + t) * inner + i) * comp;
        re[static_cast<size_t>(t)] = x.value_as_double(base);
        im[static_cast<size_t>(t)] = complex_in ? x.value_as_double(base + 1) : 0.0;
      }
      RETURN_IF_ERROR(dft(re, im, len, inverse, poll, &fr, &fi));
      for (int64_t k = 0; k < out_len; ++k) {
        int64_t base = ((o * out_len + k) * inner + i) * 2;
        y[static_cast<size_t>(base)] = fr[static_cast<size_t>(k)];
        y[static_cast<size_t>(base + 1)] = fi[static_cast<size_t>(k)];
      }
    }
  }
  ctx.set_output(0, convert_tensor(Tensor::from_vector<double>(out_dims, y), x.dtype()));
  return Status::OK();
}

Status stft_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& x = *ctx.input(0);
  if (x.rank() != 3 || (x.dim(2) != 1 && x.dim(2) != 2)) {
    return ctx.error(StatusCode::kInvalidArgument, "signal must be [batch, length, 1 or 2], got ", dims_to_string(x.dims()));
  }
  int64_t step = ctx.input(1)->value_as_int64(0);
  const Tensor* window = ctx.input(2);
  int64_t frame = ctx.input(3) ? ctx.input(3)->value_as_int64(0) : (window ? window->numel() : 0);
  if (step <= 0 || frame <= 0 || frame > x.dim(1) || (window && window->numel() != frame)) {
    return ctx.error(StatusCode::kInvalidArgument, "frame_step ", step, ", frame_length ", frame, " and window ",
                     window ? window->numel() : 0, " do not fit a signal of length ", x.dim(1));
  }
  bool onesided = ctx.node().attr_int("onesided", 1) != 0;
  int64_t B = x.dim(0), L = x.dim(1), comp = x.dim(2);
  int64_t frames = (L - frame) / step + 1, bins = onesided ? frame / 2 + 1 : frame;
  ScratchCharge charge_y(num_elements({B, frames, bins, 2}), sizeof(double)), charge_f(num_elements({frame, 2}), sizeof(double));
  std::vector<double> y(static_cast<size_t>(B * frames * bins * 2));
  std::vector<double> re(static_cast<size_t>(frame)), im(static_cast<size_t>(frame)), fr, fi;
  InterruptPoll poll;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t f = 0; f < frames; ++f) {
      for (int64_t t = 0; t < frame; ++t) {
        double w = window ? window->value_as_double(t) : 1.0;
        int64_t base = (b * L + f * step + t) * comp;
        re[static_cast<size_t>(t)] = x.value_as_double(base) * w;
        im[static_cast<size_t>(t)] = comp == 2 ? x.value_as_double(base + 1) * w : 0.0;
      }
      RETURN_IF_ERROR(dft(re, im, frame, false, poll, &fr, &fi));
      for (int64_t k = 0; k < bins; ++k) {
        int64_t o = ((b * frames + f) * bins + k) * 2;
        y[static_cast<size_t>(o)] = fr[static_cast<size_t>(k)];
        y[static_cast<size_t>(o + 1)] = fi[static_cast<size_t>(k)];
      }
    }
  }
  ctx.set_output(0, convert_tensor(Tensor::from_vector<double>({B, frames, bins, 2}, y), x.dtype()));
  return Status::OK();
}

// Generalised cosine window: sum_k a_k cos(2 pi k n / N), N = size (periodic) or size - 1.
Status cosine_window(KernelContext& ctx, const std::vector<double>& a) {
  RETURN_IF_ERROR(ctx.require_input(0));
  int64_t size = ctx.input(0)->value_as_int64(0);
  if (size < 0) return ctx.error(StatusCode::kInvalidArgument, "size must be >= 0, got ", size);
  bool periodic = ctx.node().attr_int("periodic", 1) != 0;
  double N = static_cast<double>(periodic ? size : size - 1);
  ScratchCharge charge(size, sizeof(double));  // size is a value: charged before the buffer exists
  std::vector<double> w(static_cast<size_t>(size));
  // The k = 0 term is a_0 * cos(0) = a_0 whenever N is not 0 (0 / 0 is NaN: a non-periodic
  // window of size 1): not computed per element, the rest unchanged. The size is a value (8 M
  // doubles fit kernel_run's 64 MB): a third of kernel_run's CPU went to these cosines, at
  // constant folding and again in each run; the run's deadline is read along the window.
  auto dt = dtype_from_onnx(static_cast<int>(ctx.node().attr_int("output_datatype", 1)));
  if (!dt.ok()) return dt.status();
  const size_t k0 = N != 0 && !a.empty() ? 1 : 0;
  {
    // The window's tensor and its converted output are allocated after the cosines: their
    // bytes are held for the loop, so a window whose output cannot fit fails before seconds of
    // work, not after (kernel_run stop 18: 7.7 M cosines, then the 64 MB limit).
    ScratchCharge as_tensor(size, sizeof(double), "the window as a tensor");
    ScratchCharge as_output(size, dtype_size(*dt), "the window's output");
    InterruptPoll poll;
    for (int64_t n = 0; n < size; ++n) {
      RETURN_IF_ERROR(poll.tick(static_cast<int64_t>(a.size())));
      double v = k0 ? 0 + a[0] : 0;
      for (size_t k = k0; k < a.size(); ++k) v += a[k] * std::cos(2 * kPi * static_cast<double>(k) * static_cast<double>(n) / N);
      w[static_cast<size_t>(n)] = v;
    }
  }
  ctx.set_output(0, convert_tensor(Tensor::from_vector<double>({size}, w), *dt));
  return Status::OK();
}
Status hann_window(KernelContext& ctx) { return cosine_window(ctx, {0.5, -0.5}); }
Status hamming_window(KernelContext& ctx) { return cosine_window(ctx, {25.0 / 46.0, -21.0 / 46.0}); }
Status blackman_window(KernelContext& ctx) { return cosine_window(ctx, {0.42, -0.5, 0.08}); }

// Triangular mel filters over the DFT bins, following the operator's reference definition
// (including its mel step over num_mel_bins + 2 points).
Status mel_weight_matrix(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(5));
  int64_t mels = ctx.input(0)->value_as_int64(0), dft_len = ctx.input(1)->value_as_int64(0);
  double rate = ctx.input(2)->value_as_double(0), lo = ctx.input(3)->value_as_double(0), hi = ctx.input(4)->value_as_double(0);
  if (mels <= 0 || dft_len <= 0 || rate <= 0 || lo < 0 || hi <= lo) {
    return ctx.error(StatusCode::kInvalidArgument, "need num_mel_bins > 0, dft_length > 0, sample_rate > 0 and ",
                     "0 <= lower_edge_hertz < upper_edge_hertz; got ", mels, ", ", dft_len, ", ", rate, ", ", lo, ", ", hi);
  }
  int64_t bins = dft_len / 2 + 1;
  // Both counts are values: the output is charged first (an unrepresentable count throws
  // bad_alloc there, before mels + 2 could overflow).
  ScratchCharge charge_out(num_elements({bins, mels}), sizeof(double)), charge_f(mels, sizeof(int64_t));
  auto to_mel = [](double hz) { return 2595.0 * std::log10(1 + hz / 700.0); };
  double lo_mel = to_mel(lo), step = (to_mel(hi) - lo_mel) / static_cast<double>(mels + 2);
  std::vector<int64_t> f(static_cast<size_t>(mels + 2));
  for (int64_t i = 0; i < mels + 2; ++i) {
    double hz = 700.0 * (std::pow(10.0, (static_cast<double>(i) * step + lo_mel) / 2595.0) - 1);
    f[static_cast<size_t>(i)] = int64_from_double(std::floor((static_cast<double>(dft_len) + 1) * hz / rate));
  }
  std::vector<double> out(static_cast<size_t>(bins * mels), 0.0);
  auto at = [&](int64_t j, int64_t i) -> double& { return out[static_cast<size_t>(j * mels + i)]; };
  for (int64_t i = 0; i < mels; ++i) {
    // Edges far outside the bins (a tiny sample_rate saturates them) are walked only where
    // they meet the bins, and their differences are taken in double (no int64 overflow).
    const int64_t l = f[static_cast<size_t>(i)], c = f[static_cast<size_t>(i + 1)], h = f[static_cast<size_t>(i + 2)];
    const double ld = static_cast<double>(l), cd = static_cast<double>(c), hd = static_cast<double>(h);
    if (c == l) {
      if (c >= 0 && c < bins) at(c, i) = 1;
    } else {
      for (int64_t j = std::max<int64_t>(l, 0); j <= std::min(c, bins - 1); ++j) {
        at(j, i) = (static_cast<double>(j) - ld) / (cd - ld);
      }
    }
    if (h > c) {
      for (int64_t j = std::max<int64_t>(c, 0); j < std::min(h, bins); ++j) {
        at(j, i) = (hd - static_cast<double>(j)) / (hd - cd);
      }
    }
  }
  auto dt = dtype_from_onnx(static_cast<int>(ctx.node().attr_int("output_datatype", 1)));
  if (!dt.ok()) return dt.status();
  ctx.set_output(0, convert_tensor(Tensor::from_vector<double>({bins, mels}, out), *dt));
  return Status::OK();
}

}  // namespace

void register_signal_kernels(KernelRegistry& r) {
  r.add("", "DFT", dft_kernel);
  r.add("", "STFT", stft_kernel);
  r.add("", "HannWindow", hann_window);
  r.add("", "HammingWindow", hamming_window);
  r.add("", "BlackmanWindow", blackman_window);
  r.add("", "MelWeightMatrix", mel_weight_matrix);
}

}  // namespace pyflame_rt
