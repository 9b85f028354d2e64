#include "net/http/kserve_json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

namespace pyflame_rt::net::http {
namespace {

using json = nlohmann::json;

Expected<InferParameters> read_parameters(const json& j, const std::string& what) {
  InferParameters out;
  if (j.is_null()) return out;
  if (!j.is_object()) return invalid_argument(what, ": 'parameters' must be an object");
  for (const auto& [key, v] : j.items()) {
    if (v.is_boolean()) out[key] = v.get<bool>();
    else if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) out[key] = v.get<double>();
    else if (v.is_number_integer()) out[key] = v.get<int64_t>();
    else if (v.is_number_float()) out[key] = v.get<double>();
    else if (v.is_string()) out[key] = v.get<std::string>();
    else return invalid_argument(what, ": parameter '", key, "' must be a bool, number or string");
  }
  return out;
}

// Nested 'data' deeper than any tensor rank is refused: the recursion is bounded by it, not by
// how many '[' a client sends.
constexpr int kMaxDataDepth = 64;

bool flatten(const json& j, std::vector<const json*>* out, int depth = 0) {
  if (!j.is_array()) {
    out->push_back(&j);
    return true;
  }
  if (depth >= kMaxDataDepth) return false;
  for (const auto& e : j) {
    if (!flatten(e, out, depth + 1)) return false;
  }
  return true;
}

template <typename T>
Status store_integer(const json& v, T* dst, const std::string& what, size_t i) {
  if (!v.is_number_integer()) {
    return invalid_argument(what, ": element ", i, " is ", v.dump(), ", expected an integer");
  }
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
      return invalid_argument(what, ": element ", i, " = ", u, " does not fit the datatype");
    }
    *dst = static_cast<T>(u);
    return Status::OK();
  }
  int64_t s = v.get<int64_t>();
  if (s < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
      (s > 0 && static_cast<uint64_t>(s) > static_cast<uint64_t>(std::numeric_limits<T>::max()))) {
    return invalid_argument(what, ": element ", i, " = ", s, " does not fit the datatype");
  }
  *dst = static_cast<T>(s);
  return Status::OK();
}

Status fill_from_json(const std::vector<const json*>& values, Tensor* t, const std::string& what) {
  Status st = Status::OK();
  dispatch_dtype(t->dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* dst = t->data<T>();
    for (size_t i = 0; i < values.size() && st.ok(); ++i) {
      const json& v = *values[i];
      if constexpr (std::is_same_v<T, bool>) {
        if (!v.is_boolean()) st = invalid_argument(what, ": element ", i, " is ", v.dump(), ", expected true/false");
        else dst[i] = v.get<bool>();
      } else if constexpr (std::is_same_v<T, std::string>) {
        if (!v.is_string()) st = invalid_argument(what, ": element ", i, " is ", v.dump(), ", expected a string");
        else dst[i] = v.get<std::string>();
      } else if constexpr (std::is_integral_v<T>) {
        st = store_integer<T>(v, &dst[i], what, i);
      } else {
        if (!v.is_number()) st = invalid_argument(what, ": element ", i, " is ", v.dump(), ", expected a number");
        else if constexpr (std::is_same_v<T, double>) dst[i] = v.get<double>();
        else dst[i] = T(static_cast<float>(v.get<double>()));
      }
    }
  });
  return st;
}

Expected<Dims> read_shape(const json& j, const std::string& what) {
  if (!j.is_array()) return invalid_argument(what, ": 'shape' must be an array of integers");
  Dims dims;
  for (const auto& d : j) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0) {
      return invalid_argument(what, ": 'shape' ", j.dump(), " must hold integers >= 0");
    }
    dims.push_back(d.get<int64_t>());
  }
  return dims;
}

