#include "net/zmq/zmq_wire.h"

#include <nlohmann/json.hpp>

namespace pyflame_rt::net {
namespace {

using json = nlohmann::json;

// gRPC canonical code names by value (grpc::StatusCode), which status_mapping() gives.
constexpr const char* kGrpcCodeNames[] = {
    "OK",        "CANCELLED",           "UNKNOWN",           "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
    "OUT_OF_RANGE", "UNIMPLEMENTED",       "INTERNAL",          "UNAVAILABLE",      "DATA_LOSS",
    "UNAUTHENTICATED"};

Expected<std::string> string_field(const json& j, const char* key, const std::string& what, bool required) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (required) return invalid_argument(what, ": no \"", key, "\" field");
    return std::string();
  }
  if (!it->is_string()) return invalid_argument(what, ": \"", key, "\" must be a string, got ", it->type_name());
  return it->get<std::string>();
}

Expected<bool> bool_field(const json& j, const char* key, const std::string& what) {
  auto it = j.find(key);
  if (it == j.end()) return false;
  if (!it->is_boolean()) return invalid_argument(what, ": \"", key, "\" must be true or false, got ", it->dump());
  return it->get<bool>();
}

}  // namespace

const char* zmq_error_code(const Status& status) {
  int code = grpc_status_code(status.code());
  if (code < 0 || code >= static_cast<int>(std::size(kGrpcCodeNames))) return "UNKNOWN";
  return kGrpcCodeNames[code];
}

Expected<ZmqRequest> parse_zmq_request(const std::vector<FrameView>& frames, ZmqErrorContext* context) {
  if (frames.empty()) return invalid_argument("ZeroMQ message: no frames (expected a JSON header, then inputs)");
  const json header = json::parse(frames[0].data, frames[0].data + frames[0].size, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) return invalid_argument("ZeroMQ frame 0: not valid JSON (expected the request header)");
  if (!header.is_object()) return invalid_argument("ZeroMQ frame 0: expected a JSON object, got ", header.type_name());
  const std::string what = "ZeroMQ header";
  ZmqRequest out;
  // Fill the context as soon as each field is known, so errors can name it.
  ASSIGN_OR_RETURN(out.request.model_name, string_field(header, "model", what, true));
  context->model = out.request.model_name;
  ASSIGN_OR_RETURN(out.stream, string_field(header, "stream", what, false));
  context->stream = out.stream;
  auto seq = header.find("seq");
  if (seq == header.end() || !seq->is_number_integer()) {
    return invalid_argument(what, ": \"seq\" must be an integer, got ", seq == header.end() ? "nothing" : seq->dump());
  }
  out.seq = seq->get<int64_t>();
  context->seq = out.seq;
  ASSIGN_OR_RETURN(out.request.id, string_field(header, "id", what, false));
  ASSIGN_OR_RETURN(out.request.model_version, string_field(header, "version", what, false));
  if (out.request.model_name.empty()) return invalid_argument(what, ": \"model\" is empty");

  auto inputs = header.find("inputs");
  if (inputs == header.end() || !inputs->is_array()) {
    return invalid_argument(what, ": \"inputs\" must be an array of {name, datatype, shape}");
  }
  if (frames.size() != inputs->size() + 1) {
    return invalid_argument("ZeroMQ message: the header lists ", inputs->size(), " inputs, so ", inputs->size() + 1,
                            " frames were expected, got ", frames.size());
  }
  for (size_t i = 0; i < inputs->size(); ++i) {
    const json& in = (*inputs)[i];
    const std::string in_what = what + " input " + std::to_string(i);
    if (!in.is_object()) return invalid_argument(in_what, ": expected {name, datatype, shape}, got ", in.dump());
    ASSIGN_OR_RETURN(std::string name, string_field(in, "name", in_what, true));
    ASSIGN_OR_RETURN(std::string datatype, string_field(in, "datatype", in_what, true));
    const std::string tensor_what = "input '" + name + "' (frame " + std::to_string(i + 1) + ")";
    ASSIGN_OR_RETURN(DType dtype, dtype_from_kserve(datatype));
    auto shape = in.find("shape");
    if (shape == in.end() || !shape->is_array()) return invalid_argument(tensor_what, ": \"shape\" must be an array");
    std::vector<int64_t> dims;
    for (const json& d : *shape) {
      if (!d.is_number_integer()) return invalid_argument(tensor_what, ": shape ", shape->dump(), " is not integers");
      dims.push_back(d.get<int64_t>());
    }
    ASSIGN_OR_RETURN(Dims checked, dims_from_request(dims, tensor_what));
    const FrameView& f = frames[i + 1];
    ASSIGN_OR_RETURN(Tensor t, tensor_from_bytes(dtype, checked, f.data, f.size, tensor_what));
    out.request.inputs.push_back({name, std::move(t), {}});
  }
  if (auto outputs = header.find("outputs"); outputs != header.end()) {
    if (!outputs->is_array()) return invalid_argument(what, ": \"outputs\" must be an array of output names");
    for (const json& o : *outputs) {
      if (!o.is_string()) return invalid_argument(what, ": \"outputs\" entry ", o.dump(), " is not a name");
      out.request.outputs.push_back({o.get<std::string>(), {}});
    }
  }
  ASSIGN_OR_RETURN(bool start, bool_field(header, "start", what));
  ASSIGN_OR_RETURN(bool end, bool_field(header, "end", what));
  if (!out.stream.empty()) {
    out.request.sequence = SequenceControl{out.stream, start, end};
  } else if (start || end) {
    return invalid_argument(what, ": \"start\"/\"end\" need a \"stream\"");
  }
  return out;
}

std::vector<std::string> encode_zmq_response(const InferResponse& response, const std::string& stream, int64_t seq,
                                             int64_t gap) {
  json header = {{"model", response.model_name}, {"stream", stream}, {"seq", seq}};
  if (!response.model_version.empty()) header["version"] = response.model_version;
  if (!response.id.empty()) header["id"] = response.id;
  if (gap > 0) header["gap"] = gap;
  json outputs = json::array();
  std::vector<std::string> frames;
  frames.push_back(stream.empty() ? response.model_name : stream);
  frames.emplace_back();  // the header, once the outputs are listed
  for (const InferTensor& out : response.outputs) {
    outputs.push_back({{"name", out.name},
                       {"datatype", kserve_datatype(out.tensor.dtype())},
                       {"shape", std::vector<int64_t>(out.tensor.dims().begin(), out.tensor.dims().end())}});
    std::string bytes;
    append_tensor_bytes(out.tensor, &bytes);
    frames.push_back(std::move(bytes));
  }
  header["outputs"] = std::move(outputs);
  frames[1] = header.dump(-1, ' ', false, json::error_handler_t::replace);
  return frames;
}

std::vector<std::string> encode_zmq_error(const ZmqErrorContext& context, const Status& status, const char* code) {
  json header = {{"model", context.model},
                 {"stream", context.stream},
                 {"seq", context.seq},
                 {"error", status.message()},
                 {"code", code ? code : zmq_error_code(status)}};
  // dump() with replacement: a malformed header may carry invalid UTF-8 into the message.
  return {"error", header.dump(-1, ' ', false, json::error_handler_t::replace)};
}

}  // namespace pyflame_rt::net
