#include "devices/cpu/step_threads.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <set>
#include <strings.h>

namespace pyflame_rt {
namespace cpu {

StepWork step_work_of(const std::string& op_type) {
  static const std::set<std::string> kConv = {"Conv", "FusedConv", "ConvTranspose"};
  static const std::set<std::string> kProduct = {"MatMul", "FusedMatMul", "Gemm", "FusedGemm"};
  // These decide their own team (gru_op.cpp, attention_op.cpp) or hold subgraphs and int8
  // kernels whose work the input shapes do not tell.
  static const std::set<std::string> kOwn = {"GRU", "LSTM", "RNN", "MultiHeadAttention", "Attention",
                                             "Einsum", "Loop", "If", "Scan", "QLinearConv", "QLinearMatMul",
                                             "ConvInteger", "MatMulInteger", "DynamicQuantizeLinear"};
  if (kConv.count(op_type)) return StepWork::kConv;
  if (kProduct.count(op_type)) return StepWork::kProduct;
  if (kOwn.count(op_type)) return StepWork::kOwn;
  return StepWork::kElements;
}

bool omp_workers_block() {
  static const bool block = [] {
    const char* policy = std::getenv("OMP_WAIT_POLICY");
    const char* spin = std::getenv("GOMP_SPINCOUNT");
    return (policy && strcasecmp(policy, "passive") == 0) || (spin && std::strcmp(spin, "0") == 0);
  }();
  return block;
}

int step_threads(StepWork work, const std::vector<const Dims*>& dims, int threads, bool workers_block,
                 bool contended) {
  if (threads <= 1) return threads;
  const int unknown = contended ? 1 : threads;  // the team when the work cannot be told
  if (work == StepWork::kOwn || dims.empty() || !dims[0]) return unknown;
  const int64_t scale = (workers_block ? kBlockingWorkersScale : 1) * (contended ? kContendedScale : 1);
  const Dims& x = *dims[0];
  if (work == StepWork::kElements) {
    int64_t largest = 0;
    for (const Dims* d : dims) {
      if (d) largest = std::max(largest, num_elements(*d));
    }
    return largest < kSerialElements * scale ? 1 : threads;
  }
  if (dims.size() < 2 || !dims[1] || x.size() < 2 || dims[1]->size() < 2) return unknown;
  const Dims& w = *dims[1];
  // Convolution [N, C, spatial...] by [M, C/group, kernel...]: each output position costs the
  // weights' size, and there are at most as many positions as input positions (fewer with
  // strides: an upper bound). Product: rows of A times B's size over the shared dimension
  // (with batched B, an upper bound too).
  const int64_t per = work == StepWork::kConv ? x[1] : x.back();
  if (per <= 0) return unknown;
  const int64_t macs = num_elements(x) / per * num_elements(w);
  return macs < kSerialMacs * scale ? 1 : threads;
}

}  // namespace cpu
}  // namespace pyflame_rt
