#include <memory>

#include "cli_command.h"

#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <thread>

#include "session/inference_session.h"

namespace pyflame_rt {

namespace {

// A bar that moves while the compile runs (its length is not known in advance: the bar
// sweeps and the elapsed time counts up), on stderr when it is a terminal.
class Progress {
 public:
  explicit Progress(std::string what) : what_(std::move(what)), tty_(::isatty(2)) {
    if (tty_) thread_ = std::thread([this] { loop(); });
  }
  ~Progress() { stop(); }
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void loop() {
    auto start = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(mu_);
    for (int tick = 0; !done_; ++tick) {
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::string bar(20, ' ');
      for (int k = 0; k < 4; ++k) bar[(tick + k) % 20] = '=';
      std::fprintf(stderr, "\r%s [%s] %.1f s", what_.c_str(), bar.c_str(), s);
      cv_.wait_for(lock, std::chrono::milliseconds(100), [this] { return done_; });
    }
    std::fprintf(stderr, "\r\033[K");
  }

  std::string what_;
  bool tty_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace

namespace {

struct CompileCliOptions {
  std::string model, out, opt = "all", precision = "fp32";
  std::vector<std::string> input_shapes;
};

int compile_model(const CompileCliOptions& o) {
  const std::string& model = o.model;
  const std::string& out = o.out;
  const std::string& precision = o.precision;
  SessionOptions opts;
  for (OptLevel level : {OptLevel::kNone, OptLevel::kBasic, OptLevel::kExtended, OptLevel::kAll}) {
    std::string n = opt_level_name(level);
    for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (n == o.opt) opts.optimization_level = level;
  }
  for (const auto& spec : o.input_shapes) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "error: --input-shape expects NAME=1,3,224,224, got '" << spec << "'\n";
      return 2;
    }
    opts.input_shapes[spec.substr(0, eq)] = spec.substr(eq + 1);
  }
  if (precision != "fp32") {
    std::cerr << "error: --precision " << precision
              << " is not available yet: plans are fp32 until reduced precision (int8, fp16, bf16) lands\n";
    return 1;
  }
  auto start = std::chrono::steady_clock::now();
  Progress progress("compiling " + model);
  auto session = InferenceSession::create(model, opts);
  Status st = session.ok() ? (*session)->save_plan(out) : session.status();
  progress.stop();
  if (!st.ok()) {
    std::cerr << "error: " << st.to_string() << "\n";
    return 1;
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "wrote " << out << " (" << (*session)->compiled_model().partitions().size() << " partition(s), "
            << s << " s)\n";
  return 0;
}

}  // namespace

CliCommand add_compile_command(CLI::App& app) {
  auto o = std::make_shared<CompileCliOptions>();
  CLI::App* sub = add_cli_subcommand(app, "compile", "compile a model ahead of time into a plan file that "
                                                      "InferenceSession(\"x.pfm\") runs directly");
  sub->add_option("model", o->model, "ONNX or .pfm model")->required();
  sub->add_option("-o,--output", o->out, "the plan file to write")->required();
  sub->add_option("--opt", o->opt, "optimisation level")->check(CLI::IsMember({"none", "basic", "extended", "all"}))
      ->capture_default_str();
  sub->add_option("--input-shape", o->input_shapes, "NAME=1,3,224,224: fix an input's free dims (repeatable)");
  sub->add_option("--precision", o->precision, "fp32 (int8, fp16, bf16 arrive with reduced precision)")
      ->capture_default_str();
  return {sub, [o] { return compile_model(*o); }};
}

}  // namespace pyflame_rt
