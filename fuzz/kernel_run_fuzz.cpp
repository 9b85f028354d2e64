// libFuzzer target: one node of an op the runtime implements, built from the fuzz bytes, loaded
// through the session path (import checks, passes, placement) and run on the CPU device; where
// both succeed, the same model also runs on the reference kernels and the two are compared.
//
// The bytes choose (FuzzedDataProvider): the op (the reference registry and the CPU device's
// native table, in name order), the opset, its attributes (by the op's ONNX schema: ints, lists,
// floats, strings, tensors and subgraphs, valid and invalid values: negative, zero, huge), the
// number, dtype, rank and dims of its inputs (at most kMaxElements elements each), whether each
// is a constant (an initializer) or fed at run time, and their values (index-like integers in
// and out of range). A clean error Status is fine; a crash, a sanitizer report, a hang (the
// libFuzzer -timeout) or a mismatch between the CPU device and the reference is a finding (the
// harness aborts with the model described on stderr).
//
// KERNEL_RUN_VERBOSE=1 prints each input's op and outcome (used to pick the seed corpus);
// KERNEL_RUN_DUMP=path writes each input's model there (to turn a finding into a test).
#include <fuzzer/FuzzedDataProvider.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "devices/cpu/native_op_table.h"
#include "devices/device.h"
#include "devices/ref/kernel.h"
#include "devices/ref/ref_device.h"
#include "devices/run_interrupt.h"
#include "fuzz/quiet_protobuf.h"
#include "graph/logging.h"
#include "graph/memory_budget.h"
#include "graph/onnx_import.h"
#include "session/inference_session.h"

namespace {

using namespace pyflame_rt;

constexpr int64_t kMaxElements = 2048;  // per input: each execution stays in milliseconds
constexpr int kMaxRank = 5;
// Both limits are the sessions' own (memory_limit_mb, run_timeout_ms), so an input that
// reaches them ends in a named error and is not compared. They bound the rare inputs that
// dominate the fuzzer's CPU: on a 2,000-input corpus sample (stop 21) ~1% of the inputs (large
// Upsamples and Resizes running to the deadline) took ~44% of the CPU; 16 MB and 500 ms (from
// 64 MB and 2 s) took the sample's replay from 20.9 to 6.7 CPU seconds with the same coverage
// (43,414 against 43,472 counters; docs/reliability.md "kernel_run, stop 21"). On stop 22's grown
// corpus (54,188 inputs) 0.9% of them still took 94% of the replay's 309 s, most of them
// Upsamples running to the deadline twice (~1 s each); 50 ms (from 500) took a 4,945-input sample
// holding all of them from 329 to 84 s, with the same coverage (49,629 against 49,602 counters).
constexpr int64_t kMemoryLimitMb = 16;
constexpr int64_t kRunTimeoutMs = 50;

bool verbose() {
  static const bool v = std::getenv("KERNEL_RUN_VERBOSE") != nullptr;
  return v;
}

struct OpEntry {
  std::string domain, op_type;
  int64_t since = 1;
};

// Every op the runtime runs: reference kernels and CPU native kernels, sorted by name so an
// input means the same op from run to run (until an op is added to the runtime).
const std::vector<OpEntry>& op_list() {
  static const std::vector<OpEntry> ops = [] {
    std::map<std::pair<std::string, std::string>, int64_t> since;
    auto note = [&](std::string domain, const std::string& op, int64_t from) {
      if (domain == "ai.onnx") domain.clear();
      auto [it, fresh] = since.emplace(std::make_pair(domain, op), from);
      if (!fresh) it->second = std::min(it->second, from);
    };
    for (const KernelDef& d : KernelRegistry::reference().defs()) note(d.domain, d.op_type, d.since);
    for (const auto& e : cpu::NativeOpTable::cpu().entries()) note(e.domain, e.op_type, e.since);
    std::vector<OpEntry> out;
    for (const auto& [key, from] : since) out.push_back({key.first, key.second, std::max<int64_t>(1, from)});
    return out;
  }();
  return ops;
}

// Results that depend on a random generator, or on the order of work: never compared.
bool nondeterministic(const std::string& op) {
  static const std::set<std::string> ops = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                                            "Bernoulli", "Multinomial", "Dropout"};
  return ops.count(op) > 0;
}

