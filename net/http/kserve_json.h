// KServe v2 REST bodies <-> InferRequest / InferResponse, with the binary tensor extension.
// Beast-free (and nlohmann-free in this header) so it is tested without sockets.
//
//   // body = JSON header [+ raw tensor bytes]; json_length from Inference-Header-Content-Length
//   auto req = parse_infer_request(body, json_length, "tiny_cnn", "");
//   ...
//   EncodedBody out = encode_infer_response(response, req->binary);
//   // out.json_length set -> send it as Inference-Header-Content-Length
//
// Data may be flat or nested row-major arrays; its element count must match the shape and
// every value must fit the datatype (no silent narrowing: 1.5 is not an INT64, 300 not a UINT8).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "net/infer_types.h"

namespace pyflame_rt::net {
struct ModelMetadata;    // net/model_repository.h
struct RepositoryEntry;
}  // namespace pyflame_rt::net

namespace pyflame_rt::net::http {

// How the client wants outputs: per output `binary_data`, else request-level
// `binary_data_output`, else JSON.
struct BinaryOutputChoice {
  bool all = false;
  std::map<std::string, bool> per_output;
  bool binary(const std::string& output) const {
    auto it = per_output.find(output);
    return it == per_output.end() ? all : it->second;
  }
};

struct ParsedInferRequest {
  InferRequest request;
  BinaryOutputChoice binary;
};

// `json_length`: the Inference-Header-Content-Length value when the header was sent (the
// bytes after it are the binary section). Model name and version come from the URL.
Expected<ParsedInferRequest> parse_infer_request(std::string_view body, std::optional<size_t> json_length,
                                                 const std::string& model, const std::string& version);

struct EncodedBody {
  std::string body;
  std::optional<size_t> json_length;  // set when binary outputs follow the JSON
};
EncodedBody encode_infer_response(const InferResponse& response, const BinaryOutputChoice& binary);

// {"error": "..."}
std::string error_json(const std::string& message);
// GET /v2, /v2/models/{m}, POST /v2/repository/index (the last two in kserve_metadata.cpp).
std::string server_metadata_json(const std::string& version);
std::string model_metadata_json(const ModelMetadata& metadata);
std::string repository_index_json(const std::vector<RepositoryEntry>& index, bool ready_only);

}  // namespace pyflame_rt::net::http
