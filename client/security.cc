#include "client/security.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace clca {
namespace {

// The whole of the file `path` that `flag` names. Errors name both.
absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag, const std::string& path) {
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status)) {
    return absl::NotFoundError(absl::StrCat(flag, ": no such file: ", path));
  }
  if (std::filesystem::is_directory(status)) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, " is a directory"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": cannot read ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  return std::move(bytes).str();
}

// A PEM file: refused early when it holds no PEM block, rather than failing
// the TLS handshake later with a vaguer message.
absl::StatusOr<std::string> ReadPemFile(absl::string_view flag, const std::string& path) {
  absl::StatusOr<std::string> pem = ReadFlagFile(flag, path);
  if (!pem.ok()) return pem.status();
  if (!absl::StrContains(*pem, "-----BEGIN ")) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", path, " holds no PEM block (\"-----BEGIN ...\")"));
  }
  return pem;
}

// A token goes in a header value: printable ASCII, and no space so that it
// reads as one token after "Bearer ".
bool IsHeaderToken(absl::string_view token) {
  for (char c : token) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

}  // namespace

absl::Status ValidateClientSecurity(const ClientSecurity& security) {
  if (!security.cert_chain_pem.empty() && security.private_key_pem.empty()) {
    return absl::InvalidArgumentError("a client certificate (--tls-cert) needs its key (--tls-key)");
  }
  if (security.cert_chain_pem.empty() && !security.private_key_pem.empty()) {
    return absl::InvalidArgumentError("a client key (--tls-key) needs its certificate (--tls-cert)");
  }
  if (!security.target_name_override.empty() && !security.UsesTls()) {
    return absl::InvalidArgumentError(
        "a server name to verify (--tls-server-name) needs TLS (--tls or --tls-ca)");
  }
  if (!IsHeaderToken(security.bearer_token)) {
    return absl::InvalidArgumentError(
        "the bearer token holds a space or a character outside printable ASCII");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ParseBearerToken(absl::string_view text) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    if (!IsHeaderToken(line)) {
      return absl::InvalidArgumentError(
          "the token holds a space or a character outside printable ASCII");
    }
    return std::string(line);
  }
  return absl::InvalidArgumentError("no token: every line is empty");
}

absl::StatusOr<ClientSecurity> LoadClientSecurity(const ClientSecurityFiles& files) {
  if (files.tls_cert.empty() != files.tls_key.empty()) {
    return absl::InvalidArgumentError(
        files.tls_key.empty() ? "--tls-cert needs --tls-key: the client certificate's key"
                              : "--tls-key needs --tls-cert: the client certificate");
  }
  ClientSecurity security;
  security.tls = files.tls;
  if (!files.tls_ca.empty()) {
    absl::StatusOr<std::string> pem = ReadPemFile("--tls-ca", files.tls_ca);
    if (!pem.ok()) return pem.status();
    security.root_ca_pem = *std::move(pem);
  }
  if (!files.tls_cert.empty()) {
    absl::StatusOr<std::string> cert = ReadPemFile("--tls-cert", files.tls_cert);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPemFile("--tls-key", files.tls_key);
    if (!key.ok()) return key.status();
    security.cert_chain_pem = *std::move(cert);
    security.private_key_pem = *std::move(key);
  }
  security.target_name_override = files.tls_server_name;
  if (!files.token_file.empty()) {
    absl::StatusOr<std::string> text = ReadFlagFile("--token-file", files.token_file);
    if (!text.ok()) return text.status();
    absl::StatusOr<std::string> token = ParseBearerToken(*text);
    if (!token.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--token-file: ", files.token_file, ": ", token.status().message()));
    }
    security.bearer_token = *std::move(token);
  } else if (!files.token_from_environment.empty()) {
    absl::StatusOr<std::string> token = ParseBearerToken(files.token_from_environment);
    if (!token.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(kTokenEnvironmentVariable, ": ", token.status().message()));
    }
    security.bearer_token = *std::move(token);
  }
  if (absl::Status valid = ValidateClientSecurity(security); !valid.ok()) return valid;
  return security;
}

grpc::SslCredentialsOptions MakeSslOptions(const ClientSecurity& security) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = security.root_ca_pem;
  options.pem_cert_chain = security.cert_chain_pem;
  options.pem_private_key = security.private_key_pem;
  return options;
}

std::shared_ptr<grpc::ChannelCredentials> MakeChannelCredentials(const ClientSecurity& security) {
  if (!security.UsesTls()) return grpc::InsecureChannelCredentials();
  return grpc::SslCredentials(MakeSslOptions(security));
}

void AddBearerToken(absl::string_view token, grpc::ClientContext* context) {
  if (token.empty()) return;
  context->AddMetadata(kAuthorizationKey, absl::StrCat("Bearer ", token));
}

}  // namespace clca
