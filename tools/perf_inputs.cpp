#include "perf_inputs.h"

#include <random>
#include <set>

#include "npy_io.h"

namespace pyflame_rt {
namespace {

// "NAME=VALUE" -> (NAME, VALUE), errors naming the option.
Expected<std::pair<std::string, std::string>> split_assignment(const std::string& option, const std::string& spec,
                                                               const char* value_form) {
  size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
    return invalid_argument(option, " expects NAME=", value_form, ", got '", spec, "'");
  }
  return std::make_pair(spec.substr(0, eq), spec.substr(eq + 1));
}

Status check_known(const std::string& option, const std::string& name, const std::vector<TensorInfo>& inputs) {
  std::string known;
  for (const auto& i : inputs) {
    if (i.name == name) return Status::OK();
    known += (known.empty() ? "" : ", ") + i.name;
  }
  return make_status(StatusCode::kNotFound, option, " names input '", name, "' but the model's inputs are: ", known);
}

template <typename T, typename Dist>
void fill(Tensor& t, Dist dist, std::mt19937_64& rng) {
  T* p = t.data<T>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(dist(rng));
}

// Floats uniform in [-1, 1); integers in [0, 8), small enough to be valid indices for
// embedding and gather inputs; bools half true.
Status fill_random(Tensor& t, std::mt19937_64& rng, const std::string& name) {
  std::uniform_real_distribution<double> real(-1.0, 1.0);
  std::uniform_int_distribution<int> small(0, 7);
  switch (t.dtype()) {
    case DType::kFloat32: fill<float>(t, real, rng); return Status::OK();
    case DType::kFloat64: fill<double>(t, real, rng); return Status::OK();
    case DType::kInt8: fill<int8_t>(t, small, rng); return Status::OK();
    case DType::kUInt8: fill<uint8_t>(t, small, rng); return Status::OK();
    case DType::kInt16: fill<int16_t>(t, small, rng); return Status::OK();
    case DType::kInt32: fill<int32_t>(t, small, rng); return Status::OK();
    case DType::kInt64: fill<int64_t>(t, small, rng); return Status::OK();
    case DType::kBool: {
      std::uniform_int_distribution<int> coin(0, 1);
      fill<bool>(t, coin, rng);
      return Status::OK();
    }
    default:
      return not_implemented("input '", name, "': random ", dtype_name(t.dtype()),
                             " tensors are not generated; give it with --input ", name, "=FILE.npy");
  }
}

}  // namespace

Expected<Dims> parse_shape(const std::string& text) {
  Dims dims;
  size_t start = 0;
  while (start <= text.size()) {
    size_t x = text.find('x', start);
    std::string part = text.substr(start, x == std::string::npos ? std::string::npos : x - start);
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (part.empty() || used != part.size() || v < 0) {
      return invalid_argument("shape '", text, "': expected sizes separated by 'x' (like 1x3x224x224)");
    }
    dims.push_back(v);
    if (x == std::string::npos) break;
    start = x + 1;
  }
  return dims;
}

Expected<PerfFeed> make_perf_feed(const std::vector<TensorInfo>& inputs, const PerfFeedSpec& spec) {
  PerfFeed feed;
  std::map<std::string, Dims> shapes;
  for (const auto& option : spec.shapes) {
    size_t start = 0;
    while (start < option.size()) {  // "a=1x2,b=3x4"
      size_t comma = option.find(',', start);
      std::string one = option.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      ASSIGN_OR_RETURN(auto kv, split_assignment("--shapes", one, "1x3x224x224"));
      RETURN_IF_ERROR(check_known("--shapes", kv.first, inputs));
      ASSIGN_OR_RETURN(shapes[kv.first], parse_shape(kv.second));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  for (const auto& option : spec.files) {
    ASSIGN_OR_RETURN(auto kv, split_assignment("--input", option, "FILE.npy"));
    RETURN_IF_ERROR(check_known("--input", kv.first, inputs));
    ASSIGN_OR_RETURN(feed.tensors[kv.first], read_npy(kv.second));
    feed.sources[kv.first] = kv.second;
  }
  std::mt19937_64 rng(spec.seed);
  for (const auto& info : inputs) {
    if (feed.tensors.count(info.name)) continue;
    Dims dims;
    auto given = shapes.find(info.name);
    if (given != shapes.end()) {
      dims = given->second;
    } else {
      for (size_t axis = 0; axis < info.shape.dims.size(); ++axis) {
        const auto& d = info.shape.dims[axis];
        if (d.known() && axis == 0 && spec.batch > 0 && d.value != spec.batch) {
          return invalid_argument("input '", info.name, "' has a fixed first dim ", d.value, " (",
                                  info.shape.to_string(), "): --batch ", spec.batch,
                                  " needs a model whose first dim is symbolic");
        }
        if (d.known()) {
          dims.push_back(d.value);
        } else if (axis == 0) {
          dims.push_back(spec.batch > 0 ? spec.batch : 1);  // the batch dim
        } else {
          return invalid_argument("input '", info.name, "' has a symbolic size at axis ", axis, " (",
                                  info.shape.to_string(), "): give its shape with --shapes ", info.name,
                                  "=... or its data with --input ", info.name, "=FILE.npy");
        }
      }
    }
    Tensor t(info.dtype, dims);
    RETURN_IF_ERROR(fill_random(t, rng, info.name));
    feed.tensors[info.name] = std::move(t);
    feed.sources[info.name] = "random";
  }
  return feed;
}

}  // namespace pyflame_rt
