// Graph <-> .pfm (graph/pfm.proto). Every field of the IR is stored, so a load after a save
// prints the same graph and holds the same tensor bytes.
#include "graph/pfm_format.h"
#include "graph/type_constraints.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "graph/pfm.pb.h"

namespace pyflame_rt {

namespace {

constexpr char kMagic[] = "PYFLAMRT";  // 8 bytes, no terminator written
constexpr size_t kMagicSize = 8;

void to_proto(const Tensor& t, pfm::Tensor* p) {
  p->set_dtype(static_cast<int>(t.dtype()));
  for (int64_t d : t.dims()) p->add_dims(d);
  if (t.dtype() == DType::kString) {
    for (int64_t i = 0; i < t.numel(); ++i) p->add_strings(t.data<std::string>()[i]);
  } else if (t.nbytes()) {
    p->set_data(t.raw_data(), t.nbytes());
  }
}

void to_proto(const ValueInfo& v, pfm::ValueInfo* p) {
  p->set_name(v.name);
  p->set_dtype(static_cast<int>(v.dtype));
  p->mutable_shape()->set_rank_known(v.shape.rank_known);
  for (const Dim& d : v.shape.dims) {
    pfm::Dim* pd = p->mutable_shape()->add_dims();
    if (d.known()) pd->set_value(d.value);
    else if (!d.symbol.empty()) pd->set_symbol(d.symbol);
  }
}

void to_proto(const Graph& g, pfm::Graph* p);

void to_proto(const std::string& name, const Attribute& a, pfm::Attribute* p) {
  p->set_name(name);
  p->set_kind(static_cast<int>(a.kind));
  p->set_f(a.f);
  p->set_i(a.i);
  p->set_s(a.s);
  if (a.t.defined()) to_proto(a.t, p->mutable_t());
  if (a.g) to_proto(*a.g, p->mutable_g());
  for (float f : a.floats) p->add_floats(f);
  for (int64_t i : a.ints) p->add_ints(i);
  for (const auto& s : a.strings) p->add_strings(s);
  for (const auto& t : a.tensors) to_proto(t, p->add_tensors());
  for (const auto& g : a.graphs) to_proto(*g, p->add_graphs());
}

void to_proto(const Graph& g, pfm::Graph* p) {
  p->set_name(g.name);
  for (const auto& n : g.nodes) {
    pfm::Node* pn = p->add_nodes();
    pn->set_name(n.name);
    pn->set_op_type(n.op_type);
    pn->set_domain(n.domain);
    for (const auto& i : n.inputs) pn->add_inputs(i);
    for (const auto& o : n.outputs) pn->add_outputs(o);
    for (const auto& kv : n.attributes) to_proto(kv.first, kv.second, pn->add_attributes());
  }
  for (const auto& v : g.inputs) to_proto(v, p->add_inputs());
  for (const auto& v : g.outputs) to_proto(v, p->add_outputs());
  for (const auto& kv : g.initializers) {
    pfm::Initializer* pi = p->add_initializers();
    pi->set_name(kv.first);
    to_proto(kv.second, pi->mutable_tensor());
  }
  for (const auto& kv : g.value_info) to_proto(kv.second, p->add_value_info());
  for (const auto& kv : g.opset_imports) {
    pfm::OpsetImport* o = p->add_opset_imports();
    o->set_domain(kv.first);
    o->set_version(kv.second);
  }
  for (const auto& name : g.overridable_initializers) p->add_overridable_initializers(name);
}

Expected<DType> dtype_of(int code, const std::string& what) {
  if (code == 0) return DType::kUndefined;
  auto dt = dtype_from_onnx(code);
  if (!dt.ok()) return dt.status().with_context(what + ": ");
  return dt;
}

Expected<Tensor> from_proto(const pfm::Tensor& p, const std::string& what) {
  ASSIGN_OR_RETURN(DType dt, dtype_of(p.dtype(), what));
  Dims dims(p.dims().begin(), p.dims().end());
  for (int64_t d : dims) {
    if (d < 0) return make_status(StatusCode::kInvalidProtobuf, what, " has a negative dim ", d);
  }
  // What the file stores is counted before allocating what the dims announce.
  uint64_t needed = static_cast<uint64_t>(num_elements(dims));
  uint64_t stored = dt == DType::kString ? static_cast<uint64_t>(p.strings_size()) : p.data().size();
  if (dt != DType::kString && __builtin_mul_overflow(needed, static_cast<uint64_t>(dtype_size(dt)), &needed)) {
    needed = UINT64_MAX;
  }
  if (needed != stored) {
    return make_status(StatusCode::kInvalidProtobuf, what, " (", dtype_name(dt), dims_to_string(dims), ") needs ",
                       needed == UINT64_MAX ? std::string("too many") : std::to_string(needed),
                       dt == DType::kString ? " strings" : " bytes", ", the file has ", stored);
  }
  Tensor t(dt, dims);
  if (dt == DType::kString) {
    if (p.strings_size() != t.numel()) {
      return make_status(StatusCode::kInvalidProtobuf, what, " needs ", t.numel(), " strings, the file has ", p.strings_size());
    }
    for (int64_t i = 0; i < t.numel(); ++i) t.data<std::string>()[i] = p.strings(static_cast<int>(i));
  } else {
    if (p.data().size() != t.nbytes()) {
      return make_status(StatusCode::kInvalidProtobuf, what, " (", t.summary(), ") needs ", t.nbytes(),
                         " bytes, the file has ", p.data().size());
    }
    if (t.nbytes()) std::memcpy(t.raw_data(), p.data().data(), t.nbytes());
  }
  return t;
}

Expected<ValueInfo> from_proto(const pfm::ValueInfo& p) {
  ValueInfo v;
  v.name = p.name();
  ASSIGN_OR_RETURN(v.dtype, dtype_of(p.dtype(), "value '" + p.name() + "'"));
  v.shape.rank_known = p.shape().rank_known();
  for (const auto& d : p.shape().dims()) {
    if (d.kind_case() == pfm::Dim::kValue) v.shape.dims.emplace_back(d.value());
    else if (d.kind_case() == pfm::Dim::kSymbol) v.shape.dims.emplace_back(Dim(d.symbol()));
    else v.shape.dims.emplace_back(Dim());
  }
  return v;
}

Expected<Graph> from_proto(const pfm::Graph& p);

Expected<Attribute> from_proto(const pfm::Attribute& p, const std::string& node) {
  std::string what = "node '" + node + "' attribute '" + p.name() + "'";
  if (p.kind() < 0 || p.kind() > static_cast<int>(AttrKind::kGraphs)) {
    return make_status(StatusCode::kInvalidProtobuf, what, " has unknown kind ", p.kind());
  }
  Attribute a;
  a.kind = static_cast<AttrKind>(p.kind());
  a.f = p.f();
  a.i = p.i();
  a.s = p.s();
  if (p.has_t()) { ASSIGN_OR_RETURN(a.t, from_proto(p.t(), what)); }
  if (p.has_g()) {
    ASSIGN_OR_RETURN(Graph g, from_proto(p.g()));
    a.g = std::make_shared<Graph>(std::move(g));
  }
  a.floats.assign(p.floats().begin(), p.floats().end());
  a.ints.assign(p.ints().begin(), p.ints().end());
  a.strings.assign(p.strings().begin(), p.strings().end());
  for (const auto& t : p.tensors()) {
    ASSIGN_OR_RETURN(Tensor c, from_proto(t, what));
    a.tensors.push_back(std::move(c));
  }
  for (const auto& gp : p.graphs()) {
    ASSIGN_OR_RETURN(Graph g, from_proto(gp));
    a.graphs.push_back(std::make_shared<Graph>(std::move(g)));
  }
  return a;
}

Expected<Graph> from_proto(const pfm::Graph& p) {
  Graph g;
  g.name = p.name();
  for (const auto& pn : p.nodes()) {
    Node n;
    n.name = pn.name();
    n.op_type = pn.op_type();
    n.domain = pn.domain();
    n.inputs.assign(pn.inputs().begin(), pn.inputs().end());
    n.outputs.assign(pn.outputs().begin(), pn.outputs().end());
    for (const auto& pa : pn.attributes()) {
      ASSIGN_OR_RETURN(Attribute a, from_proto(pa, pn.name()));
      n.attributes[pa.name()] = std::move(a);
    }
    g.nodes.push_back(std::move(n));
  }
  for (const auto& v : p.inputs()) { ASSIGN_OR_RETURN(ValueInfo i, from_proto(v)); g.inputs.push_back(std::move(i)); }
  for (const auto& v : p.outputs()) { ASSIGN_OR_RETURN(ValueInfo o, from_proto(v)); g.outputs.push_back(std::move(o)); }
  for (const auto& v : p.value_info()) { ASSIGN_OR_RETURN(ValueInfo i, from_proto(v)); g.value_info[i.name] = std::move(i); }
  for (const auto& pi : p.initializers()) {
    ASSIGN_OR_RETURN(Tensor t, from_proto(pi.tensor(), "initializer '" + pi.name() + "'"));
    g.initializers[pi.name()] = std::move(t);
  }
  for (const auto& o : p.opset_imports()) g.opset_imports[o.domain()] = o.version();
  g.overridable_initializers.insert(p.overridable_initializers().begin(), p.overridable_initializers().end());
  return g;
}

}  // namespace

bool is_pfm_bytes(const std::string& bytes) {
  return bytes.size() >= kMagicSize && std::memcmp(bytes.data(), kMagic, kMagicSize) == 0;
}

Expected<std::string> serialize_pfm(const Graph& graph) {
  pfm::Model model;
  model.set_format_version(kPfmFormatVersion);
  model.set_producer("pyflame_rt");
  to_proto(graph, model.mutable_graph());
  std::string out(kMagic, kMagicSize);
  if (!model.AppendToString(&out)) {
    return make_status(StatusCode::kFail, "graph '", graph.name, "' could not be serialized (over 2 GB?)");
  }
  return out;
}

Status save_pfm(const Graph& graph, const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, serialize_pfm(graph));
  // Write a temporary file beside the target, then rename: a reader never sees half a model.
  std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return make_status(StatusCode::kNoSuchFile, "cannot write '", tmp, "'");
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.flush()) {
      std::remove(tmp.c_str());
      return make_status(StatusCode::kFail, "writing '", tmp, "' failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return make_status(StatusCode::kFail, "cannot rename '", tmp, "' to '", path, "'");
  }
  return Status::OK();
}

