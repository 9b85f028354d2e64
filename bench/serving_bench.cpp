// serving_bench: the KServe HTTP server against in-process runs of the same model, in one run.
//
//   build/bin/pyflame-serving-bench [--model examples/models/tiny_cnn.onnx] [--duration 60]
//       [--connections 32] [--max-batch-size 8] [--batch-timeout-us 0] [--latency-requests 2000]
//       [--threads 1] [--device-actors 2] [--http-threads 1]   (the server's defaults)
//
// 1. in-process run() latency, one caller, batch 1 (p50/p99);
// 2. in-process Batcher run() latency, one caller (the actor hops a served request takes);
//    in-process run_batch throughput: a Batcher with the server's settings kept full with
//    `connections` single-image requests (what Session.run_batch does);
// 3. served throughput (in 5 s slices alternating with the in-process run_batch ones): `pyflame-rt serve` in a child process, `connections` keep-alive HTTP
//    connections (Boost.Beast, one client thread) each sending single-image binary-tensor
//    requests back to back for `duration` seconds: inferences/s, p50/p99, errors;
// 4. served latency with one client (sequential requests) and its overhead over run() p50.
// Prints a table with the ratios; the last line is the same as JSON.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <iostream>
#include <map>
#include <sstream>
#include <memory>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "actors/batch_target.h"
#include "actors/batcher.h"
#include "session/inference_session.h"

using namespace pyflame_rt;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string model = "examples/models/tiny_cnn.onnx";
  std::string cli = "build/bin/pyflame-rt";
  double duration_s = 60;
  int connections = 32;
  int max_batch_size = 8;
  int batch_timeout_us = 0;
  int latency_requests = 2000;
  int http_threads = 1;
  int device_actors = 2;  // batches of the model computing at once (server and in-process Batcher)
  int threads = 1;  // intra-op threads of both the served and the in-process model (0 = per core)
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

double us_since(Clock::time_point t) { return std::chrono::duration<double, std::micro>(Clock::now() - t).count(); }

Tensor image(uint32_t seed) {
  Tensor t(DType::kFloat32, {1, 3, 32, 32});
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    seed = seed * 1664525u + 1013904223u;
    p[i] = static_cast<float>(seed >> 8) / 16777216.0f;
  }
  return t;
}

// --- in-process -------------------------------------------------------------------------

std::vector<double> run_latencies(const InferenceSession& s, int n) {
  std::map<std::string, Tensor> feeds{{"image", image(1)}};
  for (int i = 0; i < 50; ++i) (void)s.run({}, feeds);
  std::vector<double> lat;
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    auto out = s.run({}, feeds);
    lat.push_back(us_since(t0));
    if (!out.ok()) std::abort();
  }
  return lat;
}

std::shared_ptr<Batcher> make_batcher(std::shared_ptr<const InferenceSession> s, const Options& o) {
  BatchOptions bo;
  bo.max_batch_size = o.max_batch_size;
  bo.batch_timeout_ms = o.batch_timeout_us / 1000.0;
  bo.device_actors = o.device_actors;
  auto batcher = Batcher::create(make_session_target(s, "bench"), bo);
  if (!batcher.ok()) std::abort();
  return *batcher;
}

// Batcher::run() one request at a time: the actor hops a served request also takes.
std::vector<double> batcher_latencies(Batcher& b, int n) {
  std::map<std::string, Tensor> feeds{{"image", image(1)}};
  std::vector<double> lat;
  for (int i = 0; i < n + 50; ++i) {
    auto t0 = Clock::now();
    if (!b.run(feeds).ok()) std::abort();
    if (i >= 50) lat.push_back(us_since(t0));
  }
  return lat;
}

// Inferences through a Batcher kept `connections` requests deep for `seconds`: {count, seconds}.
std::pair<uint64_t, double> batcher_throughput(std::shared_ptr<Batcher> batcher, const Options& o, double seconds) {
  Tensor x = image(2);
  std::deque<std::future<BatchResult>> inflight;
  auto submit = [&] { inflight.push_back(batcher->submit({{"image", x}})); };
  for (int i = 0; i < o.connections; ++i) submit();
  uint64_t done = 0;
  auto t0 = Clock::now();
  auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < end) {
    BatchResult r = batcher->wait(inflight.front());
    inflight.pop_front();
    if (!r.ok()) std::abort();
    ++done;
    submit();
  }
  double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  for (auto& f : inflight) (void)batcher->wait(f);
  return {done, elapsed};
}

