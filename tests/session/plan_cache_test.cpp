// The plan cache (session/plan_cache.h) as sessions use it: a hit skips import and passes and
// computes the same outputs; options change the key; a corrupt, truncated, foreign-version or
// foreign-CPU entry is recompiled and rewritten; an unwritable directory costs only the
// shortcut; concurrent sessions leave one good entry; a plan file runs directly.
#include "session/plan_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <xxhash.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "devices/packed_weights.h"
#include "devices/weight_stand_in.h"
#include "session/inference_session.h"

namespace pyflame_rt {
namespace {

const std::string kModel = std::string(PFRT_EXAMPLE_MODELS) + "/tiny_cnn.onnx";

std::string fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("pfrt_plan_test_" + name + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir.string();
}

std::vector<std::string> files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(e.path().string());
  }
  return out;
}

std::vector<float> probs(const InferenceSession& s) {
  Tensor x(DType::kFloat32, {1, 3, 32, 32});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::sin(0.1f * float(i));
  auto out = s.run({}, {{"image", x}});
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  if (!out.ok()) return {};
  const Tensor& t = (*out)[0];
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// The header fields the tests patch (session/plan_file.cpp's Header).
constexpr size_t kVersionAt = 8, kMetaOffsetAt = 64, kChecksumAt = 96;

uint64_t u64_at(const std::string& b, size_t at) {
  uint64_t v;
  std::memcpy(&v, b.data() + at, 8);
  return v;
}

// Recomputes the header's checksum (of the description) after an edit of the description,
// so that the check under test is the one that fails.
void reseal(std::string& b) {
  uint64_t meta_offset = u64_at(b, kMetaOffsetAt), meta_size = u64_at(b, kMetaOffsetAt + 8);
  uint64_t h = XXH3_64bits(b.data() + meta_offset, meta_size);
  std::memcpy(&b[kChecksumAt], &h, 8);
}

TEST(PlanCacheTest, SecondSessionRunsThePlanWithoutImport) {
  SessionOptions opts;
  opts.compile_cache_dir = fresh_dir("hit");
  auto first = InferenceSession::create(kModel, opts);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_FALSE((*first)->compiled_from_cache());
  EXPECT_TRUE((*first)->startup_phases().count("import"));
  ASSERT_EQ(files(opts.compile_cache_dir).size(), 1u);
  EXPECT_EQ(std::filesystem::path(files(opts.compile_cache_dir)[0]).extension(), ".plan");

  auto second = InferenceSession::create(kModel, opts);
  ASSERT_TRUE(second.ok()) << second.status().to_string();
  EXPECT_TRUE((*second)->compiled_from_cache());
  EXPECT_TRUE((*second)->startup_phases().count("plan_load"));
  EXPECT_FALSE((*second)->startup_phases().count("import"));
  EXPECT_TRUE((*second)->warnings().empty());
  std::vector<float> a = probs(**first), b = probs(**second);
  ASSERT_EQ(a.size(), 10u);
  EXPECT_EQ(a, b);
  ASSERT_EQ((*second)->inputs().size(), 1u);
  EXPECT_EQ((*second)->inputs()[0].name, "image");
  EXPECT_EQ((*second)->outputs()[0].name, (*first)->outputs()[0].name);
  EXPECT_EQ((*second)->metadata().producer_name, (*first)->metadata().producer_name);
  EXPECT_EQ((*second)->node_kernels().size(), (*first)->node_kernels().size());

  // Bytes of the same model find the same plan.
  auto from_bytes = InferenceSession::create_from_bytes(read_all(kModel), opts);
  ASSERT_TRUE(from_bytes.ok()) << from_bytes.status().to_string();
  EXPECT_TRUE((*from_bytes)->compiled_from_cache());
  EXPECT_EQ(probs(**from_bytes), a);

  // Other settings, another key: a second entry.
  SessionOptions basic = opts;
  basic.optimization_level = OptLevel::kBasic;
  auto third = InferenceSession::create(kModel, basic);
  ASSERT_TRUE(third.ok());
  EXPECT_FALSE((*third)->compiled_from_cache());
  EXPECT_EQ(files(opts.compile_cache_dir).size(), 2u);
  std::filesystem::remove_all(opts.compile_cache_dir);
}

TEST(PlanCacheTest, KeyCoversModelBytesAndPlanChangingOptions) {
  SessionOptions o;
  std::string model = read_all(kModel);
  std::string k = PlanCache::key(model, o, {});
  EXPECT_EQ(k.size(), 32u);
  EXPECT_EQ(PlanCache::key(model, o, {}), k);
  std::string changed = model;
  changed[changed.size() / 2] ^= 1;
  EXPECT_NE(PlanCache::key(changed, o, {}), k);
  EXPECT_NE(PlanCache::key(model, o, {"CPUExecutionProvider"}), k);
  SessionOptions a = o;
  a.disabled_passes = {"conv_bn_fusion"};
  EXPECT_NE(PlanCache::key(model, a, {}), k);
  SessionOptions b = o;
  b.free_dimension_overrides["batch"] = 4;
  EXPECT_NE(PlanCache::key(model, b, {}), k);
  SessionOptions c = o;
  c.provider_options["CPUExecutionProvider"]["x"] = "1";
  EXPECT_NE(PlanCache::key(model, c, {}), k);
  // The intra-op team does (packed layouts are made for it).
  SessionOptions t = o;
  t.num_threads = 1;
  EXPECT_NE(PlanCache::key(model, t, {}), k);
  // Run-time settings do not change the plan.
  SessionOptions d = o;
  d.log_severity_level = 0;
  EXPECT_EQ(PlanCache::key(model, d, {}), k);
}

// Each damage is detected with its reason, the model is compiled again and the entry
// rewritten, so the next session hits.
void expect_recompiled_after(const std::string& name, const std::function<void(std::string&)>& damage,
                             const std::string& reason) {
  SessionOptions opts;
  opts.compile_cache_dir = fresh_dir(name);
  auto first = InferenceSession::create(kModel, opts);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  std::string path = files(opts.compile_cache_dir)[0];
  std::string bytes = read_all(path);
  damage(bytes);
  write_all(path, bytes);
  std::string key = std::filesystem::path(path).stem().string();
  Expected<PlanContents> read = PlanCache(opts.compile_cache_dir).load(key);
  ASSERT_FALSE(read.ok()) << name;
  EXPECT_NE(read.status().message().find(reason), std::string::npos) << name << ": " << read.status().message();

  auto again = InferenceSession::create(kModel, opts);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_FALSE((*again)->compiled_from_cache()) << name;
  EXPECT_EQ(probs(**again), probs(**first));
  auto healed = InferenceSession::create(kModel, opts);
  ASSERT_TRUE(healed.ok());
  EXPECT_TRUE((*healed)->compiled_from_cache()) << name;
  EXPECT_EQ(files(opts.compile_cache_dir).size(), 1u);
  std::filesystem::remove_all(opts.compile_cache_dir);
}

TEST(PlanCacheTest, CorruptEntryIsRecompiled) {
  expect_recompiled_after("corrupt", [](std::string& b) { b[b.size() - 100] ^= 0x55; }, "checksum mismatch in data");
}

TEST(PlanCacheTest, TruncatedEntryIsRecompiled) {
  expect_recompiled_after("truncated", [](std::string& b) { b.resize(b.size() / 2); }, "truncated");
  expect_recompiled_after("short", [](std::string& b) { b.resize(10); }, "truncated");
}

TEST(PlanCacheTest, ForeignVersionEntryIsRecompiled) {
  expect_recompiled_after("version", [](std::string& b) { b[kVersionAt] = 99; }, "format version 99");
}

TEST(PlanCacheTest, ForeignCpuEntryIsRecompiled) {
  expect_recompiled_after("cpu", [](std::string& b) {
    size_t at = b.find(plan_cpu_id());
    ASSERT_NE(at, std::string::npos);
    b[at + plan_cpu_id().size() - 1] = b[at + plan_cpu_id().size() - 1] == 'f' ? 'e' : 'f';
    reseal(b);
  }, "compiled for CPU");
}

// With its free batch dim fixed (input_shapes), tiny_cnn's plan keeps the packed weights of
// its convolutions and matmuls, which a hit uses instead of packing; packed weights of another
// oneDNN (or CPU) are packed again, with the same outputs. Without, the plan keeps none.
TEST(PlanCacheTest, HitUsesThePlansPackedWeights) {
  SessionOptions dynamic;
  dynamic.compile_cache_dir = fresh_dir("unpacked");
  ASSERT_TRUE(InferenceSession::create(kModel, dynamic).ok());
  Expected<PlanContents> unpacked = PlanCache(dynamic.compile_cache_dir)
                                        .load(std::filesystem::path(files(dynamic.compile_cache_dir)[0]).stem().string());
  ASSERT_TRUE(unpacked.ok()) << unpacked.status().to_string();
  EXPECT_TRUE(unpacked->packed.empty());
  std::filesystem::remove_all(dynamic.compile_cache_dir);

  SessionOptions opts;
  opts.compile_cache_dir = fresh_dir("packed");
  opts.input_shapes["image"] = "1,3,32,32";
  auto first = InferenceSession::create(kModel, opts);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  std::string path = files(opts.compile_cache_dir)[0];
  std::string key = std::filesystem::path(path).stem().string();
  Expected<PlanContents> stored = PlanCache(opts.compile_cache_dir).load(key);
  ASSERT_TRUE(stored.ok()) << stored.status().to_string();
  size_t blobs = 0;
  for (const auto& [partition, packed] : stored->packed) {
    EXPECT_EQ(packed.validity, packed_weights_validity());
    blobs += packed.blobs.size();
  }
  EXPECT_GE(blobs, 2u);  // at least its convolutions

  uint64_t used = packed_weights_used_count(), stale = packed_weights_stale_count();
  auto second = InferenceSession::create(kModel, opts);
  ASSERT_TRUE(second.ok()) << second.status().to_string();
  EXPECT_TRUE((*second)->compiled_from_cache());
  std::vector<float> a = probs(**first), b = probs(**second);
  ASSERT_EQ(a.size(), 10u);
  EXPECT_EQ(a, b);
  EXPECT_EQ(packed_weights_used_count() - used, blobs);
  EXPECT_EQ(packed_weights_stale_count(), stale);

  // The convolutions' weights are stored once, packed: the plan leaves their raw bytes out
  // and the read gives stand-ins in their place.
  size_t stand_ins = 0;
  for (const auto& w : stored->weights) stand_ins += is_weight_stand_in(w.tensor);
  EXPECT_GE(stand_ins, 2u);

  // The same entry as if packed by another oneDNN: the left-out weights cannot be packed
  // again from it, so it is compiled again (logged once, not a hit), with the same outputs,
  // and the rewritten entry hits.
  std::string bytes = read_all(path);
  size_t at = bytes.find("onednn=");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 6] = '~';
  reseal(bytes);
  write_all(path, bytes);
  used = packed_weights_used_count();
  auto third = InferenceSession::create(kModel, opts);
  ASSERT_TRUE(third.ok()) << third.status().to_string();
  EXPECT_FALSE((*third)->compiled_from_cache());
  EXPECT_EQ(probs(**third), a);
  EXPECT_EQ(packed_weights_used_count(), used);
  auto fourth = InferenceSession::create(kModel, opts);
  ASSERT_TRUE(fourth.ok()) << fourth.status().to_string();
  EXPECT_TRUE((*fourth)->compiled_from_cache());
  EXPECT_EQ(probs(**fourth), a);
  std::filesystem::remove_all(opts.compile_cache_dir);
}

