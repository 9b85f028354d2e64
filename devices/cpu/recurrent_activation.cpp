#include "devices/cpu/recurrent_activation.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "devices/cpu/vector_math.h"

namespace pyflame_rt {
namespace cpu {

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

void RecurrentActivation::apply(float* x, int64_t n) const {
  const float a = alpha, b = beta;
  switch (kind) {
    case Kind::kSigmoid: sigmoid_inplace(x, n); return;
    case Kind::kTanh: tanh_inplace(x, n); return;
    case Kind::kRelu: for (int64_t i = 0; i < n; ++i) x[i] = x[i] > 0 ? x[i] : 0.f; return;
    case Kind::kSoftsign: for (int64_t i = 0; i < n; ++i) x[i] = x[i] / (1 + std::fabs(x[i])); return;
    case Kind::kSoftplus:  // above 20, log1p(exp(x)) is x in float (and exp would overflow past 88)
      for (int64_t i = 0; i < n; ++i) x[i] = x[i] > 20 ? x[i] : std::log1p(std::exp(x[i]));
      return;
    case Kind::kAffine: for (int64_t i = 0; i < n; ++i) x[i] = a * x[i] + b; return;
    case Kind::kLeakyRelu: for (int64_t i = 0; i < n; ++i) x[i] = x[i] >= 0 ? x[i] : a * x[i]; return;
    case Kind::kThresholdedRelu: for (int64_t i = 0; i < n; ++i) x[i] = x[i] > a ? x[i] : 0.f; return;
    case Kind::kScaledTanh:
      for (int64_t i = 0; i < n; ++i) x[i] *= b;
      tanh_inplace(x, n);
      for (int64_t i = 0; i < n; ++i) x[i] *= a;
      return;
    case Kind::kHardSigmoid:
      for (int64_t i = 0; i < n; ++i) x[i] = std::max(0.f, std::min(1.f, a * x[i] + b));
      return;
    case Kind::kElu: for (int64_t i = 0; i < n; ++i) x[i] = x[i] >= 0 ? x[i] : a * std::expm1(x[i]); return;
  }
}

bool parse_recurrent_activations(const Node& node, const std::vector<std::string>& defaults, int64_t dirs,
                                 std::vector<RecurrentActivation>* out) {
  std::vector<std::string> names = node.attr_strings("activations");
  if (names.empty()) {
    for (int64_t d = 0; d < dirs; ++d) names.insert(names.end(), defaults.begin(), defaults.end());
  }
  if (names.size() != defaults.size() * static_cast<size_t>(dirs)) return false;
  const std::vector<float> alphas = node.attr_floats("activation_alpha"), betas = node.attr_floats("activation_beta");
  size_t a_used = 0, b_used = 0;
  auto alpha = [&](float d) { return a_used < alphas.size() ? alphas[a_used++] : d; };
  auto beta = [&](float d) { return b_used < betas.size() ? betas[b_used++] : d; };
  using K = RecurrentActivation::Kind;
  out->clear();
  for (const std::string& name : names) {
    const std::string n = lower(name);
    RecurrentActivation act;
    if (n == "sigmoid") act.kind = K::kSigmoid;
    else if (n == "tanh") act.kind = K::kTanh;
    else if (n == "relu") act.kind = K::kRelu;
    else if (n == "softsign") act.kind = K::kSoftsign;
    else if (n == "softplus") act.kind = K::kSoftplus;
    else if (n == "affine") { act.kind = K::kAffine; act.alpha = alpha(1); act.beta = beta(0); }
    else if (n == "leakyrelu") { act.kind = K::kLeakyRelu; act.alpha = alpha(0.01f); }
    else if (n == "thresholdedrelu") { act.kind = K::kThresholdedRelu; act.alpha = alpha(1); }
    else if (n == "scaledtanh") { act.kind = K::kScaledTanh; act.alpha = alpha(1); act.beta = beta(1); }
    else if (n == "hardsigmoid") { act.kind = K::kHardSigmoid; act.alpha = alpha(0.2f); act.beta = beta(0.5f); }
    else if (n == "elu") { act.kind = K::kElu; act.alpha = alpha(1); }
    else return false;
    out->push_back(act);
  }
  return true;
}

bool default_recurrent_activations(const Node& node, const std::vector<std::string>& defaults) {
  const std::vector<std::string> names = node.attr_strings("activations");
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] != defaults[i % defaults.size()]) return false;
  }
  return true;
}

}  // namespace cpu
}  // namespace pyflame_rt
