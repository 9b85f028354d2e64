#include "devices/ref/kernel_util.h"

namespace pyflame_rt {

Tensor convert_tensor(const Tensor& t, DType to) {
  if (t.dtype() == to) return t.clone();
  Tensor out(to, t.dims());
  int64_t n = t.numel();
  dispatch_numeric(t.dtype(), [&](auto in_tag) {
    using In = typename decltype(in_tag)::type;
    dispatch_numeric(to, [&](auto out_tag) {
      using Out = typename decltype(out_tag)::type;
      const In* src = t.data<In>();
      Out* dst = out.data<Out>();
      for (int64_t i = 0; i < n; ++i) {
        if constexpr (is_half_v<Out>) {
          dst[i] = Out(static_cast<float>(to_double(src[i])));
        } else if constexpr (is_half_v<In>) {
          dst[i] = static_cast<Out>(static_cast<float>(src[i]));
        } else if constexpr (std::is_same_v<Out, bool>) {
          dst[i] = src[i] != In(0);
        } else if constexpr (std::is_floating_point_v<In> && std::is_integral_v<Out>) {
          double v = static_cast<double>(src[i]);
          dst[i] = std::isfinite(v) ? static_cast<Out>(static_cast<int64_t>(v)) : Out(0);
        } else {
          dst[i] = static_cast<Out>(src[i]);
        }
      }
    });
  });
  return out;
}

}  // namespace pyflame_rt
