#include "net/grpc/grpc_codec.h"

#include <cstring>

namespace pyflame_rt::net {
namespace {

using Contents = inference::InferTensorContents;

// Copies a repeated proto field into a tensor of element type T, checking the count.
template <typename T, typename Field>
Expected<Tensor> tensor_from_field(DType dtype, const Dims& dims, const Field& field, const char* field_name,
                                   const std::string& what) {
  Tensor t(dtype, dims);
  if (field.size() != t.numel()) {
    return invalid_argument(what, ": ", kserve_datatype(dtype), dims_to_string(dims), " needs ", t.numel(),
                            " values in contents.", field_name, ", got ", field.size());
  }
  T* out = t.data<T>();
  int64_t i = 0;
  for (const auto& v : field) out[i++] = static_cast<T>(v);
  return t;
}

Expected<Tensor> tensor_from_contents(DType dtype, const Dims& dims, const Contents& c, const std::string& what) {
  switch (dtype) {
    case DType::kBool: return tensor_from_field<bool>(dtype, dims, c.bool_contents(), "bool_contents", what);
    case DType::kInt8: return tensor_from_field<int8_t>(dtype, dims, c.int_contents(), "int_contents", what);
    case DType::kInt16: return tensor_from_field<int16_t>(dtype, dims, c.int_contents(), "int_contents", what);
    case DType::kInt32: return tensor_from_field<int32_t>(dtype, dims, c.int_contents(), "int_contents", what);
    case DType::kInt64: return tensor_from_field<int64_t>(dtype, dims, c.int64_contents(), "int64_contents", what);
    case DType::kUInt8: return tensor_from_field<uint8_t>(dtype, dims, c.uint_contents(), "uint_contents", what);
    case DType::kUInt16: return tensor_from_field<uint16_t>(dtype, dims, c.uint_contents(), "uint_contents", what);
    case DType::kUInt32: return tensor_from_field<uint32_t>(dtype, dims, c.uint_contents(), "uint_contents", what);
    case DType::kUInt64:
      return tensor_from_field<uint64_t>(dtype, dims, c.uint64_contents(), "uint64_contents", what);
    case DType::kFloat32: return tensor_from_field<float>(dtype, dims, c.fp32_contents(), "fp32_contents", what);
    case DType::kFloat64: return tensor_from_field<double>(dtype, dims, c.fp64_contents(), "fp64_contents", what);
    case DType::kString:
      return tensor_from_field<std::string>(dtype, dims, c.bytes_contents(), "bytes_contents", what);
    default:
      return invalid_argument(what, ": ", kserve_datatype(dtype),
                              " has no typed contents field in KServe v2; send it in raw_input_contents");
  }
}

}  // namespace

InferParameters parameters_from_proto(const google::protobuf::Map<std::string, inference::InferParameter>& proto) {
  InferParameters params;
  for (const auto& [name, p] : proto) {
    switch (p.parameter_choice_case()) {
      case inference::InferParameter::kBoolParam: params[name] = p.bool_param(); break;
      case inference::InferParameter::kInt64Param: params[name] = p.int64_param(); break;
      case inference::InferParameter::kStringParam: params[name] = p.string_param(); break;
      default: break;  // an unset oneof carries nothing
    }
  }
  return params;
}

void parameters_to_proto(const InferParameters& params,
                         google::protobuf::Map<std::string, inference::InferParameter>* proto) {
  for (const auto& [name, value] : params) {
    inference::InferParameter& p = (*proto)[name];
    if (const auto* b = std::get_if<bool>(&value)) {
      p.set_bool_param(*b);
    } else if (const auto* i = std::get_if<int64_t>(&value)) {
      p.set_int64_param(*i);
    } else if (const auto* d = std::get_if<double>(&value)) {
      p.set_string_param(std::to_string(*d));
    } else {
      p.set_string_param(std::get<std::string>(value));
    }
  }
}

Expected<InferRequest> request_from_proto(const inference::ModelInferRequest& proto) {
  InferRequest req;
  req.model_name = proto.model_name();
  req.model_version = proto.model_version();
  req.id = proto.id();
  req.parameters = parameters_from_proto(proto.parameters());
  const bool raw = proto.raw_input_contents_size() > 0;
  if (raw && proto.raw_input_contents_size() != proto.inputs_size()) {
    return invalid_argument("raw_input_contents has ", proto.raw_input_contents_size(), " entries for ",
                            proto.inputs_size(), " inputs: expected one per input, in input order");
  }
  for (int i = 0; i < proto.inputs_size(); ++i) {
    const auto& in = proto.inputs(i);
    const std::string what = "input '" + in.name() + "'";
    ASSIGN_OR_RETURN(DType dtype, dtype_from_kserve(in.datatype()));
    ASSIGN_OR_RETURN(Dims dims, dims_from_request({in.shape().begin(), in.shape().end()}, what));
    InferTensor tensor;
    tensor.name = in.name();
    tensor.parameters = parameters_from_proto(in.parameters());
    if (raw) {
      if (in.has_contents() && in.contents().ByteSizeLong() > 0) {
        return invalid_argument(what, ": has both contents and raw_input_contents; send one");
      }
      const std::string& bytes = proto.raw_input_contents(i);
      ASSIGN_OR_RETURN(tensor.tensor, tensor_from_bytes(dtype, dims, bytes.data(), bytes.size(), what));
    } else {
      ASSIGN_OR_RETURN(tensor.tensor, tensor_from_contents(dtype, dims, in.contents(), what));
    }
    req.inputs.push_back(std::move(tensor));
  }
  for (const auto& out : proto.outputs()) {
    req.outputs.push_back({out.name(), parameters_from_proto(out.parameters())});
  }
  RETURN_IF_ERROR(read_scheduling_parameters(&req));
  return req;
}

void response_to_proto(const InferResponse& response, inference::ModelInferResponse* proto) {
  proto->set_model_name(response.model_name);
  proto->set_model_version(response.model_version);
  proto->set_id(response.id);
  parameters_to_proto(response.parameters, proto->mutable_parameters());
  for (const InferTensor& out : response.outputs) {
    auto* t = proto->add_outputs();
    t->set_name(out.name);
    t->set_datatype(kserve_datatype(out.tensor.dtype()));
    for (int64_t d : out.tensor.dims()) t->add_shape(d);
    parameters_to_proto(out.parameters, t->mutable_parameters());
    std::string* bytes = proto->add_raw_output_contents();
    bytes->reserve(out.tensor.dtype() == DType::kString ? 0 : out.tensor.nbytes());
    append_tensor_bytes(out.tensor, bytes);
  }
}

grpc::Status to_grpc_status(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(grpc_status_code(status.code())), status.message());
}

}  // namespace pyflame_rt::net