// A plan whose packed weights do not fit the loading session (the CPU device's pass
// refuses them) must not run on the stand-ins' zeros: reading the entry with one blob's
// kernel name changed gives an error naming the node, and the cache compiles again.
TEST(PlanCacheTest, LeftOutWeightWhoseBlobIsRefusedIsRecompiled) {
  SessionOptions opts;
  opts.compile_cache_dir = fresh_dir("refused");
  opts.input_shapes["image"] = "1,3,32,32";
  auto first = InferenceSession::create(kModel, opts);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  std::string path = files(opts.compile_cache_dir)[0];
  Expected<PlanContents> stored =
      PlanCache(opts.compile_cache_dir).load(std::filesystem::path(path).stem().string());
  ASSERT_TRUE(stored.ok()) << stored.status().to_string();
  ASSERT_FALSE(stored->packed.empty());
  // Every blob names the kernel it was packed for ("jit_fp32_wino_2x3:avx512_core",
  // "brg:avx512_core", ...): spoil the first one's, so that its kernel finds it stale.
  const std::string impl = stored->packed.begin()->second.blobs.at(0).impl;
  ASSERT_FALSE(impl.empty());
  std::string bytes = read_all(path);
  size_t at = bytes.find(impl);
  ASSERT_NE(at, std::string::npos);
  bytes[at] ^= 0x20;
  reseal(bytes);
  write_all(path, bytes);
  auto second = InferenceSession::create(kModel, opts);
  ASSERT_TRUE(second.ok()) << second.status().to_string();
  EXPECT_FALSE((*second)->compiled_from_cache());
  EXPECT_EQ(probs(**second), probs(**first));
  std::filesystem::remove_all(opts.compile_cache_dir);
}

