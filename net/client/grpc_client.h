// The gRPC (KServe v2) side of InferenceClient, on the stubs generated from our .proto.
#pragma once

#include "net/client/inference_client.h"

namespace pyflame_rt::net {

Expected<std::unique_ptr<InferenceClient>> make_grpc_client(const std::string& target, ClientOptions options);

}  // namespace pyflame_rt::net