// --- the served model -------------------------------------------------------------------

struct Child {
  pid_t pid = -1;
  int port = 0;
};

Child start_server(const Options& o) {
  int fds[2];
  if (pipe(fds) != 0) std::abort();
  Child c;
  c.pid = fork();
  if (c.pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    std::string model = "cnn=" + o.model;
    std::string mbs = std::to_string(o.max_batch_size), bt = std::to_string(o.batch_timeout_us);
    std::string th = std::to_string(o.http_threads), intra = std::to_string(o.threads);
    std::string da = std::to_string(o.device_actors);
    execl(o.cli.c_str(), o.cli.c_str(), "serve", "--model", model.c_str(), "--host", "127.0.0.1", "--http-port", "0",
          "--max-batch-size", mbs.c_str(), "--batch-timeout-us", bt.c_str(), "--http-threads", th.c_str(),
          "--threads", intra.c_str(), "--device-actors", da.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  FILE* out = fdopen(fds[0], "r");
  char line[512];
  while (fgets(line, sizeof(line), out)) {
    std::string s(line);
    if (s.rfind("serving http ", 0) == 0) c.port = std::stoi(s.substr(s.rfind(':') + 1));
    if (s.rfind("ready", 0) == 0) break;
  }
  if (!c.port) {
    std::cerr << "the server did not start (" << o.cli << ")\n";
    std::exit(1);
  }
  return c;
}

// One binary-tensor request for a single image: JSON header + 12288 raw bytes.
bhttp::request<bhttp::string_body> make_request(int port) {
  Tensor x = image(3);
  std::string head = R"({"inputs":[{"name":"image","shape":[1,3,32,32],"datatype":"FP32",)"
                     R"("parameters":{"binary_data_size":12288}}],"parameters":{"binary_data_output":true}})";
  bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/v2/models/cnn/infer", 11};
  req.set(bhttp::field::host, "127.0.0.1:" + std::to_string(port));
  req.set("Inference-Header-Content-Length", std::to_string(head.size()));
  req.set(bhttp::field::content_type, "application/octet-stream");
  req.keep_alive(true);
  req.body() = head + std::string(static_cast<const char*>(x.raw_data()), x.nbytes());
  req.prepare_payload();
  return req;
}

struct LoadResult {
  uint64_t ok = 0, errors = 0;
  double seconds = 0;
  std::vector<double> latencies_us;
};

// A closed loop per connection: send, wait for the answer, send again, until `end`.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(asio::io_context& ioc, const bhttp::request<bhttp::string_body>& req, Clock::time_point end,
             LoadResult* result)
      : stream_(ioc), req_(req), end_(end), result_(result) {}
  void start(const tcp::endpoint& ep) {
    stream_.async_connect(ep, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->fail();
      self->stream_.socket().set_option(tcp::no_delay(true));
      self->send();
    });
  }

 private:
  void send() {
    if (Clock::now() >= end_) return;
    t0_ = Clock::now();
    bhttp::async_write(stream_, req_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->fail();
      self->res_ = {};
      bhttp::async_read(self->stream_, self->buffer_, self->res_, [self](beast::error_code ec, size_t) {
        if (ec) return self->fail();
        self->result_->latencies_us.push_back(us_since(self->t0_));
        if (self->res_.result() == bhttp::status::ok) ++self->result_->ok;
        else ++self->result_->errors;
        self->send();
      });
    });
  }
  void fail() { ++result_->errors; }

  beast::tcp_stream stream_;
  const bhttp::request<bhttp::string_body>& req_;
  Clock::time_point end_;
  LoadResult* result_;
  beast::flat_buffer buffer_;
  bhttp::response<bhttp::string_body> res_;
  Clock::time_point t0_;
};

LoadResult load(int port, int connections, double seconds) {
  asio::io_context ioc;
  auto req = make_request(port);
  LoadResult r;
  auto t0 = Clock::now();
  auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
  for (int i = 0; i < connections; ++i) std::make_shared<Connection>(ioc, req, end, &r)->start(ep);
  ioc.run();
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return r;
}

