// PlanCache: compiled models (plan files, session/plan_file.h) in a directory, keyed BEFORE
// import: an XXH3-128 of the model file's bytes and of everything that changes the plan
// (optimisation level, disabled passes, providers and their options, fixed input dims, the
// intra-op thread count, the pass-pipeline, kernel and format revisions, the runtime's
// version, the CPU's ISA). A hit
// gives a session its compiled model without ONNX import or passes; the weights are views of
// the mapped entry. It replaces the optimised-graph cache (compiler/compile_cache.h) for
// sessions made from a file or bytes.
//
//   PlanCache cache(options.compile_cache_dir);
//   std::string key = PlanCache::key(model_bytes, options, providers);
//   Expected<PlanContents> hit = cache.load(key);   // kNotFound on a miss
//   RETURN_IF_ERROR(cache.store(key, contents));    // atomic; errors name the path
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "session/plan_file.h"
#include "session/session_options.h"

namespace pyflame_rt {

class PlanCache {
 public:
  explicit PlanCache(std::string dir) : dir_(std::move(dir)) {}

  // 32 hex digits: key_for(content_hash(model_bytes), ...).
  static std::string key(std::string_view model_bytes, const SessionOptions& options,
                         const std::vector<std::string>& providers);
  // XXH3-128 of a model's bytes, 32 hex digits.
  static std::string content_hash(std::string_view model_bytes);
  static std::string key_for(const std::string& content_hash, const SessionOptions& options,
                             const std::vector<std::string>& providers);
  // content_hash() of a file, remembered in <dir>/files/ under the file's identity and
  // change stamps (device, inode, size, mtime and ctime in ns, as ccache's direct mode and
  // git's index do): a model file that has not changed is not read again to find its plan.
  Expected<std::string> file_content_hash(const std::string& path) const;
  // kNotFound on a miss; kInvalidProtobuf (with the reason) for an entry that is corrupt,
  // truncated, of another format version, another key or another CPU.
  Expected<PlanContents> load(const std::string& key) const;
  // Creates the directory if needed. A failure (read-only, full) names the path.
  Status store(const std::string& key, const PlanContents& contents) const;

  std::string path_of(const std::string& key) const { return dir_ + "/" + key + ".plan"; }

 private:
  std::string dir_;
};

}  // namespace pyflame_rt
