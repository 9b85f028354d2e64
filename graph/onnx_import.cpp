// ONNX -> Graph. Parses the ModelProto with libonnx, runs ONNX shape inference so intermediate
// values carry types, then converts graph, nodes, attributes (subgraphs recursively) and
// tensors (raw, typed fields or external files) into our IR.
#include "graph/onnx_import.h"
#include "graph/type_constraints.h"

#include <onnx/defs/data_type_utils.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <cerrno>
#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <sys/stat.h>

#include "graph/onnx_export.h"
#include "graph/onnx_inference_guard.h"

namespace pyflame_rt {

namespace {

struct ImportContext {
  std::string model_name;  // the file (or "<bytes>") for error messages
  std::string base_dir;    // where external data lives
  ModelMetadata* metadata = nullptr;  // filled when given
};

void read_metadata(const onnx::ModelProto& model, ModelMetadata* m) {
  m->producer_name = model.producer_name();
  m->producer_version = model.producer_version();
  m->graph_name = model.graph().name();
  m->graph_description = model.graph().doc_string();
  m->description = model.doc_string();
  m->domain = model.domain();
  m->version = model.model_version();
  for (const auto& p : model.metadata_props()) m->custom_metadata_map[p.key()] = p.value();
  for (const auto& in : model.graph().input()) {
    if (!in.type().has_tensor_type() || !in.type().tensor_type().has_shape()) continue;
    const auto& dims = in.type().tensor_type().shape().dim();
    for (int i = 0; i < dims.size(); ++i) {
      if (!dims[i].denotation().empty()) m->dim_denotations.push_back({in.name(), static_cast<size_t>(i), dims[i].denotation()});
    }
  }
}

Expected<std::string> read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_status(StatusCode::kNoSuchFile, what, " '", path, "' cannot be opened");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Expected<Shape> convert_shape(const onnx::TypeProto& type) {
  if (!type.has_tensor_type() || !type.tensor_type().has_shape()) return Shape::unknown_rank();
  Shape s;
  for (const auto& d : type.tensor_type().shape().dim()) {
    if (d.has_dim_value()) s.dims.emplace_back(d.dim_value());
    else if (d.has_dim_param() && !d.dim_param().empty()) s.dims.emplace_back(Dim(d.dim_param()));
    else s.dims.emplace_back(Dim());
  }
  return s;
}

// Element type of a tensor, sequence-of-tensor or optional type (undefined when unknown).
DType elem_type_of(const onnx::TypeProto& type) {
  int code = 0;
  if (type.has_tensor_type()) code = type.tensor_type().elem_type();
  else if (type.has_sequence_type()) return elem_type_of(type.sequence_type().elem_type());
  else if (type.has_optional_type()) return elem_type_of(type.optional_type().elem_type());
  auto dt = dtype_from_onnx(code);
  return dt.ok() ? *dt : DType::kUndefined;
}

Expected<ValueInfo> convert_value_info(const onnx::ValueInfoProto& v) {
  ValueInfo info;
  info.name = v.name();
  info.dtype = elem_type_of(v.type());
  ASSIGN_OR_RETURN(info.shape, convert_shape(v.type()));
  return info;
}

// A non-negative decimal integer (external data offset/length): a hostile model's "12abc",
// "-1" or 2^70 is an error naming the tensor and the key, never an exception.
Expected<int64_t> parse_external_number(const onnx::TensorProto& t, const std::string& key,
                                        const std::string& text) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < 0) {
    return invalid_graph("tensor '", t.name(), "': external data ", key, " '", text,
                         "' is not a non-negative integer below 2^63");
  }
  return v;
}

// The real path of `dir` ("" = the working directory), or an error.
Expected<std::string> real_directory(const std::string& dir) {
  std::unique_ptr<char, decltype(&std::free)> real(realpath(dir.empty() ? "." : dir.c_str(), nullptr), &std::free);
  if (!real) {
    return make_status(StatusCode::kNoSuchFile, "external data folder '", dir.empty() ? "." : dir,
                       "' cannot be resolved: ", std::strerror(errno));
  }
  return std::string(real.get());
}