// Strings an attribute may take: the valid values of the ops' string attributes, and some not.
const std::vector<std::string>& string_pool() {
  static const std::vector<std::string> pool = {
      "", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", "constant", "reflect", "edge", "wrap", "nearest", "linear",
      "cubic", "bilinear", "bicubic", "DCR", "CRD", "half_pixel", "asymmetric", "align_corners",
      "pytorch_half_pixel", "tf_crop_and_resize", "half_pixel_symmetric", "round_prefer_floor", "round_prefer_ceil",
      "floor", "ceil", "stretch", "not_larger", "not_smaller", "mean", "sum", "none", "add", "mul", "max", "min",
      "Relu", "Tanh", "Sigmoid", "Affine", "LeakyRelu", "ThresholdedRelu", "ScaledTanh", "HardSigmoid", "Elu",
      "Softsign", "Softplus", "Clip", "HardSwish", "forward", "reverse", "bidirectional", "zeros", "border",
      "reflection", "avg", "output_half_pixel", "LOWER", "UPPER", "NONE", "TF", "IDF", "TFIDF", "plain", "blocked",
      "(none)", "ij,jk->ik", "i,i", "...ii->...i", "bij,bjk->bik", "a", "abc", "tanh", "exact", "xx\xff"};
  return pool;
}

// Attributes some kernels read that no ONNX schema lists (the compiler's fused ops and layout
// marks): a hostile model may set them on any node.
const std::vector<std::string>& extra_attribute_names() {
  static const std::vector<std::string> names = {"activation", "activation_params", "num_heads", "scale",
                                                 "pyflame_rt_src_layout", "pyflame_rt_dst_layout", "axis"};
  return names;
}

// ---- values ----

int64_t pick_int(FuzzedDataProvider& fdp) {
  switch (fdp.ConsumeIntegralInRange<int>(0, 15)) {
    case 0: return 0;
    case 1: return -1;
    case 2: return std::numeric_limits<int64_t>::max();
    case 3: return std::numeric_limits<int64_t>::min();
    case 4: return int64_t{1} << 31;
    case 5: return int64_t{1} << 62;
    case 6: return fdp.ConsumeIntegral<int64_t>();
    case 7: return -fdp.ConsumeIntegralInRange<int64_t>(2, 9);
    default: return fdp.ConsumeIntegralInRange<int64_t>(0, 6);
  }
}

float pick_float(FuzzedDataProvider& fdp) {
  switch (fdp.ConsumeIntegralInRange<int>(0, 15)) {
    case 0: return 0.0f;
    case 1: return std::numeric_limits<float>::quiet_NaN();
    case 2: return std::numeric_limits<float>::infinity();
    case 3: return -std::numeric_limits<float>::infinity();
    case 4: return 1e30f;
    case 5: return -1.0f;
    case 6: return 1e-40f;
    case 7: return fdp.ConsumeFloatingPoint<float>();
    default: return static_cast<float>(fdp.ConsumeIntegralInRange<int>(-40, 40)) / 8.0f;
  }
}

// A tiny deterministic generator for the bulk of a tensor's values: the bytes choose its seed
// and range, so an input stays small whatever the tensor's size.
struct Rng {
  uint64_t s;
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  int64_t in(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo + 1));
  }
};

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  int32_t exp = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffffu;
  if (((x >> 23) & 0xff) == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0));
  if (exp >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
  if (exp <= 0) return static_cast<uint16_t>(sign);
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(exp) << 10) | (mant >> 13));
}

// Whether a tensor's floats are finite and moderate: only then are the CPU device's results
// compared (oneDNN and the reference may round overflow and NaN differently). Subnormals are
// not moderate either: oneDNN's jit Log of 1e-40 is -88.02, the reference's exact -92.10 (and
// ONNX Runtime's Eigen log, which clamps to FLT_MIN, -87.34); kernel_run run 21.
struct FillReport {
  bool moderate = true;
};

