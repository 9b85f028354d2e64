// The HTTP/REST (KServe v2, binary tensor extension) side of InferenceClient, on Boost.Beast.
#pragma once

#include "net/client/inference_client.h"

namespace pyflame_rt::net {

Expected<std::unique_ptr<InferenceClient>> make_http_client(const std::string& host, int port, ClientOptions options);

// The request body of the binary extension: a JSON header, then each input's raw bytes.
// Returns the body; *json_size is the header's length (Inference-Header-Content-Length).
std::string encode_binary_infer_request(const TensorMap& feeds, const std::vector<std::string>& outputs,
                                        size_t* json_size);
// Parses an /infer answer: JSON only, or a JSON header of `json_size` bytes then raw outputs.
Expected<TensorMap> decode_infer_response(const std::string& body, size_t json_size);

}  // namespace pyflame_rt::net
