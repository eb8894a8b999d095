// Transport security and authentication of the client's calls: TLS, with a
// client certificate for mutual TLS, and a bearer token sent with every call.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/client_context.h>
#include <grpcpp/security/credentials.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clca {

// The metadata key that carries the token, as "Bearer <token>".
inline constexpr char kAuthorizationKey[] = "authorization";
// clca-client reads the token from this environment variable when it is
// given no --token-file.
inline constexpr char kTokenEnvironmentVariable[] = "CLCA_TOKEN";

// How the client secures its channel and authenticates its calls. The
// default is a plaintext channel and no token.
struct ClientSecurity {
  // Use TLS. Implied by root_ca_pem and by a client certificate.
  bool tls = false;
  // PEM root certificates the server's certificate must chain to. Empty:
  // gRPC's default roots (GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, or those it
  // ships with).
  std::string root_ca_pem;
  // PEM certificate chain and private key the client presents, for servers
  // that require mutual TLS. Both or neither.
  std::string cert_chain_pem;
  std::string private_key_pem;
  // Name checked against the server's certificate instead of the target's
  // host, e.g. when the target is an IP address. Needs TLS.
  std::string target_name_override;
  // Sent as "authorization: Bearer <token>" with every call, over TLS or
  // plaintext; empty: none. Plaintext exposes it to anyone on the path.
  std::string bearer_token;

  bool UsesTls() const { return tls || !root_ca_pem.empty() || !cert_chain_pem.empty(); }
};

// OK, or INVALID_ARGUMENT when a certificate comes without its key (or the
// reverse), a target name override without TLS, or a token with characters
// a header cannot carry.
absl::Status ValidateClientSecurity(const ClientSecurity& security);

// ClientSecurity as clca-client's flags give it: file paths, read by
// LoadClientSecurity.
struct ClientSecurityFiles {
  // --tls: TLS, verified against the default roots unless tls_ca is set.
  bool tls = false;
  // --tls-ca: PEM root certificates; implies TLS.
  std::string tls_ca;
  // --tls-cert and --tls-key: the client's PEM certificate chain and key.
  std::string tls_cert;
  std::string tls_key;
  // --tls-server-name: ClientSecurity::target_name_override.
  std::string tls_server_name;
  // --token-file: the bearer token is its first non-empty line.
  std::string token_file;
  // The token when token_file is empty (clca-client passes $CLCA_TOKEN);
  // empty: no token.
  std::string token_from_environment;
};

// Reads the files `files` names. NOT_FOUND, naming the flag and the path,
// when a file does not exist; INVALID_ARGUMENT when one cannot be read,
// holds no PEM block or no token, and for what ValidateClientSecurity
// refuses.
absl::StatusOr<ClientSecurity> LoadClientSecurity(const ClientSecurityFiles& files);

// The token in the text of a token file: its first non-empty line,
// whitespace trimmed. INVALID_ARGUMENT when there is none, or it holds a
// space or a character outside printable ASCII.
absl::StatusOr<std::string> ParseBearerToken(absl::string_view text);

// The SSL options of `security`: its roots and client certificate.
grpc::SslCredentialsOptions MakeSslOptions(const ClientSecurity& security);
// TLS credentials when security.UsesTls(), otherwise insecure ones.
std::shared_ptr<grpc::ChannelCredentials> MakeChannelCredentials(const ClientSecurity& security);

// Adds "authorization: Bearer <token>" to `context`; nothing when `token` is
// empty.
void AddBearerToken(absl::string_view token, grpc::ClientContext* context);

}  // namespace clca
