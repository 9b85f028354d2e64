// The mesh simulator (mesh_simulator.h).
#include "devices/wse/mesh_simulator.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>

#include "devices/ref/kernel.h"
#include "devices/ref/kernels/attention_layout.h"
#include "devices/wse/cost_model.h"
#include "devices/wse/fabric_sim.h"

namespace pyflame_rt {

namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRowMap = Eigen::Map<const RowMat>;

int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / std::max<int64_t>(1, b); }

// [begin, end) of part `i` of `n` split in `parts` (ceil-sized pieces, as placement counts).
std::pair<int64_t, int64_t> piece(int64_t n, int parts, int i) {
  int64_t size = cdiv(n, parts);
  int64_t b = std::min<int64_t>(n, size * i);
  return {b, std::min<int64_t>(n, b + size)};
}

// Runs the reference kernel of (domain, op) on `inputs` with `node`'s attributes.
Expected<std::vector<Value>> run_reference(const Graph& graph, const Node& node, const std::vector<const Value*>& inputs) {
  KernelFn fn = KernelRegistry::reference().find(node.domain, node.op_type);
  if (!fn) return node.error(StatusCode::kNotImplemented, "no kernel for the wafer simulator");
  std::vector<Value> outs(node.outputs.size());
  int64_t opset = graph.opset(node.domain == "ai.onnx" ? "" : node.domain);
  KernelContext ctx(node, opset ? opset : 13, inputs, &outs, nullptr);
  RETURN_IF_ERROR(fn(ctx));
  return outs;
}

// The fused epilogue's activation, on the reference kernels (elementwise: the same per element
// on every PE).
Expected<Tensor> activation(const Graph& graph, const Node& node, Tensor y, size_t channel_axis) {
  std::string act = node.attr_string("activation", "");
  if (act.empty()) return y;
  // FusedMatMul with only the activation is the reference's own composition: reuse it by
  // running a FusedMatMul-free node of the activation.
  std::vector<float> p = node.attr_floats("activation_params");
  auto param = [&](size_t i, float d) { return i < p.size() ? p[i] : d; };
  Node a;
  a.name = node.name;
  a.op_type = act;
  Value yv(y);
  std::vector<Value> extra;
  if (act == "LeakyRelu" || act == "Elu") a.attributes["alpha"] = Attribute::make_float(param(0, act == "Elu" ? 1.0f : 0.01f));
  if (act == "HardSigmoid") {
    a.attributes["alpha"] = Attribute::make_float(param(0, 0.2f));
    a.attributes["beta"] = Attribute::make_float(param(1, 0.5f));
  }
  if (act == "Clip") {
    extra.emplace_back(Tensor::scalar<float>(param(0, -3.4e38f)));
    extra.emplace_back(Tensor::scalar<float>(param(1, 3.4e38f)));
  }
  if (act == "PRelu") {
    Dims slope_dims(y.rank() > channel_axis ? y.rank() - channel_axis : 1, 1);
    slope_dims[0] = static_cast<int64_t>(p.size());
    extra.emplace_back(Tensor::from_vector<float>(slope_dims, p));
  }
  if (act == "Gelu") a.domain = "com.microsoft";
  if (act == "SiLU") {
    a.op_type = "Sigmoid";
    ASSIGN_OR_RETURN(auto s, run_reference(graph, a, {&yv}));
    Node mul;
    mul.name = node.name;
    mul.op_type = "Mul";
    ASSIGN_OR_RETURN(auto out, run_reference(graph, mul, {&yv, &s[0]}));
    return out[0].tensor;
  }
  std::vector<const Value*> in = {&yv};
  for (const Value& v : extra) in.push_back(&v);
  a.outputs = {"y"};
  ASSIGN_OR_RETURN(auto out, run_reference(graph, a, in));
  return out[0].tensor;
}

}  // namespace

struct MeshSimulator::Impl {
  Graph graph;
  WseSpec spec;
  std::map<std::string, const MeshOp*> op_of;  // node name -> its placed op
  std::map<std::string, RowMat> conv_weights;  // node -> [Cg*kh*kw, Cout] (im2col order)

