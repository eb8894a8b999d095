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

int Fail(const absl::Status& status) {
  std::cerr << "clca: " << status.message() << "\n";
  return 1;
}

}  // namespace clca::tool