// The values of one input: most from the generator in a range the bytes choose, the first few
// given by the bytes themselves (index inputs: in and out of range, negative, huge).
Tensor make_values(FuzzedDataProvider& fdp, DType dtype, const Dims& dims, FillReport* report) {
  Tensor t(dtype, dims);
  const int64_t n = t.numel();
  Rng rng{fdp.ConsumeIntegral<uint32_t>() | 1ull};
  const int mode = fdp.ConsumeIntegralInRange<int>(0, 3);
  int64_t lo = -3, hi = 3;
  switch (mode) {
    case 0: lo = 0; hi = 1; break;
    case 1: lo = -3; hi = 3; break;
    case 2: lo = 0; hi = 8; break;
    default: lo = -20; hi = 20; break;
  }
  const int explicit_count = fdp.ConsumeIntegralInRange<int>(0, 4);
  for (int64_t i = 0; i < n; ++i) {
    const bool given = i < explicit_count;
    if (dtype_is_float(dtype)) {
      float v = given ? pick_float(fdp) : static_cast<float>(rng.in(lo * 8, hi * 8)) / 8.0f;
      if (!std::isfinite(v) || std::fabs(v) > 1e3f || (v != 0 && std::fabs(v) < std::numeric_limits<float>::min())) {
        report->moderate = false;
      }
      switch (dtype) {
        case DType::kFloat32: t.data<float>()[i] = v; break;
        case DType::kFloat64: t.data<double>()[i] = v; break;
        case DType::kFloat16: t.data<uint16_t>()[i] = float_to_half(v); break;
        default: {  // bfloat16: the top half of the float
          uint32_t bits;
          std::memcpy(&bits, &v, 4);
          t.data<uint16_t>()[i] = static_cast<uint16_t>(bits >> 16);
        }
      }
      continue;
    }
    int64_t v = given ? pick_int(fdp) : rng.in(lo, hi);
    switch (dtype) {
      case DType::kInt64: t.data<int64_t>()[i] = v; break;
      case DType::kInt32: t.data<int32_t>()[i] = static_cast<int32_t>(v); break;
      case DType::kInt16: t.data<int16_t>()[i] = static_cast<int16_t>(v); break;
      case DType::kInt8: t.data<int8_t>()[i] = static_cast<int8_t>(v); break;
      case DType::kUInt8: t.data<uint8_t>()[i] = static_cast<uint8_t>(v); break;
      case DType::kUInt16: t.data<uint16_t>()[i] = static_cast<uint16_t>(v); break;
      case DType::kUInt32: t.data<uint32_t>()[i] = static_cast<uint32_t>(v); break;
      case DType::kUInt64: t.data<uint64_t>()[i] = static_cast<uint64_t>(v); break;
      case DType::kBool: t.data<bool>()[i] = (v & 1) != 0; break;
      case DType::kString: {
        const auto& pool = string_pool();
        t.data<std::string>()[i] = pool[static_cast<size_t>(v < 0 ? -(v + 1) : v) % pool.size()];
        break;
      }
      default: break;
    }
  }
  return t;
}

void to_tensor_proto(const Tensor& t, const std::string& name, onnx::TensorProto* p) {
  p->set_name(name);
  p->set_data_type(static_cast<int>(t.dtype()));
  for (int64_t d : t.dims()) p->add_dims(d);
  if (t.dtype() == DType::kString) {
    for (int64_t i = 0; i < t.numel(); ++i) p->add_string_data(t.data<std::string>()[i]);
  } else {
    p->set_raw_data(std::string(static_cast<const char*>(t.raw_data()), t.nbytes()));
  }
}

const std::vector<DType>& all_dtypes() {
  static const std::vector<DType> d = {DType::kFloat32, DType::kInt64, DType::kInt32, DType::kUInt8, DType::kInt8,
                                       DType::kBool, DType::kFloat16, DType::kFloat64, DType::kInt16, DType::kUInt16,
                                       DType::kUInt32, DType::kUInt64, DType::kBFloat16, DType::kString};
  return d;
}

// The dtype of a schema type string: "tensor(float)" -> float32, "seq(tensor(int64))" -> int64.
DType dtype_of_type_string(const std::string& s, bool* sequence) {
  std::string inner = s;
  *sequence = inner.rfind("seq(", 0) == 0;
  if (*sequence) inner = inner.substr(4, inner.size() - 5);
  if (inner.rfind("tensor(", 0) != 0) return DType::kUndefined;
  auto d = dtype_from_name(inner.substr(7, inner.size() - 8));
  return d.ok() ? *d : DType::kUndefined;
}

