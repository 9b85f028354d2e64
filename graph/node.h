// Node: one operator application. Inputs and outputs are value names; an empty name marks an
// omitted optional input or output, as in ONNX.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "graph/attribute.h"
#include "graph/status.h"

namespace pyflame_rt {

class Node {
 public:
  std::string name;
  std::string op_type;
  std::string domain;  // "" is the default ONNX domain ("ai.onnx")
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::map<std::string, Attribute> attributes;

  bool has_attr(const std::string& key) const { return attributes.count(key) > 0; }
  const Attribute* attr(const std::string& key) const;
  int64_t attr_int(const std::string& key, int64_t fallback) const;
  float attr_float(const std::string& key, float fallback) const;
  std::string attr_string(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> attr_ints(const std::string& key, std::vector<int64_t> fallback = {}) const;
  std::vector<float> attr_floats(const std::string& key, std::vector<float> fallback = {}) const;
  std::vector<std::string> attr_strings(const std::string& key) const;
  const Tensor* attr_tensor(const std::string& key) const;
  const Graph* attr_graph(const std::string& key) const;

  // "Conv 'conv1'" — the prefix for every error about this node.
  std::string describe() const;
  // Status with the node prefix: node.error(StatusCode::kInvalidArgument, "input has ", c, " channels").
  template <typename... Args>
  Status error(StatusCode code, Args&&... args) const {
    return make_status(code, describe(), ": ", std::forward<Args>(args)...);
  }
};

}  // namespace pyflame_rt
