// Native Expand, Tile, Where and constant Pad for every fixed-size dtype: the output is walked
// row by row (all axes but the last), each operand's row found through its broadcast strides
// (0 on a broadcast axis), and a row is one memcpy when the operand's last axis is not
// broadcast, else a fill. No per-element index arithmetic, unlike the reference kernels.
// Anything they would reject (shapes that do not broadcast, negative pads, reflect/edge modes,
// Pad's `axes`) goes to the reference kernel, which reports or handles it.
#include <cstring>

#include "devices/cpu/broadcast_rows.h"
#include "devices/cpu/native_ops.h"
#include "graph/checked_math.h"

namespace pyflame_rt {
namespace cpu {

namespace {

// Copies `n` elements of `esize` bytes from src (step 0: one element repeated) to dst.
inline void copy_run(char* dst, const char* src, int64_t n, int64_t step, size_t esize) {
  if (step != 0) {
    std::memcpy(dst, src, static_cast<size_t>(n) * esize);
    return;
  }
  for (int64_t i = 0; i < n; ++i) std::memcpy(dst + static_cast<size_t>(i) * esize, src, esize);
}

class ExpandOp : public NativeOp {
 public:
  ExpandOp(const Node& node, int64_t opset) : node_(node), opset_(opset) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Tensor* x = plain_fixed(inputs[0]);
    const Tensor* shape = inputs.size() > 1 ? plain_fixed(inputs[1]) : nullptr;
    Dims out;
    if (!x || !shape || shape->dtype() != DType::kInt64 || !broadcast(x->dims(), shape->to_int64_vector(), &out) ||
        out.empty()) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    Tensor y = plain_output_tensor(x->dtype(), out);
    const size_t es = dtype_size(x->dtype());
    std::vector<std::vector<int64_t>> st = {broadcast_strides(x->dims(), out)};
    const int64_t last = out.back(), step = st[0].back();
    const char* src = static_cast<const char*>(x->raw_data());
    char* dst = static_cast<char*>(y.raw_data());
    if (y.numel() > 0) {
      for_each_row(out, st, [&](int64_t r, const std::vector<int64_t>& off) {
        copy_run(dst + static_cast<size_t>(r * last) * es, src + static_cast<size_t>(off[0]) * es, last, step, es);
      });
    }
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
};

class TileOp : public NativeOp {
 public:
  TileOp(const Node& node, int64_t opset) : node_(node), opset_(opset) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Tensor* x = plain_fixed(inputs[0]);
    const Tensor* reps_t = inputs.size() > 1 ? plain_fixed(inputs[1]) : nullptr;
    if (!x || !reps_t || x->rank() == 0) return run_reference(node_, opset_, inputs, outputs);
    std::vector<int64_t> reps = reps_t->to_int64_vector();
    if (reps.size() != x->rank()) return run_reference(node_, opset_, inputs, outputs);
    Dims out = x->dims();
    for (size_t i = 0; i < reps.size(); ++i) {
      // Negative or past int64 (4 x 2^62 wrapped to an empty output): the reference names it.
      CheckedInt64 dim = CheckedInt64(out[i]) * reps[i];
      if (reps[i] < 0 || dim.overflowed()) return run_reference(node_, opset_, inputs, outputs);
      out[i] = dim.value();
    }
    Tensor y = plain_output_tensor(x->dtype(), out);
    const size_t es = dtype_size(x->dtype()), rank = out.size();
    const int64_t in_last = x->dims().back(), last = out.back();
    const char* src = static_cast<const char*>(x->raw_data());
    char* dst = static_cast<char*>(y.raw_data());
    if (y.numel() > 0) {
      // Row r of the output reads input row (idx[d] mod x.dim(d)) over the leading axes.
      std::vector<int64_t> in_strides(rank, 1), idx(rank, 0);
      for (size_t d = rank - 1; d-- > 0;) in_strides[d] = in_strides[d + 1] * x->dim(d + 1);
      int64_t rows = y.numel() / last;
      for (int64_t r = 0; r < rows; ++r) {
        int64_t off = 0;
        for (size_t d = 0; d + 1 < rank; ++d) off += (idx[d] % x->dim(d)) * in_strides[d];
        char* row = dst + static_cast<size_t>(r * last) * es;
        for (int64_t k = 0; k < reps.back(); ++k) {
          std::memcpy(row + static_cast<size_t>(k * in_last) * es, src + static_cast<size_t>(off) * es,
                      static_cast<size_t>(in_last) * es);
        }
        for (size_t d = rank - 1; d-- > 0;) {
          if (++idx[d] < out[d]) break;
          idx[d] = 0;
        }
      }
    }
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
};

class WhereOp : public NativeOp {
 public:
  WhereOp(const Node& node, int64_t opset) : node_(node), opset_(opset) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Tensor* c = plain_fixed(inputs[0]);
    const Tensor* a = inputs.size() > 2 ? plain_fixed(inputs[1]) : nullptr;
    const Tensor* b = inputs.size() > 2 ? plain_fixed(inputs[2]) : nullptr;
    Dims d1, out;
    if (!c || !a || !b || c->dtype() != DType::kBool || a->dtype() != b->dtype() || !broadcast(c->dims(), a->dims(), &d1) ||
        !broadcast(d1, b->dims(), &out)) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    if (out.empty()) out = {1};  // all scalars: one row of one element, reshaped below
    Tensor y = plain_output_tensor(a->dtype(), out);
    const size_t es = dtype_size(a->dtype());
    std::vector<std::vector<int64_t>> st = {broadcast_strides(c->dims(), out), broadcast_strides(a->dims(), out),
                                            broadcast_strides(b->dims(), out)};
    const int64_t last = out.back(), sc = st[0].back(), sa = st[1].back(), sb = st[2].back();
    const bool* cond = c->data<bool>();
    const char* pa = static_cast<const char*>(a->raw_data());
    const char* pb = static_cast<const char*>(b->raw_data());
    char* dst = static_cast<char*>(y.raw_data());
    if (y.numel() > 0) {
      for_each_row(out, st, [&](int64_t r, const std::vector<int64_t>& off) {
        char* row = dst + static_cast<size_t>(r * last) * es;
        const bool* cr = cond + off[0];
        const char* ar = pa + static_cast<size_t>(off[1]) * es;
        const char* br = pb + static_cast<size_t>(off[2]) * es;
        switch (es) {
          case 4: select_row<uint32_t>(row, cr, ar, br, last, sc, sa, sb); break;
          case 8: select_row<uint64_t>(row, cr, ar, br, last, sc, sa, sb); break;
          case 2: select_row<uint16_t>(row, cr, ar, br, last, sc, sa, sb); break;
          default: select_row<uint8_t>(row, cr, ar, br, last, sc, sa, sb); break;
        }
      });
    }
    if (c->rank() == 0 && a->rank() == 0 && b->rank() == 0) y = y.reshaped({});
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  template <typename T>
  static void select_row(char* dst, const bool* c, const char* a, const char* b, int64_t n, int64_t sc, int64_t sa,
                         int64_t sb) {
    T* y = reinterpret_cast<T*>(dst);
    const T* x1 = reinterpret_cast<const T*>(a);
    const T* x2 = reinterpret_cast<const T*>(b);
    for (int64_t i = 0; i < n; ++i) y[i] = c[i * sc] ? x1[i * sa] : x2[i * sb];
  }

