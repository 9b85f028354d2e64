#include "net/infer_types.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace pyflame_rt::net {
namespace {

struct DatatypeName {
  DType dtype;
  const char* name;
};

constexpr DatatypeName kDatatypes[] = {
    {DType::kBool, "BOOL"},      {DType::kUInt8, "UINT8"},     {DType::kUInt16, "UINT16"},
    {DType::kUInt32, "UINT32"},  {DType::kUInt64, "UINT64"},   {DType::kInt8, "INT8"},
    {DType::kInt16, "INT16"},    {DType::kInt32, "INT32"},     {DType::kInt64, "INT64"},
    {DType::kFloat16, "FP16"},   {DType::kBFloat16, "BF16"},   {DType::kFloat32, "FP32"},
    {DType::kFloat64, "FP64"},   {DType::kString, "BYTES"},
};

// HTTP and gRPC answers per StatusCode. A full queue is 503 / RESOURCE_EXHAUSTED (the client
// should retry later, as with Triton's "exceeds maximum queue size"); a request that waited past
// its deadline is 504 / DEADLINE_EXCEEDED; model files that do not parse are the caller's error.
constexpr StatusMapping kStatusTable[] = {
    {StatusCode::kOk, 200, 0, ""},
    {StatusCode::kFail, 500, 13, "internal"},
    {StatusCode::kInvalidArgument, 400, 3, "invalid_argument"},
    {StatusCode::kNoSuchFile, 404, 5, "not_found"},
    {StatusCode::kInvalidProtobuf, 400, 3, "invalid_model"},
    {StatusCode::kInvalidGraph, 400, 3, "invalid_model"},
    {StatusCode::kNotImplemented, 501, 12, "unimplemented"},
    {StatusCode::kNotFound, 404, 5, "not_found"},
    {StatusCode::kRuntimeError, 500, 13, "model_error"},
    {StatusCode::kResourceExhausted, 503, 8, "queue_full"},
    {StatusCode::kUnavailable, 503, 14, "unavailable"},
    {StatusCode::kDeadlineExceeded, 504, 4, "timeout"},
};

Expected<int64_t> int_parameter(const InferParameter& p, const std::string& name) {
  if (const auto* v = std::get_if<int64_t>(&p)) return *v;
  if (const auto* d = std::get_if<double>(&p)) {
    // A whole number within int64's range ([-2^63, 2^63)); converting anything else (1e24,
    // NaN) was undefined (UBSan, kserve_json fuzzer, stop 25), so it is checked first.
    constexpr double kTwo63 = 9223372036854775808.0;
    if (*d >= -kTwo63 && *d < kTwo63 && *d == std::trunc(*d)) return static_cast<int64_t>(*d);
    return invalid_argument("request parameter '", name, "': expected an integer within int64's range, got ", *d);
  }
  return invalid_argument("request parameter '", name, "': expected an integer");
}

Expected<bool> bool_parameter(const InferParameter& p, const std::string& name) {
  if (const auto* v = std::get_if<bool>(&p)) return *v;
  return invalid_argument("request parameter '", name, "': expected a boolean");
}

}  // namespace

Status read_scheduling_parameters(InferRequest* request) {
  for (const auto& [name, value] : request->parameters) {
    if (name == "priority") {
      ASSIGN_OR_RETURN(request->priority, int_parameter(value, name));
      if (request->priority < 0) {
        return invalid_argument("request parameter 'priority': expected >= 0 (1 is highest, 0 default), got ",
                                request->priority);
      }
    } else if (name == "timeout") {
      ASSIGN_OR_RETURN(request->timeout_us, int_parameter(value, name));
      if (request->timeout_us < 0) {
        return invalid_argument("request parameter 'timeout': expected >= 0 microseconds, got ",
                                request->timeout_us);
      }
    } else if (name == "sequence_id") {
      if (!request->sequence) request->sequence.emplace();
      if (const auto* s = std::get_if<std::string>(&value)) {
        request->sequence->id = *s;
      } else {
        ASSIGN_OR_RETURN(int64_t id, int_parameter(value, name));
        request->sequence->id = std::to_string(id);
      }
    } else if (name == "sequence_start" || name == "sequence_end") {
      if (!request->sequence) request->sequence.emplace();
      ASSIGN_OR_RETURN(bool flag, bool_parameter(value, name));
      (name == "sequence_start" ? request->sequence->start : request->sequence->end) = flag;
    }
  }
  if (request->sequence && request->sequence->id.empty()) {
    return invalid_argument("request parameters sequence_start/sequence_end need a sequence_id");
  }
  return Status::OK();
}

