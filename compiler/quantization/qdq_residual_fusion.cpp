#include "compiler/quantization/qdq_residual_fusion.h"

#include "compiler/quantization/qdq_match.h"

namespace pyflame_rt {
namespace {

bool scalar_u8_params(const Graph& g, const Node& n) {
  if (n.inputs.size() < 3) return false;
  const Tensor* s = constant_of(g, n.inputs[1], DType::kFloat32);
  const Tensor* z = constant_of(g, n.inputs[2], DType::kUInt8);
  return s && s->numel() == 1 && z && z->numel() == 1;
}

}  // namespace

Status QdqResidualFusion::run(Graph& graph, bool& changed) {
  std::map<std::string, int> uses = use_counts(graph);
  std::map<std::string, size_t> producer = producers(graph);
  std::map<std::string, size_t> reader;  // the reader of a value read once
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    for (const auto& in : graph.nodes[i].inputs) if (!in.empty() && uses[in] == 1) reader[in] = i;
  }
  auto only_reader = [&](const std::string& v, const char* op) -> long {
    auto r = reader.find(v);
    if (r == reader.end() || !is_op(graph.nodes[r->second], op)) return -1;
    return static_cast<long>(r->second);
  };
  std::vector<bool> removed(graph.nodes.size(), false);
  bool fused_any = false;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    Node& conv = graph.nodes[i];
    if (!is_op(conv, "QLinearConv") || conv.inputs.size() < 8 || removed[i]) continue;
    long dqa = only_reader(conv.outputs[0], "DequantizeLinear");
    if (dqa < 0 || !scalar_u8_params(graph, graph.nodes[dqa])) continue;
    long add = only_reader(graph.nodes[dqa].outputs[0], "Add");
    // Both operands of an Add may come from convolutions: the first one fuses it.
    if (add < 0 || removed[add] || graph.nodes[add].inputs.size() != 2) continue;
    const Node& add_node = graph.nodes[add];
    const std::string& other =
        add_node.inputs[0] == graph.nodes[dqa].outputs[0] ? add_node.inputs[1] : add_node.inputs[0];
    auto pz = producer.find(other);
    if (pz == producer.end() || !is_op(graph.nodes[pz->second], "DequantizeLinear") ||
        !scalar_u8_params(graph, graph.nodes[pz->second])) {
      continue;
    }
    const Node& dqz = graph.nodes[pz->second];
    long relu = only_reader(add_node.outputs[0], "Relu");
    const std::string& pre_q = relu >= 0 ? graph.nodes[relu].outputs[0] : add_node.outputs[0];
    long q = only_reader(pre_q, "QuantizeLinear");
    if (q < 0 || !scalar_u8_params(graph, graph.nodes[q])) continue;
    const Node& qn = graph.nodes[q];
    Node fused = conv;
    fused.domain = "pyflame_rt";
    fused.op_type = "QLinearConvAdd";
    std::string bias = conv.inputs.size() > 8 ? conv.inputs[8] : std::string();
    fused.inputs = {conv.inputs[0], conv.inputs[1], conv.inputs[2], conv.inputs[3], conv.inputs[4],
                    conv.inputs[5], qn.inputs[1],   qn.inputs[2],   bias,           conv.inputs[6],
                    conv.inputs[7], dqz.inputs[0],  dqz.inputs[1],  dqz.inputs[2]};
    fused.outputs = {qn.outputs[0]};
    if (relu >= 0) fused.attributes["activation"] = Attribute::make_string("Relu");
    removed[dqa] = removed[add] = removed[q] = true;
    if (relu >= 0) removed[relu] = true;
    conv = std::move(fused);
    graph.opset_imports["pyflame_rt"] = 1;
    fused_any = true;
  }
  if (fused_any) {
    erase_nodes(graph, removed);
    // The fused node reads the residual, which may be made after the convolution's old
    // position: restore the producer-first order later passes (dead code elimination) rely on.
    RETURN_IF_ERROR(graph.sort_topologically());
  }
  changed |= fused_any;
  return Status::OK();
}

}  // namespace pyflame_rt