// External data must stay inside the model's folder: the location is relative, has no "..",
// and after resolving every symlink (of the file and of the folders it passes through) the
// file is still a regular file under the folder. A model is untrusted input: without this a
// symlink next to it could make it read any file the process can.
Status read_external(const onnx::TensorProto& t, const ImportContext& ctx, std::string* out) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : t.external_data()) {
    if (kv.key() == "location") {
      location = kv.value();
    } else if (kv.key() == "offset") {
      ASSIGN_OR_RETURN(offset, parse_external_number(t, "offset", kv.value()));
    } else if (kv.key() == "length") {
      ASSIGN_OR_RETURN(length, parse_external_number(t, "length", kv.value()));
    }
  }
  if (location.empty()) {
    return invalid_graph("tensor '", t.name(), "' has external data without a location");
  }
  if (location.find("..") != std::string::npos || location[0] == '/' ||
      location.find('\0') != std::string::npos) {
    return invalid_graph("tensor '", t.name(), "': external data location '", location,
                         "' must be a relative path inside the model's directory");
  }
  std::string path = ctx.base_dir.empty() ? location : ctx.base_dir + "/" + location;
  ASSIGN_OR_RETURN(std::string base, real_directory(ctx.base_dir));
  std::unique_ptr<char, decltype(&std::free)> real(realpath(path.c_str(), nullptr), &std::free);
  if (!real) {
    return make_status(StatusCode::kNoSuchFile, "external data file '", path, "' of tensor '",
                       t.name(), "' cannot be opened: ", std::strerror(errno));
  }
  std::string resolved(real.get());
  std::string prefix = base == "/" ? base : base + "/";
  if (resolved.compare(0, prefix.size(), prefix) != 0) {
    return invalid_graph("tensor '", t.name(), "': external data location '", location,
                         "' resolves to '", resolved, "', outside the model's directory '", base,
                         "' (through a symlink)");
  }
  struct stat st {};
  if (stat(resolved.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return invalid_graph("tensor '", t.name(), "': external data location '", location,
                         "' is not a regular file");
  }
  std::ifstream in(resolved, std::ios::binary);
  if (!in) {
    return make_status(StatusCode::kNoSuchFile, "external data file '", path, "' of tensor '",
                       t.name(), "' cannot be opened");
  }
  int64_t size = static_cast<int64_t>(st.st_size);
  if (offset > size) {
    return invalid_graph("tensor '", t.name(), "': external data offset ", offset, " is past the end of '",
                         path, "' (", size, " bytes)");
  }
  if (length < 0) length = size - offset;
  if (length > size - offset) {  // offset + length without overflow
    return invalid_graph("tensor '", t.name(), "': external data file '", path, "' has ", size,
                         " bytes, expected at least offset ", offset, " + length ", length);
  }
  out->resize(static_cast<size_t>(length));
  in.seekg(offset);
  if (length > 0 && !in.read(&(*out)[0], length)) {
    return make_status(StatusCode::kNoSuchFile, "external data file '", path, "' of tensor '",
                       t.name(), "' could not be read");
  }
  return Status::OK();
}

// Copies `count` values from a repeated proto field into typed storage.
template <typename Dst, typename Field>
void copy_field(const Field& field, Dst* dst) {
  int i = 0;
  for (auto v : field) dst[i++] = static_cast<Dst>(v);
}

