// `pyflame-rt inspect MODEL`: inputs, outputs, parameter count and op histogram.
#include <iomanip>
#include <memory>

#include "session/inference_session.h"
#include "cli_command.h"
#include "graph/model_loader.h"

namespace pyflame_rt {
namespace {

void print_infos(const char* title, const std::vector<TensorInfo>& infos) {
  std::cout << title << ":\n";
  for (const auto& i : infos) {
    std::cout << "  " << i.name << "  " << i.type() << "  " << i.shape.to_string() << "\n";
  }
}

int inspect(const std::string& path) {
  auto graph = load_model_file(path);
  if (!graph.ok()) return cli_fail(graph.status());
  SessionOptions opts;
  opts.optimization_level = OptLevel::kNone;  // the model as written, not as optimised
  auto session = InferenceSession::create_from_graph(*graph, opts);
  if (!session.ok()) return cli_fail(session.status());
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

}  // namespace

CliCommand add_inspect_command(CLI::App& app) {
  auto model = std::make_shared<std::string>();
  CLI::App* sub = add_cli_subcommand(app, "inspect", "inputs, outputs, ops and parameter count of a model");
  sub->add_option("model", *model, "ONNX or .pfm model")->required();
  return {sub, [model] { return inspect(*model); }};
}

}  // namespace pyflame_rt
