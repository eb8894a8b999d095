#include "server/api/auth.h"

#include <fstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace clca::server {
namespace {

constexpr absl::string_view kScheme = "Bearer ";

// Compares in time that depends on the lengths only, not on where the two
// first differ.
bool SameToken(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char difference = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    difference |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return difference == 0;
}

absl::Status Unauthenticated(absl::string_view what) {
  return absl::UnauthenticatedError(
      absl::StrCat(what, "; send the metadata 'authorization: Bearer <token>' with a token the "
                         "server accepts (clca-client: --token-file or CLCA_TOKEN)"));
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("--auth-tokens: cannot read ", path));
  std::vector<std::string> tokens;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const absl::string_view token = absl::StripAsciiWhitespace(line);
    if (token.empty() || token.front() == '#') continue;
    for (char c : token) {
      if (!absl::ascii_isgraph(static_cast<unsigned char>(c))) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--auth-tokens: ", path, " line ", number,
            ": a token must be printable ASCII without spaces"));
      }
    }
    tokens.emplace_back(token);
  }
  if (tokens.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth-tokens: ", path, " holds no token (one per line)"));
  }
  return tokens;
}

absl::StatusOr<std::unique_ptr<TokenAuthorizer>> TokenAuthorizer::FromFile(
    const std::string& path) {
  std::unique_ptr<TokenAuthorizer> authorizer(new TokenAuthorizer(path));
  absl::StatusOr<size_t> loaded = authorizer->Reload();
  if (!loaded.ok()) return loaded.status();
  return authorizer;
}

absl::StatusOr<size_t> TokenAuthorizer::Reload() {
  absl::StatusOr<std::vector<std::string>> tokens = ReadTokenFile(path_);
  if (!tokens.ok()) return tokens.status();
  const size_t count = tokens->size();
  auto shared = std::make_shared<const std::vector<std::string>>(*std::move(tokens));
  absl::MutexLock lock(&mu_);
  tokens_ = std::move(shared);
  return count;
}

absl::Status TokenAuthorizer::Check(std::optional<absl::string_view> authorization) const {
  if (!authorization) return Unauthenticated("no bearer token");
  if (authorization->size() <= kScheme.size() ||
      !absl::StartsWithIgnoreCase(*authorization, kScheme)) {
    return Unauthenticated("the authorization metadata is not 'Bearer <token>'");
  }
  const absl::string_view token = authorization->substr(kScheme.size());
  std::shared_ptr<const std::vector<std::string>> tokens;
  {
    absl::MutexLock lock(&mu_);
    tokens = tokens_;
  }
  bool known = false;
  for (const std::string& candidate : *tokens) known |= SameToken(token, candidate);
  if (!known) return Unauthenticated("the bearer token is not one the server accepts");
  return absl::OkStatus();
}

absl::Status TokenAuthorizer::Check(const grpc::ServerContextBase& context,
                                     const char* method) const {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  absl::Status status = it == metadata.end()
                            ? Check(std::nullopt)
                            : Check(absl::string_view(it->second.data(), it->second.size()));
  if (!status.ok() && metrics_ != nullptr) metrics_->CountUnauthenticated(method);
  return status;
}

}  // namespace clca::server