Expected<Tensor> convert_tensor(const onnx::TensorProto& t, const ImportContext& ctx) {
  auto dt_or = dtype_from_onnx(t.data_type());
  if (!dt_or.ok()) return dt_or.status().with_context("tensor '" + t.name() + "': ");
  DType dt = *dt_or;
  Dims dims(t.dims().begin(), t.dims().end());
  for (int64_t d : dims) {
    if (d < 0) return invalid_graph("tensor '", t.name(), "' has a negative dimension ", d);
  }
  // The data the model stores is counted before anything is allocated: dims announcing 4 GiB
  // over a few stored bytes must be an error, not a 4 GiB allocation (found by fuzzing).
  std::string external;
  const std::string* raw = nullptr;
  if (t.data_location() == onnx::TensorProto::EXTERNAL) {
    RETURN_IF_ERROR(read_external(t, ctx, &external));
    raw = &external;
  } else if (t.has_raw_data()) {
    raw = &t.raw_data();
  }
  uint64_t stored = 0;  // elements (or bytes, for raw data) present
  if (dt == DType::kString) stored = static_cast<uint64_t>(t.string_data_size());
  else if (raw) stored = raw->size();
  else if (dt == DType::kFloat32) stored = static_cast<uint64_t>(t.float_data_size());
  else if (dt == DType::kFloat64) stored = static_cast<uint64_t>(t.double_data_size());
  else if (dt == DType::kInt64) stored = static_cast<uint64_t>(t.int64_data_size());
  else if (dt == DType::kUInt32 || dt == DType::kUInt64) stored = static_cast<uint64_t>(t.uint64_data_size());
  else stored = static_cast<uint64_t>(t.int32_data_size());
  uint64_t needed = num_elements(dims) == 0 ? 0 : static_cast<uint64_t>(num_elements(dims));
  if (raw && dt != DType::kString &&
      __builtin_mul_overflow(needed, static_cast<uint64_t>(dtype_size(dt)), &needed)) {
    needed = UINT64_MAX;
  }
  if (needed != stored) {
    return invalid_graph("tensor '", t.name(), "' (", dtype_name(dt), dims_to_string(dims), ") needs ",
                         needed == UINT64_MAX ? std::string("too many") : std::to_string(needed),
                         raw && dt != DType::kString ? " bytes of data" : " elements", ", the model stores ", stored);
  }
  Tensor out(dt, dims);
  int64_t n = out.numel();
  auto count_error = [&](int64_t got) {
    return invalid_graph("tensor '", t.name(), "' (", out.summary(), ") needs ", n,
                         " elements, the model stores ", got);
  };
  if (dt == DType::kString) {
    if (t.string_data_size() != n) return count_error(t.string_data_size());
    for (int64_t i = 0; i < n; ++i) out.data<std::string>()[i] = t.string_data(static_cast<int>(i));
    return out;
  }
  if (raw) {
    if (raw->size() != out.nbytes()) {
      return invalid_graph("tensor '", t.name(), "' (", out.summary(), ") needs ", out.nbytes(),
                           " bytes of data, the model stores ", raw->size());
    }
    if (!raw->empty()) std::memcpy(out.raw_data(), raw->data(), raw->size());
    return out;
  }
  switch (dt) {
    case DType::kFloat32:
      if (t.float_data_size() != n) return count_error(t.float_data_size());
      copy_field(t.float_data(), out.data<float>());
      break;
    case DType::kFloat64:
      if (t.double_data_size() != n) return count_error(t.double_data_size());
      copy_field(t.double_data(), out.data<double>());
      break;
    case DType::kInt64:
      if (t.int64_data_size() != n) return count_error(t.int64_data_size());
      copy_field(t.int64_data(), out.data<int64_t>());
      break;
    case DType::kUInt32:
    case DType::kUInt64:
      if (t.uint64_data_size() != n) return count_error(t.uint64_data_size());
      if (dt == DType::kUInt32) copy_field(t.uint64_data(), out.data<uint32_t>());
      else copy_field(t.uint64_data(), out.data<uint64_t>());
      break;
    default: {
      // int32_data carries int32, int16, int8, uint16, uint8, bool and the bits of 16-bit floats.
      if (t.int32_data_size() != n) return count_error(t.int32_data_size());
      dispatch_numeric(dt, [&](auto tag) {
        using T = typename decltype(tag)::type;
        if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>) {
          T* p = out.data<T>();
          for (int64_t i = 0; i < n; ++i) p[i].bits = static_cast<uint16_t>(t.int32_data(static_cast<int>(i)));
        } else {
          copy_field(t.int32_data(), out.data<T>());
        }
      });
    }
  }
  return out;
}

Expected<Graph> convert_graph(const onnx::GraphProto& gp, const std::map<std::string, int64_t>& opsets,
                              const ImportContext& ctx);

Expected<Attribute> convert_attribute(const onnx::AttributeProto& a, const Node& node,
                                      const std::map<std::string, int64_t>& opsets,
                                      const ImportContext& ctx) {
  using AP = onnx::AttributeProto;
  Attribute out;
  AP::AttributeType type = a.type();
  if (type == AP::UNDEFINED) {  // very old models: infer the kind from the filled field
    if (a.has_f()) type = AP::FLOAT;
    else if (a.has_i()) type = AP::INT;
    else if (a.has_s()) type = AP::STRING;
    else if (a.has_t()) type = AP::TENSOR;
    else if (a.has_g()) type = AP::GRAPH;
    else if (a.floats_size()) type = AP::FLOATS;
    else if (a.ints_size()) type = AP::INTS;
    else if (a.strings_size()) type = AP::STRINGS;
    else if (a.tensors_size()) type = AP::TENSORS;
    else if (a.graphs_size()) type = AP::GRAPHS;
    else type = AP::INTS;  // an empty list
  }
  switch (type) {
    case AP::FLOAT: out = Attribute::make_float(a.f()); break;
    case AP::INT: out = Attribute::make_int(a.i()); break;
    case AP::STRING: out = Attribute::make_string(a.s()); break;
    case AP::FLOATS: out = Attribute::make_floats({a.floats().begin(), a.floats().end()}); break;
    case AP::INTS: out = Attribute::make_ints({a.ints().begin(), a.ints().end()}); break;
    case AP::STRINGS:
      out.kind = AttrKind::kStrings;
      out.strings.assign(a.strings().begin(), a.strings().end());
      break;
    case AP::TENSOR: {
      ASSIGN_OR_RETURN(Tensor t, convert_tensor(a.t(), ctx));
      out = Attribute::make_tensor(std::move(t));
      break;
    }
    case AP::TENSORS:
      out.kind = AttrKind::kTensors;
      for (const auto& t : a.tensors()) {
        ASSIGN_OR_RETURN(Tensor c, convert_tensor(t, ctx));
        out.tensors.push_back(std::move(c));
      }
      break;
    case AP::GRAPH: {
      ASSIGN_OR_RETURN(Graph g, convert_graph(a.g(), opsets, ctx));
      out = Attribute::make_graph(std::make_shared<Graph>(std::move(g)));
      break;
    }
    case AP::GRAPHS:
      out.kind = AttrKind::kGraphs;
      for (const auto& gp : a.graphs()) {
        ASSIGN_OR_RETURN(Graph g, convert_graph(gp, opsets, ctx));
        out.graphs.push_back(std::make_shared<Graph>(std::move(g)));
      }
      break;
    default:
      return node.error(StatusCode::kNotImplemented, "attribute '", a.name(), "' has kind ",
                        AP::AttributeType_Name(type), ", which is not supported");
  }
  return out;
}

