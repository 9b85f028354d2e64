// A convolution cut into blocks (output channels or rows) the run's threads take one at a time.
//
// oneDNN (Debian's libdnnl 2.6, OpenMP runtime) gives each OpenMP thread one static share of a
// convolution, so a thread that is late (descheduled by another process, or waking from the
// passive wait, omp_wait_policy.h) stalls the whole op while its teammate waits at the barrier.
// ONNX Runtime cuts work into more blocks than threads and lets idle threads take the next one.
// The same here: a convolution of batch 1 is K smaller convolutions, each a oneDNN primitive
// made for one thread on a range of the one source and destination buffer: a range of output
// channels when the layout keeps channels outermost (nchw, nChw8c, nChw16c; each block its slice
// of the weights, grouped ones their input channels too), a range of output rows when it is
// channels-last (nhwc; each block reads its input rows with their halo, all share the weights).
// At run time the caller and helper threads of our own pool (not OpenMP: libgomp's join waits
// for every team thread to arrive, even one that was never scheduled and has nothing to do)
// take blocks from an atomic counter; the caller waits only for blocks a helper has taken.
// Helpers spin briefly for the next job, then block (PFRT_CONV_BLOCKS_OMP=1: the run's OpenMP
// team takes the blocks inside one parallel region instead, the first prototype). Off by
// default (PFRT_CONV_BLOCKS, blocks per thread): docs/performance.md, "Dynamic blocks".
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace pyflame_rt {
namespace cpu {

// One block: groups [group0, group0 + groups) of the convolution, i.e. output channels
// [out0, out0 + outs) and input channels [in0, in0 + ins) (all input channels when group == 1);
// or, for a channels-last layout (nwc, nhwc, ndhwc: at batch 1 the first spatial dimension is
// outermost), output rows [row0, row0 + rows) of that dimension with all channels.
struct ConvBlock {
  int64_t group0 = 0, groups = 0;
  int64_t out0 = 0, outs = 0;
  int64_t in0 = 0, ins = 0;
  int64_t row0 = 0, rows = 0;  // rows 0: every row (a channel block)
};

struct ConvBlockShape {
  int64_t in_channels = 0, out_channels = 0, group = 1;
  int64_t channel_block = 1;  // the layout's channel block (1: plain nchw): every block starts on one
  int64_t macs = 0;           // the whole convolution's multiply-adds
};

// Multiply-adds below which a block is not worth a primitive of its own (oneDNN's per-call cost
// is a few microseconds; 2^20 multiply-adds are ~20-40 us on one core).
constexpr int64_t kMinBlockMacs = int64_t{1} << 20;

// Output channels a block of a group-1 convolution has at least: with 16 (one AVX-512 register
// block) oneDNN's 1x1 kernel lost its wider register blocking and ResNet-50's convolutions cut
// into 8 blocks took 1.14x the whole ones' time on one thread, with 32 1.05x
// (docs/performance.md, "Dynamic blocks").
constexpr int64_t kMinBlockChannels = 32;

// The blocks for `shape` on `threads` threads with about `per_thread` blocks each: as many as
// fit with every block starting on a channel block boundary (in both input and output channels
// for grouped convolutions), holding at least kMinBlockMacs, and, for group 1, at least
// kMinBlockChannels output channels. Empty when fewer than `threads + 1` blocks fit:
// then the convolution stays one primitive.
std::vector<ConvBlock> plan_conv_blocks(const ConvBlockShape& shape, int threads, int per_thread);

// Blocks of output rows for a convolution with `rows` output rows (its first spatial dimension)
// and `macs` multiply-adds, on `threads` threads with about `per_thread` blocks each (at least
// one row and kMinBlockMacs each). Empty when fewer than `threads + 1` blocks fit.
std::vector<ConvBlock> plan_row_blocks(int64_t rows, int64_t macs, int threads, int per_thread);

// The input rows a block of output rows [o0, o1) reads along one spatial dimension of `in`
// input rows (stride, ONNX dilation, kernel, leading padding), clipped to the input, and the
// padding the block's own convolution then has before and after them.
struct RowWindow {
  int64_t in0 = 0, ins = 0, pad_before = 0, pad_after = 0;
};
RowWindow row_window(int64_t o0, int64_t o1, int64_t in, int64_t stride, int64_t dilation, int64_t kernel,
                     int64_t pad_before);

// Calls `fn(b)` for b in [0, n) on the calling thread and up to `threads - 1` pool helpers,
// each taking the next undone block when it finishes one; oneDNN primitives inside run on the
// thread that calls them (its OpenMP threads set to 1). When another caller holds the pool, all
// blocks run on this thread. The first exception from `fn` is rethrown once every block is done.
void run_blocks_dynamic(size_t n, int threads, const std::function<void(size_t)>& fn);

// How many blocks run_blocks_dynamic ran for calls from this thread (never reset; tests compare
// before and after to tell that a convolution ran as blocks).
uint64_t blocks_run_on_this_thread();

}  // namespace cpu
}  // namespace pyflame_rt
