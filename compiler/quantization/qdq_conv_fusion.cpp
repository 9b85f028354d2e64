#include "compiler/quantization/qdq_conv_fusion.h"

#include <cmath>
#include <limits>

#include "compiler/quantization/qdq_match.h"

namespace pyflame_rt {
namespace {

// A per-tensor quantization parameter pair (scale f32 scalar, zero point of `zp_type` scalar).
bool scalar_params(const Graph& g, const std::string& scale, const std::string& zp, DType zp_type) {
  const Tensor* s = constant_of(g, scale, DType::kFloat32);
  const Tensor* z = zp.empty() ? nullptr : constant_of(g, zp, zp_type);
  return s && s->numel() == 1 && z && z->numel() == 1;
}

struct Match {
  size_t conv, quant;
  const Node* x_dq;
  const Node* w_dq;
};

}  // namespace

Status QdqConvFusion::run(Graph& graph, bool& changed) {
  std::map<std::string, int> uses = use_counts(graph);
  std::map<std::string, size_t> producer = producers(graph);
  auto made_by = [&](const std::string& name, const char* op) { return pyflame_rt::made_by(graph, producer, name, op); };

  std::vector<Match> matches;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& q = graph.nodes[i];
    if (!is_op(q, "QuantizeLinear") || q.inputs.size() < 3) continue;
    if (!scalar_params(graph, q.inputs[1], q.inputs[2], DType::kUInt8)) continue;
    auto c = producer.find(q.inputs[0]);
    if (c == producer.end() || uses[q.inputs[0]] != 1) continue;
    const Node& conv = graph.nodes[c->second];
    if (!is_op(conv, "Conv") || conv.inputs.size() < 2) continue;
    const Node* x_dq = made_by(conv.inputs[0], "DequantizeLinear");
    const Node* w_dq = made_by(conv.inputs[1], "DequantizeLinear");
    if (!x_dq || !w_dq || x_dq->inputs.size() < 3 || w_dq->inputs.size() < 3) continue;
    if (!scalar_params(graph, x_dq->inputs[1], x_dq->inputs[2], DType::kUInt8)) continue;
    const Tensor* w = constant_of(graph, w_dq->inputs[0], DType::kInt8);
    const Tensor* ws = constant_of(graph, w_dq->inputs[1], DType::kFloat32);
    const Tensor* wz = constant_of(graph, w_dq->inputs[2], DType::kInt8);
    if (!w || !ws || !wz || w->rank() < 3) continue;
    const int64_t m = w->dim(0);
    if (!(ws->numel() == 1 || (ws->numel() == m && w_dq->attr_int("axis", 1) == 0))) continue;
    bool zero_wz = true;
    for (int64_t k = 0; k < wz->numel(); ++k) zero_wz &= wz->data<int8_t>()[k] == 0;
    if (!zero_wz) continue;
    if (conv.inputs.size() > 2 && !conv.inputs[2].empty()) {
      const std::string& b = conv.inputs[2];
      const Node* b_dq = made_by(b, "DequantizeLinear");
      bool ok = constant_of(graph, b, DType::kFloat32) != nullptr ||
                (b_dq && constant_of(graph, b_dq->inputs[0], DType::kInt32) &&
                 constant_of(graph, b_dq->inputs[1], DType::kFloat32));
      if (!ok) continue;
    }
    matches.push_back({c->second, i, x_dq, w_dq});
  }
  if (matches.empty()) return Status::OK();

  std::vector<bool> removed(graph.nodes.size(), false);
  for (const Match& mt : matches) {
    Node& conv = graph.nodes[mt.conv];
    const Node& q = graph.nodes[mt.quant];
    const Tensor& w = graph.initializers.at(mt.w_dq->inputs[0]);
    const Tensor& ws = graph.initializers.at(mt.w_dq->inputs[1]);
    const float xs = graph.initializers.at(mt.x_dq->inputs[1]).data<float>()[0];
    const int64_t m = w.dim(0);
    // The bias in the accumulator's scale (x_scale * w_scale[c]), as QLinearConv wants it.
    std::string bias_name;
    if (conv.inputs.size() > 2 && !conv.inputs[2].empty()) {
      const std::string& b = conv.inputs[2];
      std::vector<double> bias(static_cast<size_t>(m), 0.0);
      if (const Tensor* bf = constant_of(graph, b, DType::kFloat32)) {
        for (int64_t k = 0; k < m && k < bf->numel(); ++k) bias[k] = bf->data<float>()[k];
      } else {
        const Node* b_dq = made_by(b, "DequantizeLinear");
        const Tensor& bq = graph.initializers.at(b_dq->inputs[0]);
        const Tensor& bs = graph.initializers.at(b_dq->inputs[1]);
        for (int64_t k = 0; k < m && k < bq.numel(); ++k) {
          bias[k] = double(bq.data<int32_t>()[k]) * bs.data<float>()[bs.numel() == 1 ? 0 : k];
        }
      }
      Tensor bi(DType::kInt32, {m});
      for (int64_t k = 0; k < m; ++k) {
        double acc_scale = double(xs) * ws.data<float>()[ws.numel() == 1 ? 0 : k];
        double v = std::nearbyint(bias[k] / acc_scale);
        v = std::fmin(std::fmax(v, double(std::numeric_limits<int32_t>::min())), double(std::numeric_limits<int32_t>::max()));
        bi.data<int32_t>()[k] = static_cast<int32_t>(v);
      }
      bias_name = (conv.name.empty() ? conv.outputs[0] : conv.name) + "_bias_s32";
      graph.initializers[bias_name] = std::move(bi);
    }
    Node fused = conv;
    fused.op_type = "QLinearConv";
    fused.inputs = {mt.x_dq->inputs[0], mt.x_dq->inputs[1], mt.x_dq->inputs[2],
                    mt.w_dq->inputs[0], mt.w_dq->inputs[1], mt.w_dq->inputs[2],
                    q.inputs[1], q.inputs[2]};
    if (!bias_name.empty()) fused.inputs.push_back(bias_name);
    fused.outputs = {q.outputs[0]};
    conv = std::move(fused);
    removed[mt.quant] = true;
  }
  erase_nodes(graph, removed);
  changed = true;
  return Status::OK();
}

}  // namespace pyflame_rt
