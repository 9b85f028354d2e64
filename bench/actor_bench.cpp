// pyflame-bench-actors: the actor paths against direct InferenceSession::run() from C++
// client threads (no Python in the way), side by side in one run.
//
//   pyflame-bench-actors hop MODEL [RUNS]
//       one request through a one-stage pipeline (one stage actor) and through the batcher
//       (batching actor + device actor, batch 1, no wait) against a direct run() of the same
//       feed, interleaved call by call.
//   pyflame-bench-actors chain MODEL [FRAMES]
//       three-stage pipelines against their slowest stage alone: three equal model stages,
//       and detect -> crop -> embed (unequal stages, the shape of examples/biometric_chain).
//   pyflame-bench-actors batching MODEL [CLIENTS] [REQUESTS_PER_CLIENT] [TIMEOUT_MS]
//       CLIENTS threads each sending requests of one sample: unbatched (each calls run(),
//       with the default thread count and with 1 intra-op thread) against the batcher with
//       one device actor (max_batch_size CLIENTS) and with two device actors of one thread
//       each (max_batch_size CLIENTS/2: one batch computes while the other forms).
//
// The model's first input must be float with a dynamic dim 0; other dims are taken from the
// model (symbolic ones set to 1). Prints markdown tables.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "actors/batcher.h"
#include "session/inference_session.h"
#include "actors/partitioned_model.h"
#include "actors/pipeline.h"
#include "graph/model_loader.h"
#include "devices/thread_limit.h"

using namespace pyflame_rt;
using Clock = std::chrono::steady_clock;

namespace {

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(q / 100.0 * static_cast<double>(v.size())));
  return v[i];
}

double us_since(Clock::time_point t0) { return std::chrono::duration<double, std::micro>(Clock::now() - t0).count(); }

std::shared_ptr<const InferenceSession> open_model(const std::string& path, int threads) {
  SessionOptions opts;
  opts.num_threads = threads;
  auto s = InferenceSession::create(path, opts);
  if (!s.ok()) {
    std::fprintf(stderr, "error: %s\n", s.status().to_string().c_str());
    std::exit(1);
  }
  return std::shared_ptr<const InferenceSession>(std::move(s).value());
}

// One sample for every input: symbolic dims become 1, values a fixed pattern.
std::map<std::string, Tensor> sample_feed(const InferenceSession& s) {
  std::map<std::string, Tensor> feeds;
  for (const auto& in : s.inputs()) {
    Dims dims;
    for (const auto& d : in.shape.dims) dims.push_back(d.known() ? d.value : 1);
    Tensor t(in.dtype, dims);
    if (in.dtype == DType::kFloat32) {
      for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>((i * 37) % 101) / 50.0f - 1.0f;
    }
    feeds[in.name] = t;
  }
  return feeds;
}

void die_on(const Status& st) {
  if (!st.ok()) {
    std::fprintf(stderr, "error: %s\n", st.to_string().c_str());
    std::exit(1);
  }
}

int hop(const std::string& model, int runs) {
  auto session = open_model(model, 1);
  auto feed = sample_feed(*session);
  BatchOptions opts;
  opts.max_batch_size = 1;
  opts.batch_timeout_ms = 0;
  auto batcher = Batcher::create(make_session_target(session, "model"), opts);
  die_on(batcher.status());
  auto pipeline = Pipeline::create({model_stage("model", session)});
  die_on(pipeline.status());
  // Each path interleaved call by call with its own direct baseline (a path's leftover
  // threads must not slow the other's calls).
  auto interleave = [&](const std::function<Status()>& path, std::vector<double>& base, std::vector<double>& via) {
    for (int i = 0; i < runs + 200; ++i) {
      auto t0 = Clock::now();
      die_on(session->run({}, feed).status());
      double d = us_since(t0);
      t0 = Clock::now();
      die_on(path());
      double p = us_since(t0);
      if (i >= 200) {  // warm-up done
        base.push_back(d);
        via.push_back(p);
      }
    }
  };
  std::vector<double> direct, staged, direct2, hopped;
  interleave(
      [&] {
        RETURN_IF_ERROR((*pipeline)->push(feed).status());
        return (*pipeline)->pull(std::chrono::seconds(10)).status();
      },
      direct, staged);
  interleave([&] { return (*batcher)->run(feed).status(); }, direct2, hopped);
  std::printf("\n## Actor hops vs direct run() (%s, batch 1, 1 thread, %d runs, each path interleaved call by "
              "call with its own direct run), us\n",
              model.c_str(), runs);
  std::printf("| path | direct p50 | path p50 | overhead p50 | direct p99 | path p99 | overhead p99 |\n"
              "|---|---|---|---|---|---|---|\n");
  auto row = [&](const char* name, const std::vector<double>& base, const std::vector<double>& via) {
    double b50 = percentile(base, 50), b99 = percentile(base, 99);
    double p50 = percentile(via, 50), p99 = percentile(via, 99);
    std::printf("| %s | %.1f | %.1f | %+.1f | %.1f | %.1f | %+.1f |\n", name, b50, p50, p50 - b50, b99, p99, p99 - b99);
  };
  row("one-stage pipeline: push + pull (1 actor hop)", direct, staged);
  row("batcher.run: batching actor + device actor (2 hops)", direct2, hopped);
  return 0;
}

