#include "devices/cpu/conv_blocks.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <condition_variable>
#include <cstdlib>
#include <numeric>
#include <thread>

namespace pyflame_rt {
namespace cpu {

std::vector<ConvBlock> plan_conv_blocks(const ConvBlockShape& s, int threads, int per_thread) {
  if (threads <= 1 || per_thread <= 0 || s.group <= 0 || s.in_channels % s.group != 0 ||
      s.out_channels % s.group != 0 || s.channel_block <= 0) {
    return {};
  }
  const int64_t G = s.group, icpg = s.in_channels / G, ocpg = s.out_channels / G;
  // A unit is the smallest piece a block can start on: kMinBlockChannels output channels (or
  // the layout's block) for group 1, the fewest whole groups spanning whole channel blocks otherwise.
  int64_t unit = 0, units = 0;
  if (G == 1) {
    unit = std::max<int64_t>(s.channel_block, kMinBlockChannels);
    units = (s.out_channels + unit - 1) / unit;
  } else {
    const int64_t cb = s.channel_block;
    unit = std::lcm(cb / std::gcd(cb, icpg), cb / std::gcd(cb, ocpg));
    units = (G + unit - 1) / unit;
  }
  int64_t k = std::min<int64_t>(units, int64_t{threads} * per_thread);
  k = std::min<int64_t>(k, s.macs / kMinBlockMacs);
  if (k <= threads) return {};
  std::vector<ConvBlock> blocks;
  for (int64_t b = 0; b < k; ++b) {
    const int64_t u0 = b * units / k, u1 = (b + 1) * units / k;
    ConvBlock blk;
    if (G == 1) {
      blk.out0 = u0 * unit;
      blk.outs = std::min(u1 * unit, s.out_channels) - blk.out0;
      blk.group0 = 0;
      blk.groups = 1;
      blk.in0 = 0;
      blk.ins = s.in_channels;
    } else {
      blk.group0 = u0 * unit;
      blk.groups = std::min(u1 * unit, G) - blk.group0;
      blk.out0 = blk.group0 * ocpg;
      blk.outs = blk.groups * ocpg;
      blk.in0 = blk.group0 * icpg;
      blk.ins = blk.groups * icpg;
    }
    blocks.push_back(blk);
  }
  return blocks;
}

std::vector<ConvBlock> plan_row_blocks(int64_t rows, int64_t macs, int threads, int per_thread) {
  if (threads <= 1 || per_thread <= 0 || rows <= 0) return {};
  int64_t k = std::min<int64_t>(rows, int64_t{threads} * per_thread);
  k = std::min<int64_t>(k, macs / kMinBlockMacs);
  if (k <= threads) return {};
  std::vector<ConvBlock> blocks;
  for (int64_t b = 0; b < k; ++b) {
    ConvBlock blk;
    blk.row0 = b * rows / k;
    blk.rows = (b + 1) * rows / k - blk.row0;
    blocks.push_back(blk);
  }
  return blocks;
}

RowWindow row_window(int64_t o0, int64_t o1, int64_t in, int64_t stride, int64_t dilation, int64_t kernel,
                     int64_t pad_before) {
  const int64_t eff = (kernel - 1) * dilation + 1;
  const int64_t first = o0 * stride - pad_before, last = (o1 - 1) * stride - pad_before + eff - 1;
  RowWindow w;
  w.in0 = std::max<int64_t>(0, first);
  const int64_t end = std::min<int64_t>(in, last + 1);
  w.ins = end - w.in0;
  w.pad_before = w.in0 - first;
  // The block's output count (o1 - o0) fixes the padding after: (ins + pads - eff) / stride + 1.
  w.pad_after = (o1 - o0 - 1) * stride + eff - w.ins - w.pad_before;
  return w;
}

namespace {
thread_local uint64_t blocks_run = 0;

// The threads that help callers of run_blocks_dynamic: one job at a time, held in one slot that
// is never freed (a helper that wakes late finds the job closed and goes back to waiting).
class BlockPool {
 public:
  static BlockPool& instance() {
    static BlockPool* pool = new BlockPool();  // never destroyed: helpers may outlive main's statics
    return *pool;
  }