Expected<ParsedInferRequest> parse(const json& doc, std::string_view binary, const std::string& model,
                                   const std::string& version) {
  if (!doc.is_object()) return invalid_argument("request body must be a JSON object");
  ParsedInferRequest out;
  InferRequest& r = out.request;
  r.model_name = model;
  r.model_version = version;
  if (doc.contains("id")) {
    if (!doc["id"].is_string()) return invalid_argument("'id' must be a string");
    r.id = doc["id"].get<std::string>();
  }
  if (doc.contains("parameters")) {
    ASSIGN_OR_RETURN(r.parameters, read_parameters(doc["parameters"], "request"));
  }
  RETURN_IF_ERROR(read_scheduling_parameters(&r));
  if (auto it = r.parameters.find("binary_data_output"); it != r.parameters.end()) {
    if (!std::holds_alternative<bool>(it->second)) {
      return invalid_argument("request parameter 'binary_data_output' must be a boolean");
    }
    out.binary.all = std::get<bool>(it->second);
  }
  if (!doc.contains("inputs") || !doc["inputs"].is_array()) {
    return invalid_argument("request needs an 'inputs' array");
  }
  size_t offset = 0;  // into the binary section, consumed in input order
  for (const auto& in : doc["inputs"]) {
    if (!in.is_object() || !in.contains("name") || !in["name"].is_string()) {
      return invalid_argument("every input needs a string 'name'");
    }
    std::string what = "input '" + in["name"].get<std::string>() + "'";
    if (!in.contains("datatype") || !in["datatype"].is_string()) return invalid_argument(what, ": needs a 'datatype'");
    ASSIGN_OR_RETURN(DType dtype, dtype_from_kserve(in["datatype"].get<std::string>()));
    if (!in.contains("shape")) return invalid_argument(what, ": needs a 'shape'");
    ASSIGN_OR_RETURN(Dims dims, read_shape(in["shape"], what));
    InferParameters params;
    if (in.contains("parameters")) {
      ASSIGN_OR_RETURN(params, read_parameters(in["parameters"], what));
    }
    Tensor tensor;
    auto size_param = params.find("binary_data_size");
    if (size_param != params.end()) {
      if (!std::holds_alternative<int64_t>(size_param->second) || std::get<int64_t>(size_param->second) < 0) {
        return invalid_argument(what, ": 'binary_data_size' must be an integer >= 0");
      }
      auto size = static_cast<size_t>(std::get<int64_t>(size_param->second));
      if (in.contains("data")) return invalid_argument(what, ": has both 'data' and 'binary_data_size'");
      if (binary.size() - offset < size) {
        return invalid_argument(what, ": binary_data_size ", size, " exceeds the ", binary.size() - offset,
                                " bytes left in the body after the JSON header");
      }
      ASSIGN_OR_RETURN(tensor, tensor_from_bytes(dtype, dims, binary.data() + offset, size, what));
      offset += size;
    } else {
      if (!in.contains("data")) return invalid_argument(what, ": needs 'data' or a 'binary_data_size' parameter");
      std::vector<const json*> values;
      if (!flatten(in["data"], &values)) {
        return invalid_argument(what, ": 'data' is nested deeper than ", kMaxDataDepth, " levels");
      }
      // Counted before allocating: a small body cannot make the server allocate a huge shape.
      const int64_t count = num_elements(dims);
      if (static_cast<int64_t>(values.size()) != count) {
        return invalid_argument(what, ": shape ", dims_to_string(dims), " needs ", count, " elements, 'data' has ",
                                values.size());
      }
      tensor = Tensor(dtype, dims);
      RETURN_IF_ERROR(fill_from_json(values, &tensor, what));
    }
    r.inputs.push_back({in["name"].get<std::string>(), std::move(tensor), std::move(params)});
  }
  if (offset != binary.size()) {
    return invalid_argument("the body has ", binary.size(), " bytes after the JSON header, the inputs' binary_data_size ",
                            "add up to ", offset);
  }
  if (doc.contains("outputs")) {
    if (!doc["outputs"].is_array()) return invalid_argument("'outputs' must be an array");
    for (const auto& o : doc["outputs"]) {
      if (!o.is_object() || !o.contains("name") || !o["name"].is_string()) {
        return invalid_argument("every requested output needs a string 'name'");
      }
      RequestedOutput ro;
      ro.name = o["name"].get<std::string>();
      if (o.contains("parameters")) {
        ASSIGN_OR_RETURN(ro.parameters, read_parameters(o["parameters"], "output '" + ro.name + "'"));
      }
      if (auto it = ro.parameters.find("binary_data"); it != ro.parameters.end()) {
        if (!std::holds_alternative<bool>(it->second)) {
          return invalid_argument("output '", ro.name, "': 'binary_data' must be a boolean");
        }
        out.binary.per_output[ro.name] = std::get<bool>(it->second);
      }
      r.outputs.push_back(std::move(ro));
    }
  }
  return out;
}

