// Reference kernels: the recurrent ops GRU, LSTM and RNN (forward, reverse, bidirectional;
// sequence_lens; initial states; clip; custom activations; layout 0 and 1). Computes in double.
#include <cmath>
#include <limits>
#include <functional>

#include "devices/ref/kernel_groups.h"
#include "devices/ref/kernel_util.h"
#include "devices/run_interrupt.h"

namespace pyflame_rt {

namespace {

using Activation = std::function<double(double)>;

Status make_activation(const KernelContext& ctx, const std::string& name, const std::vector<float>& alphas,
                       const std::vector<float>& betas, size_t* a_used, size_t* b_used, Activation* out) {
  auto alpha = [&](double d) { return *a_used < alphas.size() ? static_cast<double>(alphas[(*a_used)++]) : d; };
  auto beta = [&](double d) { return *b_used < betas.size() ? static_cast<double>(betas[(*b_used)++]) : d; };
  std::string n = name;
  for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (n == "sigmoid") *out = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  else if (n == "tanh") *out = [](double x) { return std::tanh(x); };
  else if (n == "relu") *out = [](double x) { return x > 0 ? x : 0.0; };
  else if (n == "softsign") *out = [](double x) { return x / (1 + std::fabs(x)); };
  else if (n == "softplus") *out = [](double x) { return std::log1p(std::exp(x)); };
  else if (n == "affine") { double a = alpha(1), b = beta(0); *out = [a, b](double x) { return a * x + b; }; }
  else if (n == "leakyrelu") { double a = alpha(0.01); *out = [a](double x) { return x >= 0 ? x : a * x; }; }
  else if (n == "thresholdedrelu") { double a = alpha(1); *out = [a](double x) { return x > a ? x : 0.0; }; }
  else if (n == "scaledtanh") { double a = alpha(1), b = beta(1); *out = [a, b](double x) { return a * std::tanh(b * x); }; }
  else if (n == "hardsigmoid") {
    double a = alpha(0.2), b = beta(0.5);
    *out = [a, b](double x) { return std::max(0.0, std::min(1.0, a * x + b)); };
  } else if (n == "elu") { double a = alpha(1); *out = [a](double x) { return x >= 0 ? x : a * (std::exp(x) - 1); }; }
  else return ctx.error(StatusCode::kInvalidArgument, "unknown activation '", name, "'");
  return Status::OK();
}

enum class Cell { kRnn, kGru, kLstm };

struct RnnSpec {
  Cell cell;
  int64_t gates;                        // 1, 3, 4
  std::vector<std::string> default_acts;
};

Status recurrent_kernel(KernelContext& ctx, const RnnSpec& spec) {
  RETURN_IF_ERROR(ctx.require_inputs(3));
  const Node& node = ctx.node();
  Tensor x = *ctx.input(0);
  const Tensor& W = *ctx.input(1);
  const Tensor& R = *ctx.input(2);
  if (!dtype_is_float(x.dtype())) return ctx.error(StatusCode::kInvalidArgument, "X must be a float type, got ", dtype_name(x.dtype()));
  int64_t layout = node.attr_int("layout", 0);
  if (x.rank() != 3) return ctx.error(StatusCode::kInvalidArgument, "X must be 3-D, got ", dims_to_string(x.dims()));
  int64_t seq = layout ? x.dim(1) : x.dim(0), batch = layout ? x.dim(0) : x.dim(1), in = x.dim(2);
  std::string direction = node.attr_string("direction", "forward");
  int64_t dirs = direction == "bidirectional" ? 2 : 1;
  if (direction != "forward" && direction != "reverse" && direction != "bidirectional") {
    return ctx.error(StatusCode::kInvalidArgument, "direction must be forward, reverse or bidirectional, got '", direction, "'");
  }
  int64_t H = node.attr_int("hidden_size", R.rank() == 3 ? R.dim(2) : 0), G = spec.gates;
  // hidden_size is the model's: 2 x G x H is used below, so H must keep it inside int64 (a
  // hidden_size of 2^63 - 1 overflowed G x H; UBSan, kernel_run).
  if (H < 0 || (CheckedInt64(2) * G * H).overflowed()) {
    return ctx.error(StatusCode::kInvalidArgument, "hidden_size must be in [0, ",
                     std::numeric_limits<int64_t>::max() / (2 * G), "], got ", H);
  }
  if (W.dims() != Dims{dirs, G * H, in} || R.dims() != Dims{dirs, G * H, H}) {
    return ctx.error(StatusCode::kInvalidArgument, "W ", dims_to_string(W.dims()), " / R ", dims_to_string(R.dims()),
                     " must be [", dirs, ",", G * H, ",", in, "] / [", dirs, ",", G * H, ",", H, "]");
  }
  const Tensor* B = ctx.input(3);
  if (B && B->dims() != Dims{dirs, 2 * G * H}) {
    return ctx.error(StatusCode::kInvalidArgument, "B ", dims_to_string(B->dims()), " must be [", dirs, ",", 2 * G * H, "]");
  }
  const Tensor* lens = ctx.input(4);
  const Tensor* h0 = ctx.input(5);
  const Tensor* c0 = spec.cell == Cell::kLstm ? ctx.input(6) : nullptr;
  const Tensor* P = spec.cell == Cell::kLstm ? ctx.input(7) : nullptr;
  // Every optional input is checked against the shape the loops below index: an empty or
  // short initial_h (a valid ONNX tensor) would otherwise be read past its end.
  Dims state = layout ? Dims{batch, dirs, H} : Dims{dirs, batch, H};
  for (auto [t, name] : {std::pair{h0, "initial_h"}, std::pair{c0, "initial_c"}}) {
    if (t && t->dims() != state) {
      return ctx.error(StatusCode::kInvalidArgument, name, " ", dims_to_string(t->dims()), " must be ",
                       dims_to_string(state));
    }
  }
  if (P && P->dims() != Dims{dirs, 3 * H}) {
    return ctx.error(StatusCode::kInvalidArgument, "P ", dims_to_string(P->dims()), " must be [", dirs, ",", 3 * H, "]");
  }
  if (lens) {
    if (lens->dims() != Dims{batch}) {
      return ctx.error(StatusCode::kInvalidArgument, "sequence_lens ", dims_to_string(lens->dims()), " must be [", batch, "]");
    }
    for (int64_t b = 0; b < batch; ++b) {
      int64_t len = lens->value_as_int64(b);
      if (len < 0 || len > seq) {
        return ctx.error(StatusCode::kInvalidArgument, "sequence_lens[", b, "] = ", len, " must be in [0, ", seq, "]");
      }
    }
  }
  double clip = node.attr_float("clip", 0.0f);
  bool linear_before_reset = node.attr_int("linear_before_reset", 0) != 0;
  bool input_forget = node.attr_int("input_forget", 0) != 0;

  std::vector<std::string> act_names = node.attr_strings("activations");
  size_t per_dir = spec.default_acts.size();
  if (act_names.empty()) for (int64_t d = 0; d < dirs; ++d) act_names.insert(act_names.end(), spec.default_acts.begin(), spec.default_acts.end());
  if (act_names.size() != per_dir * static_cast<size_t>(dirs)) {
    return ctx.error(StatusCode::kInvalidArgument, "activations lists ", act_names.size(), " functions, expected ",
                     per_dir * static_cast<size_t>(dirs));
  }
  std::vector<float> alphas = node.attr_floats("activation_alpha"), betas = node.attr_floats("activation_beta");
  size_t a_used = 0, b_used = 0;
  std::vector<Activation> acts(act_names.size());
  for (size_t i = 0; i < acts.size(); ++i) RETURN_IF_ERROR(make_activation(ctx, act_names[i], alphas, betas, &a_used, &b_used, &acts[i]));

  auto xv = [&](int64_t t, int64_t b, int64_t k) { return x.value_as_double(layout ? (b * seq + t) * in + k : (t * batch + b) * in + k); };
  std::vector<double> Y(static_cast<size_t>(seq * dirs * batch * H), 0.0);  // [seq, dirs, batch, H]
  std::vector<double> Yh(static_cast<size_t>(dirs * batch * H)), Yc(static_cast<size_t>(dirs * batch * H));
  auto cl = [&](double v) { return clip > 0 ? std::max(-clip, std::min(clip, v)) : v; };
  // Every step multiplies by W and R: seq x batch x G x H x (in + H), far past the tensors' sizes
  // (4,096 steps of an LSTM whose 64 MB R has H = 2,048 are 7 x 10^10 multiply-adds). The run's
  // deadline is read per step.
  InterruptPoll poll;
  const int64_t step_work = 4 * G * H * (in + H + 2) + 1;
  for (int64_t d = 0; d < dirs; ++d) {
    bool reverse = direction == "reverse" || d == 1;
    const Activation& f = acts[per_dir * static_cast<size_t>(d)];
    const Activation& g = per_dir > 1 ? acts[per_dir * static_cast<size_t>(d) + 1] : f;
    const Activation& h_act = per_dir > 2 ? acts[per_dir * static_cast<size_t>(d) + 2] : g;
    auto w = [&](int64_t row, int64_t k) { return W.value_as_double((d * G * H + row) * in + k); };
    auto r = [&](int64_t row, int64_t k) { return R.value_as_double((d * G * H + row) * H + k); };
    auto wb = [&](int64_t row) { return B ? B->value_as_double(d * 2 * G * H + row) : 0.0; };
    auto rb = [&](int64_t row) { return B ? B->value_as_double(d * 2 * G * H + G * H + row) : 0.0; };
    for (int64_t b = 0; b < batch; ++b) {
      int64_t len = lens ? lens->value_as_int64(b) : seq;
      std::vector<double> h(static_cast<size_t>(H), 0.0), c(static_cast<size_t>(H), 0.0);
      for (int64_t j = 0; j < H; ++j) {
        if (h0) h[static_cast<size_t>(j)] = h0->value_as_double(layout ? (b * dirs + d) * H + j : (d * batch + b) * H + j);
        if (c0) c[static_cast<size_t>(j)] = c0->value_as_double(layout ? (b * dirs + d) * H + j : (d * batch + b) * H + j);
      }
      std::vector<double> xg(static_cast<size_t>(G * H)), hg(static_cast<size_t>(G * H)), hn(static_cast<size_t>(H));
      for (int64_t s = 0; s < len; ++s) {
        RETURN_IF_ERROR(poll.tick(step_work));
        int64_t t = reverse ? len - 1 - s : s;
        for (int64_t row = 0; row < G * H; ++row) {
          double accx = wb(row), acch = rb(row);
          for (int64_t k = 0; k < in; ++k) accx += xv(t, b, k) * w(row, k);
          for (int64_t k = 0; k < H; ++k) acch += h[static_cast<size_t>(k)] * r(row, k);
          xg[static_cast<size_t>(row)] = accx;
          hg[static_cast<size_t>(row)] = acch;
        }
        for (int64_t j = 0; j < H; ++j) {
          size_t J = static_cast<size_t>(j);
          if (spec.cell == Cell::kRnn) {
            hn[J] = f(cl(xg[J] + hg[J]));
          } else if (spec.cell == Cell::kGru) {
            double z = f(cl(xg[J] + hg[J]));
            if (linear_before_reset) {
              double rr = f(cl(xg[static_cast<size_t>(H + j)] + hg[static_cast<size_t>(H + j)]));
              double cand = g(cl(xg[static_cast<size_t>(2 * H + j)] + rr * hg[static_cast<size_t>(2 * H + j)]));
              hn[J] = (1 - z) * cand + z * h[J];
            } else {
              hn[J] = z;  // finished after this loop: the candidate needs the whole reset gate
            }
          } else {
            double i_g = xg[J] + hg[J], o_g = xg[static_cast<size_t>(H + j)] + hg[static_cast<size_t>(H + j)];
            double f_g = xg[static_cast<size_t>(2 * H + j)] + hg[static_cast<size_t>(2 * H + j)];
            double c_g = xg[static_cast<size_t>(3 * H + j)] + hg[static_cast<size_t>(3 * H + j)];
            if (P) { i_g += P->value_as_double(d * 3 * H + j) * c[J]; f_g += P->value_as_double(d * 3 * H + 2 * H + j) * c[J]; }
            double ig = f(cl(i_g));
            double fg = input_forget ? 1 - ig : f(cl(f_g));
            double cn = fg * c[J] + ig * g(cl(c_g));
            if (P) o_g += P->value_as_double(d * 3 * H + H + j) * cn;
            double og = f(cl(o_g));
            c[J] = cn;
            hn[J] = og * h_act(cn);
          }
        }
        if (spec.cell == Cell::kGru && !linear_before_reset) {
          // h~ = g(Xt Wh + (r . H) Rh + Wbh + Rbh): needs the whole reset gate vector.
          std::vector<double> rh(static_cast<size_t>(H));
          for (int64_t k = 0; k < H; ++k) {
            double rr = f(cl(xg[static_cast<size_t>(H + k)] + hg[static_cast<size_t>(H + k)]));
            rh[static_cast<size_t>(k)] = rr * h[static_cast<size_t>(k)];
          }
          for (int64_t j = 0; j < H; ++j) {
            double acc = xg[static_cast<size_t>(2 * H + j)] + rb(2 * H + j);
            for (int64_t k = 0; k < H; ++k) acc += rh[static_cast<size_t>(k)] * r(2 * H + j, k);
            double z = hn[static_cast<size_t>(j)];
            hn[static_cast<size_t>(j)] = (1 - z) * g(cl(acc)) + z * h[static_cast<size_t>(j)];
          }
        }
        h = hn;
        for (int64_t j = 0; j < H; ++j) Y[static_cast<size_t>(((t * dirs + d) * batch + b) * H + j)] = h[static_cast<size_t>(j)];
      }
      for (int64_t j = 0; j < H; ++j) {
        Yh[static_cast<size_t>((d * batch + b) * H + j)] = h[static_cast<size_t>(j)];
        Yc[static_cast<size_t>((d * batch + b) * H + j)] = c[static_cast<size_t>(j)];
      }
    }
  }
  auto emit = [&](size_t idx, const std::vector<double>& v, Dims dims0, const std::vector<int64_t>& perm_l1, Dims dims1) {
    if (!ctx.output_wanted(idx)) return;
    Tensor t = Tensor::from_vector<double>(dims0, v);
    if (layout) {  // reorder to the batch-first layout
      Tensor p(DType::kFloat64, dims1);
      std::vector<int64_t> src_strides = strides_of(dims0);
      std::vector<int64_t> c(dims1.size(), 0);
      for (int64_t f = 0; f < p.numel(); ++f) {
        int64_t s = 0;
        for (size_t k = 0; k < dims1.size(); ++k) s += c[k] * src_strides[static_cast<size_t>(perm_l1[k])];
        p.data<double>()[f] = v[static_cast<size_t>(s)];
        for (int64_t k = static_cast<int64_t>(dims1.size()) - 1; k >= 0; --k) {
          if (++c[static_cast<size_t>(k)] < dims1[static_cast<size_t>(k)]) break;
          c[static_cast<size_t>(k)] = 0;
        }
      }
      t = p;
    }
    ctx.set_output(idx, convert_tensor(t, x.dtype()));
  };
  emit(0, Y, {seq, dirs, batch, H}, {2, 0, 1, 3}, {batch, seq, dirs, H});
  emit(1, Yh, {dirs, batch, H}, {1, 0, 2}, {batch, dirs, H});
  if (spec.cell == Cell::kLstm) emit(2, Yc, {dirs, batch, H}, {1, 0, 2}, {batch, dirs, H});
  return Status::OK();
}

Status rnn_kernel(KernelContext& ctx) { return recurrent_kernel(ctx, {Cell::kRnn, 1, {"Tanh"}}); }
Status gru_kernel(KernelContext& ctx) { return recurrent_kernel(ctx, {Cell::kGru, 3, {"Sigmoid", "Tanh"}}); }
Status lstm_kernel(KernelContext& ctx) { return recurrent_kernel(ctx, {Cell::kLstm, 4, {"Sigmoid", "Tanh", "Tanh"}}); }

}  // namespace

void register_rnn_kernels(KernelRegistry& r) {
  r.add("", "RNN", rnn_kernel);
  r.add("", "GRU", gru_kernel);
  r.add("", "LSTM", lstm_kernel);
}

}  // namespace pyflame_rt
