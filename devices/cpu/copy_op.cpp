// Native data movement as plain memory copies, for every fixed-size dtype: Concat, Split and
// Gather copy whole runs of the inner dims with memcpy (at memory speed, split over the
// OpenMP team when large; a channel Concat of channel-blocked values stays blocked), and Flatten, Reshape, Squeeze and Unsqueeze are views of their
// input (no copy unless the input lives in a blocked oneDNN layout, which is reordered to
// plain once). pyflame_rt.FusedConcat (concat_affine_fusion: DenseNet's Concat -> BatchNorm
// -> Relu) is the channel Concat applying each channel's scale, shift and Relu on the way:
// one read of each input, one write of the output. Anything unusual (strings, a
// bad axis or index) goes to the reference kernel, which reports it.
#include <omp.h>

#include <cstring>
#include <numeric>

#include "devices/cpu/loop_kernels.h"
#include "devices/cpu/native_ops.h"
#include "devices/ref/kernel_util.h"

namespace pyflame_rt {
namespace cpu {

namespace {

// Below this many bytes a copy runs on the calling thread alone.
constexpr int64_t kParallelBytes = 1 << 18;

int64_t product(const Dims& d, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to; ++i) p *= d[i];
  return p;
}

// Runs f(o) for o in [0, outer), on the team when the copy is large enough to pay for it.
template <typename F>
void for_rows(int64_t outer, int64_t bytes, F f) {
  if (bytes < kParallelBytes || outer < 2 || omp_get_max_threads() == 1) {
    for (int64_t o = 0; o < outer; ++o) f(o);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < outer; ++o) f(o);
}

// The channel-blocked tag (nChw8c, nChw16c and their 3-D/5-D forms) `desc` is exactly, with
// no padding (channels a multiple of the block); format_tag::undef when it is none of them.
dnnl::memory::format_tag dense_channel_block(const dnnl::memory::desc& desc, const Dims& dims) {
  using tag = dnnl::memory::format_tag;
  if (desc.data_type() != dnnl::memory::data_type::f32 || dims.size() < 3 || dims.size() > 5) return tag::undef;
  const tag tags[3][2] = {{tag::aBc8b, tag::aBc16b}, {tag::aBcd8b, tag::aBcd16b}, {tag::aBcde8b, tag::aBcde16b}};
  const int64_t blocks[2] = {8, 16};
  for (int i = 0; i < 2; ++i) {
    const tag t = tags[dims.size() - 3][i];
    if (dims[1] % blocks[i] == 0 && desc == dnnl::memory::desc(to_dnnl(dims), dnnl::memory::data_type::f32, t)) return t;
  }
  return tag::undef;
}

class ConcatOp : public NativeOp {
 public:
  ConcatOp(const Node& node, int64_t opset) : node_(node), opset_(opset) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    if (concat_blocked(inputs, outputs)) return Status::OK();
    std::vector<const Tensor*> parts;
    for (CpuValue* v : inputs) {
      const Tensor* t = plain_fixed(v);
      if (!t) return run_reference(node_, opset_, inputs, outputs);
      parts.push_back(t);
    }
    if (parts.empty()) return run_reference(node_, opset_, inputs, outputs);
    const Tensor& first = *parts[0];
    int64_t rank = static_cast<int64_t>(first.rank());
    int64_t axis = node_.attr_int("axis", 0);
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= rank) return run_reference(node_, opset_, inputs, outputs);
    Dims out_dims = first.dims();
    out_dims[static_cast<size_t>(axis)] = 0;
    for (const Tensor* t : parts) {
      if (t->dtype() != first.dtype() || t->rank() != first.rank()) return run_reference(node_, opset_, inputs, outputs);
      for (int64_t d = 0; d < rank; ++d) {
        if (d != axis && t->dim(static_cast<size_t>(d)) != first.dim(static_cast<size_t>(d))) {
          return run_reference(node_, opset_, inputs, outputs);
        }
      }
      out_dims[static_cast<size_t>(axis)] += t->dim(static_cast<size_t>(axis));
    }
    const size_t ax = static_cast<size_t>(axis);
    const int64_t outer = product(out_dims, 0, ax), esize = static_cast<int64_t>(dtype_size(first.dtype()));
    const int64_t row_bytes = product(out_dims, ax, out_dims.size()) * esize;
    Tensor y = plain_output_tensor(first.dtype(), out_dims);
    std::vector<int64_t> part_bytes, offsets;
    int64_t offset = 0;
    for (const Tensor* t : parts) {
      part_bytes.push_back(product(t->dims(), ax, t->rank()) * esize);
      offsets.push_back(offset);
      offset += part_bytes.back();
    }
    char* dst = static_cast<char*>(y.raw_data());
    for_rows(outer, outer * row_bytes, [&](int64_t o) {
      for (size_t k = 0; k < parts.size(); ++k) {
        if (part_bytes[k] == 0) continue;
        std::memcpy(dst + o * row_bytes + offsets[k], static_cast<const char*>(parts[k]->raw_data()) + o * part_bytes[k],
                    static_cast<size_t>(part_bytes[k]));
      }
    });
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  // Channel concat of values in one dense channel-blocked layout (convolution outputs in a
  // blocked region: DenseNet, GoogLeNet, SqueezeNet): with whole blocks, each image of each
  // input is one contiguous run in that layout too, so the output is built in it with the
  // same copies as the plain concat, and nothing is reordered to plain and back. False (and
  // nothing written) when the inputs are not all such values.
  bool concat_blocked(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) {
    if (inputs.empty() || !inputs[0] || !inputs[0]->has_native) return false;
    const Dims& first = inputs[0]->dims;
    int64_t axis = node_.attr_int("axis", 0);
    if (axis < 0) axis += static_cast<int64_t>(first.size());
    if (axis != 1) return false;
    const dnnl::memory::format_tag tag = dense_channel_block(inputs[0]->native.get_desc(), first);
    if (tag == dnnl::memory::format_tag::undef) return false;
    Dims out_dims = first;
    out_dims[1] = 0;
    std::vector<int64_t> part_bytes;
    for (CpuValue* v : inputs) {
      if (!v || !v->has_native || v->dims.size() != first.size() || dense_channel_block(v->native.get_desc(), v->dims) != tag) {
        return false;
      }
      for (size_t d = 0; d < first.size(); ++d) {
        if (d != 1 && v->dims[d] != first[d]) return false;
      }
      out_dims[1] += v->dims[1];
      part_bytes.push_back(product(v->dims, 1, v->dims.size()) * static_cast<int64_t>(sizeof(float)));
    }
    const int64_t outer = first[0], row_bytes = product(out_dims, 1, out_dims.size()) * static_cast<int64_t>(sizeof(float));
    CpuValue out = CpuValue::allocate_native(
        dnnl::memory::desc(to_dnnl(out_dims), dnnl::memory::data_type::f32, tag), out_dims);
    char* dst = static_cast<char*>(out.native.get_data_handle());
    for_rows(outer, outer * row_bytes, [&](int64_t o) {
      int64_t offset = 0;
      for (size_t k = 0; k < inputs.size(); ++k) {
        std::memcpy(dst + o * row_bytes + offset,
                    static_cast<const char*>(inputs[k]->native.get_data_handle()) + o * part_bytes[k],
                    static_cast<size_t>(part_bytes[k]));
        offset += part_bytes[k];
      }
    });
    outputs[0] = std::move(out);
    return true;
  }