// A node that leaves a required input empty ("" marks an omitted *optional* input), or gives
// fewer inputs than its op needs, would reach kernels that read them (native kernels read
// their inputs unchecked): refused here, by the op's ONNX schema at the model's opset, once
// for every op rather than in each kernel.
Status check_required_inputs(const Node& n, const std::map<std::string, int64_t>& opsets) {
  if (!n.domain.empty()) return Status::OK();  // only the default domain's schemas are known here
  auto opset = opsets.find("");
  if (opset == opsets.end()) return Status::OK();
  const int version = static_cast<int>(std::min<int64_t>(opset->second, std::numeric_limits<int>::max()));
  const onnx::OpSchema* schema = onnx::OpSchemaRegistry::Schema(n.op_type, version, "");
  if (!schema) return Status::OK();  // an unknown op fails later, naming it
  const auto& formal = schema->inputs();
  for (size_t i = 0; i < n.inputs.size() && !formal.empty(); ++i) {
    // Inputs past the formal list are operands of a variadic last one (Einsum's, Concat's):
    // none may be empty either (an Einsum "ij,jk->ik" given "" as its second operand became a
    // MatMul reading a null input: SIGSEGV, hostile trial stop 16).
    const bool variadic_tail = i >= formal.size() && formal.back().GetOption() == onnx::OpSchema::Variadic;
    if (i >= formal.size() && !variadic_tail) break;
    const auto& f = formal[std::min(i, formal.size() - 1)];
    if (n.inputs[i].empty() && f.GetOption() != onnx::OpSchema::Optional) {
      return n.error(StatusCode::kInvalidGraph, "input ", i, " ('", f.GetName(), "'",
                     f.GetOption() == onnx::OpSchema::Variadic ? ", an operand of a variadic input" : "",
                     ") is required, but the node leaves it empty");
    }
  }
  if (static_cast<int64_t>(n.inputs.size()) < schema->min_input()) {
    return n.error(StatusCode::kInvalidGraph, "has ", n.inputs.size(), " inputs, ", n.op_type, " (opset ", version,
                   ") needs at least ", schema->min_input());
  }
  return Status::OK();
}

Expected<Graph> convert_graph(const onnx::GraphProto& gp, const std::map<std::string, int64_t>& opsets,
                              const ImportContext& ctx) {
  Graph g;
  g.name = gp.name();
  g.opset_imports = opsets;
  for (const auto& t : gp.initializer()) {
    ASSIGN_OR_RETURN(Tensor tensor, convert_tensor(t, ctx));
    g.initializers[t.name()] = std::move(tensor);
  }
  if (gp.sparse_initializer_size() > 0) {
    return not_implemented("graph '", gp.name(), "' has sparse initializers, which are not supported");
  }
  for (const auto& v : gp.input()) {
    if (g.initializers.count(v.name())) {
      g.overridable_initializers.insert(v.name());  // IR < 4 lists weights as inputs too
      continue;
    }
    ASSIGN_OR_RETURN(ValueInfo info, convert_value_info(v));
    g.inputs.push_back(std::move(info));
  }
  for (const auto& v : gp.output()) {
    ASSIGN_OR_RETURN(ValueInfo info, convert_value_info(v));
    g.outputs.push_back(std::move(info));
  }
  for (const auto& v : gp.value_info()) {
    ASSIGN_OR_RETURN(ValueInfo info, convert_value_info(v));
    g.value_info[info.name] = std::move(info);
  }
  g.nodes.reserve(static_cast<size_t>(gp.node_size()));
  for (const auto& np : gp.node()) {
    Node n;
    n.name = np.name();
    n.op_type = np.op_type();
    n.domain = np.domain() == "ai.onnx" ? "" : np.domain();
    n.inputs.assign(np.input().begin(), np.input().end());
    n.outputs.assign(np.output().begin(), np.output().end());
    RETURN_IF_ERROR(check_required_inputs(n, opsets));
    for (const auto& a : np.attribute()) {
      if (!a.ref_attr_name().empty()) continue;  // only meaningful inside function bodies
      ASSIGN_OR_RETURN(Attribute attr, convert_attribute(a, n, opsets, ctx));
      n.attributes[a.name()] = std::move(attr);
    }
    g.nodes.push_back(std::move(n));
  }
  return g;
}

