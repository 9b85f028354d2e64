#include "devices/ref/kernel_util.h"

#include <cstring>

namespace pyflame_rt {

void convert_range(const Tensor& t, Tensor& out, int64_t begin, int64_t end) {
  dispatch_numeric(t.dtype(), [&](auto in_tag) {
    using In = typename decltype(in_tag)::type;
    dispatch_numeric(out.dtype(), [&](auto out_tag) {
      using Out = typename decltype(out_tag)::type;
      const In* src = t.data<In>();
      Out* dst = out.data<Out>();
      for (int64_t i = begin; i < end; ++i) {
        if constexpr (is_half_v<Out>) {
          dst[i] = Out(static_cast<float>(to_double(src[i])));
        } else if constexpr (is_floating_v<In> && std::is_integral_v<Out> && !std::is_same_v<Out, bool>) {
          // Every floating source, half ones included (a bfloat16 -11.875 to uint8 was a direct,
          // undefined conversion: UBSan, kernel_run): through int64, then wrapped to Out.
          double v = to_double(src[i]);
          dst[i] = std::isfinite(v) ? static_cast<Out>(int64_from_double(v)) : Out(0);
        } else if constexpr (is_half_v<In>) {
          dst[i] = static_cast<Out>(static_cast<float>(src[i]));
        } else if constexpr (std::is_same_v<Out, bool>) {
          dst[i] = src[i] != In(0);
        } else {
          dst[i] = static_cast<Out>(src[i]);
        }
      }
    });
  });
}

bool reshape_dims(const Dims& in, const std::vector<int64_t>& shape, bool allow_zero, Dims* out, std::string* why) {
  const int64_t numel = num_elements(in);
  out->assign(shape.size(), 0);
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    int64_t d = shape[i];
    if (d == 0 && !allow_zero) {
      if (i >= in.size()) {
        *why = "shape " + dims_to_string(shape) + " copies dim " + std::to_string(i) + " from input " +
               dims_to_string(in) + " which has no such dim";
        return false;
      }
      d = in[i];
    }
    if (d == -1) {
      if (infer >= 0) {
        *why = "shape " + dims_to_string(shape) + " has more than one -1";
        return false;
      }
      infer = static_cast<int64_t>(i);
      continue;
    }
    if (d < 0) {
      *why = "shape " + dims_to_string(shape) + " has a negative dim " + std::to_string(d);
      return false;
    }
    (*out)[i] = d;
    // Saturates (a shape's dims are a model's values: 2^62 * 2^62 overflowed; UBSan,
    // kernel_run): a product past int64 cannot equal numel, and a later 0 still makes it 0.
    if (__builtin_mul_overflow(known, d, &known)) known = std::numeric_limits<int64_t>::max();
  }
  if (infer >= 0) {
    if (known == 0 || numel % known != 0) {
      *why = "cannot reshape " + dims_to_string(in) + " (" + std::to_string(numel) + " elements) to " +
             dims_to_string(shape);
      return false;
    }
    (*out)[static_cast<size_t>(infer)] = numel / known;
  }
  if (num_elements(*out) != numel) {
    *why = "cannot reshape " + dims_to_string(in) + " (" + std::to_string(numel) + " elements) to " +
           dims_to_string(*out) + " (" + std::to_string(num_elements(*out)) + " elements)";
    return false;
  }
  return true;
}

