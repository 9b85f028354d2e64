// pyflame_rt.QLinearConvAdd (made by compiler/quantization/qdq_residual_fusion): a QLinearConv
// whose output is added to a uint8 residual, optionally ReLU'd, and requantized, as the QDQ
// graph DQ(conv) + DQ(z) -> Add -> [Relu] -> Q it replaces computes it:
//   inputs 0-5, 8: QLinearConv's (x, x_scale, x_zp, w, w_scale, w_zp, bias); 6, 7: the final
//   output's scale and zero point; 9, 10: the convolution's own output quantization;
//   11-13: the residual z (uint8) with its scale and zero point. Attribute activation: "" | "Relu".
#include <algorithm>
#include <cmath>

#include "devices/ref/kernel_groups.h"

namespace pyflame_rt {
namespace {

Status qlinear_conv_add(KernelContext& ctx) {
  const Node& node = ctx.node();
  if (ctx.num_inputs() < 14) return ctx.error(StatusCode::kInvalidArgument, "expected 14 inputs, got ", ctx.num_inputs());
  RETURN_IF_ERROR(ctx.require_input(11));
  Node conv = node;
  conv.domain.clear();
  conv.op_type = "QLinearConv";
  conv.attributes.erase("activation");
  conv.inputs = {node.inputs[0], node.inputs[1], node.inputs[2], node.inputs[3], node.inputs[4],
                 node.inputs[5], node.inputs[9], node.inputs[10], node.inputs[8]};
  std::vector<const Value*> in;
  for (size_t i : {0, 1, 2, 3, 4, 5, 9, 10, 8}) in.push_back(ctx.input_value(i));
  std::vector<Value> y(1);
  KernelFn fn = KernelRegistry::reference().find("", "QLinearConv", 10);
  if (!fn) return ctx.error(StatusCode::kNotImplemented, "no QLinearConv reference kernel");
  KernelContext sub(conv, 10, std::move(in), &y, nullptr);
  RETURN_IF_ERROR(fn(sub));
  const Tensor& yt = y[0].tensor;
  const Tensor& zt = *ctx.input(11);
  if (zt.dims() != yt.dims() || zt.dtype() != DType::kUInt8 || yt.dtype() != DType::kUInt8) {
    return ctx.error(StatusCode::kInvalidArgument, "residual: expected uint8 like ", yt.summary(), ", got ",
                     zt.summary());
  }
  for (size_t i : {6, 7, 9, 10, 12, 13}) RETURN_IF_ERROR(ctx.require_input(i));
  auto scalar = [&](size_t i) { return ctx.input(i)->value_as_double(0); };
  const double os = scalar(6), oz = scalar(7), cs = scalar(9), cz = scalar(10), zs = scalar(12), zz = scalar(13);
  const bool relu = node.attr_string("activation", "") == "Relu";
  Tensor out(DType::kUInt8, yt.dims());
  for (int64_t k = 0; k < yt.numel(); ++k) {
    double v = cs * (yt.data<uint8_t>()[k] - cz) + zs * (zt.data<uint8_t>()[k] - zz);
    if (relu) v = std::max(v, 0.0);
    out.data<uint8_t>()[k] = static_cast<uint8_t>(std::clamp(std::nearbyint(v / os) + oz, 0.0, 255.0));
  }
  ctx.set_output(0, std::move(out));
  return Status::OK();
}

}  // namespace

void register_quantization_fused_kernels(KernelRegistry& r) { r.add("pyflame_rt", "QLinearConvAdd", qlinear_conv_add); }

}  // namespace pyflame_rt