// True when a node of `g` or of any subgraph is in the default domain.
bool uses_default_domain(const onnx::GraphProto& g) {
  for (const auto& n : g.node()) {
    if (n.domain().empty() || n.domain() == "ai.onnx") return true;
    for (const auto& a : n.attribute()) {
      if (a.has_g() && uses_default_domain(a.g())) return true;
      for (const auto& sub : a.graphs()) {
        if (uses_default_domain(sub)) return true;
      }
    }
  }
  return false;
}

// Bytes per element of a fixed-width ONNX type; 0 for strings and unknown codes.
size_t onnx_element_size(int32_t data_type) {
  using TP = onnx::TensorProto;
  switch (data_type) {
    case TP::UINT8: case TP::INT8: case TP::BOOL: return 1;
    case TP::UINT16: case TP::INT16: case TP::FLOAT16: case TP::BFLOAT16: return 2;
    case TP::FLOAT: case TP::INT32: case TP::UINT32: return 4;
    case TP::INT64: case TP::UINT64: case TP::DOUBLE: case TP::COMPLEX64: return 8;
    case TP::COMPLEX128: return 16;
    default: return 0;
  }
}

// ONNX's shape inference (libonnx 1.12) reads a constant tensor's raw_data as dims-product
// elements without comparing with its length: a 7-byte raw_data for an int64[1] overreads
// the heap (SIGSEGV). Every stored tensor of the graph (initializers, attribute tensors,
// subgraphs) is checked before inference sees it.
Status check_raw_data_sizes(const onnx::GraphProto& g, int version, const ImportContext& ctx);

// Elements a tensor's typed fields hold (the alternative to raw_data): a complex value takes two
// floats or doubles; the small integer types, bool and the half types are stored as int32.
uint64_t typed_element_count(const onnx::TensorProto& t) {
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT: return static_cast<uint64_t>(t.float_data_size());
    case onnx::TensorProto::COMPLEX64: return static_cast<uint64_t>(t.float_data_size()) / 2;
    case onnx::TensorProto::DOUBLE: return static_cast<uint64_t>(t.double_data_size());
    case onnx::TensorProto::COMPLEX128: return static_cast<uint64_t>(t.double_data_size()) / 2;
    case onnx::TensorProto::INT64: return static_cast<uint64_t>(t.int64_data_size());
    case onnx::TensorProto::UINT32:
    case onnx::TensorProto::UINT64: return static_cast<uint64_t>(t.uint64_data_size());
    case onnx::TensorProto::STRING: return static_cast<uint64_t>(t.string_data_size());
    default: return static_cast<uint64_t>(t.int32_data_size());
  }
}

Status check_raw_data_size(const onnx::TensorProto& t, const ImportContext& ctx) {
  if (t.data_location() == onnx::TensorProto::EXTERNAL) return Status::OK();
  uint64_t count = 1;
  bool overflow = false;
  for (int64_t d : t.dims()) {
    if (d < 0) return invalid_graph(ctx.model_name, ": tensor '", t.name(), "' has a negative dim ", d);
    if (d != 0 && count > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d)) overflow = true;
    count *= static_cast<uint64_t>(d);
  }
  if (t.raw_data().empty()) {
    // No raw_data: the typed field must hold every element. A scalar int64 with no data at all
    // was a SIGSEGV in libonnx's inference of Range, which reads it (hostile trial, stop 15).
    const uint64_t typed = typed_element_count(t);
    if (overflow || typed != count) {
      return invalid_graph(ctx.model_name, ": tensor '", t.name(), "' needs ",
                           overflow ? std::string("more than 2^64") : std::to_string(count),
                           " elements, the model stores ", typed);
    }
    return Status::OK();
  }
  const size_t item = onnx_element_size(t.data_type());
  if (item == 0) return Status::OK();
  if (overflow || count > std::numeric_limits<uint64_t>::max() / item || count * item != t.raw_data().size()) {
    return invalid_graph(ctx.model_name, ": tensor '", t.name(), "' needs ",
                         overflow ? std::string("more than 2^64") : std::to_string(count), " elements of ", item,
                         " bytes of data, the model stores ", t.raw_data().size(), " bytes");
  }
  return Status::OK();
}

