// Subcommands of the `clca` tool. Each registers itself on the CLI11 app and
// returns the process exit code through `*exit_code` once run.
#pragma once

#include <CLI/CLI.hpp>

namespace clca::tool {

void AddRunCommand(CLI::App& app, int* exit_code);
void AddFlopsCommand(CLI::App& app, int* exit_code);
void AddPreprocessCommand(CLI::App& app, int* exit_code);
void AddInspectCommand(CLI::App& app, int* exit_code);
void AddInitCommand(CLI::App& app, int* exit_code);
void AddSynthCommand(CLI::App& app, int* exit_code);
void AddBenchCommand(CLI::App& app, int* exit_code);
void AddTrainCommand(CLI::App& app, int* exit_code);
void AddEvalCommand(CLI::App& app, int* exit_code);

}  // namespace clca::tool