struct LoadResult {
  double rate = 0;  // requests per second
  std::vector<double> latencies_ms;
};

LoadResult drive(int clients, int per_client, const std::function<Status()>& call) {
  LoadResult r;
  std::vector<std::vector<double>> lat(clients);
  std::atomic<int> failures{0};
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      for (int k = 0; k < per_client; ++k) {
        auto s = Clock::now();
        if (!call().ok()) failures++;
        lat[c].push_back(us_since(s) / 1000.0);
      }
    });
  }
  for (auto& t : threads) t.join();
  r.rate = clients * per_client / (us_since(t0) / 1e6);
  for (auto& l : lat) r.latencies_ms.insert(r.latencies_ms.end(), l.begin(), l.end());
  if (failures) std::fprintf(stderr, "warning: %d requests failed\n", failures.load());
  return r;
}

// A batch of `rows` copies of the one-sample feed.
std::map<std::string, Tensor> repeat_rows(const std::map<std::string, Tensor>& feed, int64_t rows) {
  std::map<std::string, Tensor> big;
  for (const auto& [name, t] : feed) {
    Dims d = t.dims();
    d[0] = rows;
    Tensor b(t.dtype(), d);
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(static_cast<char*>(b.raw_data()) + r * t.nbytes(), t.raw_data(), t.nbytes());
    }
    big[name] = b;
  }
  return big;
}

double batch_compute_ms(const InferenceSession& s, const std::map<std::string, Tensor>& feed, int rows) {
  auto big = repeat_rows(feed, rows);
  for (int i = 0; i < 3; ++i) die_on(s.run({}, big).status());
  auto t0 = Clock::now();
  for (int i = 0; i < 10; ++i) die_on(s.run({}, big).status());
  return us_since(t0) / 10 / 1000;
}