// The same inference dereferences attributes its op requires (Scan's `body`) without looking:
// a default-domain node must carry every attribute its ONNX schema requires, of its kind.
Status check_required_attributes(const onnx::NodeProto& n, int version, const ImportContext& ctx) {
  if (!n.domain().empty() && n.domain() != "ai.onnx") return Status::OK();
  const onnx::OpSchema* schema = onnx::OpSchemaRegistry::Schema(n.op_type(), version, "");
  if (!schema) return Status::OK();
  for (const auto& [name, attr] : schema->attributes()) {
    const onnx::AttributeProto* given = nullptr;
    for (const auto& a : n.attribute()) {
      if (a.name() == name) given = &a;
    }
    if (given && given->type() != attr.type && given->type() != onnx::AttributeProto::UNDEFINED) {
      return invalid_graph(ctx.model_name, ": node '", n.name(), "' (", n.op_type(), "): attribute '", name, "' is ",
                           onnx::AttributeProto::AttributeType_Name(given->type()), ", the op expects ",
                           onnx::AttributeProto::AttributeType_Name(attr.type));
    }
    if (!given && attr.required) {
      return invalid_graph(ctx.model_name, ": node '", n.name(), "' (", n.op_type(), ") lacks its required attribute '",
                           name, "'");
    }
  }
  return Status::OK();
}

// The same inference divides by convolution and pooling strides (convPoolShapeInference: a
// stride of 0 was SIGFPE, found by the onnx_import fuzzer): their window attributes must be
// positive before it runs.
Status check_window_attributes(const onnx::NodeProto& n, const ImportContext& ctx) {
  if (!n.domain().empty() && n.domain() != "ai.onnx") return Status::OK();
  static const std::set<std::string> windowed = {"Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "DeformConv",
                                                 "MaxPool", "AveragePool", "LpPool", "MaxUnpool", "Col2Im"};
  if (!windowed.count(n.op_type())) return Status::OK();
  for (const auto& a : n.attribute()) {
    if (a.name() != "strides" && a.name() != "dilations" && a.name() != "kernel_shape") continue;
    for (int i = 0; i < a.ints_size(); ++i) {
      if (a.ints(i) < 1) {
        return invalid_graph(ctx.model_name, ": node '", n.name(), "' (", n.op_type(), "): attribute '", a.name(),
                             "' has ", a.ints(i), " at index ", i, "; each must be at least 1");
      }
    }
  }
  return Status::OK();
}

Status check_raw_data_sizes(const onnx::GraphProto& g, int version, const ImportContext& ctx) {
  for (const auto& t : g.initializer()) RETURN_IF_ERROR(check_raw_data_size(t, ctx));
  for (const auto& n : g.node()) {
    RETURN_IF_ERROR(check_required_attributes(n, version, ctx));
    RETURN_IF_ERROR(check_window_attributes(n, ctx));
    for (const auto& a : n.attribute()) {
      if (a.has_t()) RETURN_IF_ERROR(check_raw_data_size(a.t(), ctx));
      for (const auto& t : a.tensors()) RETURN_IF_ERROR(check_raw_data_size(t, ctx));
      if (a.has_g()) RETURN_IF_ERROR(check_raw_data_sizes(a.g(), version, ctx));
      for (const auto& sg : a.graphs()) RETURN_IF_ERROR(check_raw_data_sizes(sg, version, ctx));
    }
  }
  return Status::OK();
}

// ONNX type constraints (what ONNX Runtime checks when it loads a model): every input of a
// default-domain node whose type is known (a graph input, an initializer, a declared or inferred
// value_info, in this graph or an enclosing one) must be one of the types its formal parameter
// allows at the model's opset, and the inputs bound to one homogeneous type parameter must agree.
// Without this a Relu on int32 at opset 13, a MatMul on bool or a Softmax on int64 reached a
// kernel written for other types. Values of unknown type are left to the run.
using TypeScope = std::map<std::string, const onnx::TypeProto*>;

