// `pyflame-rt convert MODEL.onnx -o MODEL.pfm`: the native format, weights included.
#include <memory>

#include "cli_command.h"
#include "graph/model_loader.h"
#include "graph/pfm_format.h"

namespace pyflame_rt {
namespace {

int convert(const std::string& in, const std::string& out) {
  auto graph = load_model_file(in);
  if (!graph.ok()) return cli_fail(graph.status());
  Status st = save_pfm(*graph, out);
  if (!st.ok()) return cli_fail(st);
  std::cout << "wrote " << out << "\n";
  return 0;
}

}  // namespace

CliCommand add_convert_command(CLI::App& app) {
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  CLI::App* sub = add_cli_subcommand(app, "convert", "convert a model to the native .pfm format");
  sub->add_option("model", *in, "ONNX or .pfm model")->required();
  sub->add_option("-o,--output", *out, "the .pfm file to write")->required();
  return {sub, [in, out] { return convert(*in, *out); }};
}

}  // namespace pyflame_rt
