// KServe v2 gRPC messages <-> the transport-neutral InferRequest / InferResponse.
//
//   ASSIGN_OR_RETURN(InferRequest req, request_from_proto(proto_request));
//   repository.infer(std::move(req), [&](Expected<InferResponse> r) {
//     if (r.ok()) response_to_proto(*r, &proto_response);
//   });
//
// Inputs come as raw_input_contents (one entry per input, raw little-endian row-major bytes,
// what Triton's clients send) or as typed `contents` (fp32_contents, int64_contents, ...);
// a request mixing both is refused, as KServe says. Outputs always go back as
// raw_output_contents: one copy, no per-element encoding. Errors name the input, the
// expected and the received value.
#pragma once

#include <grpcpp/support/status.h>

#include "net/infer_types.h"
#include "net/proto/grpc_service.pb.h"

namespace pyflame_rt::net {

Expected<InferRequest> request_from_proto(const inference::ModelInferRequest& proto);
void response_to_proto(const InferResponse& response, inference::ModelInferResponse* proto);

// Request parameters both ways (a double has no gRPC field in v2: it travels as a string).
InferParameters parameters_from_proto(const google::protobuf::Map<std::string, inference::InferParameter>& proto);
void parameters_to_proto(const InferParameters& params,
                         google::protobuf::Map<std::string, inference::InferParameter>* proto);

// A Status as a gRPC status, through the one StatusCode table (infer_types.h).
grpc::Status to_grpc_status(const Status& status);

}  // namespace pyflame_rt::net