Dims pick_dims(FuzzedDataProvider& fdp, const Dims* first) {
  Dims dims;
  const int how = first ? fdp.ConsumeIntegralInRange<int>(0, 5) : 0;
  if (how == 1 || how == 2) {
    dims = *first;  // the same shape as input 0 (elementwise partners, a Where's branches)
  } else if (how == 3) {
    dims = *first;  // input 0's rank with some dims 1 (broadcasting, per-channel params)
    for (auto& d : dims) {
      if (fdp.ConsumeBool()) d = 1;
    }
  } else if (how == 4 && first->size() > 1) {
    dims.assign(first->begin() + 1, first->end());  // fewer leading dims
  } else {
    const int rank = fdp.ConsumeIntegralInRange<int>(0, kMaxRank);
    for (int i = 0; i < rank; ++i) {
      dims.push_back(fdp.ConsumeBool() ? fdp.ConsumeIntegralInRange<int64_t>(1, 4)
                                       : fdp.ConsumeIntegralInRange<int64_t>(0, 9));
    }
  }
  // Cap the element count: halve the largest dim until it fits.
  while (num_elements(dims) > kMaxElements) {
    auto it = std::max_element(dims.begin(), dims.end());
    *it = *it / 2;
  }
  return dims;
}

// ---- the model ----

struct Built {
  std::string bytes;
  std::map<std::string, Tensor> feeds;  // runtime inputs by name
  bool compare = true;                  // deterministic op, moderate float inputs
  std::string description;
};

void add_graph_input(onnx::GraphProto* g, const std::string& name, DType dtype, const Dims& dims) {
  auto* vi = g->add_input();
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int>(dtype));
  auto* shape = tt->mutable_shape();
  for (int64_t d : dims) shape->add_dim()->set_dim_value(d);
}

// A subgraph for If/Loop/Scan: `inputs` float scalars in, each output an Identity of an input
// (or, with none, of a constant). Its arity is the bytes' choice, matching the node's or not.
void make_body(FuzzedDataProvider& fdp, onnx::GraphProto* body, int depth_tag) {
  body->set_name("body" + std::to_string(depth_tag));
  const int n_in = fdp.ConsumeIntegralInRange<int>(0, 4);
  const int n_out = fdp.ConsumeIntegralInRange<int>(0, 4);
  for (int i = 0; i < n_in; ++i) {
    auto* vi = body->add_input();
    vi->set_name("b_in" + std::to_string(i));
    const int kind = fdp.ConsumeIntegralInRange<int>(0, 2);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(static_cast<int>(kind == 0 ? DType::kInt64 : kind == 1 ? DType::kBool : DType::kFloat32));
  }
  if (n_in == 0) {
    auto* c = body->add_node();
    c->set_op_type("Constant");
    c->add_output("b_const");
    auto* a = c->add_attribute();
    a->set_name("value");
    a->set_type(onnx::AttributeProto::TENSOR);
    FillReport r;
    to_tensor_proto(make_values(fdp, DType::kFloat32, {fdp.ConsumeIntegralInRange<int64_t>(0, 3)}, &r), "",
                    a->mutable_t());
  }
  for (int j = 0; j < n_out; ++j) {
    auto* n = body->add_node();
    n->set_op_type("Identity");
    n->add_input(n_in ? "b_in" + std::to_string(j % n_in) : "b_const");
    n->add_output("b_out" + std::to_string(j));
    body->add_output()->set_name("b_out" + std::to_string(j));
  }
}

void fill_attribute(FuzzedDataProvider& fdp, onnx::AttributeProto* a, onnx::AttributeProto::AttributeType type,
                    int rank0) {
  a->set_type(type);
  auto list_length = [&] {
    switch (fdp.ConsumeIntegralInRange<int>(0, 4)) {
      case 0: return std::max(rank0 - 2, 0);         // per spatial dim
      case 1: return std::max(2 * (rank0 - 2), 0);   // pads
      case 2: return rank0;                          // perm, axes
      default: return fdp.ConsumeIntegralInRange<int>(0, 6);
    }
  };
  switch (type) {
    case onnx::AttributeProto::INT: a->set_i(pick_int(fdp)); break;
    case onnx::AttributeProto::FLOAT: a->set_f(pick_float(fdp)); break;
    case onnx::AttributeProto::STRING: {
      const auto& pool = string_pool();
      a->set_s(pool[fdp.ConsumeIntegralInRange<size_t>(0, pool.size() - 1)]);
      break;
    }
    case onnx::AttributeProto::INTS: {
      const int n = list_length();
      for (int i = 0; i < n; ++i) a->add_ints(pick_int(fdp));
      break;
    }
    case onnx::AttributeProto::FLOATS: {
      const int n = list_length();
      for (int i = 0; i < n; ++i) a->add_floats(pick_float(fdp));
      break;
    }
    case onnx::AttributeProto::STRINGS: {
      const int n = fdp.ConsumeIntegralInRange<int>(0, 4);
      const auto& pool = string_pool();
      for (int i = 0; i < n; ++i) a->add_strings(pool[fdp.ConsumeIntegralInRange<size_t>(0, pool.size() - 1)]);
      break;
    }
    case onnx::AttributeProto::TENSOR: {
      const auto& dtypes = all_dtypes();
      DType d = dtypes[fdp.ConsumeIntegralInRange<size_t>(0, dtypes.size() - 1)];
      Dims dims;
      const int rank = fdp.ConsumeIntegralInRange<int>(0, 2);
      for (int i = 0; i < rank; ++i) dims.push_back(fdp.ConsumeIntegralInRange<int64_t>(0, 4));
      FillReport r;
      to_tensor_proto(make_values(fdp, d, dims, &r), "", a->mutable_t());
      break;
    }
    case onnx::AttributeProto::GRAPH: make_body(fdp, a->mutable_g(), 0); break;
    default: break;
  }
}