TEST(PlanCacheTest, DamagedDescriptionIsRecompiled) {
  expect_recompiled_after("description", [](std::string& b) { b[u64_at(b, kMetaOffsetAt) + 5] ^= 0x10; },
                          "checksum mismatch in the description");
}

TEST(PlanCacheTest, UnwritableDirectoryCostsOnlyTheShortcut) {
  SessionOptions opts;
  opts.compile_cache_dir = "/proc/pfrt-no-such-plan-cache";
  auto s = InferenceSession::create(kModel, opts);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(probs(**s).size(), 10u);
  ASSERT_EQ((*s)->warnings().size(), 1u);
  EXPECT_NE((*s)->warnings()[0].find("/proc/pfrt-no-such-plan-cache"), std::string::npos) << (*s)->warnings()[0];
}

TEST(PlanCacheTest, ConcurrentSessionsLeaveOneGoodEntry) {
  SessionOptions opts;
  opts.compile_cache_dir = fresh_dir("concurrent");
  std::vector<std::thread> threads;
  // Not std::vector<bool>: its elements share bytes, so four threads setting their own would race.
  bool ok[4] = {false, false, false, false};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] { ok[i] = InferenceSession::create(kModel, opts).ok(); });
  }
  for (auto& t : threads) t.join();
  for (bool o : ok) EXPECT_TRUE(o);
  std::vector<std::string> left = files(opts.compile_cache_dir);
  ASSERT_EQ(left.size(), 1u);  // no temporary files left behind
  auto hit = InferenceSession::create(kModel, opts);
  ASSERT_TRUE(hit.ok());
  EXPECT_TRUE((*hit)->compiled_from_cache());
  std::filesystem::remove_all(opts.compile_cache_dir);
}

