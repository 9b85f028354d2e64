#include "compile_command.h"

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

int usage() {
  std::cerr << "usage: pyflame-rt compile MODEL -o OUT.pfm [--opt none|basic|extended|all]\n"
               "                          [--input-shape NAME=1,3,224,224 ...] [--precision fp32]\n";
  return 2;
}

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

int compile_command(const std::vector<std::string>& args) {
  if (args.empty()) return usage();
  std::string model = args[0], out, precision = "fp32";
  SessionOptions opts;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    bool has_value = i + 1 < args.size();
    if ((a == "-o" || a == "--output") && has_value) {
      out = args[++i];
    } else if (a == "--opt" && has_value) {
      std::string name = args[++i];
      bool known = false;
      for (OptLevel level : {OptLevel::kNone, OptLevel::kBasic, OptLevel::kExtended, OptLevel::kAll}) {
        std::string n = opt_level_name(level);
        for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (n == name) {
          opts.optimization_level = level;
          known = true;
        }
      }
      if (!known) {
        std::cerr << "error: --opt expects none, basic, extended or all, got '" << name << "'\n";
        return 2;
      }
    } else if (a == "--input-shape" && has_value) {
      const std::string& spec = args[++i];
      size_t eq = spec.find('=');
      if (eq == std::string::npos || eq == 0) {
        std::cerr << "error: --input-shape expects NAME=1,3,224,224, got '" << spec << "'\n";
        return 2;
      }
      opts.input_shapes[spec.substr(0, eq)] = spec.substr(eq + 1);
    } else if (a == "--precision" && has_value) {
      precision = args[++i];
    } else {
      return usage();
    }
  }
  if (out.empty()) return usage();
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

}  // namespace pyflame_rt
