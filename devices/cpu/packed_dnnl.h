// Packed oneDNN weights (devices/packed_weights.h) for the native ops: a primitive's weights
// memory as a blob, and back, checked against the primitive built now. Shared by the conv and
// matmul ops, which call them from their export_packed()/plan building.
//
//   blobs->push_back(dnnl_blob(node, key, pd.impl_info_str(), plan->weights));   // export
//   if (auto w = take_dnnl_blob(imported, node, key, pd.impl_info_str(), pd.weights_desc()))
//     plan->weights = w->memory, plan->keep = w->bytes;                           // no reorder
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "devices/cpu/dnnl_util.h"
#include "devices/packed_weights.h"

namespace pyflame_rt {
namespace cpu {

// A copy of `weights`' bytes with their memory desc and the kernel that wants them.
PackedBlob dnnl_blob(const std::string& node, const Dims& key, const std::string& impl, const dnnl::memory& weights);

struct ImportedWeights {
  dnnl::memory memory;  // views `bytes` (no copy)
  Tensor bytes;         // keeps the mapped plan file alive
};

// The blob of `blobs` for `key` as a memory of `want`, when it was packed for the kernel
// `impl` in exactly that layout and has its size; nullopt when there is none, or when it does
// not fit (noted once per process: note_stale_packed). The caller then reorders as usual.
std::optional<ImportedWeights> take_dnnl_blob(const std::vector<PackedBlob>& blobs, const std::string& node,
                                              const Dims& key, const std::string& impl,
                                              const dnnl::memory::desc& want);

}  // namespace cpu
}  // namespace pyflame_rt