onnx::AttributeProto::AttributeType extra_attribute_type(const std::string& name) {
  if (name == "activation_params") return onnx::AttributeProto::FLOATS;
  if (name == "scale") return onnx::AttributeProto::FLOAT;
  if (name == "num_heads" || name == "axis") return onnx::AttributeProto::INT;
  return onnx::AttributeProto::STRING;
}

// Inputs of the compiler's own ops, which have no ONNX schema: (min, max).
std::pair<int, int> custom_op_arity(const std::string& op) {
  if (op == "FusedConv") return {2, 4};
  if (op == "FusedMatMul") return {2, 3};
  if (op == "MultiHeadAttention") return {3, 4};
  if (op == "QLinearConvAdd") return {9, 14};
  if (op == "QMatMul") return {5, 9};
  return {1, 3};
}

// The ONNX schema whose attributes a custom op shares (FusedConv has Conv's).
const onnx::OpSchema* schema_for(const OpEntry& op, int opset) {
  if (op.domain.empty() || op.domain == "ai.onnx.ml") {
    return onnx::OpSchemaRegistry::Schema(op.op_type, op.domain.empty() ? opset : 3, op.domain);
  }
  if (op.op_type == "FusedConv") return onnx::OpSchemaRegistry::Schema("Conv", opset, "");
  if (op.op_type == "QLinearConvAdd") return onnx::OpSchemaRegistry::Schema("QLinearConv", opset, "");
  return nullptr;
}

