// Evaluates, once at compile time, every node whose inputs are all constants (initializers),
// with the reference kernels, and replaces its outputs by initializers. Random ops, nodes with
// subgraphs and results larger than kMaxFoldedBytes stay in the graph.
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

// A session's own bounds on what evaluating one node at creation may hold and take: its
// SessionOptions.memory_limit_mb (bytes) and run_timeout_ms. A node whose evaluation passes
// either would fail the same way at run time on the same kernels, so folding gives up there
// instead of at its own, larger bounds (kernel_run stop 17: an Upsample of 10 M outputs spent
// the whole 5 s of kFoldTimeoutMs at creation on every mutation, then failed its run at the
// 64 MB limit). Folding only saves work, never changes a result: a node it gives up on runs
// at run time (where a native kernel may well be fast enough). 0 = no session bound.
struct FoldLimits {
  int64_t memory_bytes = 0;
  int64_t timeout_ms = 0;
};

class ConstantFolding : public Pass {
 public:
  static constexpr size_t kMaxFoldedBytes = 64u << 20;
  // What evaluating one node may hold and take: its constants' values choose how much a kernel
  // allocates and computes (a HammingWindow of size 2^31: 16 GB before the result could be
  // judged too large; kernel_run). A node past either is not folded and runs at run time,
  // under the session's memory_limit_mb and deadline.
  static constexpr size_t kFoldMemoryBytes = 4 * kMaxFoldedBytes;
  static constexpr int64_t kFoldTimeoutMs = 5000;
  ConstantFolding() = default;
  explicit ConstantFolding(const FoldLimits& limits) : limits_(limits) {}
  void set_limits(const FoldLimits& limits) { limits_ = limits; }
  const char* name() const override { return "constant_folding"; }
  const char* summary() const override { return "precompute nodes whose inputs are all constants"; }
  Status run(Graph& graph, bool& changed) override;

 private:
  FoldLimits limits_;
};

}  // namespace pyflame_rt
