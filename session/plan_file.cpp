#include "session/plan_file.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include <oneapi/dnnl/dnnl.h>

#include "devices/weight_stand_in.h"
#include "graph/version.h"
#include "session/mapped_file.h"
#include "session/plan_file.pb.h"

namespace pyflame_rt {

namespace {

constexpr char kMagic[8] = {'P', 'F', 'R', 'T', 'P', 'L', 'A', 'N'};
constexpr size_t kHeaderSize = 128;
constexpr size_t kAlign = 64;
constexpr size_t kKeySize = 48;
// Chunks of the data section hashed separately, so that a read checks them on all cores.
constexpr size_t kChunkSize = size_t{4} << 20;

// Little-endian on every machine this runs on (x86-64); the fields are fixed-size.
struct Header {
  char magic[8];
  uint32_t version;
  uint32_t header_size;
  char key[kKeySize];  // NUL-padded
  uint64_t meta_offset, meta_size;
  uint64_t data_offset, data_size;
  uint64_t checksum;  // XXH3-64 of the description (which holds the data's chunk checksums)
};
static_assert(sizeof(Header) <= kHeaderSize, "the plan header must fit its slot");

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

size_t chunk_count(size_t data_size, size_t chunk) { return data_size / chunk + (data_size % chunk != 0); }

// The index of a chunk of `data` whose XXH3-64 is not `sums[i]`, or -1 when all match.
// The chunks are split over the cores (at most 4 threads): the hash runs at memory speed, and
// a hit of a large model is mostly this pass.
int64_t first_bad_chunk(const char* data, size_t size, size_t chunk, const uint64_t* sums) {
  const size_t n = chunk_count(size, chunk);
  std::atomic<size_t> next{0};
  std::atomic<int64_t> bad{-1};
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < n && bad.load(std::memory_order_relaxed) < 0;) {
      size_t len = std::min(chunk, size - i * chunk);
      if (XXH3_64bits(data + i * chunk, len) != sums[i]) bad.store(static_cast<int64_t>(i));
    }
  };
  unsigned threads = std::min<unsigned>({4u, std::max(1u, std::thread::hardware_concurrency()),
                                         static_cast<unsigned>(std::max<size_t>(1, n))});
  std::vector<std::thread> helpers;
  for (unsigned t = 1; t < threads; ++t) helpers.emplace_back(worker);
  worker();
  for (auto& h : helpers) h.join();
  return bad.load();
}

Status corrupt(const std::string& path, const std::string& why) {
  return make_status(StatusCode::kInvalidProtobuf, "plan file '", path, "': ", why);
}

void to_proto(const ModelMetadata& m, plan::Metadata* p) {
  p->set_producer_name(m.producer_name);
  p->set_producer_version(m.producer_version);
  p->set_graph_name(m.graph_name);
  p->set_graph_description(m.graph_description);
  p->set_description(m.description);
  p->set_domain(m.domain);
  p->set_version(m.version);
  for (const auto& [k, v] : m.custom_metadata_map) (*p->mutable_custom())[k] = v;
}

ModelMetadata from_proto(const plan::Metadata& p) {
  ModelMetadata m;
  m.producer_name = p.producer_name();
  m.producer_version = p.producer_version();
  m.graph_name = p.graph_name();
  m.graph_description = p.graph_description();
  m.description = p.description();
  m.domain = p.domain();
  m.version = p.version();
  for (const auto& [k, v] : p.custom()) m.custom_metadata_map[k] = v;
  return m;
}

// Writes all of `n` bytes or says why not (ENOSPC on a full disk).
bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

std::string plan_cpu_id() {
  char buf[32];
  std::snprintf(buf, sizeof buf, "dnnl-isa-0x%x", static_cast<unsigned>(dnnl_get_effective_cpu_isa()));
  return buf;
}

bool is_plan_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[sizeof kMagic] = {};
  return in.read(magic, sizeof magic) && std::memcmp(magic, kMagic, sizeof kMagic) == 0;
}