Built build_model(FuzzedDataProvider& fdp) {
  Built b;
  const auto& ops = op_list();
  const OpEntry& op = ops[fdp.ConsumeIntegralInRange<size_t>(0, ops.size() - 1)];
  int opset = static_cast<int>(
      fdp.ConsumeBool() ? kMaxOnnxOpset : fdp.ConsumeIntegralInRange<int64_t>(std::min<int64_t>(op.since, kMaxOnnxOpset),
                                                                             kMaxOnnxOpset));
  const onnx::OpSchema* schema = schema_for(op, opset);
  if (!schema && op.domain.empty()) {  // the op is younger than that opset: its newest version
    opset = static_cast<int>(kMaxOnnxOpset);
    schema = schema_for(op, opset);
  }
  const bool own_schema = op.domain.empty() || op.domain == "ai.onnx.ml";

  onnx::ModelProto model;
  model.set_ir_version(8);
  auto* o = model.add_opset_import();
  o->set_version(opset);
  if (!op.domain.empty()) {
    auto* od = model.add_opset_import();
    od->set_domain(op.domain);
    od->set_version(op.domain == "ai.onnx.ml" ? 3 : 1);
  }
  onnx::GraphProto* g = model.mutable_graph();
  g->set_name("kernel_run");

  // Inputs: how many, which omitted, dtypes by type constraint, dims, constant or runtime.
  int min_in = 1, max_in = 3;
  if (own_schema && schema) {
    min_in = schema->min_input();
    max_in = std::min(schema->max_input(), min_in + 4);
    max_in = std::max(max_in, std::min<int>(static_cast<int>(schema->inputs().size()), 16));
  } else if (!own_schema) {
    std::tie(min_in, max_in) = custom_op_arity(op.op_type);
  }
  const int n_in = fdp.ConsumeIntegralInRange<int>(std::max(0, min_in - (fdp.ConsumeIntegralInRange<int>(0, 15) == 15)),
                                                   std::max(min_in, max_in));
  onnx::NodeProto* node = nullptr;
  std::vector<std::string> node_inputs;
  std::map<std::string, DType> by_constraint;
  const Dims* first_dims = nullptr;
  Dims first_storage;
  for (int i = 0; i < n_in; ++i) {
    const onnx::OpSchema::FormalParameter* formal = nullptr;
    if (own_schema && schema && !schema->inputs().empty()) {
      formal = &schema->inputs()[std::min<size_t>(i, schema->inputs().size() - 1)];
    }
    const bool optional = formal && formal->GetOption() == onnx::OpSchema::Optional;
    if ((optional || !formal) && i >= min_in && fdp.ConsumeIntegralInRange<int>(0, 3) == 3) {
      node_inputs.push_back("");  // omitted optional input
      continue;
    }
    // The dtype: the constraint's choice so far, one the schema allows, or (rarely) any.
    DType dtype = DType::kFloat32;
    bool sequence = false;
    std::vector<std::string> allowed;
    if (formal) {
      for (const auto* t : formal->GetTypes()) allowed.push_back(*t);
      std::sort(allowed.begin(), allowed.end());  // the set's order follows pointer values
    }
    const std::string constraint = formal ? formal->GetTypeStr() : "T" + std::to_string(i);
    auto known = by_constraint.find(constraint);
    const int dtype_how = fdp.ConsumeIntegralInRange<int>(0, 15);
    // (Rare choices are the high values: an exhausted input reads as zeros, the common path.)
    if (dtype_how == 15 || (allowed.empty() && known == by_constraint.end())) {
      const auto& all = all_dtypes();
      dtype = all[fdp.ConsumeIntegralInRange<size_t>(0, all.size() - 1)];
    } else if (known != by_constraint.end() && dtype_how < 13) {
      dtype = known->second;
    } else if (!allowed.empty()) {
      const std::string& s = allowed[fdp.ConsumeIntegralInRange<size_t>(0, allowed.size() - 1)];
      dtype = dtype_of_type_string(s, &sequence);
      if (dtype == DType::kUndefined) dtype = DType::kFloat32;
    }
    if (dtype == DType::kUndefined) dtype = DType::kFloat32;
    by_constraint.emplace(constraint, dtype);

    const std::string name = "in" + std::to_string(i);
    if (sequence) {
      // A sequence input comes from a SequenceConstruct of 1-3 runtime tensors.
      auto* sc = g->add_node();
      sc->set_op_type("SequenceConstruct");
      sc->set_name("make_" + name);
      const int parts = fdp.ConsumeIntegralInRange<int>(1, 3);
      for (int k = 0; k < parts; ++k) {
        const std::string part = name + "_" + std::to_string(k);
        Dims dims = pick_dims(fdp, first_dims);
        FillReport r;
        Tensor t = make_values(fdp, dtype, dims, &r);
        b.compare &= r.moderate;
        add_graph_input(g, part, dtype, dims);
        b.feeds[part] = std::move(t);
        sc->add_input(part);
      }
      sc->add_output(name);
      node_inputs.push_back(name);
      continue;
    }
    Dims dims = pick_dims(fdp, first_dims);
    if (!first_dims) {
      first_storage = dims;
      first_dims = &first_storage;
    }
    FillReport r;
    Tensor t = make_values(fdp, dtype, dims, &r);
    b.compare &= r.moderate;
    if (fdp.ConsumeBool()) {
      to_tensor_proto(t, name, g->add_initializer());
    } else {
      add_graph_input(g, name, dtype, dims);
      b.feeds[name] = std::move(t);
    }
    node_inputs.push_back(name);
  }

  node = g->add_node();
  node->set_op_type(op.op_type);
  node->set_domain(op.domain);
  node->set_name("fuzzed");
  for (const auto& in : node_inputs) node->add_input(in);

  // Attributes: each of the schema's, present or not (required ones mostly present).
  const int rank0 = first_dims ? static_cast<int>(first_dims->size()) : 0;
  if (schema) {
    for (const auto& [name, attr] : schema->attributes()) {
      if (!fdp.ConsumeBool() && !(attr.required && fdp.ConsumeIntegralInRange<int>(0, 7) != 0)) continue;
      auto* a = node->add_attribute();
      a->set_name(name);
      fill_attribute(fdp, a, attr.type, rank0);
    }
  }
  if (!own_schema || fdp.ConsumeIntegralInRange<int>(0, 15) == 15) {
    const auto& extras = extra_attribute_names();
    const int n = fdp.ConsumeIntegralInRange<int>(0, 2);
    for (int i = 0; i < n; ++i) {
      const std::string& name = extras[fdp.ConsumeIntegralInRange<size_t>(0, extras.size() - 1)];
      bool taken = false;
      for (const auto& a : node->attribute()) taken |= a.name() == name;
      if (taken) continue;
      auto* a = node->add_attribute();
      a->set_name(name);
      fill_attribute(fdp, a, extra_attribute_type(name), rank0);
    }
  }

  // Outputs: the schema's count (at most 4), some left unnamed.
  int max_out = schema ? std::min(schema->max_output(), 4) : 1;
  int min_out = schema ? std::max(1, std::min(schema->min_output(), max_out)) : 1;
  const int n_out = fdp.ConsumeIntegralInRange<int>(min_out, std::max(min_out, max_out));
  bool any_output = false;
  for (int j = 0; j < n_out; ++j) {
    if (j > 0 && fdp.ConsumeIntegralInRange<int>(0, 3) == 3) {
      node->add_output("");
      continue;
    }
    const std::string name = "out" + std::to_string(j);
    node->add_output(name);
    g->add_output()->set_name(name);
    any_output = true;
  }
  if (!any_output) g->add_output()->set_name("out0");  // import refuses a model without outputs

  if (nondeterministic(op.op_type)) b.compare = false;
  b.description = (op.domain.empty() ? "" : op.domain + ".") + op.op_type + " opset " + std::to_string(opset);
  model.SerializeToString(&b.bytes);
  return b;
}