// "tensor(float)", or "" when the type is not one libonnx can name (no element type, ...).
const std::string* onnx_type_of(const onnx::TypeProto& t) {
  if (t.value_case() == onnx::TypeProto::VALUE_NOT_SET) return nullptr;
  if (t.has_tensor_type() && t.tensor_type().elem_type() == 0) return nullptr;
  if (t.has_sequence_type() && t.sequence_type().elem_type().value_case() == onnx::TypeProto::VALUE_NOT_SET) {
    return nullptr;
  }
  try {
    return onnx::Utils::DataTypeUtils::ToType(t);
  } catch (const std::exception&) {
    return nullptr;
  }
}

Status check_type_constraints(const onnx::GraphProto& g, int version, TypeScope scope, const ImportContext& ctx);

Status check_node_types(const onnx::NodeProto& n, int version, const TypeScope& scope, const ImportContext& ctx) {
  for (const auto& a : n.attribute()) {
    if (a.has_g()) RETURN_IF_ERROR(check_type_constraints(a.g(), version, scope, ctx));
    for (const auto& sg : a.graphs()) RETURN_IF_ERROR(check_type_constraints(sg, version, scope, ctx));
  }
  if (!n.domain().empty() && n.domain() != "ai.onnx") return Status::OK();
  std::vector<std::string> inputs(n.input().begin(), n.input().end());
  std::vector<const std::string*> types;
  for (const auto& input : inputs) {
    auto it = scope.find(input);
    types.push_back(it == scope.end() ? nullptr : onnx_type_of(*it->second));
  }
  return check_node_input_types(ctx.model_name, n.name(), n.op_type(), version, inputs, types);
}

Status check_type_constraints(const onnx::GraphProto& g, int version, TypeScope scope, const ImportContext& ctx) {
  // Initializers first: an input listed with the same name (IR < 4) names the same value.
  std::vector<onnx::TypeProto> initializer_types(static_cast<size_t>(g.initializer_size()));
  for (int i = 0; i < g.initializer_size(); ++i) {
    initializer_types[i].mutable_tensor_type()->set_elem_type(g.initializer(i).data_type());
    scope[g.initializer(i).name()] = &initializer_types[i];
  }
  for (const auto& v : g.input()) scope[v.name()] = &v.type();
  for (const auto& v : g.value_info()) scope.emplace(v.name(), &v.type());
  for (const auto& v : g.output()) scope.emplace(v.name(), &v.type());
  for (const auto& n : g.node()) RETURN_IF_ERROR(check_node_types(n, version, scope, ctx));
  return Status::OK();
}

Expected<Graph> import_model(std::string bytes, const ImportContext& ctx) {
  onnx::ModelProto model;
  if (bytes.empty()) return make_status(StatusCode::kInvalidProtobuf, ctx.model_name, " is empty");
  if (!model.ParseFromString(bytes)) {
    return make_status(StatusCode::kInvalidProtobuf, ctx.model_name,
                       " is not a valid ONNX model (protobuf parse failed: truncated or not ONNX)");
  }
  bytes.clear();
  bytes.shrink_to_fit();
  if (!model.has_graph() || model.ir_version() <= 0) {
    return make_status(StatusCode::kInvalidProtobuf, ctx.model_name,
                       " is not an ONNX model (no graph or no IR version)");
  }
  if (ctx.metadata) read_metadata(model, ctx.metadata);
  std::map<std::string, int64_t> opsets;
  for (const auto& o : model.opset_import()) {
    std::string domain = o.domain() == "ai.onnx" ? "" : o.domain();
    opsets[domain] = o.version();
  }
  // IR 1-2 models had no opset_import: opset 1 is implied. From IR 3 on, the default domain
  // must be imported: without it every op's semantics (Clip's min/max as attributes or
  // inputs, say) would be a guess.
  if (model.opset_import_size() == 0 && model.ir_version() < 3) opsets[""] = 1;
  for (const auto& kv : opsets) {
    if (kv.second <= 0) {
      return invalid_graph(ctx.model_name, " imports domain '", kv.first.empty() ? "ai.onnx" : kv.first,
                           "' at opset ", kv.second, "; opset versions start at 1");
    }
  }
  auto def = opsets.find("");
  if (def == opsets.end() && uses_default_domain(model.graph())) {
    return invalid_graph(ctx.model_name, " (IR version ", model.ir_version(),
                         ") uses ops of the default domain 'ai.onnx' but imports no opset of it");
  }
  if (model.graph().output_size() == 0) {
    return invalid_graph(ctx.model_name, " declares no graph outputs");
  }
  if (def != opsets.end() && def->second > kMaxOnnxOpset) {
    return not_implemented(ctx.model_name, " uses ONNX opset ", def->second,
                           "; supported opsets are up to ", kMaxOnnxOpset);
  }
  {
    // What libonnx's shape inference reads unchecked (stored tensor sizes, required attributes).
    auto def_opset = opsets.find("");
    const int version = def_opset == opsets.end() ? 1 : static_cast<int>(std::min<int64_t>(
                                                             def_opset->second, std::numeric_limits<int>::max()));
    RETURN_IF_ERROR(check_raw_data_sizes(model.graph(), version, ctx));
  }
  try {
    // Node-level inference errors are not fatal (error_mode 0): a model we can still run
    // should not be refused because ONNX cannot type one of its values.
    guard_onnx_shape_inference();
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(false, 0, false));
  } catch (const std::exception&) {
    // Keep the types the model declared; the runtime checks shapes as it runs.
  }
  if (def != opsets.end()) {
    RETURN_IF_ERROR(check_type_constraints(model.graph(), static_cast<int>(def->second), {}, ctx));
  }
  Expected<Graph> converted = Status();
  try {
    converted = convert_graph(model.graph(), opsets, ctx);
  } catch (const std::bad_alloc&) {
    return make_status(StatusCode::kResourceExhausted, ctx.model_name,
                       " declares a tensor too large to allocate");
  }
  ASSIGN_OR_RETURN(Graph g, std::move(converted));
  RETURN_IF_ERROR(g.sort_topologically());
  RETURN_IF_ERROR(g.validate());
  return g;
}

