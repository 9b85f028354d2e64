// grpc_zmq_bench: gRPC and ZeroMQ serving against in-process run() of the same model, in one run.
//
//   build/bin/pyflame-grpc-zmq-bench [--model examples/models/tiny_cnn.onnx] [--requests 2000]
//       [--duration 10] [--connections 32] [--max-batch-size 8] [--server-threads N]
//
// 1. `pyflame-rt serve` in a child process with --grpc-port and --zmq-pull/--zmq-pub; one client,
//    sequential single-image requests (raw tensors), interleaved call by call with in-process
//    run(): run(), gRPC ModelInfer (unary), gRPC ModelStreamInfer (one open stream, write then
//    read), ZeroMQ PUSH -> PUB round trip; p50/p99 and overhead over run() p50 (target <= 50 us);
// 2. gRPC throughput: `connections` requests kept in flight (async unary calls) for `duration`
//    seconds against an in-process Batcher kept as deep: inferences/s, p50/p99, errors.
// Prints a table; the last line is the same as JSON.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <deque>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "actors/batch_target.h"
#include "actors/batcher.h"
#include "session/inference_session.h"
#include "net/proto/grpc_service.grpc.pb.h"

using namespace pyflame_rt;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string model = "examples/models/tiny_cnn.onnx";
  std::string cli = "build/bin/pyflame-rt";
  int requests = 2000;
  double duration_s = 10;
  int connections = 32;
  int max_batch_size = 8;
  int server_threads = -1;  // the served model's --threads (-1: the CLI's default)
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

std::string raw(const Tensor& t) { return std::string(static_cast<const char*>(t.raw_data()), t.nbytes()); }

double batcher_throughput(std::shared_ptr<const InferenceSession> s, const Options& o, double seconds) {
  BatchOptions bo;
  bo.max_batch_size = o.max_batch_size;
  bo.batch_timeout_ms = 0;
  bo.device_actors = 2;
  auto batcher = Batcher::create(make_session_target(s, "bench"), bo);
  if (!batcher.ok()) std::abort();
  Tensor x = image(2);
  std::deque<std::future<BatchResult>> inflight;
  for (int i = 0; i < o.connections; ++i) inflight.push_back((*batcher)->submit({{"image", x}}));
  uint64_t done = 0;
  auto t0 = Clock::now();
  auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < end) {
    if (!(*batcher)->wait(inflight.front()).ok()) std::abort();
    inflight.pop_front();
    ++done;
    inflight.push_back((*batcher)->submit({{"image", x}}));
  }
  double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  for (auto& f : inflight) (void)(*batcher)->wait(f);
  return static_cast<double>(done) / elapsed;
}

struct Child {
  pid_t pid = -1;
  std::string grpc, zmq_pull, zmq_pub;
};

Child start_server(const Options& o) {
  int fds[2];
  if (pipe(fds) != 0) std::abort();
  Child c;
  c.pid = fork();
  if (c.pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    std::string model = "cnn=" + o.model, mbs = std::to_string(o.max_batch_size);
    std::string threads = std::to_string(o.server_threads);
    std::vector<const char*> argv{o.cli.c_str(), "serve", "--model", model.c_str(), "--host", "127.0.0.1",
                                  "--http-port", "-1", "--grpc-port", "0", "--zmq-pull", "tcp://127.0.0.1:*",
                                  "--zmq-pub", "tcp://127.0.0.1:*", "--max-batch-size", mbs.c_str()};
    if (o.server_threads >= 0) {
      argv.push_back("--threads");
      argv.push_back(threads.c_str());
    }
    argv.push_back(nullptr);
    execv(o.cli.c_str(), const_cast<char* const*>(argv.data()));
    _exit(127);
  }
  close(fds[1]);
  FILE* out = fdopen(fds[0], "r");
  char line[512];
  while (fgets(line, sizeof(line), out)) {
    std::string s(line);
    if (!s.empty() && s.back() == '\n') s.pop_back();
    if (s.rfind("serving grpc ", 0) == 0) c.grpc = s.substr(13);
    if (s.rfind("serving zmq pull ", 0) == 0) {
      std::string rest = s.substr(17);
      c.zmq_pull = rest.substr(0, rest.find(' '));
      c.zmq_pub = rest.substr(rest.find(" pub ") + 5);
    }
    if (s == "ready") break;
  }
  if (c.grpc.empty() || c.zmq_pull.empty()) {
    std::cerr << "the server did not start (" << o.cli << ")\n";
    std::exit(1);
  }
  return c;
}