int batching(const std::string& model, int clients, int per_client, double timeout_ms) {
  constexpr int kRounds = 3;  // this machine's speed drifts: interleave the paths, average
  auto session = open_model(model, 0);
  auto single = open_model(model, 1);
  auto feed = sample_feed(*session);
  // One device actor batching up to every client, and two (each on one core) batching half.
  BatchOptions one, two;
  one.max_batch_size = clients;
  two.max_batch_size = std::max(1, clients / 2);
  two.device_actors = 2;
  for (BatchOptions* o : {&one, &two}) {
    o->batch_timeout_ms = timeout_ms;
    o->max_queue_size = clients * 2;
  }
  auto batcher1 = Batcher::create(make_session_target(session, "model"), one);
  auto batcher2 = Batcher::create(make_session_target(session, "model"), two);
  die_on(batcher1.status());
  die_on(batcher2.status());
  double batch1_ms = batch_compute_ms(*session, feed, one.max_batch_size);
  double batch2_ms = batch_compute_ms(*single, feed, two.max_batch_size);

  struct Row {
    std::string name;
    LoadResult r;
  };
  std::vector<Row> rows;
  std::vector<std::pair<std::string, std::function<Status()>>> paths = {
      {"unbatched run(), default threads", [&] { return session->run({}, feed).status(); }},
      {"unbatched run(), 1 thread each", [&] { return single->run({}, feed).status(); }},
      {"batcher, 1 device actor", [&] { return (*batcher1)->run(feed).status(); }},
      {"batcher, 2 device actors x 1 thread", [&] { return (*batcher2)->run(feed).status(); }},
  };
  for (auto& [name, call] : paths) drive(clients, 5, call);  // warm-up
  for (int round = 0; round < kRounds; ++round) {           // interleaved rounds
    for (auto& [name, call] : paths) rows.push_back({name, drive(clients, per_client, call)});
  }
  std::printf("\n## Dynamic batching: %s, %d client threads x %d requests of 1 sample, batch_timeout_ms %.1f\n",
              model.c_str(), clients, per_client, timeout_ms);
  std::printf("| path | requests/s | p50 ms | p99 ms |\n|---|---|---|---|\n");
  for (const auto& row : rows) {
    std::printf("| %s | %.0f | %.2f | %.2f |\n", row.name.c_str(), row.r.rate, percentile(row.r.latencies_ms, 50),
                percentile(row.r.latencies_ms, 99));
  }
  // Over the rounds: the mean rate, and the p99 of all latencies together.
  auto mean_rate = [&](size_t k) {
    double sum = 0;
    for (int round = 0; round < kRounds; ++round) sum += rows[k + round * paths.size()].r.rate;
    return sum / kRounds;
  };
  auto worst_p99 = [&](size_t k) {
    std::vector<double> all;
    for (int round = 0; round < kRounds; ++round) {
      const auto& l = rows[k + round * paths.size()].r.latencies_ms;
      all.insert(all.end(), l.begin(), l.end());
    }
    return percentile(all, 99);
  };
  double best_unbatched = std::max(mean_rate(0), mean_rate(1));
  std::printf("\nunbatched mean over the rounds: %.0f/s default threads, %.0f/s 1 thread each\n", mean_rate(0),
              mean_rate(1));
  std::printf("\n| batcher | throughput / best unbatched | throughput / unbatched default threads | mean batch | "
              "one full batch computes in | p99 | "
              "bound: timeout + one batch |\n|---|---|---|---|---|---|---|\n");
  BatchStats s1 = (*batcher1)->stats(), s2 = (*batcher2)->stats();
  std::printf("| 1 device actor, max_batch_size %d | %.2fx | %.2fx | %.1f | %.2f ms | %.2f ms | %.2f ms |\n",
              one.max_batch_size, mean_rate(2) / best_unbatched, mean_rate(2) / mean_rate(0), s1.mean_batch_size(),
              batch1_ms, worst_p99(2), timeout_ms + batch1_ms);
  std::printf("| 2 device actors, max_batch_size %d | %.2fx | %.2fx | %.1f | %.2f ms | %.2f ms | %.2f ms |\n",
              two.max_batch_size, mean_rate(3) / best_unbatched, mean_rate(3) / mean_rate(0), s2.mean_batch_size(),
              batch2_ms, worst_p99(3), timeout_ms + batch2_ms);
  return 0;
}

// Frames per second of `fn` alone on this thread, capped like a pipeline stage would be.
double stage_rate(const StageFn& fn, const Frame& frame, int threads, int frames) {
  IntraOpThreadLimit limit(threads);
  for (int i = 0; i < 10; ++i) die_on(fn(frame).status());
  auto t0 = Clock::now();
  for (int i = 0; i < frames; ++i) die_on(fn(frame).status());
  return frames / (us_since(t0) / 1e6);
}

// Pushes `frames` frames from another thread and pulls them all; frames per second.
double pipeline_rate(Pipeline& p, const Frame& frame, int frames) {
  for (int i = 0; i < 20; ++i) die_on(p.push(frame).status());
  for (int i = 0; i < 20; ++i) die_on(p.pull(std::chrono::seconds(30)).status());
  auto t0 = Clock::now();
  std::thread pusher([&] {
    for (int i = 0; i < frames; ++i) die_on(p.push(frame).status());
  });
  for (int i = 0; i < frames; ++i) {
    auto r = p.pull(std::chrono::seconds(30));
    die_on(r.status());
    die_on(r->status);
  }
  double rate = frames / (us_since(t0) / 1e6);
  pusher.join();
  return rate;
}

