#include "compiler/compile_cache.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

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

namespace {

// An entry: magic, the key it was stored under, a checksum of the .pfm bytes and their length,
// then the .pfm model. A flipped bit fails the checksum; an entry copied or renamed under
// another key (two entries swapped) fails the key check: either way the session compiles
// again rather than run a damaged graph or another model's.
constexpr char kEntryMagic[8] = {'P', 'F', 'R', 'T', 'C', 'C', '0', '1'};
constexpr size_t kKeySize = 16;
constexpr size_t kEntryHeader = sizeof(kEntryMagic) + kKeySize + 8 + 8;

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t get_u64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace

std::string encode_cache_entry(const std::string& key, const std::string& pfm) {
  std::string out(kEntryMagic, sizeof(kEntryMagic));
  std::string k = key;
  k.resize(kKeySize, ' ');
  out += k;
  put_u64(out, fnv1a(pfm));
  put_u64(out, pfm.size());
  out += pfm;
  return out;
}

Expected<Graph> decode_cache_entry(const std::string& key, const std::string& entry, const std::string& what) {
  auto corrupt = [&](auto&&... why) {
    return make_status(StatusCode::kInvalidGraph, "compile cache entry '", what, "' ", why...);
  };
  if (entry.size() < kEntryHeader || std::memcmp(entry.data(), kEntryMagic, sizeof(kEntryMagic)) != 0) {
    return corrupt("has no valid header (", entry.size(), " bytes)");
  }
  std::string stored_key = entry.substr(sizeof(kEntryMagic), kKeySize);
  std::string k = key;
  k.resize(kKeySize, ' ');
  if (stored_key != k) return corrupt("was stored under key ", stored_key, ", not ", key);
  uint64_t checksum = get_u64(entry.data() + sizeof(kEntryMagic) + kKeySize);
  uint64_t length = get_u64(entry.data() + sizeof(kEntryMagic) + kKeySize + 8);
  if (length != entry.size() - kEntryHeader) {
    return corrupt("announces ", length, " bytes of model, holds ", entry.size() - kEntryHeader);
  }
  std::string pfm = entry.substr(kEntryHeader);
  if (fnv1a(pfm) != checksum) return corrupt("fails its checksum (damaged on disk)");
  return load_pfm_bytes(pfm);
}

Expected<Graph> CompileCache::load(const std::string& key) const {
  std::string path = path_of(key);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return make_status(StatusCode::kNotFound, "compile cache: no entry ", path);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_status(StatusCode::kNoSuchFile, "compile cache entry '", path, "' cannot be read");
  std::ostringstream ss;
  ss << in.rdbuf();
  return decode_cache_entry(key, ss.str(), path);
}

Status CompileCache::store(const std::string& key, const Graph& optimized) const {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) {
    return make_status(StatusCode::kNoSuchFile, "compile cache: cannot create directory '", dir_, "': ", ec.message());
  }
  ASSIGN_OR_RETURN(std::string pfm, serialize_pfm(optimized));
  std::string entry = encode_cache_entry(key, pfm);
  // Temporary file beside the entry, then rename: a reader never sees half an entry; a full
  // disk leaves no partial file behind.
  std::string path = path_of(key), tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return make_status(StatusCode::kNoSuchFile, "compile cache: cannot write '", tmp, "'");
    out.write(entry.data(), static_cast<std::streamsize>(entry.size()));
    if (!out.flush()) {
      out.close();
      std::remove(tmp.c_str());
      return make_status(StatusCode::kResourceExhausted, "compile cache: writing '", tmp, "' failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return make_status(StatusCode::kFail, "compile cache: cannot rename '", tmp, "' to '", path, "'");
  }
  return Status::OK();
}

}  // namespace pyflame_rt