Expected<Graph> load_pfm_bytes(const std::string& bytes) {
  if (!is_pfm_bytes(bytes)) {
    return make_status(StatusCode::kInvalidProtobuf, "not a .pfm model (missing the PYFLAMRT magic)");
  }
  pfm::Model model;
  if (!model.ParseFromArray(bytes.data() + kMagicSize, static_cast<int>(bytes.size() - kMagicSize))) {
    return make_status(StatusCode::kInvalidProtobuf, ".pfm model does not parse (truncated or corrupt)");
  }
  if (model.format_version() > static_cast<uint32_t>(kPfmFormatVersion)) {
    return not_implemented(".pfm format version ", model.format_version(), " is newer than this runtime reads (",
                           kPfmFormatVersion, ")");
  }
  if (model.format_version() == 0 || !model.has_graph()) {
    return make_status(StatusCode::kInvalidProtobuf, ".pfm model has no format version or no graph");
  }
  Expected<Graph> converted = Status();
  try {
    converted = from_proto(model.graph());
  } catch (const std::bad_alloc&) {
    return make_status(StatusCode::kResourceExhausted, ".pfm model declares a tensor too large to allocate");
  }
  ASSIGN_OR_RETURN(Graph g, std::move(converted));
  RETURN_IF_ERROR(g.sort_topologically());
  RETURN_IF_ERROR(g.validate());
  // A .pfm file is as untrusted as an ONNX one: the same type constraints (docs/reliability.md).
  RETURN_IF_ERROR(check_graph_type_constraints(g, ".pfm model"));
  return g;
}

Expected<Graph> load_pfm_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_status(StatusCode::kNoSuchFile, "model file '", path, "' cannot be opened");
  std::ostringstream ss;
  ss << in.rdbuf();
  auto g = load_pfm_bytes(ss.str());
  if (!g.ok()) return g.status().with_context("model file '" + path + "': ");
  return g;
}

}  // namespace pyflame_rt
