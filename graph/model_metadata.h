// What a model says about itself beyond its graph (ONNX Runtime's ModelMetadata), read at
// import: producer, names, description, version and the metadata_props key/value pairs.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pyflame_rt {

// A graph input's dimension that carries an ONNX denotation ("DATA_BATCH"), for free
// dimension overrides by denotation.
struct DimDenotation {
  std::string input;
  size_t axis = 0;
  std::string denotation;
};

struct ModelMetadata {
  std::string producer_name;
  std::string producer_version;
  std::string graph_name;
  std::string graph_description;  // the graph's doc_string
  std::string description;        // the model's doc_string
  std::string domain;
  int64_t version = 0;            // model_version
  std::map<std::string, std::string> custom_metadata_map;  // metadata_props
  std::vector<DimDenotation> dim_denotations;
};

}  // namespace pyflame_rt