const char* kserve_datatype(DType dtype) {
  for (const auto& d : kDatatypes) {
    if (d.dtype == dtype) return d.name;
  }
  return "";
}

Expected<DType> dtype_from_kserve(const std::string& name) {
  for (const auto& d : kDatatypes) {
    if (name == d.name) return d.dtype;
  }
  return invalid_argument("datatype '", name,
                          "' is not a KServe datatype (BOOL, UINT8..UINT64, INT8..INT64, FP16, BF16, FP32, FP64, BYTES)");
}

int64_t wire_size(DType dtype, const Dims& dims) {
  if (dtype == DType::kString) return -1;
  for (int64_t d : dims) {
    if (d < 0) return -1;
  }
  return num_elements(dims) * static_cast<int64_t>(dtype_size(dtype));
}

Expected<Dims> dims_from_request(const std::vector<int64_t>& shape, const std::string& what) {
  for (int64_t d : shape) {
    if (d < 0) return invalid_argument(what, ": shape ", dims_to_string(shape), " has a negative dim");
  }
  return Dims(shape);
}

Expected<Tensor> tensor_from_bytes(DType dtype, const Dims& dims, const char* data, size_t size,
                                   const std::string& what) {
  // The declared shape is compared with the bytes sent before anything is allocated: a few
  // bytes announcing 2^40 elements are an error, not a terabyte allocation.
  for (int64_t d : dims) {
    if (d < 0) return invalid_argument(what, ": shape ", dims_to_string(dims), " has a negative dim");
  }
  const int64_t count = num_elements(dims);
  if (dtype != DType::kString) {
    const int64_t width = static_cast<int64_t>(dtype_size(dtype));
    if (count > static_cast<int64_t>(size) / std::max<int64_t>(width, 1) || count * width != static_cast<int64_t>(size)) {
      return invalid_argument(what, ": ", kserve_datatype(dtype), dims_to_string(dims), " needs ",
                              count > std::numeric_limits<int64_t>::max() / std::max<int64_t>(width, 1)
                                  ? std::string("more than 2^63")
                                  : std::to_string(count * width),
                              " bytes, got ", size);
    }
  } else if (count > static_cast<int64_t>(size / 4)) {
    return invalid_argument(what, ": ", count, " BYTES elements need at least ", count, " 4-byte lengths, got ", size,
                            " bytes");
  }
  Tensor t(dtype, dims);
  if (dtype != DType::kString) {
    if (size) std::memcpy(t.raw_data(), data, size);
    return t;
  }
  auto* out = t.data<std::string>();
  size_t pos = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (size - pos < 4) {
      return invalid_argument(what, ": BYTES element ", i, " of ", t.numel(), " has no 4-byte length (",
                              size - pos, " bytes left)");
    }
    uint32_t n = static_cast<uint32_t>(static_cast<unsigned char>(data[pos])) |
                 static_cast<uint32_t>(static_cast<unsigned char>(data[pos + 1])) << 8 |
                 static_cast<uint32_t>(static_cast<unsigned char>(data[pos + 2])) << 16 |
                 static_cast<uint32_t>(static_cast<unsigned char>(data[pos + 3])) << 24;
    pos += 4;
    if (size - pos < n) {
      return invalid_argument(what, ": BYTES element ", i, " says ", n, " bytes, only ", size - pos, " left");
    }
    out[i].assign(data + pos, n);
    pos += n;
  }
  if (pos != size) {
    return invalid_argument(what, ": ", t.numel(), " BYTES elements take ", pos, " bytes, got ", size);
  }
  return t;
}

void append_tensor_bytes(const Tensor& t, std::string* out) {
  if (t.dtype() != DType::kString) {
    out->append(static_cast<const char*>(t.raw_data()), t.nbytes());
    return;
  }
  const auto* s = t.data<std::string>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    uint32_t n = static_cast<uint32_t>(s[i].size());
    char len[4] = {static_cast<char>(n & 0xff), static_cast<char>((n >> 8) & 0xff),
                   static_cast<char>((n >> 16) & 0xff), static_cast<char>((n >> 24) & 0xff)};
    out->append(len, 4);
    out->append(s[i]);
  }
}

const StatusMapping& status_mapping(StatusCode code) {
  for (const auto& m : kStatusTable) {
    if (m.code == code) return m;
  }
  return kStatusTable[1];  // kFail: an internal error
}

}  // namespace pyflame_rt::net
