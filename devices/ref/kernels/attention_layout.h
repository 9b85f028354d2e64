// The operand layout of pyflame_rt.MultiHeadAttention, shared by its reference kernel and the
// native CPU kernel so both accept exactly the same shapes:
//   MultiHeadAttention(Q, K, V, mask?) {num_heads, scale, batch_first}
//   batch_first = 1: Q [B, L, E], K [B, S, E], V [B, S, Ev], output [B, L, Ev]
//   batch_first = 0: Q [L, B, E], K [S, B, E], V [S, B, Ev], output [L, B, Ev] (torch's
//                    nn.MultiheadAttention default)
//   Head h owns columns [h*E/H, (h+1)*E/H) of Q and K and [h*Ev/H, (h+1)*Ev/H) of V and the
//   output; out[b, l, h] = softmax_s(scale * Q[b,l,h] . K[b,s,h] + mask[b,h,l,s]) @ V[b,:,h].
//   The optional float mask broadcasts (numpy rules, right-aligned) to [B, H, L, S].
// Every operand is addressed as strided rows, so no per-head copies are needed.
#pragma once

#include <array>

#include "devices/ref/kernel.h"

namespace pyflame_rt {

struct AttentionLayout {
  int64_t batch = 0, q_len = 0, kv_len = 0, heads = 0, dk = 0, dv = 0;
  // Element offset of (batch b, row r) in each operand = b * batch_stride + r * row_stride;
  // head h starts h * dk (Q, K) or h * dv (V, output) further.
  int64_t q_batch = 0, q_row = 0, k_batch = 0, k_row = 0, v_batch = 0, v_row = 0, o_batch = 0, o_row = 0;
  bool has_mask = false;
  std::array<int64_t, 4> mask_stride{};  // over (b, h, l, s); 0 along broadcast dims
  Dims out_dims;
};

// Validates the operands against the node's attributes; errors name the node, the operand and
// the expected vs received shape. `mask` may be nullptr.
inline Expected<AttentionLayout> attention_layout(const Node& node, const Tensor& q, const Tensor& k, const Tensor& v,
                                                  const Tensor* mask) {
  for (const Tensor* t : {&q, &k, &v, mask}) {
    if (t && t->dtype() != DType::kFloat32) {
      return node.error(StatusCode::kInvalidArgument, "expected float32 operands, received ", dtype_name(t->dtype()));
    }
  }
  if (q.rank() != 3 || k.rank() != 3 || v.rank() != 3) {
    return node.error(StatusCode::kInvalidArgument, "expected rank-3 Q, K, V, received ", dims_to_string(q.dims()), ", ",
                      dims_to_string(k.dims()), ", ", dims_to_string(v.dims()));
  }
  AttentionLayout a;
  const bool batch_first = node.attr_int("batch_first", 1) != 0;
  const int b_axis = batch_first ? 0 : 1, s_axis = batch_first ? 1 : 0;
  a.heads = node.attr_int("num_heads", 0);
  a.batch = q.dim(b_axis);
  a.q_len = q.dim(s_axis);
  a.kv_len = k.dim(s_axis);
  const int64_t e = q.dim(2), ev = v.dim(2);
  if (a.heads <= 0 || e % a.heads != 0 || ev % a.heads != 0) {
    return node.error(StatusCode::kInvalidArgument, "num_heads ", a.heads, " must divide the widths of Q (", e,
                      ") and V (", ev, ")");
  }
  if (k.dim(2) != e || k.dim(b_axis) != a.batch || v.dim(b_axis) != a.batch || v.dim(s_axis) != a.kv_len) {
    return node.error(StatusCode::kInvalidArgument, "K and V must match Q ", dims_to_string(q.dims()),
                      " in batch and width and each other in length; received K ", dims_to_string(k.dims()), ", V ",
                      dims_to_string(v.dims()));
  }
  a.dk = e / a.heads;
  a.dv = ev / a.heads;
  // Row-major [B, T, W]: batch stride T*W, row stride W; [T, B, W]: batch stride W, row B*W.
  auto strides = [&](int64_t len, int64_t width, int64_t* batch_stride, int64_t* row_stride) {
    *batch_stride = batch_first ? len * width : width;
    *row_stride = batch_first ? width : a.batch * width;
  };
  strides(a.q_len, e, &a.q_batch, &a.q_row);
  strides(a.kv_len, e, &a.k_batch, &a.k_row);
  strides(a.kv_len, ev, &a.v_batch, &a.v_row);
  strides(a.q_len, ev, &a.o_batch, &a.o_row);
  a.out_dims = batch_first ? Dims{a.batch, a.q_len, ev} : Dims{a.q_len, a.batch, ev};
  if (mask) {
    const Dims full = {a.batch, a.heads, a.q_len, a.kv_len};
    if (mask->rank() > 4) {
      return node.error(StatusCode::kInvalidArgument, "mask of rank <= 4 expected, received ", dims_to_string(mask->dims()));
    }
    a.has_mask = true;
    int64_t stride = 1;
    for (int i = 3, m = static_cast<int>(mask->rank()) - 1; i >= 0; --i, --m) {
      int64_t d = m >= 0 ? mask->dim(static_cast<size_t>(m)) : 1;
      if (d != 1 && d != full[static_cast<size_t>(i)]) {
        return node.error(StatusCode::kInvalidArgument, "mask ", dims_to_string(mask->dims()),
                          " does not broadcast to [batch, heads, q_len, kv_len] = ", dims_to_string(full));
      }
      a.mask_stride[static_cast<size_t>(i)] = d == 1 ? 0 : stride;
      stride *= d;
    }
  }
  return a;
}

}  // namespace pyflame_rt
