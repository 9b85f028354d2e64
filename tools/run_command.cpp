// `pyflame-rt run MODEL --input NAME=FILE.npy ... [--output-dir DIR]`: one run, outputs
// printed (first values) or written as .npy files.
#include <filesystem>
#include <map>
#include <memory>

#include "session/inference_session.h"
#include "cli_command.h"
#include "npy_io.h"

namespace pyflame_rt {
namespace {

struct RunCommandOptions {
  std::string model;
  std::vector<std::string> inputs;
  std::string out_dir;
  SessionOptions session;  // --run-timeout-ms, --memory-limit-mb
};

// Output names come from the model, which is untrusted: one naming a path ("../x", "/tmp/x")
// must not write outside --output-dir.
Status check_output_file_name(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find_first_of(std::string("/\\\0", 3)) != std::string::npos) {
    return invalid_argument("output '", name, "' cannot be written under --output-dir: an output name must be a plain "
                            "file name (no '/', '\\', NUL, '.' or '..')");
  }
  return Status::OK();
}

int run(const RunCommandOptions& o) {
  auto session = InferenceSession::create(o.model, o.session);
  if (!session.ok()) return cli_fail(session.status());
  for (const auto& w : (*session)->warnings()) std::cerr << "warning: " << w << "\n";
  std::map<std::string, Tensor> feeds;
  for (const auto& spec : o.inputs) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos) {
      return cli_fail(invalid_argument("--input expects NAME=FILE.npy, got '", spec, "'"));
    }
    auto t = read_npy(spec.substr(eq + 1));
    if (!t.ok()) return cli_fail(t.status());
    feeds[spec.substr(0, eq)] = std::move(t).value();
  }
  if (!o.out_dir.empty()) {
    for (const auto& out : (*session)->outputs()) {
      if (Status st = check_output_file_name(out.name); !st.ok()) return cli_fail(st);
    }
  }
  auto outs = (*session)->run({}, feeds);
  if (!outs.ok()) return cli_fail(outs.status());
  std::error_code ec;
  if (!o.out_dir.empty() && !std::filesystem::create_directories(o.out_dir, ec) && ec) {
    return cli_fail(make_status(StatusCode::kNoSuchFile, "cannot create --output-dir '", o.out_dir, "': ", ec.message()));
  }
  for (size_t i = 0; i < outs->size(); ++i) {
    const auto& name = (*session)->outputs()[i].name;
    const Tensor& t = (*outs)[i];
    std::cout << name << ": " << t.summary();
    if (!o.out_dir.empty()) {
      std::string file = o.out_dir + "/" + name + ".npy";
      Status st = write_npy(file, t);
      if (!st.ok()) return cli_fail(st);
      std::cout << " -> " << file;
    } else if (dtype_is_float(t.dtype()) || dtype_is_integer(t.dtype())) {
      std::cout << " [";
      for (int64_t k = 0; k < std::min<int64_t>(t.numel(), 8); ++k) {
        std::cout << (k ? ", " : "") << t.value_as_double(k);
      }
      std::cout << (t.numel() > 8 ? ", ...]" : "]");
    }
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

CliCommand add_run_command(CLI::App& app) {
  auto o = std::make_shared<RunCommandOptions>();
  CLI::App* sub = add_cli_subcommand(app, "run", "run a model once on inputs from .npy files");
  sub->add_option("model", o->model, "ONNX or .pfm model")->required();
  sub->add_option("--input", o->inputs, "NAME=FILE.npy, once per input")->allow_extra_args(false);
  sub->add_option("--output-dir", o->out_dir, "write each output as DIR/NAME.npy");
  // Untrusted models (docs/reliability.md): a deadline for the run and a memory bound.
  sub->add_option("--run-timeout-ms", o->session.run_timeout_ms, "deadline of the run (0 = none)")
      ->check(CLI::Range(static_cast<int64_t>(0), static_cast<int64_t>(86400000)));
  sub->add_option("--memory-limit-mb", o->session.memory_limit_mb, "memory the run may hold (0 = no limit)")
      ->check(CLI::Range(static_cast<int64_t>(0), static_cast<int64_t>(1) << 30));
  return {sub, [o] { return run(*o); }};
}

}  // namespace pyflame_rt
