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
};

int run(const RunCommandOptions& o) {
  auto session = InferenceSession::create(o.model);
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
  return {sub, [o] { return run(*o); }};
}

}  // namespace pyflame_rt
