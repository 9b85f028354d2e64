#include "graph/node.h"

#include "graph/checked_math.h"

namespace pyflame_rt {

const char* attr_kind_name(AttrKind k) {
  switch (k) {
    case AttrKind::kFloat: return "float";
    case AttrKind::kInt: return "int";
    case AttrKind::kString: return "string";
    case AttrKind::kTensor: return "tensor";
    case AttrKind::kGraph: return "graph";
    case AttrKind::kFloats: return "floats";
    case AttrKind::kInts: return "ints";
    case AttrKind::kStrings: return "strings";
    case AttrKind::kTensors: return "tensors";
    case AttrKind::kGraphs: return "graphs";
  }
  return "?";
}

const Attribute* Node::attr(const std::string& key) const {
  auto it = attributes.find(key);
  return it == attributes.end() ? nullptr : &it->second;
}

int64_t Node::attr_int(const std::string& key, int64_t fallback) const {
  const Attribute* a = attr(key);
  if (!a) return fallback;
  // A float where an int is read (a mutated or hand-written model): saturated, NaN 0, not a
  // plain cast, which is undefined past int64 (kernel_run stop 17 run 5: 1e30).
  return a->kind == AttrKind::kFloat ? int64_from_double(a->f) : a->i;
}

float Node::attr_float(const std::string& key, float fallback) const {
  const Attribute* a = attr(key);
  if (!a) return fallback;
  return a->kind == AttrKind::kInt ? static_cast<float>(a->i) : a->f;
}

std::string Node::attr_string(const std::string& key, const std::string& fallback) const {
  const Attribute* a = attr(key);
  return a ? a->s : fallback;
}

std::vector<int64_t> Node::attr_ints(const std::string& key, std::vector<int64_t> fallback) const {
  const Attribute* a = attr(key);
  return a ? a->ints : fallback;
}

std::vector<float> Node::attr_floats(const std::string& key, std::vector<float> fallback) const {
  const Attribute* a = attr(key);
  return a ? a->floats : fallback;
}

std::vector<std::string> Node::attr_strings(const std::string& key) const {
  const Attribute* a = attr(key);
  return a ? a->strings : std::vector<std::string>{};
}

const Tensor* Node::attr_tensor(const std::string& key) const {
  const Attribute* a = attr(key);
  return a && a->kind == AttrKind::kTensor ? &a->t : nullptr;
}

const Graph* Node::attr_graph(const std::string& key) const {
  const Attribute* a = attr(key);
  return a && a->kind == AttrKind::kGraph ? a->g.get() : nullptr;
}

std::string Node::describe() const {
  std::string d = op_type;
  if (!domain.empty() && domain != "ai.onnx") d = domain + "." + d;
  return d + " '" + (name.empty() ? (outputs.empty() ? std::string("?") : outputs[0]) : name) + "'";
}

}  // namespace pyflame_rt
