// MeshPlan -> CslPartitionSpec (from_mesh_plan.h).
#include "compiler/csl/from_mesh_plan.h"

#include <algorithm>

namespace pyflame_rt::csl {

namespace {

const TensorTiling* find_role(const MeshOp& op, const char* role) {
  for (const auto& t : op.tensors) {
    if (t.role == role) return &t;
  }
  return nullptr;
}

CslTensor tensor_of(const TensorTiling& t) {
  return {t.name, t.dims, t.role == "weight" || t.role == "bias", ""};
}

// A scalar constant of the graph, if it is one.
bool scalar_constant(const Graph* graph, const std::string& name, double* value) {
  if (!graph) return false;
  auto it = graph->initializers.find(name);
  if (it == graph->initializers.end() || it->second.numel() != 1 || it->second.dtype() != DType::kFloat32) return false;
  *value = it->second.value_as_double(0);
  return true;
}

const Node* find_node(const Graph* graph, const std::string& name) {
  if (!graph) return nullptr;
  for (const Node& n : graph->nodes) {
    if (n.name == name) return &n;
  }
  return nullptr;
}

// An integer initializer's values (Slice's starts, ends, axes, steps).
bool int_constant(const Graph* graph, const std::string& name, std::vector<int64_t>* out) {
  if (!graph || name.empty()) return false;
  auto it = graph->initializers.find(name);
  if (it == graph->initializers.end()) return false;
  const Tensor& t = it->second;
  if (t.dtype() != DType::kInt64 && t.dtype() != DType::kInt32) return false;
  out->clear();
  for (int64_t i = 0; i < t.numel(); ++i) out->push_back(static_cast<int64_t>(t.value_as_double(i)));
  return true;
}

}  // namespace

CslBudget csl_budget(const WseSpec& spec) {
  CslBudget b;
  b.routable_colors = spec.routable_colors;
  b.memcpy_colors = spec.memcpy_colors;
  b.sram_bytes = spec.sram_bytes_per_pe;
  b.code_reserve_bytes = spec.code_reserve_bytes;
  return b;
}

Expected<CslPartitionSpec> csl_spec_from_partition(const MeshPlan& plan, const MeshPartition& part, const WseSpec& spec,
                                                   const Graph* graph) {
  CslPartitionSpec p;
  p.name = "p" + std::to_string(part.id);
  p.arch = spec.generation == WseGeneration::kWse2 ? "wse2" : "wse3";
  p.width = part.rect.w;
  p.height = part.rect.h;
  p.wafer_x = part.rect.x;
  p.wafer_y = part.rect.y;
  p.fabric_w = spec.fabric_width;
  p.fabric_h = spec.fabric_height;
  p.outputs = part.outputs;
  for (const MeshOp& m : part.ops) {
    CslOpSpec o;
    o.node = m.node;
    o.op_type = m.op_type;
    o.ints = m.ints;
    for (const auto& [k, v] : m.floats) {
      if (!v.empty()) o.floats[k] = v[0];
    }
    for (const auto& [k, v] : m.strings) o.strings[k] = v;
    auto act = m.strings.find("activation");
    if (act != m.strings.end()) o.fused_activation = act->second;
    auto ap = m.floats.find("activation_params");
    if (ap != m.floats.end()) o.activation_params.assign(ap->second.begin(), ap->second.end());
    const bool anchor = m.kind == MeshOpKind::kGemm || m.kind == MeshOpKind::kConv;
    if (anchor) {
      o.region = {0, 0, std::min(m.split.width(), part.rect.w), std::min(m.split.height(), part.rect.h)};
      o.k_parts = m.split.k_parts;
      o.n_parts = m.split.n_parts;
      o.m_grid_x = m.split.m_grid_x;
      o.m_grid_y = m.split.m_grid_y;
    } else if (m.kind == MeshOpKind::kAttention || m.kind == MeshOpKind::kRecurrent) {
      // Their lowerings call <collectives_2d>, which spans the whole rectangle: the plan's heads
      // down rows / keys (inputs) across columns, spread over all of it.
      o.region = {0, 0, part.rect.w, part.rect.h};
    } else {
      o.region = {0, 0, std::clamp(m.split.m_grid_x, 1, part.rect.w), std::clamp(m.split.m_grid_y, 1, part.rect.h)};
    }
    // Operands in the node's order: the activation, then weights/bias; the residual apart.
    for (const TensorTiling& t : m.tensors) {
      if (t.role == "output") o.output = tensor_of(t);
      else if (t.role == "residual") o.residual = t.name;
      else o.inputs.push_back(tensor_of(t));
    }
    if (m.kind == MeshOpKind::kGemm) {
      o.trans_b = m.ints.count("transB") && !m.ints.at("transB").empty() && m.ints.at("transB")[0] != 0;
      if (m.ints.count("transA") && !m.ints.at("transA").empty() && m.ints.at("transA")[0] != 0) {
        return not_implemented(m.op_type, " '", m.node, "': transA=1 has no CSL lowering");
      }
      if (o.op_type == "FusedMatMul") o.op_type = "MatMul";  // MatMul + bias + activation: W is [K, N]
    }
    if (m.kind == MeshOpKind::kConv) {
      o.op_type = "Conv";
      // The plan's split follows the GEMM view (Cout down rows, Cin x kernel across columns):
      // im2col keeps to it; depthwise/grouped convolutions stay output-stationary.
      auto gi = m.ints.find("group");
      if (gi == m.ints.end() || gi->second.empty() || gi->second[0] == 1) o.ints["im2col"] = {1};
      else o.region = {0, 0, part.rect.w, part.rect.h};
    }
    const Node* node = find_node(graph, m.node);
    if (m.kind == MeshOpKind::kRecurrent && node) {
      // Y_h is not in the plan's tensors (it tiles the first output); the generator returns it too.
      for (size_t i = 1; i < node->outputs.size(); ++i) {
        CslTensor t{node->outputs[i], {}, false, ""};
        if (!t.name.empty() && m.tensors.size() > 1) {
          for (const TensorTiling& tt : m.tensors) {
            if (tt.role == "weight" && tt.dims.size() == 3) {  // R [D, 3H, H] -> Y_h [D, B, H]
              const auto& x = m.tensors.front().dims;
              t.shape = {tt.dims[0], x.size() > 1 ? x[1] : 1, tt.dims[2]};
            }
          }
        }
        o.extra_outputs.push_back(t);
        // The plan tiles the first output only; Y_h leaves the partition when another one
        // reads it or the graph returns it.
        bool leaves = false;
        for (const MeshPartition& q : plan.partitions) {
          leaves |= q.id != part.id && std::count(q.inputs.begin(), q.inputs.end(), t.name) > 0;
        }
        if (graph) {
          for (const auto& out : graph->outputs) leaves |= out.name == t.name;
        }
        if (leaves && !t.name.empty()) p.outputs.push_back(t.name);
      }
      if (node->has_attr("activations")) {
        std::string acts;
        for (const std::string& a : node->attr_strings("activations")) acts += (acts.empty() ? "" : ",") + a;
        o.strings["activations"] = acts;
      }
    }
    if (o.op_type == "Slice" && node && node->inputs.size() >= 3) {  // opset 10+: constant inputs
      const char* keys[] = {"starts", "ends", "axes", "steps"};
      for (size_t i = 1; i < node->inputs.size() && i < 5; ++i) {
        std::vector<int64_t> vals;
        if (int_constant(graph, node->inputs[i], &vals)) o.ints[keys[i - 1]] = vals;
      }
    }
    if (o.op_type == "Clip") {  // opset 11+: the bounds are inputs
      double v;
      if (o.inputs.size() > 1 && scalar_constant(graph, o.inputs[1].name, &v)) o.floats["min"] = v;
      if (o.inputs.size() > 2 && scalar_constant(graph, o.inputs[2].name, &v)) o.floats["max"] = v;
      o.inputs.resize(1);
    }
    if (o.output.name.empty()) return invalid_argument(m.op_type, " '", m.node, "' has no output in the plan");
    p.ops.push_back(std::move(o));
  }
  return p;
}

PlanCsl write_plan_csl(const MeshPlan& plan, const WseSpec& spec, const Graph* graph, const std::string& dir) {
  PlanCsl out;
  const CslBudget budget = csl_budget(spec);
  for (const MeshPartition& part : plan.partitions) {
    auto ps = csl_spec_from_partition(plan, part, spec, graph);
    if (!ps.ok()) {
      out.failed[part.id] = ps.status();
      continue;
    }
    auto gen = generate_partition(*ps, budget);
    if (!gen.ok()) {
      out.failed[part.id] = gen.status();
      continue;
    }
    if (!dir.empty()) {
      Status st = write_partition(*gen, dir);
      if (!st.ok()) {
        out.failed[part.id] = st;
        continue;
      }
    }
    out.written.push_back(std::move(gen).value());
  }
  return out;
}

}  // namespace pyflame_rt::csl