std::string directory_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

}  // namespace

Expected<Graph> import_onnx_file(const std::string& path, ModelMetadata* metadata) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return make_status(StatusCode::kNoSuchFile, "model file '", path, "' does not exist");
  }
  ASSIGN_OR_RETURN(std::string bytes, read_file(path, "model file"));
  ImportContext ctx{"model file '" + path + "'", directory_of(path), metadata};
  auto g = import_model(std::move(bytes), ctx);
  if (!g.ok() && g.status().message().find(path) == std::string::npos) {
    return g.status().with_context("model file '" + path + "': ");
  }
  return g;
}

Expected<Graph> import_onnx_bytes(const std::string& bytes, const std::string& base_dir, ModelMetadata* metadata) {
  return import_model(bytes, ImportContext{"model bytes", base_dir, metadata});
}

namespace {

// Known dims of a shape (-1: rank unknown), to tell whether inference learned something.
int known_dims(const Shape& s) {
  if (!s.rank_known) return -1;
  int n = 0;
  for (const Dim& d : s.dims) n += d.known() ? 1 : 0;
  return n;
}

}  // namespace

Expected<int> refine_shapes_with_onnx(Graph& graph) {
  // Shape inference reads initializers only for their values (shape arithmetic); weights are
  // declared as inputs of their type instead of copied.
  constexpr int64_t kMaxCopiedElements = 1024;
  Graph light;
  light.name = graph.name;
  light.nodes = graph.nodes;
  light.inputs = graph.inputs;
  light.outputs = graph.outputs;
  light.value_info = graph.value_info;
  light.opset_imports = graph.opset_imports;
  for (const auto& [name, t] : graph.initializers) {
    if (t.numel() <= kMaxCopiedElements && t.dtype() != DType::kString) {
      light.initializers.emplace(name, t);
    } else {
      light.inputs.push_back({name, t.dtype(), Shape::from_dims(t.dims())});
    }
  }
  ASSIGN_OR_RETURN(std::string bytes, export_onnx_bytes(light));
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes)) return make_status(StatusCode::kFail, "shape inference: re-reading the graph failed");
  try {
    guard_onnx_shape_inference();
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(false, 0, true));
  } catch (const std::exception&) {
    return 0;  // as at import: the graph keeps the types it has
  }
  int improved = 0;
  for (const auto& v : model.graph().value_info()) {
    auto info = convert_value_info(v);
    if (!info.ok() || graph.initializers.count(v.name())) continue;
    auto it = graph.value_info.find(v.name());
    if (it == graph.value_info.end()) {
      if (!info->shape.rank_known && info->dtype == DType::kUndefined) continue;
      graph.value_info[v.name()] = *info;
      ++improved;
    } else if (known_dims(info->shape) > known_dims(it->second.shape)) {
      it->second.shape = info->shape;
      if (it->second.dtype == DType::kUndefined) it->second.dtype = info->dtype;
      ++improved;
    }
  }
  return improved;
}

}  // namespace pyflame_rt
