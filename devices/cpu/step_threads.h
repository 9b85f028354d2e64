// How many OpenMP threads one step of a run gets, from the work its input shapes imply.
//
// Every oneDNN primitive (convolutions, reorders, pooling, matmul) forks all the run's threads,
// however small its problem. A fork and its join cost microseconds when the second thread is
// spinning, and tens when it sleeps (after its brief spin, omp_wait_policy.h, or under a
// passive wait policy the user chose) or was descheduled: more than a 1x1 convolution on a 1x1
// squeeze-excite tensor, a GRU's transposes or a pooling of a few thousand values compute. Such steps run on
// the calling thread alone; oneDNN sizes a primitive for the threads of the thread that creates
// it (conv and matmul plans are built on their first run), so a step keeps the same team size
// from plan to execution as long as its shapes do.
#pragma once

#include <string>
#include <vector>

#include "graph/shape.h"

namespace pyflame_rt {
namespace cpu {

// What a step's work grows with.
enum class StepWork {
  kConv,      // convolution: multiply-adds from the input and weight shapes
  kProduct,   // matrix product: multiply-adds from the two operands' shapes
  kElements,  // elementwise, movement, normalisation, pooling, reduction: its largest input
  kOwn,       // an op that chooses its own team (recurrent, attention, control flow, int8)
};

StepWork step_work_of(const std::string& op_type);

// Multiply-adds below which a convolution or product runs on one thread (~3-6 us of work on
// one AVX2/AVX-512 core), and elements below which any other step does (128 KiB of floats).
constexpr int64_t kSerialMacs = int64_t{1} << 18;
constexpr int64_t kSerialElements = int64_t{1} << 15;
// Both limits times this when idle workers block instead of spinning (OMP_WAIT_POLICY=passive,
// which the user may choose, omp_wait_policy.h): waking a blocked worker and joining it costs
// 4-15 us (a spinning one ~1 us), more than splitting a Mul, a reduction or a BatchNorm over
// 2^15-2^17 floats saves.
constexpr int64_t kBlockingWorkersScale = 4;

// Both limits times this while the cores are contended (core_contention.h): a team's threads
// then wait for cores at every barrier, so only steps of milliseconds of work (2^26
// multiply-adds: ResNet-50's 3x3 convolutions, not MobileNetV2's) are worth splitting, and
// ops that choose their own team get one thread.
constexpr int64_t kContendedScale = 256;

// Whether this process's OpenMP workers block when idle: OMP_WAIT_POLICY=passive or
// GOMP_SPINCOUNT=0, as libgomp read them when it loaded (read once).
bool omp_workers_block();

// The team for a step of kind `work` whose inputs have `dims` (nullptr: absent or not a
// tensor), in a run with `threads`: 1 for a small problem, `threads` otherwise or when a
// shape is unknown. `workers_block`: the limits are kBlockingWorkersScale times larger.
// `contended`: kContendedScale times larger, and 1 for kOwn steps and unknown shapes.
int step_threads(StepWork work, const std::vector<const Dims*>& dims, int threads,
                 bool workers_block = omp_workers_block(), bool contended = false);

}  // namespace cpu
}  // namespace pyflame_rt
