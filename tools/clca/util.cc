#include "tools/clca/util.h"

#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"

namespace clca::tool {

absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path) {
  if (path.empty()) return nlohmann::json::object();
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  try {
    return nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not valid JSON: ", e.what()));
  }
}

absl::Status WriteOutput(const std::string& path, const std::string& text) {
  if (path.empty()) {
    std::cout << text;
    std::cout.flush();
    return absl::OkStatus();
  }
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

void AddConfigFlags(CLI::App* cmd, ConfigFlags* f) {
  cmd->add_option("--config", f->config, "configuration JSON (reference field names)");
  cmd->add_option("--model", f->model, "model name, e.g. evit_vit_base_patch16_224");
  cmd->add_option("--input-size", f->input_size);
  cmd->add_option("--num-classes", f->num_classes);
  cmd->add_option("--embed-dim", f->embed_dim);
  cmd->add_option("--depth", f->depth);
  cmd->add_option("--num-heads", f->num_heads);
  cmd->add_option("--num-clr", f->num_clr);
  cmd->add_option("--reduction-loc", f->reduction_loc)->delimiter(',');
  cmd->add_option("--ifa-head", f->ifa_head, "true/false");
  cmd->add_option("--clc", f->clc, "true/false");
}

absl::StatusOr<nlohmann::json> ConfigFlagsJson(const ConfigFlags& f) {
  auto given = ReadJsonFile(f.config);
  if (!given.ok()) return given.status();
  nlohmann::json& g = *given;
  if (!f.model.empty()) g["model"] = f.model;
  for (auto [key, value] : {std::pair{"input_size", f.input_size}, std::pair{"num_classes", f.num_classes},
                            std::pair{"embed_dim", f.embed_dim}, std::pair{"depth", f.depth},
                            std::pair{"num_heads", f.num_heads}}) {
    if (value > 0) g[key] = value;
  }
  if (f.num_clr >= 0) g["num_clr"] = f.num_clr;
  if (!f.reduction_loc.empty()) g["reduction_loc"] = f.reduction_loc;
  if (!f.ifa_head.empty()) g["ifa_head"] = f.ifa_head == "true" || f.ifa_head == "1";
  if (!f.clc.empty()) g["clc"] = f.clc == "true" || f.clc == "1";
  return g;
}

absl::StatusOr<ModelConfig> ResolveConfigFlags(const ConfigFlags& f) {
  auto given = ConfigFlagsJson(f);
  if (!given.ok()) return given.status();
  if (!given->contains("num_classes")) (*given)["num_classes"] = 1000;
  return ResolveConfig(*given);
}

int Fail(const absl::Status& status) {
  std::cerr << "clca: " << status.message() << "\n";
  return 1;
}

}  // namespace clca::tool