Status write_plan_file(const std::string& path, const std::string& key, const PlanContents& contents) {
  if (key.size() >= kKeySize) return invalid_argument("plan key '", key, "' is longer than ", kKeySize - 1, " bytes");
  plan::PlanMeta meta;
  meta.set_compiled(contents.compiled);
  to_proto(contents.metadata, meta.mutable_metadata());
  meta.set_cpu(plan_cpu_id());
  meta.set_runtime(version_string());
  size_t data_size = 0;
  for (const auto& w : contents.weights) {
    if (is_weight_stand_in(w.tensor)) {  // its bytes are zeros standing in for a packed blob
      return make_status(StatusCode::kFail, "plan weight '", w.name, "' was left out of the plan it came from");
    }
    plan::Weight* pw = meta.add_weights();
    pw->set_partition(static_cast<uint32_t>(w.partition));
    pw->set_name(w.name);
    pw->set_dtype(static_cast<int>(w.tensor.dtype()));
    for (int64_t d : w.tensor.dims()) pw->add_dims(d);
    data_size = align_up(data_size);
    pw->set_offset(data_size);
    pw->set_size(w.tensor.nbytes());
    data_size += w.tensor.nbytes();
  }
  for (const auto& w : contents.left_out) {
    plan::Weight* pw = meta.add_weights();
    pw->set_partition(static_cast<uint32_t>(w.partition));
    pw->set_name(w.name);
    pw->set_dtype(static_cast<int>(w.tensor.dtype()));
    for (int64_t d : w.tensor.dims()) pw->add_dims(d);
    pw->set_left_out(true);
  }
  std::vector<const Tensor*> packed_data;  // in the order of meta.packed
  for (const auto& [partition, packed] : contents.packed) {
    if (packed.blobs.empty()) continue;
    meta.set_packed_validity(packed.validity);
    for (const auto& b : packed.blobs) {
      plan::Packed* pp = meta.add_packed();
      pp->set_partition(static_cast<uint32_t>(partition));
      pp->set_node(b.node);
      for (int64_t d : b.key) pp->add_key(d);
      pp->set_kind(b.kind);
      pp->set_impl(b.impl);
      pp->set_desc(b.desc);
      data_size = align_up(data_size);
      pp->set_offset(data_size);
      pp->set_size(b.data.nbytes());
      data_size += b.data.nbytes();
      packed_data.push_back(&b.data);
    }
  }
  // The data section as it will be in the file (alignment padding included), for the checksums.
  std::string data(data_size, '\0');
  for (size_t i = 0; i < contents.weights.size(); ++i) {
    const Tensor& t = contents.weights[i].tensor;
    if (t.nbytes()) std::memcpy(&data[meta.weights(static_cast<int>(i)).offset()], t.raw_data(), t.nbytes());
  }
  for (size_t i = 0; i < packed_data.size(); ++i) {
    const Tensor& t = *packed_data[i];
    if (t.nbytes()) std::memcpy(&data[meta.packed(static_cast<int>(i)).offset()], t.raw_data(), t.nbytes());
  }
  meta.set_chunk_size(kChunkSize);
  for (size_t i = 0; i < chunk_count(data.size(), kChunkSize); ++i) {
    meta.add_chunk_checksums(XXH3_64bits(data.data() + i * kChunkSize, std::min(kChunkSize, data.size() - i * kChunkSize)));
  }
  std::string meta_bytes;
  if (!meta.SerializeToString(&meta_bytes)) return make_status(StatusCode::kFail, "the plan did not serialise");
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kPlanFormatVersion;
  h.header_size = kHeaderSize;
  std::memcpy(h.key, key.data(), key.size());
  h.meta_offset = kHeaderSize;
  h.meta_size = meta_bytes.size();
  h.data_offset = align_up(kHeaderSize + meta_bytes.size());
  h.data_size = data.size();
  h.checksum = XXH3_64bits(meta_bytes.data(), meta_bytes.size());
  std::string head(h.data_offset - meta_bytes.size(), '\0');
  std::memcpy(&head[0], &h, sizeof h);

  // A name no other process or thread uses: concurrent writers each rename a whole file.
  static std::atomic<uint64_t> counter{0};
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(++counter) + "." +
                    std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return make_status(StatusCode::kFail, "cannot create '", tmp, "': ", std::strerror(errno));
  bool ok = write_all(fd, head.data(), kHeaderSize) && write_all(fd, meta_bytes.data(), meta_bytes.size()) &&
            write_all(fd, head.data() + kHeaderSize, head.size() - kHeaderSize) &&
            write_all(fd, data.data(), data.size());
  int err = errno;
  if (::close(fd) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    return make_status(StatusCode::kFail, "writing '", tmp, "' failed: ", std::strerror(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    ::unlink(tmp.c_str());
    return make_status(StatusCode::kFail, "cannot rename '", tmp, "' to '", path, "': ", std::strerror(err));
  }
  return Status::OK();
}

Expected<PlanContents> read_plan_file(const std::string& path, const std::string& expected_key) {
  ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::open(path));
  if (file->size() < kHeaderSize) return corrupt(path, "truncated: " + std::to_string(file->size()) + " bytes");
  Header h;
  std::memcpy(&h, file->data(), sizeof h);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) return corrupt(path, "not a plan file (no PFRTPLAN magic)");
  if (h.version != kPlanFormatVersion) {
    return corrupt(path, "format version " + std::to_string(h.version) + ", this runtime reads version " +
                             std::to_string(kPlanFormatVersion));
  }
  std::string key(h.key, strnlen(h.key, kKeySize));
  if (!expected_key.empty() && key != expected_key) {
    return corrupt(path, "stored under key " + key + ", looked up as " + expected_key);
  }
  if (h.meta_offset < kHeaderSize || h.meta_offset + h.meta_size > h.data_offset ||
      h.data_offset % kAlign != 0 || h.data_offset + h.data_size != file->size()) {
    return corrupt(path, "truncated or inconsistent: " + std::to_string(file->size()) + " bytes, the header says " +
                             std::to_string(h.data_offset + h.data_size));
  }
  const char* meta_bytes = file->data() + h.meta_offset;
  char* data = file->data() + h.data_offset;
  if (XXH3_64bits(meta_bytes, h.meta_size) != h.checksum) {
    return corrupt(path, "checksum mismatch in the description (the file was damaged after it was written)");
  }
  plan::PlanMeta meta;
  if (!meta.ParseFromArray(meta_bytes, static_cast<int>(h.meta_size))) return corrupt(path, "description does not parse");
  if (meta.chunk_size() == 0 ||
      static_cast<size_t>(meta.chunk_checksums_size()) != chunk_count(h.data_size, meta.chunk_size())) {
    return corrupt(path, "the description has " + std::to_string(meta.chunk_checksums_size()) +
                             " chunk checksums for " + std::to_string(h.data_size) + " bytes of data");
  }
  if (int64_t bad = first_bad_chunk(data, h.data_size, meta.chunk_size(), meta.chunk_checksums().data()); bad >= 0) {
    return corrupt(path, "checksum mismatch in data bytes from " + std::to_string(bad * meta.chunk_size()) +
                             " (the file was damaged after it was written)");
  }
  if (meta.cpu() != plan_cpu_id()) {
    return corrupt(path, "compiled for CPU " + meta.cpu() + ", this one is " + plan_cpu_id());
  }
  PlanContents out;
  out.compiled = meta.compiled();
  out.metadata = from_proto(meta.metadata());
  for (const auto& w : meta.weights()) {
    DType dtype = static_cast<DType>(w.dtype());
    Dims dims(w.dims().begin(), w.dims().end());
    if (w.left_out()) {
      Expected<Tensor> stand_in = weight_stand_in(dtype, dims);
      if (!stand_in.ok()) return corrupt(path, "left-out weight '" + w.name() + "': " + stand_in.status().message());
      out.weights.push_back({w.partition(), w.name(), std::move(stand_in).value()});
      continue;
    }
    if (w.offset() % kAlign != 0 || w.offset() + w.size() > h.data_size) {
      return corrupt(path, "weight '" + w.name() + "' lies outside the data section");
    }
    Tensor t = Tensor::wrap(dtype, dims, data + w.offset(), file);
    if (t.nbytes() != w.size()) return corrupt(path, "weight '" + w.name() + "' has the wrong size");
    out.weights.push_back({w.partition(), w.name(), std::move(t)});
  }
  for (const auto& p : meta.packed()) {
    if (p.offset() % kAlign != 0 || p.offset() + p.size() > h.data_size) {
      return corrupt(path, "packed weights of '" + p.node() + "' lie outside the data section");
    }
    PackedWeights& packed = out.packed[p.partition()];
    packed.validity = meta.packed_validity();
    PackedBlob b;
    b.node = p.node();
    b.key.assign(p.key().begin(), p.key().end());
    b.kind = p.kind();
    b.impl = p.impl();
    b.desc = p.desc();
    b.data = Tensor::wrap(DType::kUInt8, {static_cast<int64_t>(p.size())}, data + p.offset(), file);
    packed.blobs.push_back(std::move(b));
  }
  return out;
}

}  // namespace pyflame_rt
