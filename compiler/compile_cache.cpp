#include "compiler/compile_cache.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "graph/pfm_format.h"

namespace pyflame_rt {
namespace {

// FNV-1a over 8-byte words (then the tail bytes), 64 bits: a cache key, not a defence
// against crafted collisions; word-wise because weights run to hundreds of megabytes.
uint64_t fnv1a(const std::string& bytes, uint64_t h = 1469598103934665603ull) {
  constexpr uint64_t kPrime = 1099511628211ull;
  size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes.data() + i, 8);
    h = (h ^ word) * kPrime;
  }
  for (; i < bytes.size(); ++i) h = (h ^ static_cast<unsigned char>(bytes[i])) * kPrime;
  return h;
}

}  // namespace

std::string CompileCache::key(const Graph& imported, OptLevel level, const std::vector<std::string>& disabled) const {
  Expected<std::string> bytes = serialize_pfm(imported);
  if (!bytes.ok()) return "";
  std::string settings = "pfm" + std::to_string(kPfmFormatVersion) + " optimizer" + std::to_string(kOptimizerRevision) +
                         " level" + std::to_string(static_cast<int>(level)) + " disabled";
  for (const auto& p : disabled) settings += " " + p;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a(settings, fnv1a(*bytes))));
  return hex;
}

Expected<Graph> CompileCache::load(const std::string& key) const {
  std::string path = path_of(key);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return make_status(StatusCode::kNotFound, "compile cache: no entry ", path);
  }
  return load_pfm_file(path);
}

Status CompileCache::store(const std::string& key, const Graph& optimized) const {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) {
    return make_status(StatusCode::kNoSuchFile, "compile cache: cannot create directory '", dir_, "': ", ec.message());
  }
  return save_pfm(optimized, path_of(key));
}

}  // namespace pyflame_rt