  // y = x W per PE tile (MatMul, Gemm, FusedMatMul).
  Expected<Tensor> gemm(const Node& node, const std::vector<const Value*>& in, const MeshSplit& s, MeshRunStats* st) const {
    const Tensor& a = in[0]->tensor;
    const Tensor& b = in[1]->tensor;
    if (a.dtype() != DType::kFloat32 || b.dtype() != DType::kFloat32 || b.rank() != 2 || a.rank() < 1) {
      return node.error(StatusCode::kInvalidArgument, "the wafer's GEMM needs float32 A and 2-D B, received ",
                        a.summary(), " and ", b.summary());
    }
    const bool is_gemm = node.op_type == "Gemm";
    const bool ta = is_gemm && node.attr_int("transA", 0), tb = is_gemm && node.attr_int("transB", 0);
    RowMat A = ta ? RowMat(ConstRowMap(a.data<float>(), a.dim(0), a.dim(1)).transpose())
                  : RowMat(ConstRowMap(a.data<float>(), a.numel() / a.dims().back(), a.dims().back()));
    RowMat B = tb ? RowMat(ConstRowMap(b.data<float>(), b.dim(0), b.dim(1)).transpose())
                  : RowMat(ConstRowMap(b.data<float>(), b.dim(0), b.dim(1)));
    const int64_t M = A.rows(), K = A.cols(), N = B.cols();
    if (B.rows() != K) {
      return node.error(StatusCode::kInvalidArgument, "inner dims differ: A ", a.summary(), ", B ", b.summary());
    }
    RowMat Y(M, N);
    for (int mi = 0; mi < s.m_parts; ++mi) {
      auto [m0, m1] = piece(M, s.m_parts, mi);
      if (m1 <= m0) continue;
      for (int ni = 0; ni < s.n_parts; ++ni) {
        auto [n0, n1] = piece(N, s.n_parts, ni);
        if (n1 <= n0) continue;
        // The row of PEs (mi, ni): each column ki holds W[k0:k1, n0:n1]; partials flow EAST.
        RowMat acc;
        for (int ki = 0; ki < s.k_parts; ++ki) {
          auto [k0, k1] = piece(K, s.k_parts, ki);
          if (k1 <= k0) continue;
          RowMat partial = A.block(m0, k0, m1 - m0, k1 - k0) * B.block(k0, n0, k1 - k0, n1 - n0);
          if (acc.size() == 0) acc = std::move(partial); else acc += partial;
          ++st->pe_tiles;
        }
        if (acc.size() == 0) acc = RowMat::Zero(m1 - m0, n1 - n0);
        Y.block(m0, n0, m1 - m0, n1 - n0) = acc;
      }
    }
    Dims out_dims = is_gemm ? Dims{M, N} : a.dims();
    if (!is_gemm) out_dims.back() = N;
    Tensor y(DType::kFloat32, out_dims);
    Eigen::Map<RowMat>(y.data<float>(), M, N) = Y;
    // Epilogue on the last column of each row.
    float* yd = y.data<float>();
    if (is_gemm) {
      float alpha = node.attr_float("alpha", 1.0f), beta = node.attr_float("beta", 1.0f);
      if (alpha != 1.0f) for (int64_t i = 0; i < M * N; ++i) yd[i] *= alpha;
      if (in.size() > 2 && in[2] && in[2]->is_tensor() && in[2]->tensor.defined()) {
        const Tensor& c = in[2]->tensor;  // broadcasts to [M, N]
        const float* cd = c.data<float>();
        int64_t cr = c.rank() == 2 ? c.dim(0) : 1, cc = c.rank() >= 1 ? c.dims().back() : 1;
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j) yd[i * N + j] += beta * cd[(cr == 1 ? 0 : i) * cc + (cc == 1 ? 0 : j)];
      }
    } else if (node.op_type == "FusedMatMul") {
      if (in.size() > 2 && in[2] && in[2]->is_tensor() && in[2]->tensor.defined()) {
        const Tensor& bias = in[2]->tensor;
        if (bias.numel() != N) {
          return node.error(StatusCode::kInvalidArgument, "bias ", bias.summary(), " must have ", N, " elements");
        }
        const float* bd = bias.data<float>();
        for (int64_t i = 0; i < M; ++i) for (int64_t j = 0; j < N; ++j) yd[i * N + j] += bd[j];
      }
      ASSIGN_OR_RETURN(y, activation(graph, node, std::move(y), y.rank() ? y.rank() - 1 : 0));
    }
    count_gemm_wavelets(s, M, K, N, st);
    st->op_cycles[node.name] = gemm_row_cycles(s, M, K, N, st);
    return y;
  }

  // Cycles of a GEMM-view op: its first and last rows of PEs (the largest and the last-served
  // ones) simulated wavelet by wavelet; each PE's compute from its own tile.
  double gemm_row_cycles(const MeshSplit& s, int64_t M, int64_t K, int64_t N, MeshRunStats* st) const {
    const int kp = static_cast<int>(std::min<int64_t>(s.k_parts, K));
    auto [m0, m1] = piece(M, s.m_parts, 0);
    const int64_t mt = m1 - m0;
    double worst = 0;
    for (int ni : {0, s.n_parts - 1}) {
      auto [n0, n1] = piece(N, s.n_parts, ni);
      if (n1 <= n0) continue;
      const int64_t nt = n1 - n0;
      std::vector<double> ready;
      for (int ki = 0; ki < kp; ++ki) {
        auto [k0, k1] = piece(K, kp, ki);
        // x reaches this row after the broadcast down `ni + 1` PEs; the data tasks run as it
        // arrives, so the PE is done at the later of its compute and the last wavelet + task.
        double arrive = simulate_broadcast(spec, mt * (k1 - k0), ni + 1);
        double compute = fmacs_cycles(spec, static_cast<double>(mt * (k1 - k0)), static_cast<double>(nt));
        ready.push_back(std::max(compute, arrive + fmacs_cycles(spec, 1, static_cast<double>(nt))));
      }
      double row = ready.size() > 1 ? simulate_chain_reduce(spec, mt * nt, ready) : ready.empty() ? 0 : ready[0];
      row += vector_cycles(spec, static_cast<double>(mt * nt), 1);  // the epilogue on the last column
      worst = std::max(worst, row);
      ++st->rows_simulated;
    }
    return worst;
  }

  // LayerNorm / softmax of `rows` x `cols` (the normalised extent last), per PE block: row
  // blocks over the m replicas, column blocks over k_parts PEs; each statistic is a per-PE
  // partial over its block, combined along the row in chain order (EAST) and sent back.
  // Returns false when the node is not in the per-PE form (then the reference runs it).
  Expected<bool> row_reduce(const Node& node, const std::vector<const Value*>& in, const MeshSplit& s,
                            std::vector<Value>* outs, MeshRunStats* st) const {
    const Tensor& x = in[0]->tensor;
    if (x.dtype() != DType::kFloat32 || x.rank() == 0) return false;
    const int64_t rank = static_cast<int64_t>(x.rank());
    const bool ln = node.op_type == "LayerNormalization";
    int64_t opset = graph.opset("");
    int64_t axis = node.attr_int("axis", ln || opset >= 13 ? -1 : 1);
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= rank) return false;
    if (!ln && opset >= 13 && axis != rank - 1) return false;  // one axis, not the last: reference
    if (ln) for (size_t i = 1; i < node.outputs.size(); ++i) if (!node.outputs[i].empty()) return false;
    int64_t rows = 1, cols = 1;
    for (int64_t d = 0; d < rank; ++d) (d < axis ? rows : cols) *= x.dim(static_cast<size_t>(d));
    const float* gamma = nullptr;
    const float* beta = nullptr;
    if (ln) {
      if (in.size() < 2 || !in[1] || in[1]->tensor.numel() != cols) return false;
      gamma = in[1]->tensor.data<float>();
      if (in.size() > 2 && in[2] && in[2]->is_tensor() && in[2]->tensor.defined()) {
        if (in[2]->tensor.numel() != cols) return false;
        beta = in[2]->tensor.data<float>();
      }
    }
    const float eps = node.attr_float("epsilon", 1e-5f);
    const bool log = node.op_type == "LogSoftmax";
    Tensor y(DType::kFloat32, x.dims());
    const float* xd = x.data<float>();
    float* yd = y.data<float>();
    const int kp = static_cast<int>(std::min<int64_t>(s.k_parts, cols));
    const int mp = static_cast<int>(std::min<int64_t>(std::max(1, s.m_parts), rows));
    for (int mi = 0; mi < mp; ++mi) {
      auto [r0, r1] = piece(rows, mp, mi);
      for (int64_t r = r0; r < r1; ++r) {
        const float* xr = xd + r * cols;
        float* yr = yd + r * cols;
        // Statistic 1 (sum / max), chained over the column blocks in order.
        float first = 0;
        for (int ki = 0; ki < kp; ++ki) {
          auto [c0, c1] = piece(cols, kp, ki);
          float part = ln ? 0.0f : -INFINITY;
          for (int64_t c = c0; c < c1; ++c) part = ln ? part + xr[c] : std::max(part, xr[c]);
          first = ki == 0 ? part : (ln ? first + part : std::max(first, part));
        }
        const float center = ln ? first / static_cast<float>(cols) : first;
        // Statistic 2 (squared deviations / sum of exp), chained the same way.
        float second = 0;
        for (int ki = 0; ki < kp; ++ki) {
          auto [c0, c1] = piece(cols, kp, ki);
          float part = 0;
          for (int64_t c = c0; c < c1; ++c) {
            float d = xr[c] - center;
            part += ln ? d * d : std::exp(d);
          }
          second = ki == 0 ? part : second + part;
        }
        if (ln) {
          const float inv = 1.0f / std::sqrt(second / static_cast<float>(cols) + eps);
          for (int64_t c = 0; c < cols; ++c) yr[c] = (xr[c] - center) * inv * gamma[c] + (beta ? beta[c] : 0.0f);
        } else if (log) {
          const float lse = std::log(second);
          for (int64_t c = 0; c < cols; ++c) yr[c] = xr[c] - center - lse;
        } else {
          for (int64_t c = 0; c < cols; ++c) yr[c] = std::exp(xr[c] - center) / second;
        }
      }
      st->pe_tiles += kp;
    }
    if (kp > 1) {
      st->wavelets[1] += 2 * rows * (kp - 1);  // the two statistics EAST
      st->wavelets[2] += 2 * rows * (kp - 1);  // and back WEST
    }
    outs->emplace_back(std::move(y));
    return true;
  }

  // GRU per PE tile, one time step after another: each step's gate pre-activations x_t W^T and
  // h R^T are GEMV tiles (the input / hidden extents across k_parts columns, the 3H gate rows
  // down n_parts rows) whose partials are chain-added along the row; the gates (elementwise)
  // follow on the last column and h goes back to the PEs for the next step. Returns false for
  // the forms the reference runs (sequence_lens, clip, custom activations, layout 1).
  Expected<bool> gru(const Node& node, const std::vector<const Value*>& in, const MeshSplit& s,
                     std::vector<Value>* outs, MeshRunStats* st) const {
    auto present = [&](size_t i) { return i < in.size() && in[i] && in[i]->is_tensor() && in[i]->tensor.defined(); };
    if (!present(0) || !present(1) || !present(2) || present(4)) return false;
    if (node.attr_int("layout", 0) != 0 || node.attr_float("clip", 0.0f) > 0) return false;
    std::vector<std::string> acts = node.attr_strings("activations");
    for (size_t i = 0; i < acts.size(); ++i) if (acts[i] != (i % 2 == 0 ? "Sigmoid" : "Tanh")) return false;
    const Tensor& X = in[0]->tensor;
    const Tensor& W = in[1]->tensor;
    const Tensor& R = in[2]->tensor;
    if (X.rank() != 3 || W.rank() != 3 || R.rank() != 3 || X.dtype() != DType::kFloat32) return false;
    const int64_t T = X.dim(0), B = X.dim(1), I = X.dim(2), D = W.dim(0), H = R.dim(2);
    if (W.dim(1) != 3 * H || W.dim(2) != I || R.dim(1) != 3 * H) return false;
    const std::string dir = node.attr_string("direction", "forward");
    const bool lbr = node.attr_int("linear_before_reset", 0) != 0;
    const float* bias = present(3) ? in[3]->tensor.data<float>() : nullptr;
    const float* h0 = present(5) ? in[5]->tensor.data<float>() : nullptr;
    Tensor Y(DType::kFloat32, {T, D, B, H}), Yh(DType::kFloat32, {D, B, H});
    const int kp = std::max(1, s.k_parts), np = std::max(1, s.n_parts);
    auto sigmoid = [](float v) { return 1.0f / (1.0f + std::exp(-v)); };
    // y[B, rows) = a[B, K] * M[rows, K]^T, tiled: K over kp columns, rows over np PE rows,
    // partials added in column order.
    auto gemv = [&](const RowMat& a, const float* m, int64_t K, int64_t rows, RowMat* y) {
      ConstRowMap M(m, rows, K);
      y->resize(a.rows(), rows);
      for (int ni = 0; ni < np; ++ni) {
        auto [n0, n1] = piece(rows, np, ni);
        if (n1 <= n0) continue;
        RowMat acc;
        for (int ki = 0; ki < kp; ++ki) {
          auto [k0, k1] = piece(K, kp, ki);
          if (k1 <= k0) continue;
          RowMat partial = a.middleCols(k0, k1 - k0) * M.block(n0, k0, n1 - n0, k1 - k0).transpose();
          if (acc.size() == 0) acc = std::move(partial); else acc += partial;
          ++st->pe_tiles;
        }
        y->middleCols(n0, n1 - n0) = acc.size() ? acc : RowMat::Zero(a.rows(), n1 - n0);
      }
      if (kp > 1) st->wavelets[1] += a.rows() * rows * (kp - 1);
    };
    for (int64_t d = 0; d < D; ++d) {
      const bool reverse = dir == "reverse" || d == 1;
      const float* Wd = W.data<float>() + d * 3 * H * I;
      const float* Rd = R.data<float>() + d * 3 * H * H;
      const float* wb = bias ? bias + d * 6 * H : nullptr;
      const float* rb = bias ? bias + d * 6 * H + 3 * H : nullptr;
      RowMat h = RowMat::Zero(B, H);
      if (h0) h = ConstRowMap(h0 + d * B * H, B, H);
      RowMat gx, gh, rh_gh;
      for (int64_t step = 0; step < T; ++step) {
        const int64_t t = reverse ? T - 1 - step : step;
        RowMat xt = ConstRowMap(X.data<float>() + t * B * I, B, I);
        gemv(xt, Wd, I, 3 * H, &gx);
        gemv(h, Rd, H, 3 * H, &gh);
        RowMat hn(B, H);
        if (lbr) {
          for (int64_t b = 0; b < B; ++b)
            for (int64_t j = 0; j < H; ++j) {
              auto bx = [&](int64_t row) { return wb ? wb[row] : 0.0f; };
              auto bh = [&](int64_t row) { return rb ? rb[row] : 0.0f; };
              float z = sigmoid(gx(b, j) + bx(j) + gh(b, j) + bh(j));
              float r = sigmoid(gx(b, H + j) + bx(H + j) + gh(b, H + j) + bh(H + j));
              float c = std::tanh(gx(b, 2 * H + j) + bx(2 * H + j) + r * (gh(b, 2 * H + j) + bh(2 * H + j)));
              hn(b, j) = (1 - z) * c + z * h(b, j);
            }
        } else {
          // The candidate needs (r . h) R_h^T: a second GEMV on the candidate's rows.
          RowMat rh(B, H);
          for (int64_t b = 0; b < B; ++b)
            for (int64_t j = 0; j < H; ++j) {
              float r = sigmoid(gx(b, H + j) + (wb ? wb[H + j] : 0) + gh(b, H + j) + (rb ? rb[H + j] : 0));
              rh(b, j) = r * h(b, j);
            }
          gemv(rh, Rd + 2 * H * H, H, H, &rh_gh);
          for (int64_t b = 0; b < B; ++b)
            for (int64_t j = 0; j < H; ++j) {
              float z = sigmoid(gx(b, j) + (wb ? wb[j] : 0) + gh(b, j) + (rb ? rb[j] : 0));
              float c = std::tanh(gx(b, 2 * H + j) + (wb ? wb[2 * H + j] : 0) + rh_gh(b, j) + (rb ? rb[2 * H + j] : 0));
              hn(b, j) = (1 - z) * c + z * h(b, j);
            }
        }
        h = hn;
        st->wavelets[0] += B * H * (kp + np);  // h back to the PEs for the next step
        Eigen::Map<RowMat>(Y.data<float>() + (t * D + d) * B * H, B, H) = h;
      }
      Eigen::Map<RowMat>(Yh.data<float>() + d * B * H, B, H) = h;
    }
    outs->emplace_back(std::move(Y));
    if (node.outputs.size() > 1) outs->emplace_back(std::move(Yh));
    return true;
  }

  // MultiHeadAttention per PE: heads down the n_parts rows, keys across the k_parts columns,
  // queries over the m replicas. Each PE scores its queries against its key block; the row max
  // is chain-reduced EAST and sent back, then each PE's sum of exp and its exp-weighted V block
  // are chain-added EAST; the last column divides.
  Expected<bool> attention(const Node& node, const std::vector<const Value*>& in, const MeshSplit& s,
                           std::vector<Value>* outs, MeshRunStats* st) const {
    for (size_t i = 0; i < 3; ++i) if (i >= in.size() || !in[i] || !in[i]->is_tensor()) return false;
    const Tensor* mask = in.size() > 3 && in[3] && in[3]->is_tensor() && in[3]->tensor.defined() ? &in[3]->tensor : nullptr;
    const Tensor& q = in[0]->tensor;
    const Tensor& k = in[1]->tensor;
    const Tensor& v = in[2]->tensor;
    ASSIGN_OR_RETURN(AttentionLayout a, attention_layout(node, q, k, v, mask));
    const float scale = node.attr_float("scale", 1.0f);
    Tensor y(DType::kFloat32, a.out_dims);
    const int64_t L = a.q_len, S = a.kv_len, dk = a.dk, dv = a.dv;
    const int np = static_cast<int>(std::min<int64_t>(std::max(1, s.n_parts), a.heads));
    const int kp = static_cast<int>(std::min<int64_t>(std::max(1, s.k_parts), S));
    const int mp = static_cast<int>(std::min<int64_t>(std::max(1, s.m_parts), a.batch * L));
    const float* md = mask ? mask->data<float>() : nullptr;
    RowMat Q, K, V;
    for (int64_t b = 0; b < a.batch; ++b) {
      for (int64_t h = 0; h < a.heads; ++h) {
        Q.resize(L, dk);
        K.resize(S, dk);
        V.resize(S, dv);
        for (int64_t l = 0; l < L; ++l)
          for (int64_t d = 0; d < dk; ++d) Q(l, d) = q.data<float>()[b * a.q_batch + l * a.q_row + h * dk + d];
        for (int64_t t = 0; t < S; ++t) {
          for (int64_t d = 0; d < dk; ++d) K(t, d) = k.data<float>()[b * a.k_batch + t * a.k_row + h * dk + d];
          for (int64_t d = 0; d < dv; ++d) V(t, d) = v.data<float>()[b * a.v_batch + t * a.v_row + h * dv + d];
        }
        for (int mi = 0; mi < mp; ++mi) {
          auto [m0, m1] = piece(a.batch * L, mp, mi);
          const int64_t l0 = std::max<int64_t>(m0, b * L) - b * L, l1 = std::min<int64_t>(m1, (b + 1) * L) - b * L;
          if (l1 <= l0) continue;
          const int64_t rows = l1 - l0;
          std::vector<RowMat> scores(static_cast<size_t>(kp));
          Eigen::VectorXf row_max = Eigen::VectorXf::Constant(rows, -INFINITY);
          for (int ki = 0; ki < kp; ++ki) {  // pass 1: scores and the chained row max
            auto [s0, s1] = piece(S, kp, ki);
            RowMat& sc = scores[static_cast<size_t>(ki)];
            sc.noalias() = (Q.middleRows(l0, rows) * K.middleRows(s0, s1 - s0).transpose()) * scale;
            if (md) {
              for (int64_t r = 0; r < rows; ++r)
                for (int64_t t = s0; t < s1; ++t)
                  sc(r, t - s0) += md[b * a.mask_stride[0] + h * a.mask_stride[1] + (l0 + r) * a.mask_stride[2] + t * a.mask_stride[3]];
            }
            row_max = row_max.cwiseMax(sc.rowwise().maxCoeff());
            ++st->pe_tiles;
          }
          Eigen::VectorXf sum;
          RowMat acc;
          for (int ki = 0; ki < kp; ++ki) {  // pass 2: exp, the chained sums and P V
            auto [s0, s1] = piece(S, kp, ki);
            RowMat p = (scores[static_cast<size_t>(ki)].colwise() - row_max).array().exp().matrix();
            Eigen::VectorXf part_sum = p.rowwise().sum();
            RowMat part_acc = p * V.middleRows(s0, s1 - s0);
            if (ki == 0) {
              sum = part_sum;
              acc = std::move(part_acc);
            } else {
              sum += part_sum;
              acc += part_acc;
            }
          }
          float* yd = y.data<float>();
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t d = 0; d < dv; ++d) yd[b * a.o_batch + (l0 + r) * a.o_row + h * dv + d] = acc(r, d) / sum(r);
          if (kp > 1) st->wavelets[1] += rows * (dv + 2) * (kp - 1);
        }
      }
    }
    (void)np;  // heads are independent: which row holds a head changes no arithmetic
    outs->emplace_back(std::move(y));
    return true;
  }

  // GlobalAveragePool / GlobalMaxPool per PE: (batch, channel) rows over the replicas, the
  // pixels across k_parts columns; per-PE partial sums (maxima) chained EAST.
  Expected<bool> global_pool(const Node& node, const std::vector<const Value*>& in, const MeshSplit& s,
                             std::vector<Value>* outs, MeshRunStats* st) const {
    const Tensor& x = in[0]->tensor;
    if (x.dtype() != DType::kFloat32 || x.rank() < 3) return false;
    const bool avg = node.op_type == "GlobalAveragePool";
    const int64_t rows = x.dim(0) * x.dim(1), cols = x.numel() / std::max<int64_t>(1, rows);
    Dims od = x.dims();
    for (size_t i = 2; i < od.size(); ++i) od[i] = 1;
    Tensor y(DType::kFloat32, od);
    const int kp = static_cast<int>(std::min<int64_t>(std::max(1, s.k_parts), cols));
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x.data<float>() + r * cols;
      float total = 0;
      for (int ki = 0; ki < kp; ++ki) {
        auto [c0, c1] = piece(cols, kp, ki);
        float part = avg ? 0.0f : -INFINITY;
        for (int64_t c = c0; c < c1; ++c) part = avg ? part + xr[c] : std::max(part, xr[c]);
        total = ki == 0 ? part : (avg ? total + part : std::max(total, part));
      }
      y.data<float>()[r] = avg ? total / static_cast<float>(cols) : total;
    }
    st->pe_tiles += static_cast<int64_t>(std::max(1, s.m_parts)) * kp;
    if (kp > 1) st->wavelets[1] += rows * (kp - 1);
    outs->emplace_back(std::move(y));
    return true;
  }

  static void count_gemm_wavelets(const MeshSplit& s, int64_t M, int64_t K, int64_t N, MeshRunStats* st) {
    st->wavelets[0] += M * K * std::max(0, s.n_parts - 1);  // x down the columns
    if (s.k_parts > 1) st->wavelets[1] += M * N * (s.k_parts - 1);  // partials EAST (colours 1/2)
  }

  // Conv / FusedConv per PE tile: im2col of the PE's output pixels and input channels.
  Expected<Tensor> conv(const Node& node, const std::vector<const Value*>& in, const MeshSplit& s, MeshRunStats* st) const {
    const Tensor& x = in[0]->tensor;
    const Tensor& w = in[1]->tensor;
    if (x.rank() != 4 || w.rank() != 4 || x.dtype() != DType::kFloat32) {
      return node.error(StatusCode::kInvalidArgument, "the wafer lowers 2-D float32 convolution, received ", x.summary(),
                        " and weight ", w.summary());
    }
    const int64_t B = x.dim(0), C = x.dim(1), IH = x.dim(2), IW = x.dim(3);
    const int64_t CO = w.dim(0), CG = w.dim(1), KH = w.dim(2), KW = w.dim(3);
    const int64_t G = node.attr_int("group", 1);
    if (G <= 0 || C != CG * G || CO % G != 0) {
      return node.error(StatusCode::kInvalidArgument, "input ", x.summary(), ", weight ", w.summary(), " and group ", G,
                        " do not agree");
    }
    std::vector<int64_t> st_ = node.attr_ints("strides", {1, 1}), dl = node.attr_ints("dilations", {1, 1});
    std::vector<int64_t> pads = node.attr_ints("pads", {0, 0, 0, 0});
    std::string auto_pad = node.attr_string("auto_pad", "NOTSET");
    int64_t in_sz[2] = {IH, IW}, ks[2] = {KH, KW}, out_sz[2];
    for (int i = 0; i < 2; ++i) {
      int64_t eff = (ks[i] - 1) * dl[static_cast<size_t>(i)] + 1;
      if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
        int64_t o = cdiv(in_sz[i], st_[static_cast<size_t>(i)]);
        int64_t total = std::max<int64_t>(0, (o - 1) * st_[static_cast<size_t>(i)] + eff - in_sz[i]);
        pads[static_cast<size_t>(i)] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
        pads[static_cast<size_t>(i) + 2] = total - pads[static_cast<size_t>(i)];
      } else if (auto_pad == "VALID") {
        pads[static_cast<size_t>(i)] = pads[static_cast<size_t>(i) + 2] = 0;
      }
      out_sz[i] = (in_sz[i] + pads[static_cast<size_t>(i)] + pads[static_cast<size_t>(i) + 2] - eff) / st_[static_cast<size_t>(i)] + 1;
    }
    const int64_t OH = out_sz[0], OW = out_sz[1], M = B * OH * OW, NG = CO / G, area = KH * KW;
    auto wit = conv_weights.find(node.name);
    RowMat wlocal;
    const RowMat* Wm;  // [CG*KH*KW, CO]
    if (wit != conv_weights.end()) {
      Wm = &wit->second;
    } else {
      wlocal = ConstRowMap(w.data<float>(), CO, CG * area).transpose();
      Wm = &wlocal;
    }
    Tensor y(DType::kFloat32, {B, CO, OH, OW});
    float* yd = y.data<float>();
    const float* xd = x.data<float>();
    // Splits are over pixels (m), input channels of a group (k) and output channels (n).
    const int mp = s.m_parts, kp = static_cast<int>(std::min<int64_t>(s.k_parts, CG)), np = s.n_parts;
    // Loop order: an im2col patch (the x a column of PEs receives) is built once per (pixel
    // block, group, channel block) and used by every PE row it reaches; each row's partial
    // sums are added in column order, as the EAST chain reduction adds them.
    RowMat patch, partial;
    for (int mi = 0; mi < mp; ++mi) {
      auto [m0, m1] = piece(M, mp, mi);
      if (m1 <= m0) continue;
      const int64_t mt = m1 - m0;
      for (int64_t g = 0; g < G; ++g) {
        // PE rows whose output channels meet group g: [g*NG, (g+1)*NG) n [n0, n1).
        std::vector<std::pair<int64_t, int64_t>> rows;
        for (int ni = 0; ni < np; ++ni) {
          auto [n0, n1] = piece(CO, np, ni);
          const int64_t o0 = std::max(n0, g * NG), o1 = std::min(n1, (g + 1) * NG);
          if (o1 > o0) rows.emplace_back(o0, o1);
        }
        if (rows.empty()) continue;
        std::vector<RowMat> acc(rows.size());
        for (int ki = 0; ki < kp; ++ki) {
          auto [c0, c1] = piece(CG, kp, ki);
          if (c1 <= c0) continue;
          patch.resize(mt, (c1 - c0) * area);
          for (int64_t m = m0; m < m1; ++m) {
            const int64_t b = m / (OH * OW), oh = (m / OW) % OH, ow = m % OW;
            float* row = patch.data() + (m - m0) * patch.cols();
            for (int64_t c = c0; c < c1; ++c) {
              const float* plane = xd + (b * C + g * CG + c) * IH * IW;
              for (int64_t i = 0; i < KH; ++i) {
                const int64_t ih = oh * st_[0] - pads[0] + i * dl[0];
                const bool row_in = ih >= 0 && ih < IH;
                for (int64_t j = 0; j < KW; ++j) {
                  const int64_t iw = ow * st_[1] - pads[1] + j * dl[1];
                  *row++ = (row_in && iw >= 0 && iw < IW) ? plane[ih * IW + iw] : 0.0f;
                }
              }
            }
          }
          for (size_t r = 0; r < rows.size(); ++r) {
            const auto [o0, o1] = rows[r];
            // The PE's own partial, then the add of the chain (not fused into the product).
            partial.noalias() = patch * Wm->block(c0 * area, o0, (c1 - c0) * area, o1 - o0);
            if (acc[r].size() == 0) acc[r].swap(partial); else acc[r] += partial;
            ++st->pe_tiles;
          }
        }
        for (size_t r = 0; r < rows.size(); ++r) {
          const auto [o0, o1] = rows[r];
          if (acc[r].size() == 0) continue;
          for (int64_t m = m0; m < m1; ++m) {
            const int64_t b = m / (OH * OW), p = m % (OH * OW);
            for (int64_t o = o0; o < o1; ++o) yd[(b * CO + o) * OH * OW + p] = acc[r](m - m0, o - o0);
          }
        }
      }
    }
    // Epilogue: bias, residual, activation (the last column of each row of PEs).
    if (in.size() > 2 && in[2] && in[2]->is_tensor() && in[2]->tensor.defined()) {
      const float* bd = in[2]->tensor.data<float>();
      for (int64_t b = 0; b < B; ++b)
        for (int64_t o = 0; o < CO; ++o) {
          float* p = yd + (b * CO + o) * OH * OW;
          for (int64_t i = 0; i < OH * OW; ++i) p[i] += bd[o];
        }
    }
    if (in.size() > 3 && in[3] && in[3]->is_tensor() && in[3]->tensor.defined()) {
      const Tensor& z = in[3]->tensor;
      if (z.numel() != y.numel()) {
        return node.error(StatusCode::kInvalidArgument, "residual ", z.summary(), " does not match the output ", y.summary());
      }
      const float* zd = z.data<float>();
      for (int64_t i = 0; i < y.numel(); ++i) yd[i] += zd[i];
    }
    if (node.op_type == "FusedConv") {
      ASSIGN_OR_RETURN(y, activation(graph, node, std::move(y), 1));
    }
    count_gemm_wavelets(s, M, CG * area, CO, st);
    st->op_cycles[node.name] = gemm_row_cycles(s, M, CG * area, CO, st);
    return y;
  }
};

