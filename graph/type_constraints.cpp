#include "graph/type_constraints.h"

#include <onnx/defs/data_type_utils.h>
#include <onnx/defs/schema.h>

#include <algorithm>
#include <limits>
#include <map>
#include <vector>

namespace pyflame_rt {

namespace {

using TypeScope = std::map<std::string, DType>;

// libonnx's interned name of a tensor type ("tensor(float)"): schemas list their allowed types
// as these pointers.
const std::string* onnx_tensor_type(DType dtype) {
  if (dtype == DType::kUndefined) return nullptr;
  onnx::TypeProto t;
  t.mutable_tensor_type()->set_elem_type(static_cast<int>(dtype));  // our DType codes are ONNX's
  try {
    return onnx::Utils::DataTypeUtils::ToType(t);
  } catch (const std::exception&) {
    return nullptr;
  }
}

std::string allowed_types_text(const onnx::OpSchema::FormalParameter& f) {
  std::vector<std::string> names;
  for (const auto* t : f.GetTypes()) names.push_back(*t);
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

Status check_node_input_types(const std::string& model_name, const std::string& node_name, const std::string& op_type,
                              int version, const std::vector<std::string>& inputs,
                              const std::vector<const std::string*>& types) {
  const onnx::OpSchema* schema = onnx::OpSchemaRegistry::Schema(op_type, version, "");
  if (!schema || schema->inputs().empty()) return Status::OK();
  const auto& formal = schema->inputs();
  std::map<std::string, std::pair<const std::string*, size_t>> bound;  // type parameter -> first type, input
  for (size_t i = 0; i < inputs.size() && i < types.size(); ++i) {
    if (inputs[i].empty()) continue;
    if (i >= formal.size() && formal.back().GetOption() != onnx::OpSchema::Variadic) break;
    const auto& f = formal[std::min(i, formal.size() - 1)];
    const std::string* type = types[i];
    if (!type) continue;
    const auto& allowed = f.GetTypes();
    if (!allowed.empty() && !allowed.count(type)) {
      const bool is_param = f.GetTypeStr().find('(') == std::string::npos;
      return make_status(StatusCode::kInvalidGraph, model_name, ": node '", node_name, "' (", op_type, ", opset ", version,
                         "): input ", i, " '", inputs[i], "' (", f.GetName(), ") has type ", *type, "; ", op_type,
                         " allows ", is_param ? "for its type parameter " + f.GetTypeStr() + " " : std::string(),
                         "only ", allowed_types_text(f));
    }
    if (!f.GetIsHomogeneous() && f.GetOption() == onnx::OpSchema::Variadic) continue;
    auto [b, fresh] = bound.emplace(f.GetTypeStr(), std::make_pair(type, i));
    if (!fresh && b->second.first != type) {
      return make_status(StatusCode::kInvalidGraph, model_name, ": node '", node_name, "' (", op_type, ", opset ", version,
                         "): type parameter ", f.GetTypeStr(), " is bound to ", *b->second.first, " by input ",
                         b->second.second, " '", inputs[b->second.second], "' and to ", *type, " by input ", i, " '",
                         inputs[i], "'; its inputs must have one type");
    }
  }
  return Status::OK();
}

namespace {

Status check_graph(const Graph& g, int version, TypeScope scope, const std::string& model_name);

Status check_node(const Node& n, int version, const TypeScope& scope, const std::string& model_name) {
  for (const auto& [key, attr] : n.attributes) {
    if (attr.kind == AttrKind::kGraph && attr.g) RETURN_IF_ERROR(check_graph(*attr.g, version, scope, model_name));
    if (attr.kind == AttrKind::kGraphs) {
      for (const auto& sg : attr.graphs) if (sg) RETURN_IF_ERROR(check_graph(*sg, version, scope, model_name));
    }
  }
  if (!n.domain.empty() && n.domain != "ai.onnx") return Status::OK();
  std::vector<const std::string*> types;
  for (const auto& input : n.inputs) {
    auto it = scope.find(input);
    types.push_back(it == scope.end() ? nullptr : onnx_tensor_type(it->second));
  }
  return check_node_input_types(model_name, n.name, n.op_type, version, n.inputs, types);
}

Status check_graph(const Graph& g, int version, TypeScope scope, const std::string& model_name) {
  for (const auto& [name, t] : g.initializers) scope[name] = t.dtype();
  for (const auto& v : g.inputs) if (v.dtype != DType::kUndefined) scope[v.name] = v.dtype;
  for (const auto& [name, v] : g.value_info) if (v.dtype != DType::kUndefined) scope.emplace(name, v.dtype);
  for (const auto& v : g.outputs) if (v.dtype != DType::kUndefined) scope.emplace(v.name, v.dtype);
  for (const Node& n : g.nodes) RETURN_IF_ERROR(check_node(n, version, scope, model_name));
  return Status::OK();
}

}  // namespace

Status check_graph_type_constraints(const Graph& graph, const std::string& model_name) {
  auto def = graph.opset_imports.find("");
  if (def == graph.opset_imports.end()) def = graph.opset_imports.find("ai.onnx");
  if (def == graph.opset_imports.end() || def->second <= 0) return Status::OK();
  const int version = static_cast<int>(std::min<int64_t>(def->second, std::numeric_limits<int>::max()));
  return check_graph(graph, version, {}, model_name);
}

}  // namespace pyflame_rt
