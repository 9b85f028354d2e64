// pyflame-rt: inspect, run and convert models from the command line.
//
//   pyflame-rt inspect model.onnx
//   pyflame-rt run model.onnx --input x=x.npy [--output-dir out/]
//   pyflame-rt convert model.onnx -o model.pfm
//   pyflame-rt serve model.onnx --port 4242       (a remote stage for pipelines elsewhere)
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "session/inference_session.h"
#include "graph/model_loader.h"
#include "graph/pfm_format.h"
#include "npy_io.h"
#include "quantize_command.h"
#include "serve_command.h"

using namespace pyflame_rt;

namespace {

int usage() {
  std::cerr << "usage:\n"
               "  pyflame-rt inspect MODEL\n"
               "  pyflame-rt run MODEL --input NAME=FILE.npy [--input ...] [--output-dir DIR]\n"
               "  pyflame-rt convert MODEL.onnx -o MODEL.pfm\n"
               "  pyflame-rt serve MODEL [--name NAME] [--host HOST] [--port PORT] [--threads N]\n"
               "  pyflame-rt quantize MODEL [--calib DIR] -o OUT.onnx [--mode static|dynamic|qat]\n"
               "                     [--dtype int8|fp16|bfloat16] [--method minmax|entropy|percentile]\n";
  return 2;
}

int fail(const Status& st) {
  std::cerr << "error: " << st.to_string() << "\n";
  return 1;
}

void print_infos(const char* title, const std::vector<TensorInfo>& infos) {
  std::cout << title << ":\n";
  for (const auto& i : infos) {
    std::cout << "  " << i.name << "  " << i.type() << "  " << i.shape.to_string() << "\n";
  }
}

int inspect(const std::string& path) {
  auto graph = load_model_file(path);
  if (!graph.ok()) return fail(graph.status());
  SessionOptions opts;
  opts.optimization_level = OptLevel::kNone;
  auto session = InferenceSession::create_from_graph(*graph, opts);
  if (!session.ok()) return fail(session.status());
  std::cout << "model: " << path << "\n";
  print_infos("inputs", (*session)->inputs());
  print_infos("outputs", (*session)->outputs());
  std::cout << "parameters: " << graph->parameter_count() << "\n";
  std::cout << "nodes: " << graph->nodes.size() << "\nops:\n";
  for (const auto& kv : graph->op_histogram()) {
    std::cout << "  " << std::left << std::setw(28) << kv.first << kv.second << "\n";
  }
  return 0;
}

int run(const std::string& path, const std::vector<std::string>& inputs, const std::string& out_dir) {
  auto session = InferenceSession::create(path);
  if (!session.ok()) return fail(session.status());
  std::map<std::string, Tensor> feeds;
  for (const auto& spec : inputs) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos) {
      return fail(invalid_argument("--input expects NAME=FILE.npy, got '", spec, "'"));
    }
    auto t = read_npy(spec.substr(eq + 1));
    if (!t.ok()) return fail(t.status());
    feeds[spec.substr(0, eq)] = std::move(t).value();
  }
  auto outs = (*session)->run({}, feeds);
  if (!outs.ok()) return fail(outs.status());
  std::error_code ec;
  if (!out_dir.empty() && !std::filesystem::create_directories(out_dir, ec) && ec) {
    return fail(make_status(StatusCode::kNoSuchFile, "cannot create --output-dir '", out_dir, "': ", ec.message()));
  }
  for (size_t i = 0; i < outs->size(); ++i) {
    const auto& name = (*session)->outputs()[i].name;
    const Tensor& t = (*outs)[i];
    std::cout << name << ": " << t.summary();
    if (!out_dir.empty()) {
      std::string file = out_dir + "/" + name + ".npy";
      Status st = write_npy(file, t);
      if (!st.ok()) return fail(st);
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

int convert(const std::string& in, const std::string& out) {
  auto graph = load_model_file(in);
  if (!graph.ok()) return fail(graph.status());
  Status st = save_pfm(*graph, out);
  if (!st.ok()) return fail(st);
  std::cout << "wrote " << out << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() < 2) return usage();
  if (args[0] == "serve") return serve_command({args.begin() + 1, args.end()});
  if (args[0] == "quantize") return quantize_command({args.begin() + 1, args.end()});
  const std::string& cmd = args[0];
  const std::string& model = args[1];
  if (cmd == "inspect" && args.size() == 2) return inspect(model);
  if (cmd == "run") {
    std::vector<std::string> inputs;
    std::string out_dir;
    for (size_t i = 2; i < args.size(); ++i) {
      if (args[i] == "--input" && i + 1 < args.size()) inputs.push_back(args[++i]);
      else if (args[i] == "--output-dir" && i + 1 < args.size()) out_dir = args[++i];
      else return usage();
    }
    return run(model, inputs, out_dir);
  }
  if (cmd == "convert" && args.size() == 4 && args[2] == "-o") return convert(model, args[3]);
  return usage();
}