  Node node_;
  int64_t opset_;
};

// pyflame_rt.FusedConcat {axis = 1, scale, shift, activation = "" | "Relu"} on f32:
// activation(Concat(X...) * scale[c] + shift[c]). Inputs in one dense channel-blocked layout
// give an output in that layout (each image of each input is a run of whole channel blocks);
// any other inputs are made plain and so is the output.
class FusedConcatOp : public NativeOp {
 public:
  FusedConcatOp(const Node& node, int64_t opset)
      : node_(node), opset_(opset), scale_(node.attr_floats("scale")), shift_(node.attr_floats("shift")),
        relu_(fused_activation(node) == "Relu") {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    if (inputs.empty()) return run_reference(node_, opset_, inputs, outputs);
    for (CpuValue* v : inputs) {
      bool f32 = v && (v->has_native || (v->plain.is_tensor() && v->plain.tensor.dtype() == DType::kFloat32));
      if (!f32) return run_reference(node_, opset_, inputs, outputs);
    }
    const Dims first = inputs[0]->has_native ? inputs[0]->dims : inputs[0]->plain.tensor.dims();
    if (first.size() != 4) return run_reference(node_, opset_, inputs, outputs);
    Dims out_dims = first;
    out_dims[1] = 0;
    for (CpuValue* v : inputs) {
      const Dims& d = v->has_native ? v->dims : v->plain.tensor.dims();
      if (d.size() != 4 || d[0] != first[0] || d[2] != first[2] || d[3] != first[3]) {
        return run_reference(node_, opset_, inputs, outputs);  // it names the mismatch
      }
      out_dims[1] += d[1];
    }
    if (out_dims[1] != static_cast<int64_t>(scale_.size()) || shift_.size() != scale_.size()) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    const int64_t spatial = first[2] * first[3];
    // Blocked when every input is in the first one's dense channel-blocked layout.
    dnnl::memory::format_tag tag =
        inputs[0]->has_native ? dense_channel_block(inputs[0]->native.get_desc(), first) : dnnl::memory::format_tag::undef;
    for (CpuValue* v : inputs) {
      if (tag != dnnl::memory::format_tag::undef &&
          (!v->has_native || dense_channel_block(v->native.get_desc(), v->dims) != tag)) {
        tag = dnnl::memory::format_tag::undef;
      }
    }
    using ftag = dnnl::memory::format_tag;
    const int64_t block = tag == ftag::undef ? 1 : tag == ftag::aBcd16b ? 16 : 8;
    // Work items: (image, input, channel block or channel), each a contiguous run of
    // spatial * block floats in both the input and the output.
    struct Item {
      const float* src;
      float* dst;
      int64_t channel;
    };
    std::vector<const float*> srcs;
    for (CpuValue* v : inputs) {
      srcs.push_back(block > 1 ? static_cast<const float*>(v->native.get_data_handle())
                               : static_cast<const float*>(plain_fixed(v)->raw_data()));
    }
    CpuValue out;
    Tensor plain_out;
    float* dst;
    if (block > 1) {
      out = CpuValue::allocate_native(dnnl::memory::desc(to_dnnl(out_dims), dnnl::memory::data_type::f32, tag), out_dims);
      dst = static_cast<float*>(out.native.get_data_handle());
    } else {
      plain_out = plain_output_tensor(DType::kFloat32, out_dims);
      dst = plain_out.data<float>();
    }
    std::vector<Item> items;
    const int64_t out_channels = out_dims[1];
    for (int64_t n = 0; n < first[0]; ++n) {
      int64_t c0 = 0;
      for (size_t k = 0; k < inputs.size(); ++k) {
        const int64_t ck = (inputs[k]->has_native ? inputs[k]->dims : inputs[k]->plain.tensor.dims())[1];
        for (int64_t c = 0; c < ck; c += block) {
          items.push_back({srcs[k] + (n * ck + c) * spatial, dst + (n * out_channels + c0 + c) * spatial, c0 + c});
        }
        c0 += ck;
      }
    }
    const int64_t count = static_cast<int64_t>(items.size());
    const bool parallel = count > 1 && num_elements(out_dims) * 4 >= kParallelBytes && omp_get_max_threads() > 1;
#pragma omp parallel for if (parallel) schedule(static)
    for (int64_t i = 0; i < count; ++i) {
      const Item& it = items[static_cast<size_t>(i)];
      channel_affine_f32(it.src, it.dst, scale_.data() + it.channel, shift_.data() + it.channel, spatial, block, relu_);
    }
    outputs[0] = block > 1 ? std::move(out) : CpuValue::from_plain(Value(std::move(plain_out)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
  std::vector<float> scale_, shift_;
  bool relu_;
};

class SplitOp : public NativeOp {
 public:
  SplitOp(const Node& node, int64_t opset) : node_(node), opset_(opset) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Tensor* x = plain_fixed(inputs[0]);
    int64_t rank = x ? static_cast<int64_t>(x->rank()) : 0;
    int64_t axis = node_.attr_int("axis", 0);
    if (axis < 0) axis += rank;
    if (!x || axis < 0 || axis >= rank) return run_reference(node_, opset_, inputs, outputs);
    const size_t ax = static_cast<size_t>(axis);
    const int64_t len = x->dim(ax), n_out = static_cast<int64_t>(outputs.size());
    std::vector<int64_t> sizes = inputs.size() > 1 && inputs[1] ? inputs[1]->as_plain().tensor.to_int64_vector()
                                                                 : node_.attr_ints("split");
    if (sizes.empty()) {
      if (node_.attr_int("num_outputs", n_out) != n_out || n_out < 1) return run_reference(node_, opset_, inputs, outputs);
      int64_t chunk = len / n_out + (len % n_out != 0);  // len + n_out - 1 may pass int64 (an empty x)
      for (int64_t s = 0; s < len;) {  // s + chunk may pass int64 when len is near it
        sizes.push_back(std::min(chunk, len - s));
        s += sizes.back();
      }
      while (static_cast<int64_t>(sizes.size()) < n_out) sizes.push_back(0);
    }
    int64_t total = 0;  // the sizes are the model's: their sum may pass int64 (kernel_run, stop 15)
    if (static_cast<int64_t>(sizes.size()) != n_out || !checked_sum(sizes, &total) || total != len ||
        std::any_of(sizes.begin(), sizes.end(), [](int64_t v) { return v < 0; })) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    const int64_t esize = static_cast<int64_t>(dtype_size(x->dtype()));
    const int64_t outer = product(x->dims(), 0, ax), inner_bytes = product(x->dims(), ax + 1, x->rank()) * esize;
    const int64_t row_bytes = len * inner_bytes;
    const char* src = static_cast<const char*>(x->raw_data());
    int64_t start = 0;
    for (size_t k = 0; k < sizes.size(); ++k) {
      Dims d = x->dims();
      d[ax] = sizes[k];
      Tensor y = plain_output_tensor(x->dtype(), d);
      const int64_t part = sizes[k] * inner_bytes, off = start * inner_bytes;
      char* dst = static_cast<char*>(y.raw_data());
      if (part > 0) {
        for_rows(outer, outer * part, [&](int64_t o) {
          std::memcpy(dst + o * part, src + o * row_bytes + off, static_cast<size_t>(part));
        });
      }
      start += sizes[k];
      if (!node_.outputs[k].empty()) outputs[k] = CpuValue::from_plain(Value(std::move(y)));
    }
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
};

class GatherOp : public NativeOp {
 public:
  GatherOp(const Node& node, int64_t opset) : node_(node), opset_(opset) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Tensor* x = plain_fixed(inputs[0]);
    const Tensor* idx = inputs.size() > 1 ? plain_fixed(inputs[1]) : nullptr;
    int64_t rank = x ? static_cast<int64_t>(x->rank()) : 0;
    int64_t axis = node_.attr_int("axis", 0);
    if (axis < 0) axis += rank;
    if (!x || !idx || axis < 0 || axis >= rank || (idx->dtype() != DType::kInt64 && idx->dtype() != DType::kInt32)) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    const size_t ax = static_cast<size_t>(axis);
    const int64_t len = x->dim(ax), n_idx = idx->numel();
    std::vector<int64_t> index(static_cast<size_t>(n_idx));
    for (int64_t j = 0; j < n_idx; ++j) {
      int64_t k = idx->dtype() == DType::kInt64 ? idx->data<int64_t>()[j] : idx->data<int32_t>()[j];
      if (k < 0) k += len;
      if (k < 0 || k >= len) return run_reference(node_, opset_, inputs, outputs);  // it names the bad index
      index[static_cast<size_t>(j)] = k;
    }
    Dims out_dims(x->dims().begin(), x->dims().begin() + axis);
    out_dims.insert(out_dims.end(), idx->dims().begin(), idx->dims().end());
    out_dims.insert(out_dims.end(), x->dims().begin() + axis + 1, x->dims().end());
    const int64_t esize = static_cast<int64_t>(dtype_size(x->dtype()));
    const int64_t outer = product(x->dims(), 0, ax), inner_bytes = product(x->dims(), ax + 1, x->rank()) * esize;
    Tensor y = plain_output_tensor(x->dtype(), out_dims);
    const char* src = static_cast<const char*>(x->raw_data());
    char* dst = static_cast<char*>(y.raw_data());
    if (inner_bytes > 0) {
      for_rows(outer, outer * n_idx * inner_bytes, [&](int64_t o) {
        for (int64_t j = 0; j < n_idx; ++j) {
          std::memcpy(dst + (o * n_idx + j) * inner_bytes, src + (o * len + index[static_cast<size_t>(j)]) * inner_bytes,
                      static_cast<size_t>(inner_bytes));
        }
      });
    }
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
};

// Flatten: a view of the plain input with dims [outer, inner] (the reference kernel's result
// too; native here so a blocked input is reordered once and the node is not reported as a
// fallback).
class FlattenOp : public NativeOp {
 public:
  FlattenOp(const Node& node, int64_t opset) : node_(node), opset_(opset) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Tensor* x = plain_fixed(inputs[0]);
    int64_t rank = x ? static_cast<int64_t>(x->rank()) : 0;
    int64_t axis = node_.attr_int("axis", 1);
    if (axis < 0) axis += rank;
    if (!x || axis < 0 || axis > rank) return run_reference(node_, opset_, inputs, outputs);
    const size_t ax = static_cast<size_t>(axis);
    outputs[0] = CpuValue::from_plain(Value(x->reshaped({product(x->dims(), 0, ax), product(x->dims(), ax, x->rank())})));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
};

// Reshape: a view of the plain input with the new dims, as the reference kernel's result is
// (native so a blocked input is reordered once and the node is not reported as a fallback).
// An invalid target shape goes to the reference kernel, which reports it.
class ReshapeOp : public NativeOp {
 public:
  ReshapeOp(const Node& node, int64_t opset) : node_(node), opset_(opset) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Tensor* x = plain_fixed(inputs[0]);
    if (!x || inputs.size() < 2 || !inputs[1] || !inputs[1]->as_plain().is_tensor()) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    Dims out;
    std::string why;
    if (!reshape_dims(x->dims(), inputs[1]->as_plain().tensor.to_int64_vector(), node_.attr_int("allowzero", 0) != 0,
                      &out, &why)) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    outputs[0] = CpuValue::from_plain(Value(x->reshaped(out)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
};

// Squeeze and Unsqueeze: views of the plain input, like Reshape, with the reference kernel's
// axis rules (kernel_util's squeeze_dims/unsqueeze_dims). Axes come from input 1 (opset 13+) or
// the attribute; a bad axis goes to the reference kernel, which reports it.
class SqueezeOp : public NativeOp {
 public:
  SqueezeOp(const Node& node, int64_t opset, bool unsqueeze) : node_(node), opset_(opset), unsqueeze_(unsqueeze) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Tensor* x = plain_fixed(inputs[0]);
    const bool axes_input = inputs.size() > 1 && inputs[1];
    if (!x || (axes_input && !inputs[1]->as_plain().is_tensor())) return run_reference(node_, opset_, inputs, outputs);
    const std::vector<int64_t> axes =
        axes_input ? inputs[1]->as_plain().tensor.to_int64_vector() : node_.attr_ints("axes");
    Dims out;
    std::string why;
    if (!(unsqueeze_ ? unsqueeze_dims(x->dims(), axes, &out, &why) : squeeze_dims(x->dims(), axes, &out, &why))) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    outputs[0] = CpuValue::from_plain(Value(x->reshaped(out)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
  bool unsqueeze_;
};

}  // namespace

std::unique_ptr<NativeOp> make_copy_op(const Node& node, int64_t opset, const Graph&) {
  if (node.op_type == "Concat") return std::make_unique<ConcatOp>(node, opset);
  if (node.op_type == "FusedConcat") {
    const std::string act = fused_activation(node);
    if (node.attr_int("axis", 1) != 1 || (!act.empty() && act != "Relu")) return nullptr;
    return std::make_unique<FusedConcatOp>(node, opset);
  }
  if (node.op_type == "Split") return std::make_unique<SplitOp>(node, opset);
  if (node.op_type == "Gather") return std::make_unique<GatherOp>(node, opset);
  if (node.op_type == "Flatten") return std::make_unique<FlattenOp>(node, opset);
  if (node.op_type == "Reshape" && opset >= 5) return std::make_unique<ReshapeOp>(node, opset);
  if (node.op_type == "Squeeze" || node.op_type == "Unsqueeze") {
    return std::make_unique<SqueezeOp>(node, opset, node.op_type == "Unsqueeze");
  }
  return nullptr;
}

// Byte copies: any fixed-width dtype. Concat from opset 4 (Concat-1's axis defaulted to 1).
void register_copy_ops(NativeOpTable& t) {
  t.add({"", "Concat", 4, kNativeAnyOpset, fixed_width_dtypes(), make_copy_op});
  for (const char* op : {"Split", "Gather", "Flatten", "Squeeze", "Unsqueeze"}) {
    t.add({"", op, 1, kNativeAnyOpset, fixed_width_dtypes(), make_copy_op});
  }
  t.add({"pyflame_rt", "FusedConcat", 1, kNativeAnyOpset, {DType::kFloat32}, make_copy_op});
  // Opset 5 moved the target shape from an attribute to an input.
  t.add({"", "Reshape", 5, kNativeAnyOpset, fixed_width_dtypes(), make_copy_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