  Node node_;
  int64_t opset_;
};

class PadOp : public NativeOp {
 public:
  PadOp(const Node& node, int64_t opset) : node_(node), opset_(opset) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Tensor* x = plain_fixed(inputs[0]);
    if (!x || x->rank() == 0 || (inputs.size() > 3 && inputs[3])) return run_reference(node_, opset_, inputs, outputs);
    std::vector<int64_t> pads;
    Tensor fill(x->dtype(), {1});
    if (opset_ < 11) {
      pads = node_.attr_ints(node_.has_attr("pads") ? "pads" : "paddings");
      if (node_.attr_float("value", 0.0f) != 0.0f) return run_reference(node_, opset_, inputs, outputs);
    } else {
      if (inputs.size() < 2 || !inputs[1]) return run_reference(node_, opset_, inputs, outputs);
      pads = inputs[1]->as_plain().tensor.to_int64_vector();
      if (inputs.size() > 2 && inputs[2]) {
        const Tensor* cv = plain_fixed(inputs[2]);
        if (!cv || cv->dtype() != x->dtype()) return run_reference(node_, opset_, inputs, outputs);
        if (cv->numel() > 0) std::memcpy(fill.raw_data(), cv->raw_data(), dtype_size(x->dtype()));
      }
    }
    const size_t rank = x->rank();
    if (pads.size() != 2 * rank) return run_reference(node_, opset_, inputs, outputs);
    for (int64_t p : pads) if (p < 0) return run_reference(node_, opset_, inputs, outputs);  // cropping
    Dims out = x->dims();
    for (size_t d = 0; d < rank; ++d) {
      // Pads are the model's numbers: a size past int64 is the reference's to report (kernel_run, stop 16).
      const CheckedInt64 size = CheckedInt64(out[d]) + pads[d] + pads[d + rank];
      if (size.overflowed()) return run_reference(node_, opset_, inputs, outputs);
      out[d] = size.value();
    }
    Tensor y = plain_output_tensor(x->dtype(), out);  // not zeroed: the fill is written first
    const size_t es = dtype_size(x->dtype());
    char* dst = static_cast<char*>(y.raw_data());
    bool zero = true;
    for (size_t i = 0; i < es; ++i) zero &= static_cast<const char*>(fill.raw_data())[i] == 0;
    if (zero) {
      std::memset(dst, 0, y.nbytes());
    } else {
      copy_run(dst, static_cast<const char*>(fill.raw_data()), y.numel(), 0, es);
    }
    if (x->numel() > 0) {
      std::vector<int64_t> out_strides(rank, 1);
      for (size_t d = rank - 1; d-- > 0;) out_strides[d] = out_strides[d + 1] * out[d + 1];
      int64_t base = 0;
      for (size_t d = 0; d < rank; ++d) base += pads[d] * out_strides[d];
      // Walk the input's rows; each lands at the same leading index shifted by the begin pads.
      std::vector<std::vector<int64_t>> st = {out_strides};
      const int64_t last = x->dims().back();
      const char* src = static_cast<const char*>(x->raw_data());
      for_each_row(x->dims(), st, [&](int64_t r, const std::vector<int64_t>& off) {
        std::memcpy(dst + static_cast<size_t>(base + off[0]) * es, src + static_cast<size_t>(r * last) * es,
                    static_cast<size_t>(last) * es);
      });
    }
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
};

}  // namespace

std::unique_ptr<NativeOp> make_broadcast_op(const Node& node, int64_t opset, const Graph&) {
  if (node.op_type == "Expand") return std::make_unique<ExpandOp>(node, opset);
  if (node.op_type == "Tile") return std::make_unique<TileOp>(node, opset);
  if (node.op_type == "Where") return std::make_unique<WhereOp>(node, opset);
  if (node.op_type == "Pad" && node.attr_string("mode", "constant") == "constant") return std::make_unique<PadOp>(node, opset);
  return nullptr;
}

// Byte copies: any fixed-width dtype (Where's input 0 is its bool condition). Expand is opset
// 8+, Where 9+; Tile from 6 (repeats as an input).
void register_broadcast_ops(NativeOpTable& t) {
  t.add({"", "Expand", 8, kNativeAnyOpset, fixed_width_dtypes(), make_broadcast_op});
  t.add({"", "Tile", 6, kNativeAnyOpset, fixed_width_dtypes(), make_broadcast_op});
  t.add({"", "Where", 9, kNativeAnyOpset, {DType::kBool}, make_broadcast_op});
  t.add({"", "Pad", 1, kNativeAnyOpset, fixed_width_dtypes(), make_broadcast_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
