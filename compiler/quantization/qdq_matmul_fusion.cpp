#include "compiler/quantization/qdq_matmul_fusion.h"

#include <cmath>

#include "compiler/quantization/qdq_match.h"

namespace pyflame_rt {
namespace {

// A scalar constant zero point of uint8 or int8 type with a scalar f32 scale.
bool scalar_8bit_params(const Graph& g, const Node& n) {
  if (n.inputs.size() < 3 || n.inputs[2].empty()) return false;
  const Tensor* s = constant_of(g, n.inputs[1], DType::kFloat32);
  const Tensor* z = constant_of(g, n.inputs[2], DType::kUInt8);
  if (!z) z = constant_of(g, n.inputs[2], DType::kInt8);
  return s && s->numel() == 1 && s->data<float>()[0] > 0 && z && z->numel() == 1;
}

struct Match {
  size_t mm;
  long quant = -1;  // the QuantizeLinear reading the output, or -1 for an fp32 output
  const Node* x_dq;
  const Node* w_dq;
  bool transposed;  // weights stored [N, K] (Gemm transB)
  float alpha = 1.f, beta = 1.f;
};

}  // namespace

Status QdqMatMulFusion::run(Graph& graph, bool& changed) {
  std::map<std::string, int> uses = use_counts(graph);
  std::map<std::string, size_t> producer = producers(graph);
  std::map<std::string, size_t> reader;  // the reader of a value read once
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    for (const auto& in : graph.nodes[i].inputs) if (!in.empty() && uses[in] == 1) reader[in] = i;
  }
  auto made_by = [&](const std::string& name, const char* op) { return pyflame_rt::made_by(graph, producer, name, op); };

