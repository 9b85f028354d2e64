// The metadata bodies of the KServe v2 REST API (kserve_json.h), apart from the request codec
// so that the codec builds without the model repository (fuzz/kserve_json_fuzz.cpp).
#include <nlohmann/json.hpp>

#include "net/http/kserve_json.h"
#include "net/model_repository.h"

namespace pyflame_rt::net::http {

using json = nlohmann::json;

std::string model_metadata_json(const ModelMetadata& md) {
  auto tensors = [](const std::vector<TensorInfo>& infos) {
    json arr = json::array();
    for (const auto& t : infos) {
      json shape = json::array();
      if (t.shape.rank_known) {
        for (const auto& d : t.shape.dims) shape.push_back(d.known() ? d.value : -1);
      }
      arr.push_back({{"name", t.name}, {"datatype", kserve_datatype(t.dtype)}, {"shape", shape}});
    }
    return arr;
  };
  return json{{"name", md.name},
              {"versions", md.versions},
              {"platform", md.platform},
              {"inputs", tensors(md.inputs)},
              {"outputs", tensors(md.outputs)}}
      .dump();
}

std::string repository_index_json(const std::vector<RepositoryEntry>& index, bool ready_only) {
  json arr = json::array();
  for (const auto& e : index) {
    if (ready_only && e.state != ModelState::kReady) continue;
    json row = {{"name", e.name}, {"state", model_state_name(e.state)}};
    if (!e.version.empty()) row["version"] = e.version;
    if (!e.reason.empty()) row["reason"] = e.reason;
    arr.push_back(std::move(row));
  }
  return arr.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace pyflame_rt::net::http
