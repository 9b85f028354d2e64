#include "graph/onnx_export.h"

#include <onnx/onnx_pb.h>

#include <cstdio>
#include <fstream>
#include <set>

#include "graph/version.h"

namespace pyflame_rt {

namespace {

void write_tensor(const Tensor& t, const std::string& name, onnx::TensorProto* p) {
  p->set_name(name);
  p->set_data_type(static_cast<int>(t.dtype()));  // DType values are ONNX's element types
  for (int64_t d : t.dims()) p->add_dims(d);
  if (t.dtype() == DType::kString) {
    for (int64_t i = 0; i < t.numel(); ++i) p->add_string_data(t.data<std::string>()[i]);
  } else if (t.nbytes()) {
    p->set_raw_data(t.raw_data(), t.nbytes());
  }
}

void write_value_info(const ValueInfo& v, onnx::ValueInfoProto* p) {
  p->set_name(v.name);
  if (v.dtype == DType::kUndefined) return;
  auto* tt = p->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int>(v.dtype));
  if (!v.shape.rank_known) return;
  auto* shape = tt->mutable_shape();
  for (const Dim& d : v.shape.dims) {
    auto* dim = shape->add_dim();
    if (d.known()) dim->set_dim_value(d.value);
    else if (!d.symbol.empty()) dim->set_dim_param(d.symbol);
  }
}

void write_graph(const Graph& g, onnx::GraphProto* p, std::set<std::string>* domains);

void write_attribute(const std::string& name, const Attribute& a, onnx::AttributeProto* p,
                     std::set<std::string>* domains) {
  using AP = onnx::AttributeProto;
  p->set_name(name);
  switch (a.kind) {
    case AttrKind::kFloat: p->set_type(AP::FLOAT); p->set_f(a.f); break;
    case AttrKind::kInt: p->set_type(AP::INT); p->set_i(a.i); break;
    case AttrKind::kString: p->set_type(AP::STRING); p->set_s(a.s); break;
    case AttrKind::kTensor: p->set_type(AP::TENSOR); write_tensor(a.t, "", p->mutable_t()); break;
    case AttrKind::kGraph: p->set_type(AP::GRAPH); write_graph(*a.g, p->mutable_g(), domains); break;
    case AttrKind::kFloats:
      p->set_type(AP::FLOATS);
      for (float f : a.floats) p->add_floats(f);
      break;
    case AttrKind::kInts:
      p->set_type(AP::INTS);
      for (int64_t i : a.ints) p->add_ints(i);
      break;
    case AttrKind::kStrings:
      p->set_type(AP::STRINGS);
      for (const auto& s : a.strings) p->add_strings(s);
      break;
    case AttrKind::kTensors:
      p->set_type(AP::TENSORS);
      for (const auto& t : a.tensors) write_tensor(t, "", p->add_tensors());
      break;
    case AttrKind::kGraphs:
      p->set_type(AP::GRAPHS);
      for (const auto& sg : a.graphs) write_graph(*sg, p->add_graphs(), domains);
      break;
  }
}

void write_graph(const Graph& g, onnx::GraphProto* p, std::set<std::string>* domains) {
  p->set_name(g.name);
  for (const auto& [name, t] : g.initializers) write_tensor(t, name, p->add_initializer());
  for (const auto& v : g.inputs) write_value_info(v, p->add_input());
  for (const auto& v : g.outputs) write_value_info(v, p->add_output());
  for (const auto& [name, v] : g.value_info) write_value_info(v, p->add_value_info());
  for (const auto& n : g.nodes) {
    auto* np = p->add_node();
    np->set_name(n.name);
    np->set_op_type(n.op_type);
    np->set_domain(n.domain);
    if (!n.domain.empty()) domains->insert(n.domain);
    for (const auto& in : n.inputs) np->add_input(in);
    for (const auto& out : n.outputs) np->add_output(out);
    for (const auto& [name, a] : n.attributes) write_attribute(name, a, np->add_attribute(), domains);
  }
}

}  // namespace

Expected<std::string> export_onnx_bytes(const Graph& graph, const ModelMetadata& metadata) {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.set_producer_name("pyflame_rt");
  model.set_producer_version(version_string());
  model.set_domain(metadata.domain);
  model.set_model_version(metadata.version);
  model.set_doc_string(metadata.description);
  for (const auto& [k, v] : metadata.custom_metadata_map) {
    auto* prop = model.add_metadata_props();
    prop->set_key(k);
    prop->set_value(v);
  }
  std::set<std::string> domains;
  write_graph(graph, model.mutable_graph(), &domains);
  model.mutable_graph()->set_doc_string(metadata.graph_description);
  for (const auto& [domain, version] : graph.opset_imports) {
    auto* o = model.add_opset_import();
    o->set_domain(domain);
    o->set_version(version);
    domains.erase(domain);
  }
  for (const auto& domain : domains) {  // our fused ops' domains, at version 1
    auto* o = model.add_opset_import();
    o->set_domain(domain);
    o->set_version(1);
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes)) {
    return make_status(StatusCode::kFail, "graph '", graph.name, "' could not be serialised as ONNX (over 2 GB?)");
  }
  return bytes;
}

Status save_onnx(const Graph& graph, const std::string& path, const ModelMetadata& metadata) {
  ASSIGN_OR_RETURN(std::string bytes, export_onnx_bytes(graph, metadata));
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) return make_status(StatusCode::kFail, "cannot write '", tmp, "'");
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) return make_status(StatusCode::kFail, "writing '", tmp, "' failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return make_status(StatusCode::kFail, "cannot rename '", tmp, "' to '", path, "'");
  }
  return Status::OK();
}

}  // namespace pyflame_rt