void write_parameters(const InferParameters& params, json* out) {
  for (const auto& [k, v] : params) {
    std::visit([&, key = k](const auto& x) { (*out)[key] = x; }, v);
  }
}

template <typename T>
void append_number(std::string* s, T v) {
  if constexpr (std::is_floating_point_v<T>) {
    if (!std::isfinite(v)) {
      s->append("null");  // JSON has no NaN/Inf
      return;
    }
  }
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);  // shortest text that reads back exactly
  s->append(buf, res.ptr);
}

// A flat row-major JSON array of the tensor's elements.
void append_data(const Tensor& t, std::string* s) {
  s->push_back('[');
  dispatch_dtype(t.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (i) s->push_back(',');
      if constexpr (std::is_same_v<T, bool>) {
        s->append(p[i] ? "true" : "false");
      } else if constexpr (std::is_same_v<T, std::string>) {
        s->append(json(p[i]).dump(-1, ' ', false, json::error_handler_t::replace));
      } else if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>) {
        append_number(s, static_cast<float>(p[i]));
      } else if constexpr (std::is_same_v<T, int8_t> || std::is_same_v<T, uint8_t>) {
        append_number(s, static_cast<int>(p[i]));
      } else {
        append_number(s, p[i]);
      }
    }
  });
  s->push_back(']');
}

}  // namespace

Expected<ParsedInferRequest> parse_infer_request(std::string_view body, std::optional<size_t> json_length,
                                                 const std::string& model, const std::string& version) {
  size_t n = json_length.value_or(body.size());
  if (n > body.size()) {
    return invalid_argument("Inference-Header-Content-Length ", n, " exceeds the body's ", body.size(), " bytes");
  }
  json doc = json::parse(body.substr(0, n), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return invalid_argument("malformed JSON in the request body (first ", n, " bytes)");
  try {
    return parse(doc, body.substr(n), model, version);
  } catch (const json::exception& e) {  // a field of an unexpected JSON type
    return invalid_argument("malformed inference request: ", e.what());
  }
}

EncodedBody encode_infer_response(const InferResponse& response, const BinaryOutputChoice& binary) {
  EncodedBody out;
  std::string raw;
  std::string& s = out.body;
  s.reserve(256);
  s += "{\"model_name\":" + json(response.model_name).dump();
  s += ",\"model_version\":" + json(response.model_version).dump();
  if (!response.id.empty()) s += ",\"id\":" + json(response.id).dump(-1, ' ', false, json::error_handler_t::replace);
  if (!response.parameters.empty()) {
    json p = json::object();
    write_parameters(response.parameters, &p);
    s += ",\"parameters\":" + p.dump();
  }
  s += ",\"outputs\":[";
  bool first = true;
  for (const auto& o : response.outputs) {
    if (!first) s.push_back(',');
    first = false;
    s += "{\"name\":" + json(o.name).dump() + ",\"datatype\":\"" + kserve_datatype(o.tensor.dtype()) + "\",\"shape\":[";
    for (size_t i = 0; i < o.tensor.rank(); ++i) {
      if (i) s.push_back(',');
      append_number(&s, o.tensor.dim(i));
    }
    s += "]";
    if (binary.binary(o.name)) {
      size_t before = raw.size();
      append_tensor_bytes(o.tensor, &raw);
      s += ",\"parameters\":{\"binary_data_size\":" + std::to_string(raw.size() - before) + "}}";
    } else {
      s += ",\"data\":";
      append_data(o.tensor, &s);
      s += "}";
    }
  }
  s += "]}";
  if (!raw.empty() || std::any_of(response.outputs.begin(), response.outputs.end(),
                                  [&](const InferTensor& o) { return binary.binary(o.name); })) {
    out.json_length = s.size();
    s += raw;
  }
  return out;
}

std::string error_json(const std::string& message) {
  return json{{"error", message}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string server_metadata_json(const std::string& version) {
  return json{{"name", "pyflame_rt"},
              {"version", version},
              {"extensions", {"binary_tensor_data", "model_repository", "schedule_policy", "metrics"}}}
      .dump();
}

}  // namespace pyflame_rt::net::http
