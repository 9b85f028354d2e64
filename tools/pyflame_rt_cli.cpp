// pyflame-rt: inspect, run, convert, serve and benchmark models from the command line.
//
//   pyflame-rt inspect model.onnx
//   pyflame-rt run model.onnx --input x=x.npy [--output-dir out/]
//   pyflame-rt convert model.onnx -o model.pfm
//   pyflame-rt serve --model cnn=model.onnx --http-port 8000 --grpc-port 8001   (KServe v2)
//   pyflame-rt serve model.onnx --stage-port 4242 (a remote stage for pipelines elsewhere)
//   pyflame-rt perf model.onnx --batch 8 --iterations 200 --json
//   pyflame-rt plan model.onnx --device wse3 [--json] [--svg placement.svg]
//   pyflame-rt compile model.onnx -o model.pfm [--input-shape x=1,3,224,224]
//
// Each command lives in its own *_command.cpp; parsing is CLI11's (`--help` and `--version`
// on the tool and on every command).
#include <vector>

#include "cli_command.h"
#include "omp_reexec.h"

using namespace pyflame_rt;

namespace {
constexpr const char* kUsage =
    "usage: pyflame-rt {inspect,run,convert,serve,perf,plan,compile,quantize} MODEL [OPTIONS]"
    " (pyflame-rt COMMAND --help for a command's options)\n";
}  // namespace

int main(int argc, char** argv) {
  pyflame_rt::reexec_with_omp_wait_policy(argv);  // before any OpenMP thread starts
  CLI::App app{"PyFlameRT: run ONNX models with ONNX Runtime's API", "pyflame-rt"};
  app.set_version_flag("--version", cli_version(), "print the version and exit");
  app.require_subcommand(1);
  std::vector<CliCommand> commands = {add_inspect_command(app), add_run_command(app), add_convert_command(app),
                                      add_serve_command(app), add_perf_command(app), add_plan_command(app),
                                      add_compile_command(app), add_quantize_command(app)};
  const std::string first = argc > 1 ? argv[1] : "";
  auto named_first = [&](CLI::App* sub) { return sub->get_name() == first; };
  if (!first.empty() && first[0] != '-' && app.get_subcommands(named_first).empty()) {
    std::cerr << "error: unknown command '" << argv[1] << "'\n" << kUsage;
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << e.what() << "\n" << kUsage;
    return 2;
  }
  for (const auto& cmd : commands) {
    if (!cmd.app->parsed()) continue;
    // Core code returns Status; an exception reaching here is a defect, but a hostile model or
    // feed must still end in an error message and exit code 1, not an abort.
    try {
      return cmd.run();
    } catch (const std::bad_alloc&) {
      return cli_fail(make_status(StatusCode::kResourceExhausted, "out of memory"));
    } catch (const std::exception& e) {
      return cli_fail(make_status(StatusCode::kFail, "internal error: ", e.what()));
    }
  }
  return 2;
}