TEST(PlanCacheTest, ChangedModelFileIsHashedAgain) {
  SessionOptions opts;
  opts.compile_cache_dir = fresh_dir("changed");
  std::string model = fresh_dir("model") + ".onnx";
  std::filesystem::copy_file(kModel, model);
  PlanCache cache(opts.compile_cache_dir);
  auto a = cache.file_content_hash(model);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  EXPECT_EQ(*a, PlanCache::content_hash(read_all(kModel)));
  EXPECT_EQ(*cache.file_content_hash(model), *a);  // from the memo
  // Same size, other bytes: the stamps change, so does the hash.
  std::string bytes = read_all(model);
  bytes[bytes.size() - 1] ^= 1;
  write_all(model, bytes);
  auto b = cache.file_content_hash(model);
  ASSERT_TRUE(b.ok());
  EXPECT_NE(*b, *a);
  EXPECT_EQ(*b, PlanCache::content_hash(bytes));
  EXPECT_FALSE(cache.file_content_hash(model + ".missing").ok());
  std::filesystem::remove(model);
  std::filesystem::remove_all(opts.compile_cache_dir);
}

TEST(PlanCacheTest, PlanFileRunsDirectly) {
  SessionOptions opts;
  opts.compile_cache_dir = fresh_dir("aot");
  auto compiled = InferenceSession::create(kModel, opts);
  ASSERT_TRUE(compiled.ok());
  std::string plan = files(opts.compile_cache_dir)[0];
  ASSERT_TRUE(is_plan_file(plan));
  EXPECT_FALSE(is_plan_file(kModel));
  auto direct = InferenceSession::create(plan, SessionOptions());
  ASSERT_TRUE(direct.ok()) << direct.status().to_string();
  EXPECT_TRUE((*direct)->compiled_from_cache());
  EXPECT_EQ(probs(**direct), probs(**compiled));
  std::filesystem::remove_all(opts.compile_cache_dir);
}

// A plan file (save_plan, `pyflame-rt compile`) has no model to compile again from: it keeps
// the raw weights beside the packed ones, so a session whose kernels refuse a blob repacks.
// Saved from a session made from a cache entry, it leaves out what that entry left out.
TEST(PlanCacheTest, SavedPlanKeepsItsRawWeights) {
  SessionOptions opts;
  opts.input_shapes["image"] = "1,3,32,32";
  auto fresh = InferenceSession::create(kModel, opts);
  ASSERT_TRUE(fresh.ok()) << fresh.status().to_string();
  std::string dir = fresh_dir("saved");
  std::filesystem::create_directories(dir);
  ASSERT_TRUE((*fresh)->save_plan(dir + "/a.pfm").ok());
  Expected<PlanContents> a = read_plan_file(dir + "/a.pfm", "");
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  EXPECT_FALSE(a->packed.empty());
  for (const auto& w : a->weights) EXPECT_FALSE(is_weight_stand_in(w.tensor)) << w.name;

  opts.compile_cache_dir = dir + "/cache";
  ASSERT_TRUE(InferenceSession::create(kModel, opts).ok());
  auto hit = InferenceSession::create(kModel, opts);
  ASSERT_TRUE(hit.ok());
  ASSERT_TRUE((*hit)->compiled_from_cache());
  Status saved = (*hit)->save_plan(dir + "/b.pfm");
  ASSERT_TRUE(saved.ok()) << saved.to_string();
  auto from_b = InferenceSession::create(dir + "/b.pfm", SessionOptions());
  ASSERT_TRUE(from_b.ok()) << from_b.status().to_string();
  EXPECT_EQ(probs(**from_b), probs(**fresh));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pyflame_rt
