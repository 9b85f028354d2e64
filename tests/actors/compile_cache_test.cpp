// SessionOptions.compile_cache_dir for sessions made from a Graph (those from a file or bytes
// use the plan cache, tests/session/plan_cache_test.cpp): the second session loads the optimised graph
// from the cache and computes the same outputs; settings change the key; a damaged entry is
// recompiled (with a warning) and rewritten.
#include "compiler/compile_cache.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "graph/model_loader.h"
#include "session/inference_session.h"

namespace pyflame_rt {
namespace {

const std::string kModel = std::string(PFRT_EXAMPLE_MODELS) + "/tiny_cnn.onnx";

std::string fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("pfrt_cache_test_" + name + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir.string();
}

size_t entries(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) n += e.path().extension() == ".pfm";
  return n;
}

Expected<std::unique_ptr<InferenceSession>> create(const std::string& path, const SessionOptions& opts) {
  ASSIGN_OR_RETURN(Graph g, load_model_file(path));
  return InferenceSession::create_from_graph(std::move(g), opts);
}

std::vector<float> probs(const InferenceSession& s) {
  Tensor x(DType::kFloat32, {1, 3, 32, 32});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::sin(0.1f * float(i));
  auto out = s.run({}, {{"image", x}});
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  const Tensor& t = (*out)[0];
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

TEST(CompileCacheTest, SecondSessionLoadsTheOptimisedGraph) {
  SessionOptions opts;
  opts.compile_cache_dir = fresh_dir("hit");
  auto first = create(kModel, opts);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_FALSE((*first)->compiled_from_cache());
  EXPECT_EQ(entries(opts.compile_cache_dir), 1u);
  auto second = create(kModel, opts);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE((*second)->compiled_from_cache());
  EXPECT_EQ(probs(**first), probs(**second));
  EXPECT_EQ(print_graph((*first)->graph()), print_graph((*second)->graph()));

  // Other settings, other key: a second entry.
  SessionOptions basic = opts;
  basic.optimization_level = OptLevel::kBasic;
  auto third = create(kModel, basic);
  ASSERT_TRUE(third.ok());
  EXPECT_FALSE((*third)->compiled_from_cache());
  EXPECT_EQ(entries(opts.compile_cache_dir), 2u);
  std::filesystem::remove_all(opts.compile_cache_dir);
}

TEST(CompileCacheTest, DamagedEntryIsRecompiledAndRewritten) {
  SessionOptions opts;
  opts.compile_cache_dir = fresh_dir("damaged");
  ASSERT_TRUE(create(kModel, opts).ok());
  for (const auto& e : std::filesystem::directory_iterator(opts.compile_cache_dir)) {
    std::ofstream(e.path(), std::ios::binary | std::ios::trunc) << "not a model";
  }
  auto again = create(kModel, opts);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_FALSE((*again)->compiled_from_cache());
  ASSERT_EQ((*again)->warnings().size(), 1u);
  EXPECT_NE((*again)->warnings()[0].find("compile cache: ignored an entry"), std::string::npos);
  auto healed = create(kModel, opts);
  ASSERT_TRUE(healed.ok());
  EXPECT_TRUE((*healed)->compiled_from_cache());
  std::filesystem::remove_all(opts.compile_cache_dir);
}

std::vector<std::filesystem::path> entry_paths(const std::string& dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) if (e.path().extension() == ".pfm") out.push_back(e.path());
  return out;
}

// Issue 14: a flipped bit inside the stored model ran silently (wrong weights).
TEST(CompileCacheTest, BitFlipIsDetectedAndRecompiled) {
  SessionOptions opts;
  opts.compile_cache_dir = fresh_dir("bitflip");
  auto first = create(kModel, opts);
  ASSERT_TRUE(first.ok());
  auto paths = entry_paths(opts.compile_cache_dir);
  ASSERT_EQ(paths.size(), 1u);
  {
    std::fstream f(paths[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    std::streamoff size = f.tellg();
    f.seekg(size - 64);  // inside the last weights
    char c = 0;
    f.read(&c, 1);
    f.seekp(size - 64);
    c = static_cast<char>(c ^ 0x10);
    f.write(&c, 1);
  }
  auto again = create(kModel, opts);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_FALSE((*again)->compiled_from_cache());
  ASSERT_EQ((*again)->warnings().size(), 1u);
  EXPECT_NE((*again)->warnings()[0].find("checksum"), std::string::npos) << (*again)->warnings()[0];
  EXPECT_EQ(probs(**first), probs(**again));
  std::filesystem::remove_all(opts.compile_cache_dir);
}

// Issue 14: two entries swapped on disk made a session run another model's graph.
TEST(CompileCacheTest, SwappedEntriesAreDetected) {
  SessionOptions full, basic;
  full.compile_cache_dir = basic.compile_cache_dir = fresh_dir("swap");
  basic.optimization_level = OptLevel::kBasic;
  ASSERT_TRUE(create(kModel, full).ok());
  ASSERT_TRUE(create(kModel, basic).ok());
  auto paths = entry_paths(full.compile_cache_dir);
  ASSERT_EQ(paths.size(), 2u);
  auto tmp = paths[0].string() + ".swap";
  std::filesystem::rename(paths[0], tmp);
  std::filesystem::rename(paths[1], paths[0]);
  std::filesystem::rename(tmp, paths[1]);
  for (const SessionOptions* o : {&full, &basic}) {
    auto s = create(kModel, *o);
    ASSERT_TRUE(s.ok());
    EXPECT_FALSE((*s)->compiled_from_cache());
    ASSERT_EQ((*s)->warnings().size(), 1u);
    EXPECT_NE((*s)->warnings()[0].find("was stored under key"), std::string::npos) << (*s)->warnings()[0];
  }
  std::filesystem::remove_all(full.compile_cache_dir);
}

TEST(CompileCacheTest, EntryDecoderRefusesTruncatedAndForeignBytes) {
  std::string entry = encode_cache_entry("0123456789abcdef", "PYFLAMRT-not-really");
  EXPECT_EQ(decode_cache_entry("0123456789abcdef", entry.substr(0, 20), "e").status().code(), StatusCode::kInvalidGraph);
  EXPECT_EQ(decode_cache_entry("0123456789abcdef", entry.substr(0, entry.size() - 1), "e").status().code(),
            StatusCode::kInvalidGraph);
  EXPECT_EQ(decode_cache_entry("fedcba9876543210", entry, "e").status().code(), StatusCode::kInvalidGraph);
  // Header and checksum fine, model bytes not a model: the .pfm loader's error.
  EXPECT_EQ(decode_cache_entry("0123456789abcdef", entry, "e").status().code(), StatusCode::kInvalidProtobuf);
}

TEST(CompileCacheTest, UnwritableDirectoryOnlyWarns) {
  SessionOptions opts;
  opts.compile_cache_dir = "/proc/pfrt-no-such-cache";
  auto s = create(kModel, opts);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  ASSERT_EQ((*s)->warnings().size(), 1u);
  EXPECT_NE((*s)->warnings()[0].find("/proc/pfrt-no-such-cache"), std::string::npos) << (*s)->warnings()[0];
}

}  // namespace
}  // namespace pyflame_rt