  std::vector<Match> matches;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& mm = graph.nodes[i];
    bool gemm = is_op(mm, "Gemm");
    if (!(is_op(mm, "MatMul") || gemm) || mm.inputs.size() < 2 || mm.outputs.size() != 1) continue;
    if (gemm && mm.attr_int("transA", 0) != 0) continue;
    const Node* x_dq = made_by(mm.inputs[0], "DequantizeLinear");
    const Node* w_dq = made_by(mm.inputs[1], "DequantizeLinear");
    if (!x_dq || !w_dq || !scalar_8bit_params(graph, *x_dq) || w_dq->inputs.size() < 2) continue;
    const Tensor* w = constant_of(graph, w_dq->inputs[0], DType::kInt8);
    const Tensor* ws = constant_of(graph, w_dq->inputs[1], DType::kFloat32);
    const Tensor* wz = w_dq->inputs.size() > 2 && !w_dq->inputs[2].empty()
                           ? constant_of(graph, w_dq->inputs[2], DType::kInt8) : nullptr;
    bool wz_absent = w_dq->inputs.size() < 3 || w_dq->inputs[2].empty();
    if (!w || w->rank() != 2 || !ws || (!wz && !wz_absent)) continue;
    bool transposed = gemm && mm.attr_int("transB", 0) != 0;
    const int64_t n = transposed ? w->dim(0) : w->dim(1);
    // One scale per output column: the weights' axis along N (1 of [K, N], 0 of [N, K]).
    int64_t axis = w_dq->attr_int("axis", 1);
    if (axis < 0) axis += 2;
    if (!(ws->numel() == 1 || (ws->numel() == n && axis == (transposed ? 0 : 1)))) continue;
    bool zero_wz = true;
    for (int64_t k = 0; wz && k < wz->numel(); ++k) zero_wz &= wz->data<int8_t>()[k] == 0;
    if (!zero_wz) continue;
    Match m{i, -1, x_dq, w_dq, transposed};
    if (gemm) {
      m.alpha = mm.attr_float("alpha", 1.f);
      m.beta = mm.attr_float("beta", 1.f);
      if (!(m.alpha > 0)) continue;  // a negative alpha would flip the sign of the scales
    }
    if (mm.inputs.size() > 2 && !mm.inputs[2].empty()) {
      if (!gemm) continue;
      const std::string& b = mm.inputs[2];
      const Tensor* bf = constant_of(graph, b, DType::kFloat32);
      const Node* b_dq = made_by(b, "DequantizeLinear");
      const Tensor* bq = b_dq ? constant_of(graph, b_dq->inputs[0], DType::kInt32) : nullptr;
      const Tensor* bs = b_dq ? constant_of(graph, b_dq->inputs[1], DType::kFloat32) : nullptr;
      bool ok = (bf && bf->numel() == n && bf->rank() >= 1 && bf->dims().back() == n) ||
                (bq && bs && bq->numel() == n && (bs->numel() == 1 || bs->numel() == n));
      if (!ok) continue;
    }
    auto r = reader.find(mm.outputs[0]);
    if (r != reader.end() && is_op(graph.nodes[r->second], "QuantizeLinear") &&
        scalar_8bit_params(graph, graph.nodes[r->second])) {
      m.quant = static_cast<long>(r->second);
    }
    matches.push_back(m);
  }
  if (matches.empty()) return Status::OK();

  std::vector<bool> removed(graph.nodes.size(), false);
  for (const Match& mt : matches) {
    Node& mm = graph.nodes[mt.mm];
    const std::string base = mm.name.empty() ? mm.outputs[0] : mm.name;
    const Tensor& w = graph.initializers.at(mt.w_dq->inputs[0]);
    const int64_t n = mt.transposed ? w.dim(0) : w.dim(1), k = mt.transposed ? w.dim(1) : w.dim(0);
    std::string w_name = mt.w_dq->inputs[0], ws_name = mt.w_dq->inputs[1];
    if (mt.transposed) {
      Tensor t(DType::kInt8, {k, n});
      for (int64_t r = 0; r < n; ++r) {
        for (int64_t c = 0; c < k; ++c) t.data<int8_t>()[c * n + r] = w.data<int8_t>()[r * k + c];
      }
      w_name = base + "_weights_kn";
      graph.initializers[w_name] = std::move(t);
    }
    const Tensor ws = graph.initializers.at(mt.w_dq->inputs[1]);
    if (mt.alpha != 1.f) {  // alpha * (x @ w) == x @ (w with alpha-times its scales)
      Tensor scaled = ws.clone();
      for (int64_t c = 0; c < scaled.numel(); ++c) scaled.data<float>()[c] *= mt.alpha;
      ws_name = base + "_weight_scale_alpha";
      graph.initializers[ws_name] = std::move(scaled);
    }
    // The weights' zero points: zeros of the scales' shape (QLinearMatMul wants them present).
    std::string wz_name = base + "_weight_zero_point";
    graph.initializers[wz_name] = Tensor(DType::kInt8, ws.dims());
    std::string bias_name;
    if (mm.inputs.size() > 2 && !mm.inputs[2].empty()) {
      Tensor bias(DType::kFloat32, {n});
      if (const Tensor* bf = constant_of(graph, mm.inputs[2], DType::kFloat32)) {
        for (int64_t c = 0; c < n; ++c) bias.data<float>()[c] = bf->data<float>()[c] * mt.beta;
      } else {
        const Node* b_dq = made_by(mm.inputs[2], "DequantizeLinear");
        const Tensor& bq = graph.initializers.at(b_dq->inputs[0]);
        const Tensor& bs = graph.initializers.at(b_dq->inputs[1]);
        for (int64_t c = 0; c < n; ++c) {
          double v = double(bq.data<int32_t>()[c]) * bs.data<float>()[bs.numel() == 1 ? 0 : c];
          bias.data<float>()[c] = static_cast<float>(v * mt.beta);
        }
      }
      bias_name = base + "_bias_f32";
      graph.initializers[bias_name] = std::move(bias);
    }
    Node fused;
    fused.name = mm.name;
    fused.inputs = {mt.x_dq->inputs[0], mt.x_dq->inputs[1], mt.x_dq->inputs[2], w_name, ws_name, wz_name};
    if (mt.quant >= 0) {
      const Node& q = graph.nodes[mt.quant];
      fused.inputs.push_back(q.inputs[1]);
      fused.inputs.push_back(q.inputs[2]);
      fused.outputs = {q.outputs[0]};
      removed[mt.quant] = true;
    } else {
      fused.inputs.push_back("");
      fused.inputs.push_back("");
      fused.outputs = mm.outputs;
    }
    if (is_op(mm, "MatMul") && mt.quant >= 0 && bias_name.empty()) {
      fused.op_type = "QLinearMatMul";  // the standard op: exactly its semantics
    } else {
      fused.domain = "pyflame_rt";
      fused.op_type = "QMatMul";
      fused.inputs.push_back(bias_name);
      graph.opset_imports["pyflame_rt"] = 1;
    }
    mm = std::move(fused);
  }
  erase_nodes(graph, removed);
  changed = true;
  return Status::OK();
}

}  // namespace pyflame_rt