// ---- comparison ----

double as_double(const Tensor& t, int64_t i) { return t.value_as_double(i); }

[[noreturn]] void finding(const Built& b, const std::string& what) {
  std::fprintf(stderr, "kernel_run finding: %s: %s\n", b.description.c_str(), what.c_str());
  // The runtime feeds (KERNEL_RUN_DUMP writes the model, not them): enough to rebuild the case.
  for (const auto& [name, t] : b.feeds) {
    std::fprintf(stderr, "  feed %s: %s %s", name.c_str(), dtype_name(t.dtype()), dims_to_string(t.dims()).c_str());
    for (int64_t i = 0; i < std::min<int64_t>(t.numel(), 16); ++i) {
      if (t.dtype() == DType::kString) break;
      std::fprintf(stderr, " %.9g", t.value_as_double(i));
    }
    std::fprintf(stderr, "%s\n", t.numel() > 16 ? " ..." : "");
  }
  std::abort();
}

void compare_tensors(const Built& b, const Tensor& cpu, const Tensor& ref, size_t index) {
  const std::string where = "output " + std::to_string(index) + ": ";
  if (cpu.dtype() != ref.dtype()) {
    finding(b, where + "dtype " + dtype_name(cpu.dtype()) + " on the CPU device, " + dtype_name(ref.dtype()) +
                   " on the reference");
  }
  if (cpu.dims() != ref.dims()) finding(b, where + "dims " + cpu.summary() + " on the CPU device, " + ref.summary());
  const int64_t n = cpu.numel();
  if (cpu.dtype() == DType::kString) {
    for (int64_t i = 0; i < n; ++i) {
      if (cpu.data<std::string>()[i] != ref.data<std::string>()[i]) finding(b, where + "strings differ");
    }
    return;
  }
  if (!dtype_is_float(cpu.dtype())) {
    // Equal bytes are equal integers: the element walk (a dtype switch per element) only finds
    // which element differs.
    if (n > 0 && cpu.nbytes() == ref.nbytes() && std::memcmp(cpu.raw_data(), ref.raw_data(), cpu.nbytes()) == 0) return;
    for (int64_t i = 0; i < n; ++i) {
      if (cpu.value_as_int64(i) != ref.value_as_int64(i)) {
        finding(b, where + "element " + std::to_string(i) + " is " + std::to_string(cpu.value_as_int64(i)) +
                       " on the CPU device, " + std::to_string(ref.value_as_int64(i)) + " on the reference");
      }
    }
    return;
  }
  // Floats: NaN where the reference has NaN, the rest within a tolerance scaled by the
  // reference's largest magnitude (kernels accumulate in different orders).
  const double tol = cpu.dtype() == DType::kFloat32 || cpu.dtype() == DType::kFloat64 ? 1e-3 : 2e-2;
  double scale = 1.0;
  for (int64_t i = 0; i < n; ++i) {
    const double r = as_double(ref, i);
    if (std::isfinite(r)) scale = std::max(scale, std::fabs(r));
  }
  for (int64_t i = 0; i < n; ++i) {
    const double c = as_double(cpu, i), r = as_double(ref, i);
    if (std::isnan(c) && std::isnan(r)) continue;
    if (std::isinf(r) && c == r) continue;
    if (!(std::fabs(c - r) <= tol * scale)) {
      finding(b, where + "element " + std::to_string(i) + " is " + std::to_string(c) + " on the CPU device, " +
                     std::to_string(r) + " on the reference");
    }
  }
}

