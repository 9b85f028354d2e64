// The pieces every `pyflame-rt` command shares: how a command registers itself with the CLI11
// parser, and how errors are printed.
//
//   CliCommand cmd = add_perf_command(app);   // adds `perf` and its options to `app`
//   ... app.parse(argc, argv) ...
//   if (cmd.app->parsed()) return cmd.run();
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <iostream>
#include <string>

#include "graph/status.h"
#include "graph/version.h"

namespace pyflame_rt {

struct CliCommand {
  CLI::App* app = nullptr;   // the subcommand
  std::function<int()> run;  // runs it with the parsed options; returns the exit code
};

// "pyflame-rt 0.1.0": what --version prints, on the tool and on every command.
inline std::string cli_version() { return std::string("pyflame-rt ") + PFRT_VERSION_STRING; }

// A subcommand with --version, its options kept in `options` (shared with `run`).
inline CLI::App* add_cli_subcommand(CLI::App& app, const std::string& name, const std::string& description) {
  CLI::App* sub = app.add_subcommand(name, description);
  sub->set_version_flag("--version", cli_version(), "print the version and exit");
  return sub;
}

// Exit code 1 and "error: <status>" on stderr.
inline int cli_fail(const Status& st) {
  std::cerr << "error: " << st.to_string() << "\n";
  return 1;
}

CliCommand add_inspect_command(CLI::App& app);
CliCommand add_run_command(CLI::App& app);
CliCommand add_convert_command(CLI::App& app);
CliCommand add_serve_command(CLI::App& app);
CliCommand add_perf_command(CLI::App& app);
CliCommand add_plan_command(CLI::App& app);
CliCommand add_compile_command(CLI::App& app);
CliCommand add_quantize_command(CLI::App& app);

}  // namespace pyflame_rt