inference::ModelInferRequest infer_request() {
  inference::ModelInferRequest req;
  req.set_model_name("cnn");
  auto* in = req.add_inputs();
  in->set_name("image");
  in->set_datatype("FP32");
  for (int64_t d : {1, 3, 32, 32}) in->add_shape(d);
  req.add_raw_input_contents(raw(image(3)));
  return req;
}

// A PUSH producer and a SUB consumer of the server's ZeroMQ endpoints.
class ZmqPeer {
 public:
  explicit ZmqPeer(const Child& c) {
    push_.connect(c.zmq_pull);
    sub_.set(zmq::sockopt::subscribe, "cnn");
    sub_.connect(c.zmq_pub);
    // A subscription takes a moment to reach the PUB socket: send until answers come.
    sub_.set(zmq::sockopt::rcvtimeo, 50);
    std::vector<zmq::message_t> m;
    for (int i = 0; i < 200; ++i) {
      send();
      if (zmq::recv_multipart(sub_, std::back_inserter(m))) break;
    }
    sub_.set(zmq::sockopt::rcvtimeo, 100);
    while (zmq::recv_multipart(sub_, std::back_inserter(m))) m.clear();
    sub_.set(zmq::sockopt::rcvtimeo, 30000);
  }
  void round_trip() {
    std::vector<zmq::message_t> m;
    send();
    if (!zmq::recv_multipart(sub_, std::back_inserter(m)) || m.size() != 3) std::abort();
  }

 private:
  void send() {
    push_.send(zmq::buffer(header_), zmq::send_flags::sndmore);
    push_.send(zmq::buffer(x_), zmq::send_flags::none);
  }
  zmq::context_t ctx_;
  zmq::socket_t push_{ctx_, zmq::socket_type::push}, sub_{ctx_, zmq::socket_type::sub};
  const std::string header_ =
      R"({"model":"cnn","seq":0,"inputs":[{"name":"image","datatype":"FP32","shape":[1,3,32,32]}]})";
  const std::string x_ = raw(image(3));
};

struct Load {
  uint64_t ok = 0, errors = 0;
  double seconds = 0;
  std::vector<double> latencies_us;
};

