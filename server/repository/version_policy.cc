#include "server/repository/version_policy.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace clca::server {
namespace {

using json = nlohmann::json;

absl::Status Invalid(const std::string& what, const json& got) {
  return absl::InvalidArgumentError(absl::StrCat(
      what, ", got ", got.dump(), " (expected {\"latest\": N}, {\"specific\": [versions]} or "
      "\"all\")"));
}

}  // namespace

std::string VersionPolicy::Describe() const {
  switch (kind) {
    case Kind::kLatest: return absl::StrCat("latest ", latest);
    case Kind::kSpecific: return absl::StrCat("versions ", absl::StrJoin(specific, ", "));
    case Kind::kAll: return "all versions";
  }
  return "";
}

absl::StatusOr<VersionPolicy> ParseModelConfig(const json& object) {
  if (!object.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json must be a JSON object, got ", object.dump()));
  }
  VersionPolicy policy;
  for (const auto& [key, value] : object.items()) {
    if (key != "version_policy") {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown key '", key, "' (expected version_policy)"));
    }
  }
  if (!object.contains("version_policy")) return policy;
  const json& v = object["version_policy"];
  if (v == "all") {
    policy.kind = VersionPolicy::Kind::kAll;
    return policy;
  }
  if (!v.is_object() || v.size() != 1) return Invalid("'version_policy' has one form", v);
  if (v.contains("latest")) {
    const json& n = v["latest"];
    if (!n.is_number_integer() || n.get<int64_t>() < 1 || n.get<int64_t>() > 1000) {
      return Invalid("'version_policy.latest' is a count from 1 to 1000", n);
    }
    policy.latest = n.get<int>();
    return policy;
  }
  if (v.contains("specific")) {
    const json& list = v["specific"];
    if (!list.is_array() || list.empty()) {
      return Invalid("'version_policy.specific' is a non-empty list of versions", list);
    }
    std::set<int64_t> versions;
    for (const json& version : list) {
      if (!version.is_number_integer() || version.get<int64_t>() < 1) {
        return Invalid("'version_policy.specific' holds positive integers", version);
      }
      versions.insert(version.get<int64_t>());
    }
    policy.kind = VersionPolicy::Kind::kSpecific;
    policy.specific.assign(versions.begin(), versions.end());
    return policy;
  }
  return Invalid("unknown 'version_policy'", v);
}

absl::StatusOr<VersionPolicy> ReadModelConfig(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) return VersionPolicy();
  std::ifstream in(path);
  if (!in) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot read"));
  const json object = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, ": not JSON"));
  absl::StatusOr<VersionPolicy> policy = ParseModelConfig(object);
  if (!policy.ok()) {
    return absl::Status(policy.status().code(), absl::StrCat(path, ": ", policy.status().message()));
  }
  return policy;
}

std::vector<int64_t> SelectVersions(const VersionPolicy& policy,
                                    const std::vector<int64_t>& on_disk) {
  switch (policy.kind) {
    case VersionPolicy::Kind::kAll:
      return on_disk;
    case VersionPolicy::Kind::kLatest: {
      const size_t n = std::min(on_disk.size(), static_cast<size_t>(policy.latest));
      return std::vector<int64_t>(on_disk.end() - static_cast<std::ptrdiff_t>(n), on_disk.end());
    }
    case VersionPolicy::Kind::kSpecific: {
      std::vector<int64_t> selected;
      for (int64_t v : on_disk) {
        if (std::binary_search(policy.specific.begin(), policy.specific.end(), v)) {
          selected.push_back(v);
        }
      }
      return selected;
    }
  }
  return {};
}

}  // namespace clca::server