// Sequential requests on one connection: the served latency of a lone client.
std::vector<double> served_latencies(int port, int n) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  stream.socket().set_option(tcp::no_delay(true));
  auto req = make_request(port);
  beast::flat_buffer buffer;
  std::vector<double> lat;
  for (int i = 0; i < n + 50; ++i) {
    auto t0 = Clock::now();
    bhttp::write(stream, req);
    bhttp::response<bhttp::string_body> res;
    bhttp::read(stream, buffer, res);
    if (res.result() != bhttp::status::ok) {
      std::cerr << "served request failed: " << res.body() << "\n";
      std::exit(1);
    }
    if (i >= 50) lat.push_back(us_since(t0));  // after warm-up
  }
  return lat;
}

// GET /metrics summed over labels: name -> value (counters, _sum and _count of histograms).
std::map<std::string, double> server_metrics(int port) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, "/metrics", 11};
  bhttp::write(stream, req);
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(stream, buffer, res);
  std::map<std::string, double> v;
  std::istringstream in(res.body());
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::string key = line.substr(0, line.find('{'));
    if (auto le = line.find("le=\""); le != std::string::npos) {
      key += "|" + line.substr(le + 4, line.find('"', le + 4) - le - 4);  // name_bucket|bound
    }
    v[key] += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return v;
}