MeshSimulator::MeshSimulator(const Graph& graph, MeshPlan plan, WseSpec spec)
    : impl_(std::make_unique<Impl>()), plan_(std::move(plan)) {
  // One thread per product: PE tiles are small, and Eigen's OpenMP team would spin between them.
  Eigen::setNbThreads(1);
  impl_->graph = graph;
  impl_->spec = std::move(spec);
  for (const auto& p : plan_.partitions) for (const auto& op : p.ops) impl_->op_of[op.node] = &op;
  // Weights in the order the PEs hold them (im2col rows), prepared once.
  for (const Node& n : impl_->graph.nodes) {
    if ((n.op_type != "Conv" && n.op_type != "FusedConv") || n.inputs.size() < 2) continue;
    auto w = impl_->graph.initializers.find(n.inputs[1]);
    if (w == impl_->graph.initializers.end() || w->second.rank() != 4 || w->second.dtype() != DType::kFloat32) continue;
    const Tensor& t = w->second;
    impl_->conv_weights[n.name] = ConstRowMap(t.data<float>(), t.dim(0), t.numel() / t.dim(0)).transpose();
  }
}

MeshSimulator::~MeshSimulator() = default;

Expected<std::vector<Value>> MeshSimulator::run(std::vector<Value> inputs, MeshRunStats* stats,
                                                std::map<std::string, Dims>* shapes_seen) const {
  const Graph& g = impl_->graph;
  if (inputs.size() != g.inputs.size()) {
    return invalid_argument("wafer simulator: expected ", g.inputs.size(), " inputs, received ", inputs.size());
  }
  std::map<std::string, Value> values;
  for (size_t i = 0; i < inputs.size(); ++i) values[g.inputs[i].name] = std::move(inputs[i]);
  // Uses left per value, so intermediates are freed after their last reader.
  std::map<std::string, int> uses;
  for (const Node& n : g.nodes) for (const auto& in : n.inputs) if (!in.empty()) ++uses[in];
  for (const auto& o : g.outputs) ++uses[o.name];
  MeshRunStats local;
  MeshRunStats* st = stats ? stats : &local;
  const MeshSplit unit;
  for (const Node& node : g.nodes) {
    std::vector<const Value*> in;
    for (const auto& name : node.inputs) {
      if (name.empty()) { in.push_back(nullptr); continue; }
      auto v = values.find(name);
      if (v != values.end()) { in.push_back(&v->second); continue; }
      auto w = g.initializers.find(name);
      if (w == g.initializers.end()) return node.error(StatusCode::kRuntimeError, "input '", name, "' was not computed");
      values[name] = Value(w->second);
      in.push_back(&values[name]);
    }
    auto placed = impl_->op_of.find(node.name);
    const MeshOp* op = placed == impl_->op_of.end() ? nullptr : placed->second;
    const MeshSplit& split = op ? op->split : unit;
    const bool per_pe = !op || op->simulation == "per_pe";
    std::vector<Value> outs;
    if (per_pe && (node.op_type == "MatMul" || node.op_type == "Gemm" || node.op_type == "FusedMatMul")) {
      ASSIGN_OR_RETURN(Tensor y, impl_->gemm(node, in, split, st));
      outs.emplace_back(std::move(y));
    } else if (per_pe && (node.op_type == "Conv" || node.op_type == "FusedConv")) {
      ASSIGN_OR_RETURN(Tensor y, impl_->conv(node, in, split, st));
      outs.emplace_back(std::move(y));
    } else {
      bool done = false;
      if (per_pe && (node.op_type == "LayerNormalization" || node.op_type == "Softmax" || node.op_type == "LogSoftmax")) {
        ASSIGN_OR_RETURN(done, impl_->row_reduce(node, in, split, &outs, st));
      } else if (per_pe && (node.op_type == "GlobalAveragePool" || node.op_type == "GlobalMaxPool")) {
        ASSIGN_OR_RETURN(done, impl_->global_pool(node, in, split, &outs, st));
      } else if (per_pe && node.op_type == "MultiHeadAttention") {
        ASSIGN_OR_RETURN(done, impl_->attention(node, in, split, &outs, st));
      } else if (per_pe && node.op_type == "GRU") {
        ASSIGN_OR_RETURN(done, impl_->gru(node, in, split, &outs, st));
      }
      if (!done) {
        ASSIGN_OR_RETURN(outs, run_reference(g, node, in));
        st->whole_tensor_ops.push_back(node.name);
      }
    }
    if (auto c = st->op_cycles.find(node.name); c != st->op_cycles.end()) {
      st->cycles += c->second;
    } else if (op) {
      st->cycles += op->cycles.total;
      st->op_cycles[node.name] = op->cycles.total;
    }
    for (size_t i = 0; i < node.outputs.size() && i < outs.size(); ++i) {
      if (node.outputs[i].empty()) continue;
      if (shapes_seen && outs[i].is_tensor()) (*shapes_seen)[node.outputs[i]] = outs[i].tensor.dims();
      values[node.outputs[i]] = std::move(outs[i]);
    }
    for (const auto& name : node.inputs) {
      if (!name.empty() && --uses[name] == 0) values.erase(name);
    }
  }
  // Transfers between partitions and to/from the host: their wavelets, and their cycles on
  // the way of one item (as the plan's latency counts them).
  for (const auto& t : plan_.transfers) {
    if (t.color >= 0) st->wavelets[t.color] += t.bytes / 4;
    st->cycles += t.cycles;
  }
  std::vector<Value> out;
  for (const auto& o : g.outputs) {
    auto v = values.find(o.name);
    if (v == values.end()) {
      auto w = g.initializers.find(o.name);
      if (w == g.initializers.end()) return invalid_argument("wafer simulator: output '", o.name, "' was not computed");
      out.emplace_back(w->second);
    } else {
      out.push_back(v->second);
    }
  }
  return out;
}

}  // namespace pyflame_rt
