// Reference kernels: MatMul (batched, broadcast), Gemm, Einsum (general) and Det.
#include <cmath>
#include <map>

#include "devices/ref/kernel_groups.h"
#include "devices/ref/kernel_util.h"
#include "devices/ref/kernels/gemm.h"
#include "devices/run_interrupt.h"

namespace pyflame_rt {

namespace {

// Runs `f` with T = float or double for float inputs, converting half types through float.
Status matmul_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  Tensor a = *ctx.input(0);
  Tensor b = *ctx.input(1);
  if (a.dtype() != b.dtype()) {
    return ctx.error(StatusCode::kInvalidArgument, "A is ", dtype_name(a.dtype()), ", B is ", dtype_name(b.dtype()));
  }
  if (a.rank() == 0 || b.rank() == 0) return ctx.error(StatusCode::kInvalidArgument, "MatMul inputs must have rank >= 1");
  bool a_vec = a.rank() == 1, b_vec = b.rank() == 1;
  if (a_vec) a = a.reshaped({1, a.dim(0)});
  if (b_vec) b = b.reshaped({b.dim(0), 1});
  int64_t M = a.dim(a.rank() - 2), K = a.dim(a.rank() - 1), N = b.dim(b.rank() - 1);
  if (b.dim(b.rank() - 2) != K) {
    return ctx.error(StatusCode::kInvalidArgument, "A ", dims_to_string(ctx.input(0)->dims()), " and B ",
                     dims_to_string(ctx.input(1)->dims()), " have inner dims ", K, " and ", b.dim(b.rank() - 2));
  }
  Dims a_batch(a.dims().begin(), a.dims().end() - 2), b_batch(b.dims().begin(), b.dims().end() - 2), batch;
  RETURN_IF_ERROR(broadcast_dims(ctx, a_batch, b_batch, &batch));
  BroadcastIndexMap ia = broadcast_index_map(a_batch, batch), ib = broadcast_index_map(b_batch, batch);
  Dims out_dims = batch;
  if (!a_vec) out_dims.push_back(M);
  if (!b_vec) out_dims.push_back(N);
  DType compute = a.dtype() == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
  bool integral = dtype_is_integer(a.dtype());
  if (integral) compute = DType::kFloat64;
  Tensor ac = a.dtype() == compute ? a : convert_tensor(a, compute);
  Tensor bc = b.dtype() == compute ? b : convert_tensor(b, compute);
  Tensor y(compute, out_dims);
  int64_t nb = num_elements(batch);
  Status st;
  dispatch_numeric(compute, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_floating_point_v<T>) {
      for (int64_t i = 0; i < nb && st.ok(); ++i) {
        st = ref_gemm<T>(M, N, K, T(1), ac.data<T>() + ia[static_cast<size_t>(i)] * M * K, K, false,
                         bc.data<T>() + ib[static_cast<size_t>(i)] * K * N, N, false, T(0), y.data<T>() + i * M * N, N);
      }
    }
  });
  RETURN_IF_ERROR(st);
  ctx.set_output(0, y.dtype() == a.dtype() ? y : convert_tensor(y, a.dtype()));
  return Status::OK();
}

Status gemm_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& a = *ctx.input(0);
  const Tensor& b = *ctx.input(1);
  if (a.rank() != 2 || b.rank() != 2) {
    return ctx.error(StatusCode::kInvalidArgument, "A and B must be 2-D, got ", dims_to_string(a.dims()), " and ",
                     dims_to_string(b.dims()));
  }
  bool ta = ctx.node().attr_int("transA", 0) != 0, tb = ctx.node().attr_int("transB", 0) != 0;
  double alpha = ctx.node().attr_float("alpha", 1.0f), beta = ctx.node().attr_float("beta", 1.0f);
  int64_t M = ta ? a.dim(1) : a.dim(0), K = ta ? a.dim(0) : a.dim(1);
  int64_t Kb = tb ? b.dim(1) : b.dim(0), N = tb ? b.dim(0) : b.dim(1);
  if (K != Kb) {
    return ctx.error(StatusCode::kInvalidArgument, "op(A) is [", M, ",", K, "] but op(B) is [", Kb, ",", N, "]");
  }
  DType compute = a.dtype() == DType::kFloat64 || dtype_is_integer(a.dtype()) ? DType::kFloat64 : DType::kFloat32;
  Tensor ac = a.dtype() == compute ? a : convert_tensor(a, compute);
  Tensor bc = b.dtype() == compute ? b : convert_tensor(b, compute);
  Tensor y(compute, {M, N});
  if (const Tensor* c = ctx.input(2)) {
    Dims bd;
    RETURN_IF_ERROR(broadcast_dims(ctx, c->dims(), {M, N}, &bd));
    if (bd != Dims{M, N}) {
      return ctx.error(StatusCode::kInvalidArgument, "C ", dims_to_string(c->dims()), " does not broadcast to [", M, ",", N, "]");
    }
    BroadcastIndexMap map = broadcast_index_map(c->dims(), {M, N});
    for (int64_t i = 0; i < M * N; ++i) {
      double v = c->value_as_double(map[static_cast<size_t>(i)]);
      if (compute == DType::kFloat32) y.data<float>()[i] = static_cast<float>(v);
      else y.data<double>()[i] = v;
    }
  } else {
    beta = 0;
  }
  if (compute == DType::kFloat32) {
    RETURN_IF_ERROR(ref_gemm<float>(M, N, K, static_cast<float>(alpha), ac.data<float>(), a.dim(1), ta,
                                    bc.data<float>(), b.dim(1), tb, static_cast<float>(beta), y.data<float>(), N));
  } else {
    RETURN_IF_ERROR(ref_gemm<double>(M, N, K, alpha, ac.data<double>(), a.dim(1), ta, bc.data<double>(), b.dim(1), tb,
                                     beta, y.data<double>(), N));
  }
  ctx.set_output(0, y.dtype() == a.dtype() ? y : convert_tensor(y, a.dtype()));
  return Status::OK();
}

