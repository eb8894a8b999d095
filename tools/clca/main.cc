// clca: offline model work (run, flops, preprocess, inspect, init, bench),
// synthetic datasets (synth), training (train) and evaluation (eval).
#include <iostream>

#include "models/cpu/process_setup.h"
#include "tools/clca/commands.h"

int main(int argc, char** argv) {
  clca::SetUpProcess(argv);
  CLI::App app{"clca: run, cost and inspect CLCA token-reduction ViT models"};
  app.require_subcommand(1);
  int exit_code = 0;
  clca::tool::AddRunCommand(app, &exit_code);
  clca::tool::AddFlopsCommand(app, &exit_code);
  clca::tool::AddPreprocessCommand(app, &exit_code);
  clca::tool::AddInspectCommand(app, &exit_code);
  clca::tool::AddInitCommand(app, &exit_code);
  clca::tool::AddSynthCommand(app, &exit_code);
  clca::tool::AddBenchCommand(app, &exit_code);
  clca::tool::AddTrainCommand(app, &exit_code);
  clca::tool::AddEvalCommand(app, &exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
