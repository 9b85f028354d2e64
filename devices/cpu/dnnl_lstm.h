// LSTM on oneDNN's lstm_forward primitive for the common case: constant weights, one direction
// (forward or reverse), time-major layout, no sequence_lens, no peepholes, default activations.
// Weights are reordered once per plan into the primitive's layout. ONNX orders the gates
// i, o, f, c; oneDNN i, f, c, o: the constructor permutes W, R and B once.
#pragma once

#include <memory>
#include <tuple>
#include <utility>
#include <vector>

#include "devices/cpu/dnnl_util.h"
#include "devices/cpu/shape_plan_cache.h"
#include "graph/tensor.h"

namespace pyflame_rt {
namespace cpu {

class DnnlLstm {
 public:
  // w [1, 4H, I], r [1, 4H, H], b [1, 8H] or undefined (zeros), in ONNX's gate order.
  DnnlLstm(const Tensor& w, const Tensor& r, const Tensor& b, bool reverse);

  // x [seq, batch, I]; h0 and c0 [1, batch, H] or nullptr (zeros); y [seq, 1, batch, H],
  // y_h and y_c [1, batch, H] preallocated. Throws dnnl::error when oneDNN cannot run the shape.
  void run(const Tensor& x, const Tensor* h0, const Tensor* c0, Tensor& y, Tensor& y_h, Tensor& y_c);

 private:
  struct Plan {
    dnnl::primitive prim;
    dnnl::memory::desc src_layer, src_iter, src_iter_c, dst_layer, dst_iter, dst_iter_c, scratch;
    dnnl::memory weights_layer, weights_iter, bias;
  };
  std::shared_ptr<const Plan> plan_for(int64_t seq, int64_t batch, bool has_h0, bool has_c0);
  std::shared_ptr<Plan> build_plan(int64_t seq, int64_t batch, bool has_h0, bool has_c0);  // throws dnnl::error

  int64_t hidden_, input_;
  bool reverse_;
  std::vector<float> w_, r_, bias_;  // oneDNN's gate order: [4, H, I], [4, H, H], [4, H]
  ShapePlanCache<Plan, std::tuple<int64_t, int64_t, bool, bool>> plans_;
};

}  // namespace cpu
}  // namespace pyflame_rt
