// CompileCache: optimised graphs stored as .pfm files in a directory, content-addressed: the
// key hashes the imported model and everything that changes what the passes make of it (opt
// level, disabled passes, the optimiser revision, the .pfm format). A second session of the
// same model loads the optimised graph instead of running the passes again.
//
//   CompileCache cache("/var/cache/pyflame-rt");
//   std::string key = cache.key(imported, OptLevel::kAll, {});
//   Expected<Graph> hit = cache.load(key);       // kNotFound on a miss
//   RETURN_IF_ERROR(cache.store(key, optimized)); // atomic: temp file + rename
//
// Entries carry the key they were stored under and a checksum (encode_cache_entry): a damaged
// or swapped entry fails to load and the session compiles again (with a warning).
#pragma once

#include <string>
#include <vector>

#include "graph/opt_level.h"
#include "graph/graph.h"

namespace pyflame_rt {

// Bump when a pass changes what it produces, so older cache entries are not reused.
constexpr int kOptimizerRevision = 7;  // 2: attention_fusion, 3: layout_assignment, 4: residual fusion keeps order, bn_conv_fusion, 5: zero_channel_pruning, 6: concat_affine_fusion, squeeze_excite_fusion, zero Pad removed, 7: pool_before_pointwise_conv

class CompileCache {
 public:
  explicit CompileCache(std::string dir) : dir_(std::move(dir)) {}

  // 16 hex digits; "" when the graph cannot be serialised (then nothing is cached).
  std::string key(const Graph& imported, OptLevel level, const std::vector<std::string>& disabled_passes) const;
  // kNotFound on a miss; an entry that does not load is an error naming the file.
  Expected<Graph> load(const std::string& key) const;
  // Creates the directory if needed; errors name the path.
  Status store(const std::string& key, const Graph& optimized) const;

  std::string path_of(const std::string& key) const { return dir_ + "/" + key + ".pfm"; }

 private:
  std::string dir_;
};

// The bytes of an entry: a header carrying the key and a checksum of the .pfm bytes, then them.
std::string encode_cache_entry(const std::string& key, const std::string& pfm);
// The graph an entry holds, after checking its header, the key it was stored under and the
// checksum; any mismatch is kInvalidGraph naming `what` (the file) and the problem.
Expected<Graph> decode_cache_entry(const std::string& key, const std::string& entry, const std::string& what);

}  // namespace pyflame_rt
