#include "devices/cpu/packed_dnnl.h"

#include <cstring>

namespace pyflame_rt {
namespace cpu {

PackedBlob dnnl_blob(const std::string& node, const Dims& key, const std::string& impl, const dnnl::memory& weights) {
  PackedBlob b;
  b.node = node;
  b.key = key;
  b.kind = "dnnl";
  b.impl = impl;
  dnnl::memory::desc md = weights.get_desc();
  // oneDNN 2.x descs are plain C structs: their bytes are the layout, blocking and padding.
  b.desc.assign(reinterpret_cast<const char*>(&md.data), sizeof md.data);
  size_t n = md.get_size();
  b.data = Tensor(DType::kUInt8, {static_cast<int64_t>(n)});
  if (n) std::memcpy(b.data.raw_data(), weights.get_data_handle(), n);
  return b;
}

std::optional<ImportedWeights> take_dnnl_blob(const std::vector<PackedBlob>& blobs, const std::string& node,
                                              const Dims& key, const std::string& impl,
                                              const dnnl::memory::desc& want) {
  for (const auto& b : blobs) {
    if (b.key != key || b.kind != "dnnl") continue;
    if (b.impl != impl) {
      note_stale_packed(node, "packed for kernel " + b.impl + ", this one is " + impl);
      return std::nullopt;
    }
    if (b.desc.size() != sizeof(dnnl_memory_desc_t)) {
      note_stale_packed(node, "its memory desc has " + std::to_string(b.desc.size()) + " bytes, oneDNN's has " +
                                  std::to_string(sizeof(dnnl_memory_desc_t)));
      return std::nullopt;
    }
    dnnl_memory_desc_t raw;
    std::memcpy(&raw, b.desc.data(), sizeof raw);
    if (!(dnnl::memory::desc(raw) == want)) {
      note_stale_packed(node, "packed in another memory layout than the kernel wants");
      return std::nullopt;
    }
    if (b.data.nbytes() != want.get_size() || !b.data.raw_data()) {
      note_stale_packed(node, "truncated: " + std::to_string(b.data.nbytes()) + " bytes, the layout needs " +
                                  std::to_string(want.get_size()));
      return std::nullopt;
    }
    note_used_packed();
    ImportedWeights w;
    w.bytes = b.data;
    w.memory = dnnl::memory(want, engine(), const_cast<void*>(w.bytes.raw_data()));
    return w;
  }
  return std::nullopt;
}

}  // namespace cpu
}  // namespace pyflame_rt
