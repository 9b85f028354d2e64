// PackedWeights: constant weights already in the layout a kernel runs on (oneDNN's blocked
// formats, Winograd-transformed), per node and per the shape its kernel was built for. A
// shape-specialised plan file (session/plan_file.h) keeps them, so that a session made from
// it maps them instead of reordering every weight on its first run.
//
//   PackedWeights out;                              // compile: after a run on the plan's shapes
//   RETURN_IF_ERROR(executable->export_packed(&out));
//   ...                                             // load: the same, viewing the mapped file
//   device->compile_packed(graph, std::make_shared<const PackedWeights>(std::move(loaded)));
//
// Packed bytes are only as good as the machine and library that made them: `validity` names
// both (oneDNN's version, the ISA it dispatches to, the CPU's vector features), and each blob
// says which kernel and memory layout it was packed for. A kernel that finds its blob stale
// (another CPU, another oneDNN, another layout choice, a wrong size) packs again; it says so
// once per process (note_stale_packed).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "graph/shape.h"
#include "graph/tensor.h"

namespace pyflame_rt {

struct PackedBlob {
  std::string node;  // the node's name (its first output's when it has none)
  Dims key;          // the op's plan key: the input dims its kernel was built for
  std::string kind;  // what the bytes are: "dnnl" (a oneDNN memory), "winograd" (ours)
  std::string impl;  // the kernel they were packed for (oneDNN's impl_info_str)
  std::string desc;  // how to read them, the op's business (a dnnl_memory_desc_t's bytes)
  Tensor data;       // uint8 [n]; after a plan load, a view of the mapped file
};

struct PackedWeights {
  std::string validity;  // packed_weights_validity() of the machine that packed them
  std::vector<PackedBlob> blobs;

  // The blobs of `node`, when `validity` is this machine's; else none.
  std::vector<PackedBlob> for_node(const std::string& node) const;
  bool valid_here() const;
};

// oneDNN's version, the ISA it dispatches to and the CPU's vector features, one string:
// "onednn=2.6.3/N/A;isa=0x...;cpu=avx2,fma,avx512f,...".
std::string packed_weights_validity();

// Logs (warning) the first stale blob of the process with its reason; later ones are counted
// only (packed_weights_stale_count(), for tests).
void note_stale_packed(const std::string& node, const std::string& why);
uint64_t packed_weights_stale_count();
// Kernels call it for each blob they used in place of packing (counted, for tests).
void note_used_packed();
uint64_t packed_weights_used_count();
// The same count for the calling thread only: whether one op took its blob, with other
// sessions loading on other threads (cpu/cpu_program.cpp, for weights a plan left out).
uint64_t packed_weights_used_on_this_thread();

}  // namespace pyflame_rt