// `connections` async unary calls kept in flight on one channel for `seconds`.
Load grpc_load(inference::GRPCInferenceService::Stub& stub, int connections, double seconds) {
  struct Call {
    grpc::ClientContext ctx;
    inference::ModelInferResponse resp;
    Clock::time_point start;
  };
  const auto req = infer_request();
  std::mutex mu;
  std::condition_variable cv;
  Load load;
  int inflight = 0;
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::function<void()> issue = [&] {
    auto call = std::make_shared<Call>();
    call->start = Clock::now();
    stub.async()->ModelInfer(&call->ctx, &req, &call->resp, [&, call](grpc::Status st) {
      double us = us_since(call->start);
      bool again;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (st.ok()) {
          ++load.ok;
          load.latencies_us.push_back(us);
        } else {
          ++load.errors;
        }
        again = Clock::now() < end;
        if (!again) --inflight;
      }
      if (again) {
        issue();
      } else {
        cv.notify_all();
      }
    });
  };
  {
    std::lock_guard<std::mutex> lock(mu);
    inflight = connections;
  }
  for (int i = 0; i < connections; ++i) issue();
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return inflight == 0; });
  load.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return load;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") o.model = v;
    else if (k == "--cli") o.cli = v;
    else if (k == "--requests") o.requests = std::stoi(v);
    else if (k == "--duration") o.duration_s = std::stod(v);
    else if (k == "--connections") o.connections = std::stoi(v);
    else if (k == "--max-batch-size") o.max_batch_size = std::stoi(v);
    else if (k == "--server-threads") o.server_threads = std::stoi(v);
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
  // The in-process side runs with the server's defaults: 1 intra-op thread, 2 device actors.
  SessionOptions so;
  so.num_threads = o.server_threads >= 0 ? o.server_threads : 1;
  auto created = InferenceSession::create(o.model, so);
  if (!created.ok()) {
    std::cerr << created.status().to_string() << "\n";
    return 1;
  }
  std::shared_ptr<const InferenceSession> session = std::move(created).value();
  Child server = start_server(o);
  auto stub = inference::GRPCInferenceService::NewStub(grpc::CreateChannel(server.grpc, grpc::InsecureChannelCredentials()));

  // Interleaved call by call (run, unary, stream, ZeroMQ, run, ...), so a drift of the shared
  // machine hits every path alike.
  std::vector<double> run_lat, batched, unary, streamed, zmq;
  {
    std::map<std::string, Tensor> feeds{{"image", image(3)}};
    // The server's path without a transport: a Batcher with the server's settings, one caller.
    BatchOptions bo;
    bo.max_batch_size = o.max_batch_size;
    bo.batch_timeout_ms = 0;
    bo.device_actors = 2;
    auto batcher = Batcher::create(make_session_target(session, "bench"), bo);
    if (!batcher.ok()) std::abort();
    auto req = infer_request();
    grpc::ClientContext sctx;
    auto stream = stub->ModelStreamInfer(&sctx);
    ZmqPeer peer(server);
    for (int i = 0; i < o.requests + 100; ++i) {
      const bool keep = i >= 100;  // the first 100 warm every path
      auto t0 = Clock::now();
      if (!session->run({}, feeds).ok()) std::abort();
      if (keep) run_lat.push_back(us_since(t0));
      t0 = Clock::now();
      if (!(*batcher)->run(feeds).ok()) std::abort();
      if (keep) batched.push_back(us_since(t0));
      {
        grpc::ClientContext ctx;
        inference::ModelInferResponse resp;
        t0 = Clock::now();
        if (!stub->ModelInfer(&ctx, req, &resp).ok()) std::abort();
        if (keep) unary.push_back(us_since(t0));
      }
      inference::ModelStreamInferResponse sresp;
      t0 = Clock::now();
      if (!stream->Write(req) || !stream->Read(&sresp) || !sresp.error_message().empty()) std::abort();
      if (keep) streamed.push_back(us_since(t0));
      t0 = Clock::now();
      peer.round_trip();
      if (keep) zmq.push_back(us_since(t0));
    }
    stream->WritesDone();
    (void)stream->Finish();
  }
  double batch_ips = batcher_throughput(session, o, o.duration_s);
  Load load = grpc_load(*stub, o.connections, o.duration_s);
  kill(server.pid, SIGTERM);
  int status = 0;
  waitpid(server.pid, &status, 0);

  const double run_p50 = percentile(run_lat, 0.5);
  const double served_ips = static_cast<double>(load.ok) / load.seconds;
  std::printf("model %s, %d requests per measure, max_batch_size %d\n", o.model.c_str(), o.requests,
              o.max_batch_size);
  std::printf("%-46s %10s %10s %14s\n", "measure (one client, sequential)", "p50 us", "p99 us", "overhead p50");
  std::printf("%-46s %10.1f %10.1f %14s\n", "in-process run(), batch 1", run_p50, percentile(run_lat, 0.99), "");
  auto row = [&](const char* name, const std::vector<double>& v) {
    std::printf("%-46s %10.1f %10.1f %11.1f us\n", name, percentile(v, 0.5), percentile(v, 0.99),
                percentile(v, 0.5) - run_p50);
  };
  row("in-process Batcher::run() (the actor hops)", batched);
  row("gRPC ModelInfer (unary, raw tensors)", unary);
  row("gRPC ModelStreamInfer (one open stream)", streamed);
  row("ZeroMQ PUSH -> PUB round trip", zmq);
  std::printf("%-46s %10.0f/s\n", "in-process Batcher, inferences", batch_ips);
  std::printf("%-46s %10.0f/s  p50 %.1f us  p99 %.1f us  errors %llu  ratio %.2f\n",
              ("gRPC, " + std::to_string(o.connections) + " calls in flight").c_str(), served_ips,
              percentile(load.latencies_us, 0.5), percentile(load.latencies_us, 0.99),
              static_cast<unsigned long long>(load.errors), served_ips / batch_ips);
  std::printf(
      "{\"run_p50_us\": %.1f, \"batcher_run_p50_us\": %.1f, \"grpc_unary_p50_us\": %.1f, \"grpc_stream_p50_us\": %.1f, \"zmq_p50_us\": %.1f, "
      "\"grpc_unary_overhead_us\": %.1f, \"grpc_stream_overhead_us\": %.1f, \"zmq_overhead_us\": %.1f, "
      "\"batcher_ips\": %.0f, \"grpc_ips\": %.0f, \"grpc_load_p99_us\": %.1f, \"grpc_errors\": %llu}\n",
      run_p50, percentile(batched, 0.5), percentile(unary, 0.5), percentile(streamed, 0.5), percentile(zmq, 0.5), percentile(unary, 0.5) - run_p50,
      percentile(streamed, 0.5) - run_p50, percentile(zmq, 0.5) - run_p50, batch_ips, served_ips,
      percentile(load.latencies_us, 0.99), static_cast<unsigned long long>(load.errors));
  return 0;
}
