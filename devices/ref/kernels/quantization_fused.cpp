// pyflame_rt.QLinearConvAdd (made by compiler/quantization/qdq_residual_fusion): a QLinearConv
// whose output is added to a uint8 residual, optionally ReLU'd, and requantized, as the QDQ
// graph DQ(conv) + DQ(z) -> Add -> [Relu] -> Q it replaces computes it:
//   inputs 0-5, 8: QLinearConv's (x, x_scale, x_zp, w, w_scale, w_zp, bias); 6, 7: the final
//   output's scale and zero point; 9, 10: the convolution's own output quantization;
//   11-13: the residual z (uint8) with its scale and zero point. Attribute activation: "" | "Relu".
#include <algorithm>
#include <cmath>
#include <vector>

#include "devices/ref/kernel_groups.h"
#include "devices/run_interrupt.h"
#include "devices/ref/kernel_util.h"

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
    out.data<uint8_t>()[k] = saturate_quantized<uint8_t>(std::nearbyint(v / os) + oz);
  }
  ctx.set_output(0, std::move(out));
  return Status::OK();
}

// pyflame_rt.QMatMul (made by compiler/quantization/qdq_matmul_fusion): the QDQ graph
// DQ(a) @ DQ(b) [+ bias] [-> Q] it replaces, in float64. Inputs: a (uint8|int8 [..., K]) with a
// scalar scale and zero point, b (int8 [K, N]) with a scalar or per-column scale and zero point,
// y_scale / y_zero_point (empty: fp32 output), bias (fp32 [N], real units; may be empty).
Status qmatmul(KernelContext& ctx) {
  for (size_t i : {0, 1, 2, 3, 4}) RETURN_IF_ERROR(ctx.require_input(i));
  const Tensor& a = *ctx.input(0);
  const Tensor& b = *ctx.input(3);
  if (a.rank() < 1 || b.rank() != 2 || a.dim(a.rank() - 1) != b.dim(0)) {
    return ctx.error(StatusCode::kInvalidArgument, "expected a [..., K] and b [K, N], got ", a.summary(), " and ",
                     b.summary());
  }
  const int64_t k_dim = b.dim(0), n_dim = b.dim(1), rows = a.numel() / std::max<int64_t>(k_dim, 1);
  const Tensor& bs = *ctx.input(4);
  const Tensor* bz = ctx.input(5);
  const Tensor* bias = ctx.input(8);
  if ((bs.numel() != 1 && bs.numel() != n_dim) || (bias && bias->numel() != n_dim)) {
    return ctx.error(StatusCode::kInvalidArgument, "b_scale and bias: expected 1 or ", n_dim, " values, got ",
                     bs.summary(), bias ? " and " + bias->summary() : std::string());
  }
  const double as = ctx.input(1)->value_as_double(0);
  const double az = ctx.input(2) ? ctx.input(2)->value_as_double(0) : 0.0;
  std::vector<double> out(static_cast<size_t>(rows * n_dim));
  // rows x N x K multiply-adds: the run's deadline is read per output element (one row of
  // [256, 65536] x [65536, 256] took 0.35 s, too coarse a step).
  InterruptPoll poll;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < n_dim; ++c) {
      RETURN_IF_ERROR(poll.tick(16 * k_dim + 1));
      double acc = 0;
      for (int64_t k = 0; k < k_dim; ++k) {
        double bzv = bz ? bz->value_as_double(bz->numel() == 1 ? 0 : c) : 0.0;
        acc += (a.value_as_double(r * k_dim + k) - az) * (b.value_as_double(k * n_dim + c) - bzv);
      }
      double v = acc * as * bs.value_as_double(bs.numel() == 1 ? 0 : c);
      if (bias) v += bias->value_as_double(c);
      out[static_cast<size_t>(r * n_dim + c)] = v;
    }
  }
  Dims dims(a.dims().begin(), a.dims().end() - 1);
  dims.push_back(n_dim);
  const Tensor* ys = ctx.input(6);
  const Tensor* yz = ctx.input(7);
  if (!ys) {
    Tensor y(DType::kFloat32, dims);
    for (size_t i = 0; i < out.size(); ++i) y.data<float>()[i] = static_cast<float>(out[i]);
    ctx.set_output(0, std::move(y));
    return Status::OK();
  }
  const double ysv = ys->value_as_double(0), yzv = yz ? yz->value_as_double(0) : 0.0;
  const bool s8 = yz && yz->dtype() == DType::kInt8;
  Tensor y(s8 ? DType::kInt8 : DType::kUInt8, dims);
  for (size_t i = 0; i < out.size(); ++i) {
    double q = std::nearbyint(out[i] / ysv) + yzv;
    if (s8) {
      y.data<int8_t>()[i] = saturate_quantized<int8_t>(q);
    } else {
      y.data<uint8_t>()[i] = saturate_quantized<uint8_t>(q);
    }
  }
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

}  // namespace

void register_quantization_fused_kernels(KernelRegistry& r) {
  r.add("pyflame_rt", "QLinearConvAdd", qlinear_conv_add);
  r.add("pyflame_rt", "QMatMul", qmatmul);
}

}  // namespace pyflame_rt
