// Bearer tokens: with --auth-tokens, every clca.v1 call and reflection must
// carry the metadata `authorization: Bearer <token>` naming a token of the
// file; grpc.health.v1 stays open for probes.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/observability/metrics.h"

namespace clca::server {

class TokenAuthorizer {
 public:
  // Reads `path`: one token per line; blank lines and lines starting with '#'
  // are ignored, surrounding whitespace is trimmed. NOT_FOUND when it cannot
  // be read; INVALID_ARGUMENT when it holds no token or a token with spaces
  // or control characters.
  static absl::StatusOr<std::unique_ptr<TokenAuthorizer>> FromFile(const std::string& path);

  // Reads the file again (e.g. on SIGHUP) and returns how many tokens it
  // holds; on failure the tokens in use stay as they were.
  absl::StatusOr<size_t> Reload();

  // OK when `authorization` is "Bearer <token>" with a known token;
  // otherwise UNAUTHENTICATED saying what to send. The token is never echoed.
  absl::Status Check(std::optional<absl::string_view> authorization) const;
  // Check of the call's `authorization` metadata; a refusal is counted under
  // `method` in clca_unauthenticated_total when metrics are set.
  absl::Status Check(const grpc::ServerContextBase& context, const char* method) const;

  void set_metrics(Metrics* metrics) { metrics_ = metrics; }

  const std::string& path() const { return path_; }

 private:
  explicit TokenAuthorizer(std::string path) : path_(std::move(path)) {}

  const std::string path_;
  Metrics* metrics_ = nullptr;
  mutable absl::Mutex mu_;
  std::shared_ptr<const std::vector<std::string>> tokens_ ABSL_GUARDED_BY(mu_);
};

// Reads the tokens of a token file (see TokenAuthorizer::FromFile).
absl::StatusOr<std::vector<std::string>> ReadTokenFile(const std::string& path);

}  // namespace clca::server