void chain_row(const char* name, std::vector<StageSpec> stages, const Frame& frame, int frames) {
  int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int share = std::max(1, cores / static_cast<int>(stages.size()));
  // Each stage alone, one after another along the chain (a stage's input is the previous one's output).
  std::vector<double> alone;
  Frame f = frame;
  for (const auto& st : stages) {
    alone.push_back(stage_rate(st.fn, f, share, frames));
    f = st.fn(f).value();
  }
  auto p = Pipeline::create(stages);
  die_on(p.status());
  double rate = pipeline_rate(**p, frame, frames);
  double slowest = *std::min_element(alone.begin(), alone.end());
  double work = 0;  // seconds of compute per frame, all stages
  for (double a : alone) work += 1 / a;
  double cap = std::min(slowest, cores / work);  // what the cores allow when stages overlap
  std::printf("| %s | %.0f / %.0f / %.0f | %.0f | %.0f | **%.2f** | %.2f | %.0f |\n", name, alone[0], alone[1], alone[2],
              slowest, rate, rate / slowest, cap / slowest, 1 / work);
}

int chain(const std::string& model, int frames) {
  // Equal stages: the same model three times on a batch of 4 (a stand-in for detect, embed,
  // verify of equal cost). Unequal: detect on 4 images, crop 2 of them (a copy), embed the 2.
  std::vector<std::shared_ptr<const InferenceSession>> sessions;
  for (int i = 0; i < 3; ++i) sessions.push_back(open_model(model, 0));
  Frame four = repeat_rows(sample_feed(*sessions[0]), 4);
  const std::string input = sessions[0]->inputs()[0].name;
  const std::string output = sessions[0]->outputs()[0].name;
  std::vector<StageSpec> equal = {model_stage("a", sessions[0]), model_stage("b", sessions[1], {"a"}),
                                  model_stage("c", sessions[2], {"b"})};
  StageSpec crop{"crop", {"detect"}, [input, output](const Frame& f) -> Expected<Frame> {
                   const Tensor& all = f.at(input);
                   Dims d = all.dims();
                   d[0] = 2;
                   Tensor two(all.dtype(), d);
                   std::memcpy(two.raw_data(), all.raw_data(), two.nbytes());
                   return Frame{{input, two}, {"detections", f.at(output)}};
                 }};
  std::vector<StageSpec> unequal = {model_stage("detect", sessions[0]), crop, model_stage("embed", sessions[1], {"crop"})};
  std::printf("\n## Three-stage chains (%s, %d frames; stage rates with each stage's share of the cores), "
              "frames/s\n", model.c_str(), frames);
  std::printf("| chain | stages alone | slowest | pipeline | pipeline / slowest | cap on these cores / slowest | "
              "sequential |\n|---|---|---|---|---|---|---|\n");
  chain_row("equal: model(4) -> model(4) -> model(4)", equal, four, frames);
  chain_row("detect(4) -> crop(2) -> embed(2)", unequal, four, frames);
  // The model itself cut into three partitions of about equal estimated cost.
  auto graph = load_model_file(model);
  die_on(graph.status());
  auto parts = partition_stages(*graph, 3, {});
  die_on(parts.status());
  if (parts->size() == 3) chain_row("the model in 3 partitions (batch 4)", std::move(parts).value(), four, frames);
  // Against the whole model run frame after frame with every core.
  auto whole = open_model(model, 0);
  for (int i = 0; i < 10; ++i) die_on(whole->run({}, four).status());
  auto t0 = Clock::now();
  for (int i = 0; i < frames; ++i) die_on(whole->run({}, four).status());
  std::printf("\nthe whole model (batch 4, every core), frame after frame: %.0f frames/s\n", frames / (us_since(t0) / 1e6));
  return 0;
}

int usage() {
  std::fprintf(stderr,
               "usage:\n  pyflame-bench-actors hop MODEL [RUNS]\n"
               "  pyflame-bench-actors chain MODEL [FRAMES]\n"
               "  pyflame-bench-actors batching MODEL [CLIENTS] [REQUESTS_PER_CLIENT] [TIMEOUT_MS]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() < 2) return usage();
  if (a[0] == "chain") return chain(a[1], a.size() > 2 ? std::stoi(a[2]) : 300);
  if (a[0] == "hop") return hop(a[1], a.size() > 2 ? std::stoi(a[2]) : 3000);
  if (a[0] == "batching") {
    return batching(a[1], a.size() > 2 ? std::stoi(a[2]) : 32, a.size() > 3 ? std::stoi(a[3]) : 50,
                    a.size() > 4 ? std::stod(a[4]) : 2.0);
  }
  return usage();
}
