// Transport-neutral inference requests and answers, shared by every listener (HTTP, gRPC,
// ZeroMQ): a listener parses its wire format into an InferRequest, hands it to the
// ModelRepository and writes the InferResponse (or the Status) back in its own format.
//
//   InferRequest req;
//   req.model_name = "tiny_cnn";
//   req.inputs.push_back({"x", Tensor(DType::kFloat32, {1, 3, 8, 8}), {}});
//   RETURN_IF_ERROR(read_scheduling_parameters(&req));   // priority, timeout, sequence_*
//   repository.infer(std::move(req), [](Expected<InferResponse> r) { ... });
//
// Also here, so that every transport agrees: KServe datatype names <-> DType, raw tensor bytes
// <-> Tensor (the binary extension, gRPC raw contents, ZeroMQ frames) and the one table that
// maps a StatusCode to an HTTP status, a gRPC status code and a metric's failure reason.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "graph/status.h"
#include "graph/tensor.h"

namespace pyflame_rt::net {

// KServe's InferParameter: a bool, an int64 or a string (JSON numbers that are not integers
// are kept as double; gRPC has no double in v2, so they travel as strings there).
using InferParameter = std::variant<bool, int64_t, double, std::string>;
using InferParameters = std::map<std::string, InferParameter>;

struct InferTensor {
  std::string name;
  Tensor tensor;
  InferParameters parameters;
};

struct RequestedOutput {
  std::string name;
  InferParameters parameters;  // e.g. binary_data (HTTP)
};

// Triton's sequence controls (request parameters sequence_id / sequence_start / sequence_end).
struct SequenceControl {
  std::string id;  // a number or a string on the wire; kept as text
  bool start = false;
  bool end = false;
};

struct InferRequest {
  std::string model_name;
  std::string model_version;  // empty = the newest loaded version
  std::string id;             // echoed in the answer
  InferParameters parameters;
  std::vector<InferTensor> inputs;
  std::vector<RequestedOutput> outputs;  // empty = every output
  // Filled by read_scheduling_parameters() from `parameters`.
  int64_t priority = 0;    // 1 is the highest, 0 = the model's default level
  int64_t timeout_us = 0;  // longest wait in the queue; 0 = the model's default
  std::optional<SequenceControl> sequence;
  // When the transport had the whole request (the start of the request latency).
  std::chrono::steady_clock::time_point received = std::chrono::steady_clock::now();
};

struct InferResponse {
  std::string model_name;
  std::string model_version;
  std::string id;
  InferParameters parameters;
  std::vector<InferTensor> outputs;  // requested order, else the model's output order
};

// Called once per request, on a model's worker thread or (rejections) the caller's: it must
// hand the answer to its transport's I/O thread and return.
using InferCallback = std::function<void(Expected<InferResponse>)>;

// Reads priority (int >= 0), timeout (int >= 0, microseconds), sequence_id (int or string),
// sequence_start and sequence_end (bool) from request->parameters into the typed fields.
Status read_scheduling_parameters(InferRequest* request);

// KServe datatype names: BOOL, UINT8..UINT64, INT8..INT64, FP16, BF16, FP32, FP64, BYTES.
const char* kserve_datatype(DType dtype);  // "" for a dtype KServe cannot name
Expected<DType> dtype_from_kserve(const std::string& name);

// Bytes a tensor of `dims` takes on the wire; -1 for BYTES (variable) or a negative dim.
int64_t wire_size(DType dtype, const Dims& dims);

// A tensor from raw little-endian row-major bytes (BYTES: per element a 4-byte little-endian
// length, then the bytes). Errors name `what` ("input 'x'"), the expected and received size.
Expected<Tensor> tensor_from_bytes(DType dtype, const Dims& dims, const char* data, size_t size,
                                   const std::string& what);
// The inverse: appends the raw bytes of `t` to *out.
void append_tensor_bytes(const Tensor& t, std::string* out);

// Checks shape values from a request (no negative dims) and returns them as Dims.
Expected<Dims> dims_from_request(const std::vector<int64_t>& shape, const std::string& what);

// The one table from StatusCode to each transport's answer and to the failure metric's reason.
struct StatusMapping {
  StatusCode code;
  int http_status;
  int grpc_code;       // grpc::StatusCode's numeric value
  const char* reason;  // failure reason label: invalid_argument, not_found, queue_full, ...
};
const StatusMapping& status_mapping(StatusCode code);
inline int http_status(StatusCode code) { return status_mapping(code).http_status; }
inline int grpc_status_code(StatusCode code) { return status_mapping(code).grpc_code; }
inline const char* failure_reason(StatusCode code) { return status_mapping(code).reason; }

}  // namespace pyflame_rt::net
