// GRU on oneDNN's RNN primitives (lbr_gru_forward for linear_before_reset=1, as PyTorch
// exports, gru_forward otherwise) for the common case: constant weights, one direction
// (forward or reverse), time-major layout, no sequence_lens. Weights are reordered once per
// plan into the primitive's layout; gate order (z, r, h) is oneDNN's (u, r, o).
#pragma once

#include <memory>
#include <tuple>
#include <utility>

#include "devices/cpu/dnnl_util.h"
#include "devices/cpu/shape_plan_cache.h"
#include "graph/tensor.h"

namespace pyflame_rt {
namespace cpu {

class DnnlGru {
 public:
  // w [1, 3H, I], r [1, 3H, H], b [1, 6H] or undefined (zeros).
  DnnlGru(Tensor w, Tensor r, Tensor b, bool linear_before_reset, bool reverse);

  // x [seq, batch, I]; h0 [1, batch, H] or nullptr (zeros); y [seq, 1, batch, H] and
  // y_h [1, batch, H] preallocated. Throws dnnl::error when oneDNN cannot run the shape.
  void run(const Tensor& x, const Tensor* h0, Tensor& y, Tensor& y_h);

 private:
  struct Plan {
    dnnl::primitive prim;
    dnnl::memory::desc src_layer, src_iter, dst_layer, dst_iter, scratch;
    dnnl::memory weights_layer, weights_iter, bias;
  };
  std::shared_ptr<const Plan> plan_for(int64_t seq, int64_t batch, bool has_h0);
  std::shared_ptr<Plan> build_plan(int64_t seq, int64_t batch, bool has_h0);  // throws dnnl::error

  Tensor w_, r_;
  std::vector<float> bias_;  // oneDNN's bias gates: lbr [z, r, Wh, Rh], otherwise [z, r, h]
  int64_t hidden_, input_;
  bool lbr_, reverse_;
  ShapePlanCache<Plan, std::tuple<int64_t, int64_t, bool>> plans_;
};

}  // namespace cpu
}  // namespace pyflame_rt
