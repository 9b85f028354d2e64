#include "devices/packed_weights.h"

#include <atomic>
#include <cstdio>

#include <oneapi/dnnl/dnnl.h>

#include "graph/logging.h"

namespace pyflame_rt {

namespace {
std::atomic<uint64_t> stale_count{0}, used_count{0};
}  // namespace

std::vector<PackedBlob> PackedWeights::for_node(const std::string& node) const {
  std::vector<PackedBlob> out;
  if (!valid_here()) return out;
  for (const auto& b : blobs) {
    if (b.node == node) out.push_back(b);
  }
  return out;
}

bool PackedWeights::valid_here() const {
  static const std::string here = packed_weights_validity();
  return validity == here;
}

std::string packed_weights_validity() {
  const dnnl_version_t* v = dnnl_version();
  char head[160];
  std::snprintf(head, sizeof head, "onednn=%d.%d.%d/%s;isa=0x%x;cpu=", v->major, v->minor, v->patch,
                v->hash ? v->hash : "", static_cast<unsigned>(dnnl_get_effective_cpu_isa()));
  std::string out = head;
  // The features that change which kernels oneDNN and our own loops pick, hence the layouts
  // they pack for (the ISA above covers oneDNN's cap; these cover a CPU below the cap).
  __builtin_cpu_init();
  auto add = [&](bool has, const char* name) {
    if (has) out += std::string(name) + ",";
  };
  add(__builtin_cpu_supports("avx2"), "avx2");
  add(__builtin_cpu_supports("fma"), "fma");
  add(__builtin_cpu_supports("avx512f"), "avx512f");
  add(__builtin_cpu_supports("avx512bw"), "avx512bw");
  add(__builtin_cpu_supports("avx512vl"), "avx512vl");
  add(__builtin_cpu_supports("avx512vnni"), "avx512vnni");
  add(__builtin_cpu_supports("avx512bf16"), "avx512bf16");
  return out;
}

void note_stale_packed(const std::string& node, const std::string& why) {
  if (stale_count.fetch_add(1) == 0) {
    log_at(LogSeverity::kWarning, LogScope{}, "packed weights of '", node, "' do not fit this kernel (", why,
           "): packed again (later ones are not logged)");
  }
}

uint64_t packed_weights_stale_count() { return stale_count.load(); }

thread_local uint64_t used_on_this_thread = 0;

void note_used_packed() {
  used_count.fetch_add(1);
  ++used_on_this_thread;
}

uint64_t packed_weights_used_on_this_thread() { return used_on_this_thread; }

uint64_t packed_weights_used_count() { return used_count.load(); }

}  // namespace pyflame_rt