void compare_values(const Built& b, const std::vector<Value>& cpu, const std::vector<Value>& ref) {
  if (cpu.size() != ref.size()) finding(b, "output counts differ");
  for (size_t i = 0; i < cpu.size(); ++i) {
    if (cpu[i].kind != ref[i].kind) finding(b, "output " + std::to_string(i) + ": kinds differ");
    if (cpu[i].is_tensor()) {
      compare_tensors(b, cpu[i].tensor, ref[i].tensor, i);
    } else if (cpu[i].is_sequence() && !cpu[i].is_map_sequence()) {
      if (cpu[i].sequence.size() != ref[i].sequence.size()) finding(b, "sequence lengths differ");
      for (size_t k = 0; k < cpu[i].sequence.size(); ++k) compare_tensors(b, cpu[i].sequence[k], ref[i].sequence[k], i);
    }
  }
}

// The imported model on the reference kernels, under the same deadline and memory limit.
Expected<std::vector<Value>> run_reference(const Built& b, const std::vector<std::string>& output_names) {
  ASSIGN_OR_RETURN(Graph graph, import_onnx_bytes(b.bytes, "/nonexistent-pfrt-fuzz-dir"));
  ASSIGN_OR_RETURN(auto exe, make_ref_device()->compile(graph));
  std::vector<Value> inputs;
  for (const auto& in : graph.inputs) {
    auto it = b.feeds.find(in.name);
    if (it == b.feeds.end()) return make_status(StatusCode::kNotFound, "no feed for ", in.name);
    inputs.emplace_back(it->second);
  }
  RunContext ctx;
  ctx.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kRunTimeoutMs);
  ctx.timeout_ms = kRunTimeoutMs;
  ctx.memory = std::make_shared<MemoryBudget>(kMemoryLimitMb << 20, "kernel_run reference");
  RunInterruptScope scope(ctx);
  ASSIGN_OR_RETURN(std::vector<Value> outs, exe->run(std::move(inputs), ctx));
  // In the order the session returned them (graph outputs by name).
  std::vector<Value> ordered;
  for (const auto& name : output_names) {
    for (size_t i = 0; i < graph.outputs.size() && i < outs.size(); ++i) {
      if (graph.outputs[i].name == name) ordered.push_back(outs[i]);
    }
  }
  return ordered;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  quiet_protobuf_logging();
  set_default_log_severity(4);  // fatal only: sessions warn about fallbacks on every input
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  Built b = build_model(fdp);
  if (const char* dump = std::getenv("KERNEL_RUN_DUMP")) {
    if (FILE* f = std::fopen(dump, "wb")) {
      std::fwrite(b.bytes.data(), 1, b.bytes.size(), f);
      std::fclose(f);
    }
  }
  if (verbose()) std::fprintf(stderr, "%s: built\n", b.description.c_str());

  SessionOptions opts;
  opts.num_threads = 1;
  opts.memory_limit_mb = kMemoryLimitMb;
  opts.run_timeout_ms = kRunTimeoutMs;
  opts.log_severity_level = 4;
  auto session = InferenceSession::create_from_bytes(b.bytes, opts);
  if (!session.ok()) {
    if (verbose()) std::fprintf(stderr, "%s: create: %s\n", b.description.c_str(), session.status().to_string().c_str());
    return 0;
  }
  RunOptions ro;
  auto cpu = (*session)->run_values({}, b.feeds, ro);
  if (!cpu.ok()) {
    if (verbose()) std::fprintf(stderr, "%s: run: %s\n", b.description.c_str(), cpu.status().to_string().c_str());
    return 0;
  }
  std::vector<std::string> names;
  for (const auto& out : (*session)->outputs()) names.push_back(out.name);
  auto ref = run_reference(b, names);
  if (verbose()) {
    std::fprintf(stderr, "%s: ok; reference %s\n", b.description.c_str(),
                 ref.ok() ? "ok" : ref.status().to_string().c_str());
  }
  if (ref.ok() && b.compare && ref->size() == cpu->size()) compare_values(b, *cpu, *ref);
  return 0;
}