namespace {

// The message of normalize_axis (kernel_util.h), for the rules below that have no context.
bool axis_in_range(int64_t axis, int64_t rank, int64_t* out, std::string* why) {
  if (axis < -rank || axis >= rank) {
    *why = "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank) + " (expected [" +
           std::to_string(-rank) + ", " + std::to_string(rank - 1) + "])";
    return false;
  }
  *out = axis < 0 ? axis + rank : axis;
  return true;
}

}  // namespace

bool squeeze_dims(const Dims& in, const std::vector<int64_t>& axes, Dims* out, std::string* why) {
  const int64_t rank = static_cast<int64_t>(in.size());
  std::vector<bool> drop(in.size(), false);
  if (axes.empty()) {
    for (size_t i = 0; i < in.size(); ++i) drop[i] = in[i] == 1;
  }
  for (int64_t a : axes) {
    int64_t ax = 0;
    if (!axis_in_range(a, rank, &ax, why)) return false;
    if (in[static_cast<size_t>(ax)] != 1) {
      *why = "cannot squeeze axis " + std::to_string(a) + " of shape " + dims_to_string(in) + ": its size is " +
             std::to_string(in[static_cast<size_t>(ax)]) + ", not 1";
      return false;
    }
    drop[static_cast<size_t>(ax)] = true;
  }
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (!drop[i]) out->push_back(in[i]);
  }
  return true;
}

bool unsqueeze_dims(const Dims& in, const std::vector<int64_t>& axes, Dims* out, std::string* why) {
  const int64_t out_rank = static_cast<int64_t>(in.size() + axes.size());
  std::vector<bool> inserted(static_cast<size_t>(out_rank), false);
  for (int64_t a : axes) {
    int64_t ax = 0;
    if (!axis_in_range(a, out_rank, &ax, why)) return false;
    if (inserted[static_cast<size_t>(ax)]) {
      *why = "axis " + std::to_string(a) + " given twice";
      return false;
    }
    inserted[static_cast<size_t>(ax)] = true;
  }
  out->clear();
  size_t src = 0;
  for (int64_t i = 0; i < out_rank; ++i) out->push_back(inserted[static_cast<size_t>(i)] ? 1 : in[src++]);
  return true;
}

Tensor convert_tensor(const Tensor& t, DType to) {
  if (t.dtype() == to) return t.clone();
  Tensor out(to, t.dims());
  convert_range(t, out, 0, t.numel());
  return out;
}

// Copies `count` elements from src[src_off..] to dst[dst_off..] (element offsets).
void copy_elements(const Tensor& src, int64_t src_off, Tensor& dst, int64_t dst_off, int64_t count) {
  if (count <= 0) return;
  if (src.dtype() == DType::kString) {
    const auto* s = src.data<std::string>() + src_off;
    auto* d = dst.data<std::string>() + dst_off;
    for (int64_t i = 0; i < count; ++i) d[i] = s[i];
    return;
  }
  size_t es = dtype_size(src.dtype());
  std::memcpy(static_cast<char*>(dst.raw_data()) + dst_off * es,
              static_cast<const char*>(src.raw_data()) + src_off * es, static_cast<size_t>(count) * es);
}

// The slice of `t` at `index` along `axis`, with that axis removed.
Tensor take_along(const Tensor& t, int64_t axis, int64_t index) {
  Dims out_dims = t.dims();
  out_dims.erase(out_dims.begin() + axis);
  Tensor out(t.dtype(), out_dims);
  int64_t outer = outer_size(t.dims(), axis), inner = inner_size(t.dims(), axis);
  int64_t len = t.dim(static_cast<size_t>(axis));
  for (int64_t o = 0; o < outer; ++o) copy_elements(t, (o * len + index) * inner, out, o * inner, inner);
  return out;
}

// Stacks equally shaped tensors along a new `axis`. `elem_dims`/`dtype` describe an empty stack.
Tensor stack_along(const std::vector<Tensor>& parts, int64_t axis, const Dims& elem_dims, DType dtype) {
  Dims out_dims = elem_dims;
  out_dims.insert(out_dims.begin() + axis, static_cast<int64_t>(parts.size()));
  Tensor out(dtype, out_dims);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= elem_dims[static_cast<size_t>(d)];
  for (size_t d = static_cast<size_t>(axis); d < elem_dims.size(); ++d) inner *= elem_dims[d];
  int64_t n = static_cast<int64_t>(parts.size());
  for (int64_t p = 0; p < n; ++p) {
    for (int64_t o = 0; o < outer; ++o) copy_elements(parts[static_cast<size_t>(p)], o * inner, out, (o * n + p) * inner, inner);
  }
  return out;
}

// Elements [start, start+len) along `axis`, the axis kept.
Tensor slice_along(const Tensor& t, int64_t axis, int64_t start, int64_t len) {
  Dims out_dims = t.dims();
  out_dims[static_cast<size_t>(axis)] = len;
  Tensor out(t.dtype(), out_dims);
  int64_t outer = outer_size(t.dims(), axis), inner = inner_size(t.dims(), axis);
  int64_t full = t.dim(static_cast<size_t>(axis));
  for (int64_t o = 0; o < outer; ++o) copy_elements(t, (o * full + start) * inner, out, o * len * inner, len * inner);
  return out;
}

// Concatenates tensors that agree on every dim but `axis`.
Tensor concat_along(const std::vector<Tensor>& parts, int64_t axis) {
  Dims out_dims = parts.front().dims();
  int64_t total = 0;
  for (const auto& p : parts) total += p.dim(static_cast<size_t>(axis));
  out_dims[static_cast<size_t>(axis)] = total;
  Tensor out(parts.front().dtype(), out_dims);
  int64_t outer = outer_size(out_dims, axis), inner = inner_size(out_dims, axis);
  int64_t offset = 0;
  for (const auto& p : parts) {
    int64_t len = p.dim(static_cast<size_t>(axis));
    for (int64_t o = 0; o < outer; ++o) copy_elements(p, o * len * inner, out, (o * total + offset) * inner, len * inner);
    offset += len;
  }
  return out;
}

}  // namespace pyflame_rt
