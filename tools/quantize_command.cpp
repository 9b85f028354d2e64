#include <memory>

#include "cli_command.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

namespace pyflame_rt {

namespace {

// The pyflame_rt package next to this binary in a build tree (build/bin -> build/python), so
// the CLI works without installing the package; an installed package is found as usual.
std::string package_dir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  auto dir = exe.parent_path().parent_path() / "python";
  return std::filesystem::exists(dir / "pyflame_rt" / "quantization.py", ec) ? dir.string() : std::string();
}

}  // namespace

namespace {

int quantize_command(const std::vector<std::string>& args) {
  std::string dir = package_dir();
  if (!dir.empty()) {
    const char* old = std::getenv("PYTHONPATH");
    std::string path = old && *old ? dir + ":" + old : dir;
    setenv("PYTHONPATH", path.c_str(), 1);
  }
  // Debian's interpreter: it is the one that sees numpy and onnx (see tools/install_deps.sh).
  const char* python = std::getenv("PYFLAME_RT_PYTHON");
  if (!python || !*python) python = "/usr/bin/python3";
  std::vector<std::string> words{python, "-m", "pyflame_rt.quantization"};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  execv(python, argv.data());
  std::cerr << "error: pyflame-rt quantize: could not start " << python << " (expected a Python 3 with "
               "numpy and onnx; set PYFLAME_RT_PYTHON)\n";
  return 1;
}

}  // namespace

// `pyflame-rt quantize MODEL --calib DIR -o OUT [...]`: the quantizer is Python
// (pyflame_rt.quantization); its own parser reads the words after `quantize`.
CliCommand add_quantize_command(CLI::App& app) {
  auto args = std::make_shared<std::vector<std::string>>();
  CLI::App* sub = add_cli_subcommand(app, "quantize",
                                     "write an INT8 QDQ (or fp16/bf16) model: MODEL --calib DIR -o OUT "
                                     "(pyflame-rt quantize -- --help for every option)");
  sub->prefix_command();
  sub->allow_extras();
  return {sub, [sub, args] { return quantize_command(sub->remaining()); }};
}

}  // namespace pyflame_rt
