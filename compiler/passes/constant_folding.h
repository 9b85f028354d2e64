// Evaluates, once at compile time, every node whose inputs are all constants (initializers),
// with the reference kernels, and replaces its outputs by initializers. Random ops, nodes with
// subgraphs and results larger than kMaxFoldedBytes stay in the graph.
#pragma once

#include "compiler/pass.h"

namespace pyflame_rt {

class ConstantFolding : public Pass {
 public:
  static constexpr size_t kMaxFoldedBytes = 64u << 20;
  // What evaluating one node may hold and take: its constants' values choose how much a kernel
  // allocates and computes (a HammingWindow of size 2^31: 16 GB before the result could be
  // judged too large; kernel_run). A node past either is not folded and runs at run time,
  // under the session's memory_limit_mb and deadline.
  static constexpr size_t kFoldMemoryBytes = 4 * kMaxFoldedBytes;
  static constexpr int64_t kFoldTimeoutMs = 5000;
  const char* name() const override { return "constant_folding"; }
  const char* summary() const override { return "precompute nodes whose inputs are all constants"; }
  Status run(Graph& graph, bool& changed) override;
};

}  // namespace pyflame_rt