  // Runs fn(b) for b in [0, n) on the caller and up to `helpers` pool threads. Returns false
  // (nothing run) when another caller holds the pool.
  bool run(size_t n, int helpers, const std::function<void(size_t)>& fn, std::exception_ptr* error) {
    std::unique_lock<std::mutex> busy(run_mu_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    grow(helpers);
    fn_ = &fn;
    error_ = error;
    n_ = n;
    next_.store(0, std::memory_order_relaxed);
    max_helpers_.store(helpers, std::memory_order_relaxed);
    joined_.store(0, std::memory_order_relaxed);
    open_.store(true, std::memory_order_release);
    {
      std::lock_guard<std::mutex> lock(mu_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    if (sleeping_.load(std::memory_order_acquire) > 0) cv_.notify_all();
    work();
    // No helper joins from here on; wait only for those that did (they finish their block).
    open_.store(false, std::memory_order_seq_cst);
    // Spin briefly, then sleep until the last helper leaves: on a loaded machine sched_yield
    // can give the core away for a whole time slice, while a futex wake-up gets it back at once.
    for (int i = 0; i < spins_ && active_.load(std::memory_order_acquire) > 0; ++i) __builtin_ia32_pause();
    if (active_.load(std::memory_order_acquire) > 0) {
      std::unique_lock<std::mutex> lock(done_mu_);
      caller_waiting_.store(true, std::memory_order_seq_cst);
      done_cv_.wait(lock, [&] { return active_.load(std::memory_order_seq_cst) == 0; });
      caller_waiting_.store(false, std::memory_order_relaxed);
    }
    fn_ = nullptr;
    return true;
  }

 private:
  void work() {
    for (size_t b = next_.fetch_add(1, std::memory_order_relaxed); b < n_;
         b = next_.fetch_add(1, std::memory_order_relaxed)) {
      try {
        (*fn_)(b);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu_);
        if (!*error_) *error_ = std::current_exception();
      }
    }
  }

  void grow(int helpers) {
    while (static_cast<int>(threads_.size()) < helpers) {
      threads_.emplace_back([this] { helper(); });
      threads_.back().detach();
    }
  }

  void helper() {
    omp_set_num_threads(1);  // oneDNN on this thread runs each primitive on it alone
    uint64_t seen = generation_.load(std::memory_order_acquire);
    while (true) {
      // Spin a little for the next job (consecutive convolutions follow each other within
      // microseconds), then block so a loaded machine gets the core back.
      for (int i = 0; i < spins_ && generation_.load(std::memory_order_acquire) == seen; ++i) {
        __builtin_ia32_pause();
      }
      if (generation_.load(std::memory_order_acquire) == seen) {
        std::unique_lock<std::mutex> lock(mu_);
        sleeping_.fetch_add(1, std::memory_order_acq_rel);
        cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        sleeping_.fetch_sub(1, std::memory_order_acq_rel);
      }
      seen = generation_.load(std::memory_order_acquire);
      active_.fetch_add(1, std::memory_order_seq_cst);
      if (open_.load(std::memory_order_seq_cst) &&
          joined_.fetch_add(1, std::memory_order_relaxed) < max_helpers_.load(std::memory_order_relaxed)) {
        work();
      }
      if (active_.fetch_sub(1, std::memory_order_seq_cst) == 1 && caller_waiting_.load(std::memory_order_seq_cst)) {
        std::lock_guard<std::mutex> lock(done_mu_);  // the caller is between its check and its wait, or in it
        done_cv_.notify_one();
      }
    }
  }

  // Pause instructions before blocking: ~10-50 us (a pause takes 10-140 cycles by CPU model).
  // Not fewer under the passive OpenMP wait policy: with none, two busy processes beside a
  // 2-thread run made blocks slower still (docs/performance.md, "Dynamic blocks").
  static constexpr int spins_ = 2000;

  std::mutex run_mu_, mu_, error_mu_, done_mu_;
  std::condition_variable cv_, done_cv_;
  std::atomic<bool> caller_waiting_{false};
  std::vector<std::thread> threads_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> sleeping_{0}, active_{0}, joined_{0}, max_helpers_{0};
  std::atomic<bool> open_{false};
  std::atomic<size_t> next_{0};
  size_t n_ = 0;
  const std::function<void(size_t)>* fn_ = nullptr;
  std::exception_ptr* error_ = nullptr;
};

// Sets this thread's OpenMP threads for oneDNN while it lives.
struct OmpThreads {
  int saved = omp_get_max_threads();
  explicit OmpThreads(int n) { omp_set_num_threads(n); }
  ~OmpThreads() { omp_set_num_threads(saved); }
};

}  // namespace

uint64_t blocks_run_on_this_thread() { return blocks_run; }

// The first prototype's way, kept for comparison (PFRT_CONV_BLOCKS_OMP=1): the run's OpenMP
// team takes the blocks inside one parallel region (oneDNN does not nest: each primitive runs
// on the thread that calls it). No extra thread, but the region's end waits for every team
// thread to arrive.
void run_blocks_openmp(size_t n, int threads, const std::function<void(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::exception_ptr error;
#pragma omp parallel num_threads(threads)
  {
    for (size_t b = next.fetch_add(1, std::memory_order_relaxed); b < n;
         b = next.fetch_add(1, std::memory_order_relaxed)) {
      try {
        fn(b);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

void run_blocks_dynamic(size_t n, int threads, const std::function<void(size_t)>& fn) {
  blocks_run += n;
  static const bool openmp = std::getenv("PFRT_CONV_BLOCKS_OMP") != nullptr;
  if (openmp && threads > 1 && n > 1) {
    run_blocks_openmp(n, threads, fn);
    return;
  }
  OmpThreads one(1);  // oneDNN runs each block's primitive on the calling thread
  std::exception_ptr error;
  if (threads <= 1 || n <= 1 || !BlockPool::instance().run(n, std::min<int>(threads - 1, static_cast<int>(n) - 1), fn, &error)) {
    for (size_t b = 0; b < n; ++b) fn(b);
    return;
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace cpu
}  // namespace pyflame_rt
