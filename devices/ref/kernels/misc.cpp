// Reference kernels: text (StringNormalizer, TfIdfVectorizer), random generators and the
// optimiser steps of domain ai.onnx.preview.training (Adagrad, Adam, Momentum).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>

#include "devices/random_seed.h"
#include "devices/ref/kernel_groups.h"
#include "devices/ref/kernel_util.h"
#include "devices/run_interrupt.h"

namespace pyflame_rt {

namespace {

constexpr const char* kTrainingDomain = "ai.onnx.preview.training";

std::string change_case(std::string s, const std::string& action) {
  if (action == "LOWER") for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (action == "UPPER") for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

Status string_normalizer(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  if (x.dtype() != DType::kString) {
    return ctx.error(StatusCode::kInvalidArgument, "input must be string, got ", dtype_name(x.dtype()));
  }
  bool two_d = x.rank() == 2;
  if (!(x.rank() == 1 || (two_d && x.dim(0) == 1))) {
    return ctx.error(StatusCode::kInvalidArgument, "input must have shape [C] or [1,C], got ",
                     dims_to_string(x.dims()));
  }
  std::string action = ctx.node().attr_string("case_change_action", "NONE");
  if (action != "NONE" && action != "LOWER" && action != "UPPER") {
    return ctx.error(StatusCode::kInvalidArgument, "case_change_action must be NONE, LOWER or UPPER, got '",
                     action, "'");
  }
  bool sensitive = ctx.node().attr_int("is_case_sensitive", 0) != 0;
  std::set<std::string> stop;
  for (const auto& w : ctx.node().attr_strings("stopwords")) stop.insert(sensitive ? w : change_case(w, "LOWER"));
  std::vector<std::string> kept;
  const auto* in = x.data<std::string>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (stop.count(sensitive ? in[i] : change_case(in[i], "LOWER"))) continue;
    kept.push_back(change_case(in[i], action));
  }
  if (kept.empty()) kept.emplace_back();  // the spec returns one empty string
  int64_t n = static_cast<int64_t>(kept.size());
  Tensor y(DType::kString, two_d ? Dims{1, n} : Dims{n});
  std::copy(kept.begin(), kept.end(), y.data<std::string>());
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

// N-gram keys: token sequences as strings (int tokens printed), so one map serves both pools.
Status tfidf_vectorizer(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  const Node& n = ctx.node();
  int64_t min_n = n.attr_int("min_gram_length", 1), max_n = n.attr_int("max_gram_length", 1);
  int64_t max_skip = n.attr_int("max_skip_count", 0);
  std::string mode = n.attr_string("mode", "TF");
  std::vector<int64_t> counts = n.attr_ints("ngram_counts"), indexes = n.attr_ints("ngram_indexes");
  std::vector<int64_t> pool_i = n.attr_ints("pool_int64s");
  std::vector<std::string> pool_s = n.attr_strings("pool_strings");
  std::vector<float> weights = n.attr_floats("weights");
  bool strings = !pool_s.empty();
  if (min_n < 1 || max_n < min_n || max_skip < 0) {
    return ctx.error(StatusCode::kInvalidArgument, "need 1 <= min_gram_length <= max_gram_length and max_skip_count >= 0, got ",
                     min_n, ", ", max_n, ", ", max_skip);
  }
  if (mode != "TF" && mode != "IDF" && mode != "TFIDF") {
    return ctx.error(StatusCode::kInvalidArgument, "mode must be TF, IDF or TFIDF, got '", mode, "'");
  }
  if (strings != (x.dtype() == DType::kString)) {
    return ctx.error(StatusCode::kInvalidArgument, "input is ", dtype_name(x.dtype()), " but the pool holds ",
                     strings ? "strings" : "int64s");
  }
  if (x.rank() != 1 && x.rank() != 2) {
    return ctx.error(StatusCode::kInvalidArgument, "input must be 1-D or 2-D, got ", dims_to_string(x.dims()));
  }
  auto token = [&](int64_t i) {
    return strings ? x.data<std::string>()[i] : std::to_string(x.value_as_int64(i));
  };
  auto pool_token = [&](size_t i) { return strings ? pool_s[i] : std::to_string(pool_i[i]); };
  size_t pool_size = strings ? pool_s.size() : pool_i.size();

  // Pool layout: ngram_counts[k] is where the (k+1)-grams start, in pool elements.
  std::map<std::vector<std::string>, int64_t> ngram_slot;
  int64_t ngram_number = 0;
  for (size_t k = 0; k < counts.size(); ++k) {
    size_t begin = static_cast<size_t>(counts[k]);
    size_t end = k + 1 < counts.size() ? static_cast<size_t>(counts[k + 1]) : pool_size;
    size_t len = k + 1;
    if (begin > end || end > pool_size || (end - begin) % len) {
      return ctx.error(StatusCode::kInvalidArgument, "ngram_counts ", k, " does not split the pool into ", len, "-grams");
    }
    for (size_t p = begin; p < end; p += len, ++ngram_number) {
      std::vector<std::string> key;
      for (size_t j = 0; j < len; ++j) key.push_back(pool_token(p + j));
      if (static_cast<size_t>(ngram_number) >= indexes.size()) {
        return ctx.error(StatusCode::kInvalidArgument, "ngram_indexes has ", indexes.size(), " entries, the pool holds more n-grams");
      }
      ngram_slot[key] = ngram_number;
    }
  }
  int64_t width = 0;
  for (int64_t idx : indexes) {
    // An index is an output column: a negative one wrote before the row (found auditing for
    // deadlines, stop 16) and INT64_MAX + 1 overflowed.
    if (idx < 0 || idx == std::numeric_limits<int64_t>::max()) {
      return ctx.error(StatusCode::kInvalidArgument, "ngram_indexes holds ", idx, ", expected an output column >= 0");
    }
    width = std::max(width, idx + 1);
  }
  int64_t rows = x.rank() == 2 ? x.dim(0) : 1;
  int64_t cols = x.rank() == 2 ? x.dim(1) : x.dim(0);
  Tensor y(DType::kFloat32, x.rank() == 2 ? Dims{rows, width} : Dims{width});
  float* out = y.data<float>();
  // Lengths longer than a row and skips whose n-gram passes the row select nothing: they are not
  // walked (max_gram_length or max_skip_count of 2^62 walked empty loops for ever, and
  // start + (len - 1) * (s + 1) overflowed). What is walked is still up to rows x cols^2 x
  // lengths n-grams of the attributes' choosing: the run's deadline is read per n-gram.
  InterruptPoll poll;
  const int64_t top_n = std::min(max_n, cols);
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<int64_t> hits(static_cast<size_t>(ngram_number), 0);
    for (int64_t len = min_n; len <= top_n; ++len) {
      int64_t skips = len == 1 ? 0 : max_skip;  // a 1-gram is the same whatever the skip
      for (int64_t s = 0; s <= skips; ++s) {
        // The n-gram spans (len - 1) x (s + 1) + 1 positions: past the row, so are larger skips.
        if (len > 1 && s + 1 > (cols - 1) / (len - 1)) break;
        const int64_t span = (len - 1) * (s + 1);
        for (int64_t start = 0; start + span < cols; ++start) {
          RETURN_IF_ERROR(poll.tick(16 * len));
          std::vector<std::string> key;
          for (int64_t j = 0; j < len; ++j) key.push_back(token(r * cols + start + j * (s + 1)));
          auto it = ngram_slot.find(key);
          if (it != ngram_slot.end()) ++hits[static_cast<size_t>(it->second)];
        }
      }
    }
    for (int64_t g = 0; g < ngram_number; ++g) {
      float count = static_cast<float>(hits[static_cast<size_t>(g)]);
      float w = g < static_cast<int64_t>(weights.size()) ? weights[static_cast<size_t>(g)] : 1.0f;
      float v = mode == "TF" ? count : mode == "IDF" ? std::min(count, 1.0f) * w : count * w;
      out[r * width + indexes[static_cast<size_t>(g)]] = v;
    }
  }
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

// Random generators: seeded when the node says so, otherwise from a process-wide engine.
std::mt19937_64 make_engine(const Node& n) {
  // A NaN, infinite or negative seed (a hostile model's) was an undefined conversion: NaN is
  // seed 0, the rest saturates (from_double); finite seeds keep their engine.
  if (const Attribute* a = n.attr("seed")) {
    return std::mt19937_64(from_double<uint64_t>(static_cast<double>(a->f * 1000003.0f)));
  }
  if (std::optional<uint64_t> seed = next_random_seed()) return std::mt19937_64(*seed);  // set_seed()
  static std::random_device device;
  return std::mt19937_64(device());
}

Status fill_random(KernelContext& ctx, Dims dims, DType dt, bool normal) {
  if (!dtype_is_float(dt)) {
    return ctx.error(StatusCode::kInvalidArgument, "dtype must be a float type, got ", dtype_name(dt));
  }
  const Node& n = ctx.node();
  auto engine = make_engine(n);
  Tensor y(dt, std::move(dims));
  double a = normal ? n.attr_float("mean", 0.0f) : n.attr_float("low", 0.0f);
  double b = normal ? n.attr_float("scale", 1.0f) : n.attr_float("high", 1.0f);
  // The standard distributions require a stddev > 0 and low <= high: anything else was
  // undefined behaviour (libstdc++'s assertions abort; kernel_run stop 25). Only the one
  // asked for is built. A scale of 0 is every value at the mean.
  if (!std::isfinite(a) || !std::isfinite(b) || (normal ? b < 0 : b < a)) {
    if (normal) return ctx.error(StatusCode::kInvalidArgument, "mean and scale must be finite with scale >= 0, got mean ", a, ", scale ", b);
    return ctx.error(StatusCode::kInvalidArgument, "low and high must be finite with low <= high, got low ", a, ", high ", b);
  }
  std::normal_distribution<double> nd(a, normal && b > 0 ? b : 1.0);
  std::uniform_real_distribution<double> ud(normal ? 0.0 : a, normal ? 1.0 : b);
  auto draw = [&]() { return normal ? (b > 0 ? nd(engine) : a) : ud(engine); };
  dispatch_numeric(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (is_floating_v<T>) {
      T* p = y.data<T>();
      for (int64_t i = 0; i < y.numel(); ++i) p[i] = from_double<T>(draw());
    }
  });
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

DType dtype_attr_or(const Node& n, DType fallback) {
  if (!n.has_attr("dtype")) return fallback;
  auto dt = dtype_from_onnx(static_cast<int>(n.attr_int("dtype", 1)));
  return dt.ok() ? *dt : fallback;
}

Status random_uniform(KernelContext& ctx) {
  return fill_random(ctx, ctx.node().attr_ints("shape"), dtype_attr_or(ctx.node(), DType::kFloat32), false);
}
Status random_normal(KernelContext& ctx) {
  return fill_random(ctx, ctx.node().attr_ints("shape"), dtype_attr_or(ctx.node(), DType::kFloat32), true);
}
Status random_uniform_like(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  return fill_random(ctx, ctx.input(0)->dims(), dtype_attr_or(ctx.node(), ctx.input(0)->dtype()), false);
}
Status random_normal_like(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  return fill_random(ctx, ctx.input(0)->dims(), dtype_attr_or(ctx.node(), ctx.input(0)->dtype()), true);
}

Status bernoulli(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& p = *ctx.input(0);
  auto engine = make_engine(ctx.node());
  std::uniform_real_distribution<double> ud(0.0, 1.0);
  Tensor draws(DType::kFloat64, p.dims());
  for (int64_t i = 0; i < p.numel(); ++i) {
    double prob = p.value_as_double(i);
    if (!(prob >= 0.0 && prob <= 1.0)) {
      return ctx.error(StatusCode::kInvalidArgument, "probability ", prob, " at index ", i, " is outside [0, 1]");
    }
    draws.data<double>()[i] = ud(engine) < prob ? 1.0 : 0.0;
  }
  ctx.set_output(0, convert_tensor(draws, dtype_attr_or(ctx.node(), p.dtype())));
  return Status::OK();
}

Status multinomial(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& logits = *ctx.input(0);
  if (logits.rank() != 2) {
    return ctx.error(StatusCode::kInvalidArgument, "input must be [batch, classes], got ", dims_to_string(logits.dims()));
  }
  int64_t batch = logits.dim(0), classes = logits.dim(1);
  int64_t samples = ctx.node().attr_int("sample_size", 1);
  if (samples < 0) return ctx.error(StatusCode::kInvalidArgument, "sample_size must be >= 0, got ", samples);
  if (classes == 0 && batch > 0 && samples > 0) {
    return ctx.error(StatusCode::kInvalidArgument, "input has no classes to draw from: ", dims_to_string(logits.dims()));
  }
  auto engine = make_engine(ctx.node());
  Tensor out(DType::kInt64, {batch, samples});
  for (int64_t b = 0; b < batch && samples > 0; ++b) {
    // discrete_distribution needs finite weights with a positive sum (undefined otherwise).
    // Shifted by the largest logit; a +inf logit takes the whole probability (its weight 1,
    // the others 0), as the limit of the softmax does.
    std::vector<double> w(static_cast<size_t>(classes));
    double mx = -INFINITY;
    for (int64_t c = 0; c < classes; ++c) {
      double v = logits.value_as_double(b * classes + c);
      if (std::isnan(v)) return ctx.error(StatusCode::kInvalidArgument, "logit ", c, " of row ", b, " is NaN");
      mx = std::max(mx, v);
    }
    if (mx == -INFINITY) return ctx.error(StatusCode::kInvalidArgument, "every logit of row ", b, " is -inf: no class can be drawn");
    for (int64_t c = 0; c < classes; ++c) {
      double v = logits.value_as_double(b * classes + c);
      w[static_cast<size_t>(c)] = std::isinf(mx) ? (v == mx ? 1.0 : 0.0) : std::exp(v - mx);
    }
    std::discrete_distribution<int64_t> dist(w.begin(), w.end());
    for (int64_t s = 0; s < samples; ++s) out.data<int64_t>()[b * samples + s] = dist(engine);
  }
  ctx.set_output(0, convert_tensor(out, dtype_attr_or(ctx.node(), DType::kInt32)));
  return Status::OK();
}

// Optimiser steps: inputs R (learning rate), T (step), then per-tensor groups; all math in
// double and written back in the tensors' own dtype.
struct OptimizerGroups {
  double r = 0;
  int64_t t = 0;
  size_t count = 0;  // tensors being optimised
};

Status read_groups(const KernelContext& ctx, size_t per_tensor, OptimizerGroups* g) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  size_t rest = ctx.num_inputs() - 2;
  if (rest == 0 || rest % per_tensor) {
    return ctx.error(StatusCode::kInvalidArgument, "expected R, T and groups of ", per_tensor,
                     " tensors, got ", ctx.num_inputs(), " inputs");
  }
  g->r = ctx.input(0)->value_as_double(0);
  g->t = ctx.input(1)->value_as_int64(0);
  g->count = rest / per_tensor;
  for (size_t i = 2; i < ctx.num_inputs(); ++i) RETURN_IF_ERROR(ctx.require_input(i));
  return Status::OK();
}

Tensor like(const Tensor& t, const std::vector<double>& v) {
  Tensor d = Tensor::from_vector<double>(t.dims(), v);
  return convert_tensor(d, t.dtype());
}

Status adagrad(KernelContext& ctx) {
  OptimizerGroups g;
  RETURN_IF_ERROR(read_groups(ctx, 3, &g));
  double norm = ctx.node().attr_float("norm_coefficient", 0), eps = ctx.node().attr_float("epsilon", 0);
  double decay = ctx.node().attr_float("decay_factor", 0);
  double r = g.r / (1 + static_cast<double>(g.t) * decay);
  for (size_t k = 0; k < g.count; ++k) {
    const Tensor &x = *ctx.input(2 + k), &grad = *ctx.input(2 + g.count + k), &h = *ctx.input(2 + 2 * g.count + k);
    std::vector<double> xn(static_cast<size_t>(x.numel())), hn(xn.size());
    for (int64_t i = 0; i < x.numel(); ++i) {
      double gr = norm * x.value_as_double(i) + grad.value_as_double(i);
      double hv = h.value_as_double(i) + gr * gr;
      hn[static_cast<size_t>(i)] = hv;
      xn[static_cast<size_t>(i)] = x.value_as_double(i) - r * gr / (std::sqrt(hv) + eps);
    }
    ctx.set_output(k, like(x, xn));
    ctx.set_output(g.count + k, like(h, hn));
  }
  return Status::OK();
}

Status adam(KernelContext& ctx) {
  OptimizerGroups g;
  RETURN_IF_ERROR(read_groups(ctx, 4, &g));
  const Node& n = ctx.node();
  double norm = n.attr_float("norm_coefficient", 0), norm_post = n.attr_float("norm_coefficient_post", 0);
  double alpha = n.attr_float("alpha", 0.9f), beta = n.attr_float("beta", 0.999f), eps = n.attr_float("epsilon", 0);
  double r = g.r;
  if (g.t > 0) {
    double t = static_cast<double>(g.t);
    r = g.r * std::sqrt(1 - std::pow(beta, t)) / (1 - std::pow(alpha, t));
  }
  for (size_t k = 0; k < g.count; ++k) {
    const Tensor &x = *ctx.input(2 + k), &grad = *ctx.input(2 + g.count + k);
    const Tensor &v = *ctx.input(2 + 2 * g.count + k), &h = *ctx.input(2 + 3 * g.count + k);
    std::vector<double> xn(static_cast<size_t>(x.numel())), vn(xn.size()), hn(xn.size());
    for (int64_t i = 0; i < x.numel(); ++i) {
      size_t j = static_cast<size_t>(i);
      double gr = norm * x.value_as_double(i) + grad.value_as_double(i);
      vn[j] = alpha * v.value_as_double(i) + (1 - alpha) * gr;
      hn[j] = beta * h.value_as_double(i) + (1 - beta) * gr * gr;
      double step = x.value_as_double(i) - r * vn[j] / (std::sqrt(hn[j]) + eps);
      xn[j] = (1 - norm_post) * step;
    }
    ctx.set_output(k, like(x, xn));
    ctx.set_output(g.count + k, like(v, vn));
    ctx.set_output(2 * g.count + k, like(h, hn));
  }
  return Status::OK();
}

Status momentum(KernelContext& ctx) {
  OptimizerGroups g;
  RETURN_IF_ERROR(read_groups(ctx, 3, &g));
  const Node& n = ctx.node();
  double norm = n.attr_float("norm_coefficient", 0), alpha = n.attr_float("alpha", 0), beta = n.attr_float("beta", 0);
  std::string mode = n.attr_string("mode", "standard");
  if (mode != "standard" && mode != "nesterov") {
    return ctx.error(StatusCode::kInvalidArgument, "mode must be 'standard' or 'nesterov', got '", mode, "'");
  }
  double beta_t = g.t > 0 ? beta : 1.0;  // the first step takes the whole gradient
  for (size_t k = 0; k < g.count; ++k) {
    const Tensor &x = *ctx.input(2 + k), &grad = *ctx.input(2 + g.count + k), &v = *ctx.input(2 + 2 * g.count + k);
    std::vector<double> xn(static_cast<size_t>(x.numel())), vn(xn.size());
    for (int64_t i = 0; i < x.numel(); ++i) {
      size_t j = static_cast<size_t>(i);
      double gr = norm * x.value_as_double(i) + grad.value_as_double(i);
      vn[j] = alpha * v.value_as_double(i) + beta_t * gr;
      xn[j] = x.value_as_double(i) - g.r * (mode == "standard" ? vn[j] : gr + alpha * vn[j]);
    }
    ctx.set_output(k, like(x, xn));
    ctx.set_output(g.count + k, like(v, vn));
  }
  return Status::OK();
}

}  // namespace

void register_misc_kernels(KernelRegistry& r) {
  r.add("", "StringNormalizer", string_normalizer);
  r.add("", "TfIdfVectorizer", tfidf_vectorizer);
  r.add("", "RandomUniform", random_uniform);
  r.add("", "RandomNormal", random_normal);
  r.add("", "RandomUniformLike", random_uniform_like);
  r.add("", "RandomNormalLike", random_normal_like);
  r.add("", "Bernoulli", bernoulli);
  r.add("", "Multinomial", multinomial);
  r.add(kTrainingDomain, "Adagrad", adagrad);
  r.add(kTrainingDomain, "Adam", adam);
  r.add(kTrainingDomain, "Momentum", momentum);
}

}  // namespace pyflame_rt