// The server's own view between two snapshots: mean batch and where the time went.
void print_server_view(const char* phase, std::map<std::string, double> before, std::map<std::string, double> v) {
  for (auto& [k, x] : v) x -= before[k];
  auto mean = [&](const std::string& h) {
    double n = v[h + "_count"];
    return n ? v[h + "_sum"] / n : 0.0;
  };
  // The bucket bound under which half the observations fall (an upper estimate of p50).
  auto p50 = [&](const std::string& h) {
    double half = v[h + "_count"] / 2, best = 0;
    std::string prefix = h + "_bucket|";
    for (const auto& [k, x] : v) {
      if (k.rfind(prefix, 0) != 0 || k == prefix + "+Inf" || x < half) continue;
      double bound = std::stod(k.substr(prefix.size()));
      if (best == 0 || bound < best) best = bound;
    }
    return best;
  };
  std::printf("server, %s: %.0f requests in %.0f model runs (mean batch %.2f); mean us: request %.1f, queue %.1f, "
              "compute %.1f\n",
              phase, v["pyflame_inference_count_total"], v["pyflame_inference_exec_count_total"],
              v["pyflame_inference_exec_count_total"]
                  ? v["pyflame_inference_count_total"] / v["pyflame_inference_exec_count_total"]
                  : 0.0,
              mean("pyflame_inference_request_duration_us"), mean("pyflame_inference_queue_duration_us"),
              mean("pyflame_inference_compute_duration_us"));
  std::printf("server, %s: p50 <= us: request %.0f, queue %.0f, compute %.0f (histogram bounds)\n", phase,
              p50("pyflame_inference_request_duration_us"), p50("pyflame_inference_queue_duration_us"),
              p50("pyflame_inference_compute_duration_us"));
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") o.model = v;
    else if (k == "--cli") o.cli = v;
    else if (k == "--duration") o.duration_s = std::stod(v);
    else if (k == "--connections") o.connections = std::stoi(v);
    else if (k == "--max-batch-size") o.max_batch_size = std::stoi(v);
    else if (k == "--batch-timeout-us") o.batch_timeout_us = std::stoi(v);
    else if (k == "--latency-requests") o.latency_requests = std::stoi(v);
    else if (k == "--http-threads") o.http_threads = std::stoi(v);
    else if (k == "--threads") o.threads = std::stoi(v);
    else if (k == "--device-actors") o.device_actors = std::stoi(v);
    else {
      std::cerr << "unknown option " << k << "\n";
      std::exit(2);
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  SessionOptions so;
  so.num_threads = o.threads;
  auto created = InferenceSession::create(o.model, so);
  if (!created.ok()) {
    std::cerr << created.status().to_string() << "\n";
    return 1;
  }
  std::shared_ptr<const InferenceSession> session = std::move(created).value();

  Child server = start_server(o);
  // Warm the served model (first runs build kernels) before anything is timed.
  (void)load(server.port, o.connections, 2.0);

  std::vector<double> run_lat = run_latencies(*session, o.latency_requests);
  auto batcher = make_batcher(session, o);
  std::vector<double> batcher_lat = batcher_latencies(*batcher, o.latency_requests);
  // Throughput in alternating 5 s slices (in-process, then served), so that drifts of a shared
  // machine hit both alike.
  auto m0 = server_metrics(server.port);
  LoadResult served;
  uint64_t batch_done = 0;
  double batch_seconds = 0;
  for (double left = o.duration_s; left > 0; left -= 5) {
    double slice = std::min(5.0, left);
    auto [n, sec] = batcher_throughput(batcher, o, slice);
    batch_done += n;
    batch_seconds += sec;
    LoadResult r = load(server.port, o.connections, slice);
    served.ok += r.ok;
    served.errors += r.errors;
    served.seconds += r.seconds;
    served.latencies_us.insert(served.latencies_us.end(), r.latencies_us.begin(), r.latencies_us.end());
  }
  batcher->stop();
  double batch_ips = static_cast<double>(batch_done) / batch_seconds;
  auto m1 = server_metrics(server.port);
  std::vector<double> one = served_latencies(server.port, o.latency_requests);
  auto m2 = server_metrics(server.port);
  print_server_view("load", m0, m1);
  print_server_view("one client", m1, m2);
  kill(server.pid, SIGTERM);
  int status = 0;
  waitpid(server.pid, &status, 0);

  double served_ips = static_cast<double>(served.ok) / served.seconds;
  double run_p50 = percentile(run_lat, 0.5), one_p50 = percentile(one, 0.5);
  std::printf("model %s, %d connections, max_batch_size %d, batch timeout %d us, intra-op threads %d, device actors %d, %.0f s of load\n",
              o.model.c_str(), o.connections, o.max_batch_size, o.batch_timeout_us, o.threads, o.device_actors,
              o.duration_s);
  std::printf("%-44s %12s %10s %10s\n", "measure", "value", "p50 us", "p99 us");
  std::printf("%-44s %12s %10.1f %10.1f\n", "in-process run(), batch 1, one caller", "", run_p50,
              percentile(run_lat, 0.99));
  std::printf("%-44s %12s %10.1f %10.1f\n", "in-process Batcher run(), one caller", "", percentile(batcher_lat, 0.5),
              percentile(batcher_lat, 0.99));
  std::printf("%-44s %10.0f/s %10s %10s\n", "in-process run_batch (Batcher), inferences", batch_ips, "", "");
  std::printf("%-44s %10.0f/s %10.1f %10.1f\n", "served HTTP binary, inferences", served_ips,
              percentile(served.latencies_us, 0.5), percentile(served.latencies_us, 0.99));
  std::printf("%-44s %12llu\n", "served errors", static_cast<unsigned long long>(served.errors));
  std::printf("%-44s %12.2f  (target >= 0.8)\n", "served / in-process run_batch throughput", served_ips / batch_ips);
  std::printf("%-44s %12s %10.1f %10.1f\n", "served HTTP binary, one client", "", one_p50, percentile(one, 0.99));
  std::printf("%-44s %12.1f  (target <= 50 us)\n", "server overhead p50 (one client - run())", one_p50 - run_p50);
  std::printf("%-44s %12.1f\n", "  of which HTTP (one client - Batcher run())", one_p50 - percentile(batcher_lat, 0.5));
  std::printf(
      "{\"run_p50_us\": %.1f, \"run_batch_ips\": %.0f, \"served_ips\": %.0f, \"served_p50_us\": %.1f, "
      "\"served_p99_us\": %.1f, \"errors\": %llu, \"ratio\": %.3f, \"one_client_p50_us\": %.1f, "
      "\"overhead_p50_us\": %.1f, \"batcher_p50_us\": %.1f}\n",
      run_p50, batch_ips, served_ips, percentile(served.latencies_us, 0.5), percentile(served.latencies_us, 0.99),
      static_cast<unsigned long long>(served.errors), served_ips / batch_ips, one_p50, one_p50 - run_p50,
      percentile(batcher_lat, 0.5));
  return 0;
}