// Einsum by explicit index iteration over the union of labels: clear, general (diagonals,
// traces, broadcasting ellipsis), and fine at reference sizes. The walk is the product of every
// label's size, which the inputs do not bound ("a,b->" of two 8 MB vectors is 10^12 steps): the
// run's deadline is read along it.
Status einsum_kernel(KernelContext& ctx) {
  std::string eq = ctx.node().attr_string("equation", "");
  eq.erase(std::remove(eq.begin(), eq.end(), ' '), eq.end());
  size_t arrow = eq.find("->");
  std::string lhs = arrow == std::string::npos ? eq : eq.substr(0, arrow);
  std::vector<std::string> terms;
  size_t start = 0;
  while (true) {
    size_t comma = lhs.find(',', start);
    terms.push_back(lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (terms.size() != ctx.num_inputs()) {
    return ctx.error(StatusCode::kInvalidArgument, "equation '", eq, "' has ", terms.size(), " operands, node has ",
                     ctx.num_inputs(), " inputs");
  }
  for (size_t i = 0; i < terms.size(); ++i) RETURN_IF_ERROR(ctx.require_input(i));
  // Expand '...' into upper-case labels (not used by ONNX equations, which are lower-case/letters).
  int64_t ell_rank = 0;
  for (size_t i = 0; i < terms.size(); ++i) {
    size_t p = terms[i].find("...");
    if (p != std::string::npos) {
      int64_t named = static_cast<int64_t>(terms[i].size()) - 3;
      ell_rank = std::max(ell_rank, static_cast<int64_t>(ctx.input(i)->rank()) - named);
    }
  }
  std::string ell_labels;
  for (int64_t i = 0; i < ell_rank; ++i) ell_labels += static_cast<char>('0' + i);  // digits never clash with letters
  std::map<char, int64_t> size;
  std::vector<std::string> labels(terms.size());
  for (size_t i = 0; i < terms.size(); ++i) {
    const Tensor& t = *ctx.input(i);
    std::string term = terms[i];
    size_t p = term.find("...");
    if (p != std::string::npos) {
      int64_t own = static_cast<int64_t>(t.rank()) - (static_cast<int64_t>(term.size()) - 3);
      if (own < 0) {  // "...ii" on a rank-1 tensor: the named labels alone pass its rank
        return ctx.error(StatusCode::kInvalidArgument, "operand ", i, " term '", terms[i], "' names ",
                         term.size() - 3, " labels besides '...', the tensor has rank ", t.rank());
      }
      term = term.substr(0, p) + ell_labels.substr(static_cast<size_t>(ell_rank - own)) + term.substr(p + 3);
    }
    if (term.size() != t.rank()) {
      return ctx.error(StatusCode::kInvalidArgument, "operand ", i, " term '", terms[i], "' has ", term.size(),
                       " labels, the tensor has rank ", t.rank());
    }
    for (size_t d = 0; d < term.size(); ++d) {
      int64_t n = t.dim(d);
      auto it = size.find(term[d]);
      if (it == size.end() || it->second == 1) size[term[d]] = n;
      else if (n != 1 && it->second != n) {
        return ctx.error(StatusCode::kInvalidArgument, "label '", term[d], "' has sizes ", it->second, " and ", n);
      }
    }
    labels[i] = term;
  }
  std::string out;
  if (arrow != std::string::npos) {
    out = eq.substr(arrow + 2);
    size_t p = out.find("...");
    if (p != std::string::npos) out = out.substr(0, p) + ell_labels + out.substr(p + 3);
  } else {
    std::map<char, int> count;
    for (const auto& l : labels) for (char c : l) ++count[c];
    out = ell_labels;
    for (const auto& kv : count) if (kv.second == 1 && !std::isdigit(static_cast<unsigned char>(kv.first))) out += kv.first;
  }
  std::string all = out;
  for (const auto& kv : size) if (all.find(kv.first) == std::string::npos) all += kv.first;
  Dims out_dims;
  for (char c : out) out_dims.push_back(size[c]);
  Dims all_dims;
  for (char c : all) all_dims.push_back(size[c]);
  std::vector<std::vector<int64_t>> strides(terms.size());  // per operand: stride per label of `all`
  for (size_t i = 0; i < terms.size(); ++i) {
    std::vector<int64_t> s = strides_of(ctx.input(i)->dims());
    strides[i].assign(all.size(), 0);
    for (size_t d = 0; d < labels[i].size(); ++d) {
      if (ctx.input(i)->dim(d) == 1) continue;  // broadcast
      strides[i][all.find(labels[i][d])] += s[d];
    }
  }
  std::vector<double> acc(static_cast<size_t>(num_elements(out_dims)), 0.0);
  std::vector<int64_t> idx(all.size(), 0);
  int64_t total = num_elements(all_dims);
  std::vector<int64_t> out_strides = strides_of(out_dims);
  InterruptPoll poll;
  const int64_t step_work = static_cast<int64_t>((terms.size() + 1) * all.size()) + 1;
  for (int64_t f = 0; f < total; ++f) {
    RETURN_IF_ERROR(poll.tick(step_work));
    double prod = 1;
    for (size_t i = 0; i < terms.size(); ++i) {
      int64_t off = 0;
      for (size_t d = 0; d < all.size(); ++d) off += idx[d] * strides[i][d];
      prod *= ctx.input(i)->value_as_double(off);
    }
    int64_t o = 0;
    for (size_t d = 0; d < out.size(); ++d) o += idx[d] * out_strides[d];
    acc[static_cast<size_t>(o)] += prod;
    next_index(idx, all_dims);
  }
  Tensor y = Tensor::from_vector<double>(out_dims, acc);
  ctx.set_output(0, convert_tensor(y, ctx.input(0)->dtype()));
  return Status::OK();
}

Status det_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  if (x.rank() < 2 || x.dim(x.rank() - 1) != x.dim(x.rank() - 2)) {
    return ctx.error(StatusCode::kInvalidArgument, "input must be [..., n, n], got ", dims_to_string(x.dims()));
  }
  int64_t n = x.dim(x.rank() - 1);
  Dims out_dims(x.dims().begin(), x.dims().end() - 2);
  int64_t batches = num_elements(out_dims);
  std::vector<double> dets(static_cast<size_t>(batches));
  InterruptPoll poll;  // n^3 / 3 per matrix: a 64 MB float matrix is ~2 x 10^10 steps
  for (int64_t b = 0; b < batches; ++b) {
    std::vector<double> m(static_cast<size_t>(n * n));
    for (int64_t i = 0; i < n * n; ++i) m[static_cast<size_t>(i)] = x.value_as_double(b * n * n + i);
    double det = 1;
    for (int64_t c = 0; c < n; ++c) {  // LU with partial pivoting
      RETURN_IF_ERROR(poll.tick((n - c) * (n - c) + 1));
      int64_t piv = c;
      for (int64_t r = c + 1; r < n; ++r) {
        if (std::fabs(m[static_cast<size_t>(r * n + c)]) > std::fabs(m[static_cast<size_t>(piv * n + c)])) piv = r;
      }
      if (m[static_cast<size_t>(piv * n + c)] == 0) { det = 0; break; }
      if (piv != c) {
        for (int64_t k = 0; k < n; ++k) std::swap(m[static_cast<size_t>(c * n + k)], m[static_cast<size_t>(piv * n + k)]);
        det = -det;
      }
      double p = m[static_cast<size_t>(c * n + c)];
      det *= p;
      for (int64_t r = c + 1; r < n; ++r) {
        double f = m[static_cast<size_t>(r * n + c)] / p;
        for (int64_t k = c; k < n; ++k) m[static_cast<size_t>(r * n + k)] -= f * m[static_cast<size_t>(c * n + k)];
      }
    }
    dets[static_cast<size_t>(b)] = det;
  }
  ctx.set_output(0, convert_tensor(Tensor::from_vector<double>(out_dims, dets), x.dtype()));
  return Status::OK();
}

}  // namespace

void register_linalg_kernels(KernelRegistry& r) {
  r.add("", "MatMul", matmul_kernel);
  r.add("", "Gemm", gemm_kernel);
  r.add("", "Einsum", einsum_kernel);
  r.add("", "Det", det_kernel);
}

}  // namespace pyflame_rt
