// The deployment files, checked with the tools at hand (no container engine
// or cluster needed): docker-compose validates the compose file with every
// profile and with the TLS override; the Dockerfile installs only Debian 12
// packages, and its runtime packages provide every shared library the built
// binaries load; the images' health check works; the server accepts the
// flags that the Dockerfile, compose files and Kubernetes Deployment give it;
// with the shipped TLS and token flags (secrets replaced by test ones) it
// serves TLS, refuses calls without a token, and the shipped health checks
// and probes pass; grace periods exceed the drain timeout.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/client/test_certificates.h"
#include "tests/deploy/deploy_harness.h"

namespace clca::deploy_test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kDockerCompose = "/usr/bin/docker-compose";

fs::path ComposeFile() { return SourceDir() / "docker-compose.yml"; }
fs::path SecureComposeFile() { return SourceDir() / "docker-compose.secure.yml"; }
fs::path Dockerfile() { return SourceDir() / "deploy" / "Dockerfile"; }
fs::path K8sDir() { return SourceDir() / "deploy" / "k8s"; }

std::vector<std::string> Split(const std::string& text, char separator = '\n') {
  std::vector<std::string> parts;
  std::istringstream in(text);
  std::string part;
  while (std::getline(in, part, separator)) parts.push_back(part);
  return parts;
}

// Seconds of a duration such as "40s", "1m30s" or a bare number.
int DurationSeconds(const std::string& text) {
  static const std::regex part("([0-9]+)([hms]?)");
  int seconds_total = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), part); it != std::sregex_iterator();
       ++it) {
    const int value = std::stoi((*it)[1]);
    const std::string unit = (*it)[2];
    seconds_total += unit == "h" ? value * 3600 : unit == "m" ? value * 60 : value;
  }
  return seconds_total;
}

// The YAML list items ("- item") right after the line `key:` (first match),
// comments skipped.
std::vector<std::string> ListAfter(const std::string& text, const std::string& key) {
  std::vector<std::string> items;
  const std::vector<std::string> lines = Split(text);
  static const std::regex item("^\\s*- (.*?)\\s*$");
  bool in_list = false;
  for (const std::string& line : lines) {
    if (!in_list) {
      in_list = std::regex_match(line, std::regex("^\\s*" + key + ":\\s*$"));
      continue;
    }
    if (std::regex_match(line, std::regex("^\\s*#.*"))) continue;
    std::smatch match;
    if (!std::regex_match(line, match, item)) break;
    items.push_back(match[1]);
  }
  return items;
}

// The value of `--name=value` or `--name value` in `args`, or "".
std::string FlagValue(const std::vector<std::string>& args, const std::string& name) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i].rfind(name + "=", 0) == 0) return args[i].substr(name.size() + 1);
    if (args[i] == name && i + 1 < args.size()) return args[i + 1];
  }
  return "";
}

// `args` with the values of the flags in `replaced` replaced (written as
// `--name=value` whichever form they had).
std::vector<std::string> ReplaceFlagValues(const std::vector<std::string>& args,
                                           const std::map<std::string, std::string>& replaced) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string name = args[i].substr(0, args[i].find('='));
    auto it = replaced.find(name);
    if (it == replaced.end()) {
      out.push_back(args[i]);
      continue;
    }
    out.push_back(name + "=" + it->second);
    if (args[i].find('=') == std::string::npos) ++i;  // The value was the next word.
  }
  return out;
}

// `args` with the repository, address and ports a test server on loopback
// needs in place of the shipped ones.
std::vector<std::string> ForLoopback(const std::vector<std::string>& args,
                                     const std::string& repository) {
  return ReplaceFlagValues(args, {{"--model-repository", repository},
                                  {"--host", "127.0.0.1"},
                                  {"--port", "0"},
                                  {"--metrics-port", "0"}});
}

// Throwaway stand-ins for the deployments' secrets: the test CA, a server
// certificate it signed for the name "clca.test", a client certificate, a
// token file and the token.
class TestSecrets {
 public:
  static constexpr const char* kServerName = "clca.test";
  static constexpr const char* kToken = "test-token-7f3a9c";

  TestSecrets() {
    WriteFile(path("ca.pem"), ::clca::testing::kTestCaPem);
    WriteFile(path("server.pem"), ::clca::testing::kServerCertPem);
    WriteFile(path("server.key"), ::clca::testing::kServerKeyPem);
    WriteFile(path("client.pem"), ::clca::testing::kClientCertPem);
    WriteFile(path("client.key"), ::clca::testing::kClientKeyPem);
    WriteFile(path("tokens.txt"), std::string("# test clients\n") + kToken + "\n");
    WriteFile(path("token"), std::string(kToken) + "\n");
  }
  std::string path(const std::string& name) const { return (dir_.path() / name).string(); }

  // A server's arguments with the test files in place of the shipped paths.
  std::vector<std::string> ForServer(const std::vector<std::string>& args) const {
    return ReplaceFlagValues(args, {{"--tls-cert", path("server.pem")},
                                    {"--tls-key", path("server.key")},
                                    {"--tls-client-ca", path("ca.pem")},
                                    {"--auth-tokens", path("tokens.txt")}});
  }
  // A clca-client command line with the test files and server name in
  // place of the shipped ones.
  std::vector<std::string> ForClient(const std::vector<std::string>& args) const {
    return ReplaceFlagValues(args, {{"--tls-ca", path("ca.pem")},
                                    {"--tls-server-name", kServerName},
                                    {"--tls-cert", path("client.pem")},
                                    {"--tls-key", path("client.key")},
                                    {"--token-file", path("token")}});
  }

 private:
  TempDir dir_;
};

// A clca-server started with `args` (already made fit for loopback).
class FlagServer {
 public:
  ::testing::AssertionResult Start(const std::vector<std::string>& args, const fs::path& log) {
    std::vector<std::string> argv = {ServerBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    fs::remove(log);
    if (auto started = process_.Start(argv, log); !started) return started;
    static const std::regex listening("clca-server listening grpc=127\\.0\\.0\\.1:([0-9]+)");
    std::smatch match;
    std::string output;
    WaitFor(
        [&] {
          output = process_.Log();
          return std::regex_search(output, match, listening) || !process_.Running();
        },
        seconds(30));
    if (match.empty() || !process_.Running()) {
      return ::testing::AssertionFailure() << "clca-server did not start; output:\n" << output;
    }
    address_ = "127.0.0.1:" + std::string(match[1]);
    return ::testing::AssertionSuccess();
  }
  std::optional<int> Stop() { return process_.Stop(SIGTERM, seconds(20)); }
  const std::string& address() const { return address_; }
  std::string Log() const { return process_.Log(); }

 private:
  ChildProcess process_;
  std::string address_;
};

// --- Dockerfile ----------------------------------------------------------

// One instruction of a Dockerfile, continuation lines joined.
struct Instruction {
  std::string keyword;
  std::string arguments;
};

std::vector<Instruction> ParseDockerfile(const std::string& text) {
  std::vector<Instruction> instructions;
  std::string current;
  for (const std::string& line : Split(text)) {
    if (current.empty() && (line.empty() || line[0] == '#')) continue;
    if (!line.empty() && line.back() == '\\') {
      current += line.substr(0, line.size() - 1) + " ";
      continue;
    }
    current += line;
    std::istringstream words(current);
    Instruction instruction;
    words >> instruction.keyword;
    std::getline(words, instruction.arguments);
    instruction.arguments.erase(0, instruction.arguments.find_first_not_of(' '));
    instructions.push_back(instruction);
    current.clear();
  }
  return instructions;
}

// A build stage: its FROM line and what its RUN lines apt-get install.
struct Stage {
  std::string from;
  std::vector<std::string> packages;
  std::vector<Instruction> instructions;
};

std::vector<Stage> Stages(const std::vector<Instruction>& instructions) {
  std::vector<Stage> stages;
  for (const Instruction& instruction : instructions) {
    if (instruction.keyword == "FROM") {
      stages.push_back({instruction.arguments, {}, {}});
      continue;
    }
    if (stages.empty()) continue;
    stages.back().instructions.push_back(instruction);
    if (instruction.keyword != "RUN") continue;
    std::istringstream words(instruction.arguments);
    std::string word;
    bool installing = false;
    std::string previous;
    while (words >> word) {
      if (previous == "apt-get" && word == "install") {
        installing = true;
      } else if (word == "&&" || word == "||" || word == ";" || word == "|") {
        installing = false;
      } else if (installing && word[0] != '-') {
        stages.back().packages.push_back(word);
      }
      previous = word;
    }
  }
  return stages;
}

// The packages of `names` that Debian's package lists offer, with a version.
std::set<std::string> AvailablePackages(const std::vector<std::string>& names,
                                        std::string* output) {
  std::vector<std::string> args = {"/usr/bin/apt-cache", "policy"};
  args.insert(args.end(), names.begin(), names.end());
  const CommandResult policy = RunCommand(args);
  *output = policy.output;
  std::set<std::string> available;
  std::string package;
  static const std::regex header("^(\\S+):$");
  static const std::regex candidate("^\\s+Candidate: (\\S+)");
  for (const std::string& line : Split(policy.output)) {
    std::smatch match;
    if (std::regex_match(line, match, header)) {
      package = match[1];
    } else if (std::regex_search(line, match, candidate) && match[1] != "(none)") {
      available.insert(package);
    }
  }
  return available;
}

bool IsDebian12() {
  const std::string release = ReadFile("/etc/os-release");
  return release.find("ID=debian") != std::string::npos &&
         release.find("VERSION_ID=\"12\"") != std::string::npos;
}

class DockerfileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stages_ = Stages(ParseDockerfile(ReadFile(Dockerfile())));
    ASSERT_EQ(stages_.size(), 2u) << "expected a build and a runtime stage in " << Dockerfile();
  }
  const Stage& build() const { return stages_[0]; }
  const Stage& runtime() const { return stages_[1]; }

  std::vector<Stage> stages_;
};

TEST_F(DockerfileTest, BuildsOnDebian12AndRunsAsNonRootWithHealthCheck) {
  EXPECT_THAT(build().from, HasSubstr("debian:12"));
  EXPECT_THAT(runtime().from, HasSubstr("debian:12"));
  std::map<std::string, std::string> last;
  for (const Instruction& instruction : runtime().instructions) {
    last[instruction.keyword] = instruction.arguments;
  }
  ASSERT_TRUE(last.count("USER")) << "the runtime stage sets no USER";
  const std::string user = last["USER"].substr(0, last["USER"].find(':'));
  EXPECT_NE(user, "root");
  EXPECT_NE(user, "0");
  EXPECT_THAT(last["HEALTHCHECK"], HasSubstr("\"clca-client\", \"health\""));
  EXPECT_EQ(last["STOPSIGNAL"], "SIGTERM");
  EXPECT_EQ(last["EXPOSE"], "50051 8080");
  bool copies_models = false;
  for (const Instruction& instruction : runtime().instructions) {
    copies_models = copies_models ||
                    (instruction.keyword == "COPY" &&
                     instruction.arguments.find("deploy/model-repository") != std::string::npos);
  }
  EXPECT_TRUE(copies_models) << "the bundled model repository is not copied in";
}

TEST_F(DockerfileTest, InstallsOnlyPackagesOfDebian12) {
  ASSERT_TRUE(IsDebian12()) << "this check asks apt-cache about Debian 12 packages; run it on "
                               "Debian 12";
  ASSERT_FALSE(build().packages.empty());
  ASSERT_FALSE(runtime().packages.empty());
  for (const std::string& package : runtime().packages) {
    EXPECT_THAT(package, Not(HasSubstr("-dev"))) << "development package in the runtime stage";
  }
  EXPECT_THAT(runtime().packages, ::testing::Contains("libopenblas0-pthread"));

  std::vector<std::string> all = build().packages;
  all.insert(all.end(), runtime().packages.begin(), runtime().packages.end());
  std::string policy;
  const std::set<std::string> available = AvailablePackages(all, &policy);
  ASSERT_FALSE(available.empty())
      << "apt-cache knows none of the Dockerfile's packages: the package lists look empty. "
      << "Run `apt-get update` (scripts/install-deps.sh does when it installs). apt-cache said:\n"
      << policy;
  for (const std::string& package : all) {
    EXPECT_TRUE(available.count(package))
        << package << " is not a Debian 12 package (no candidate in apt-cache policy)";
  }
}

// Every shared library clca-server and clca-client load belongs to a package
// the runtime stage installs, or to one of their dependencies.
TEST_F(DockerfileTest, RuntimePackagesProvideEveryLibraryTheBinariesLoad) {
  ASSERT_TRUE(IsDebian12()) << "this check compares with Debian 12 packages; run it on Debian 12";
  ASSERT_TRUE(IsExecutable(ServerBinary()));
  ASSERT_TRUE(IsExecutable(ClientBinary()));
  const CommandResult ldd = RunCommand({"/usr/bin/ldd", ServerBinary(), ClientBinary()});
  ASSERT_EQ(ldd.exit_code, 0) << ldd.output;
  static const std::regex resolved("=> (/\\S+)");
  std::set<std::string> libraries;
  for (const std::string& line : Split(ldd.output)) {
    EXPECT_THAT(line, Not(HasSubstr("not found")));
    std::smatch match;
    if (std::regex_search(line, match, resolved)) libraries.insert(match[1]);
  }
  ASSERT_GT(libraries.size(), 10u) << ldd.output;

  // dpkg knows a library by the path its package installed, /lib or /usr/lib.
  std::vector<std::string> search = {"/usr/bin/dpkg", "-S"};
  for (const std::string& library : libraries) {
    search.push_back(library);
    search.push_back(fs::canonical(library).string());
    if (library.rfind("/lib/", 0) == 0) search.push_back("/usr" + library);
    if (library.rfind("/usr/lib/", 0) == 0) search.push_back(library.substr(4));
  }
  const CommandResult owners = RunCommand(search);
  std::map<std::string, std::string> owner_of;  // path -> package
  static const std::regex owned("^([^:, ]+)(:[a-z0-9]+)?: (/\\S+)$");
  for (const std::string& line : Split(owners.output)) {
    std::smatch match;
    if (std::regex_match(line, match, owned)) owner_of[match[3]] = match[1];
  }
  std::set<std::string> needed;
  for (const std::string& library : libraries) {
    std::string package;
    for (const std::string& path :
         {library, fs::canonical(library).string(),
          library.rfind("/lib/", 0) == 0 ? "/usr" + library : library.substr(4)}) {
      if (owner_of.count(path)) package = owner_of[path];
    }
    EXPECT_FALSE(package.empty()) << library << " belongs to no Debian package";
    if (!package.empty()) needed.insert(package);
  }

  std::vector<std::string> depends = {"/usr/bin/apt-cache", "depends",       "--recurse",
                                      "--no-recommends",    "--no-suggests", "--no-conflicts",
                                      "--no-breaks",        "--no-replaces", "--no-enhances"};
  depends.insert(depends.end(), runtime().packages.begin(), runtime().packages.end());
  const CommandResult closure = RunCommand(depends, seconds(50));
  ASSERT_EQ(closure.exit_code, 0) << closure.output;
  std::set<std::string> installed(runtime().packages.begin(), runtime().packages.end());
  static const std::regex dependency("^\\s+\\|?(?:Pre)?Depends: <?([^>\\s]+)>?");
  for (const std::string& line : Split(closure.output)) {
    std::smatch match;
    if (std::regex_search(line, match, dependency)) installed.insert(match[1]);
  }
  for (const std::string& package : needed) {
    EXPECT_TRUE(installed.count(package))
        << package << " provides a library the binaries load, but the runtime stage does not "
        << "install it (nor anything depending on it)";
  }
}

// The HEALTHCHECK command, run as written against a live server, passes; it
// fails where no server answers.
TEST_F(DockerfileTest, HealthCheckCommandPassesOnlyForALiveServer) {
  std::string healthcheck;
  for (const Instruction& instruction : runtime().instructions) {
    if (instruction.keyword == "HEALTHCHECK") healthcheck = instruction.arguments;
  }
  const size_t cmd = healthcheck.find("CMD [");
  ASSERT_NE(cmd, std::string::npos) << "HEALTHCHECK has no exec-form CMD: " << healthcheck;
  const nlohmann::json command = nlohmann::json::parse(healthcheck.substr(cmd + 4), nullptr, false);
  ASSERT_TRUE(command.is_array()) << healthcheck;
  std::vector<std::string> args = command.get<std::vector<std::string>>();
  ASSERT_EQ(args[0], "clca-client");
  args[0] = ClientBinary();

  TempDir dir;
  TestRepository repository;
  Server server;
  ASSERT_TRUE(server.Start(repository.path(), dir.path() / "server.log"));
  std::vector<std::string> live = args;
  std::replace(live.begin(), live.end(), std::string("127.0.0.1:50051"), server.address());
  ASSERT_NE(live, args) << "the health check does not address 127.0.0.1:50051";
  const CommandResult healthy = RunCommand(live);
  EXPECT_EQ(healthy.exit_code, 0) << healthy.output;
  EXPECT_THAT(healthy.output, HasSubstr("SERVING"));

  std::vector<std::string> dead = args;
  std::replace(dead.begin(), dead.end(), std::string("127.0.0.1:50051"),
               "127.0.0.1:" + std::to_string(FreePort()));
  const CommandResult unhealthy = RunCommand(dead);
  EXPECT_NE(unhealthy.exit_code, 0) << unhealthy.output;
}

// --- docker-compose.yml --------------------------------------------------

// The services of `docker-compose config` output: name -> its lines.
std::map<std::string, std::string> ComposeServices(const std::string& config) {
  std::map<std::string, std::string> services;
  static const std::regex service("^  ([A-Za-z0-9_.-]+):$");
  bool in_services = false;
  std::string current;
  for (const std::string& line : Split(config)) {
    if (!line.empty() && line[0] != ' ') {
      in_services = line == "services:";
      current.clear();
      continue;
    }
    std::smatch match;
    if (in_services && std::regex_match(line, match, service)) {
      current = match[1];
      services[current];
    } else if (!current.empty()) {
      services[current] += line + "\n";
    }
  }
  return services;
}

// docker-compose with docker-compose.yml, and docker-compose.secure.yml on
// top when `secure`.
CommandResult Compose(std::vector<std::string> args, bool secure = false) {
  std::vector<std::string> files = {"-f", ComposeFile().string()};
  if (secure) files.insert(files.end(), {"-f", SecureComposeFile().string()});
  args.insert(args.begin(), files.begin(), files.end());
  args.insert(args.begin(), {kDockerCompose, "--project-directory", SourceDir().string()});
  return RunCommand(args);
}

// The top-level `secrets:` of `docker-compose config` output: name -> file.
std::map<std::string, std::string> ComposeSecrets(const std::string& config) {
  std::map<std::string, std::string> secrets;
  static const std::regex name("^  ([A-Za-z0-9_.-]+):$");
  static const std::regex file("^    file: (\\S+)$");
  bool in_secrets = false;
  std::string current;
  for (const std::string& line : Split(config)) {
    if (!line.empty() && line[0] != ' ') {
      in_secrets = line == "secrets:";
      continue;
    }
    std::smatch match;
    if (!in_secrets) continue;
    if (std::regex_match(line, match, name)) {
      current = match[1];
    } else if (std::regex_match(line, match, file) && !current.empty()) {
      secrets[current] = match[1];
    }
  }
  return secrets;
}

TEST(ComposeTest, ConfigIsValidWithAndWithoutTheScaleProfile) {
  ASSERT_TRUE(IsExecutable(kDockerCompose));
  const CommandResult plain = Compose({"config", "-q"});
  EXPECT_EQ(plain.exit_code, 0) << plain.output;
  const CommandResult scale = Compose({"--profile", "scale", "config", "-q"});
  EXPECT_EQ(scale.exit_code, 0) << scale.output;
  // The TLS override, with and without the profile; its secret files need
  // not exist for the configuration to be valid.
  const CommandResult secure = Compose({"config", "-q"}, /*secure=*/true);
  EXPECT_EQ(secure.exit_code, 0) << secure.output;
  const CommandResult secure_scale = Compose({"--profile", "scale", "config", "-q"}, true);
  EXPECT_EQ(secure_scale.exit_code, 0) << secure_scale.output;
}

// docker-compose.yml alone needs no secret; docker-compose.secure.yml gives
// clca-server the same command plus TLS and token flags whose files are the
// Compose secrets it mounts, and a health check over TLS.
TEST(ComposeTest, SecureOverrideAddsTlsAndTokensFromSecrets) {
  ASSERT_TRUE(IsExecutable(kDockerCompose));
  const CommandResult plain = Compose({"--profile", "scale", "config"});
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  const CommandResult secure = Compose({"--profile", "scale", "config"}, /*secure=*/true);
  ASSERT_EQ(secure.exit_code, 0) << secure.output;
  EXPECT_TRUE(ComposeSecrets(plain.output).empty()) << plain.output;
  auto plain_services = ComposeServices(plain.output);
  auto secure_services = ComposeServices(secure.output);
  const std::vector<std::string> plain_command =
      ListAfter(plain_services["clca-server"], "command");
  for (const char* flag : {"--tls-cert", "--tls-key", "--auth-tokens"}) {
    EXPECT_EQ(FlagValue(plain_command, flag), "") << "docker-compose.yml sets " << flag;
  }

  const std::string& server = secure_services["clca-server"];
  const std::vector<std::string> command = ListAfter(server, "command");
  ASSERT_GE(command.size(), plain_command.size()) << server;
  EXPECT_EQ(std::vector<std::string>(command.begin(), command.begin() + plain_command.size()),
            plain_command)
      << "docker-compose.secure.yml's command is not docker-compose.yml's plus flags";
  const std::map<std::string, std::string> secrets = ComposeSecrets(secure.output);
  std::set<std::string> mounted;
  for (const std::string& item : ListAfter(server, "secrets")) {
    mounted.insert(item.substr(item.find(": ") == std::string::npos ? 0 : item.find(": ") + 2));
  }
  // Each file the server and its health check read is a mounted secret.
  auto expect_secret = [&](const std::string& what, const std::string& path) {
    const std::string prefix = "/run/secrets/";
    ASSERT_EQ(path.rfind(prefix, 0), 0u) << what << " is not a Compose secret: " << path;
    const std::string name = path.substr(prefix.size());
    EXPECT_TRUE(mounted.count(name)) << what << ": clca-server does not mount secret " << name;
    ASSERT_TRUE(secrets.count(name)) << what << ": no top-level secret " << name;
    EXPECT_EQ(fs::path(secrets.at(name)).parent_path(), SourceDir() / "deploy" / "secrets")
        << name;
  };
  for (const char* flag : {"--tls-cert", "--tls-key", "--auth-tokens"}) {
    expect_secret(flag, FlagValue(command, flag));
  }
  const std::vector<std::string> health = ListAfter(server, "test");
  ASSERT_FALSE(health.empty()) << server;
  expect_secret("the health check's --tls-ca", FlagValue(health, "--tls-ca"));

  // The replicas of the scale profile are left as they were.
  EXPECT_EQ(ListAfter(secure_services["clca-replica"], "command"),
            ListAfter(plain_services["clca-replica"], "command"));
}

TEST(ComposeTest, ServicesProfilesGracePeriodsAndMounts) {
  ASSERT_TRUE(IsExecutable(kDockerCompose));
  const CommandResult config = Compose({"--profile", "scale", "config"});
  ASSERT_EQ(config.exit_code, 0) << config.output;
  const std::map<std::string, std::string> services = ComposeServices(config.output);
  for (const char* name : {"clca-server", "prometheus", "grafana", "clca-replica", "nginx"}) {
    ASSERT_TRUE(services.count(name)) << name << " missing:\n" << config.output;
  }
  for (const char* name : {"clca-server", "prometheus", "grafana"}) {
    EXPECT_THAT(services.at(name), Not(HasSubstr("profiles:"))) << name;
  }
  for (const char* name : {"clca-replica", "nginx"}) {
    EXPECT_EQ(ListAfter(services.at(name), "profiles"), std::vector<std::string>{"scale"}) << name;
  }
  EXPECT_THAT(services.at("clca-server"), HasSubstr("target: 50051"));
  EXPECT_THAT(services.at("clca-server"), HasSubstr("target: 8080"));

  for (const char* name : {"clca-server", "clca-replica"}) {
    const std::string& lines = services.at(name);
    const std::string drain = FlagValue(ListAfter(lines, "command"), "--drain-timeout");
    ASSERT_FALSE(drain.empty()) << name << " sets no --drain-timeout";
    std::smatch grace;
    ASSERT_TRUE(std::regex_search(lines, grace, std::regex("stop_grace_period: (\\S+)"))) << name;
    EXPECT_GT(DurationSeconds(grace[1]), std::stod(drain))
        << name << ": stop_grace_period must exceed --drain-timeout";
    EXPECT_THAT(lines, HasSubstr("clca-client")) << name << " has no health check";
  }

  // Every file or directory mounted from the repository exists.
  static const std::regex mount("^\\s+- (/[^:]+):");
  for (const auto& [name, lines] : services) {
    for (const std::string& line : Split(lines)) {
      std::smatch match;
      if (std::regex_search(line, match, mount)) {
        EXPECT_TRUE(fs::exists(std::string(match[1]))) << name << " mounts missing " << match[1];
      }
    }
  }
}

// --- Kubernetes ------------------------------------------------------------

// The exec command of each probe of the Deployment (written as a JSON list
// on one line), by probe name.
std::map<std::string, std::vector<std::string>> ExecProbes(const std::string& deployment) {
  std::map<std::string, std::vector<std::string>> probes;
  static const std::regex probe("(startupProbe|readinessProbe|livenessProbe):\\s+exec:\\s+"
                                "command: (\\[[^\\n]*\\])");
  for (auto it = std::sregex_iterator(deployment.begin(), deployment.end(), probe);
       it != std::sregex_iterator(); ++it) {
    const auto command = nlohmann::json::parse(std::string((*it)[2]), nullptr, false);
    if (command.is_array()) probes[(*it)[1]] = command.get<std::vector<std::string>>();
  }
  return probes;
}

// The directory each Secret volume of the Deployment is mounted at, and the
// Secret: mount path -> secret name.
std::map<std::string, std::string> SecretMounts(const std::string& deployment) {
  std::map<std::string, std::string> volume_secret;  // volume -> secret
  static const std::regex volume("- name: (\\S+)\\s+secret:\\s+secretName: (\\S+)");
  for (auto it = std::sregex_iterator(deployment.begin(), deployment.end(), volume);
       it != std::sregex_iterator(); ++it) {
    volume_secret[(*it)[1]] = (*it)[2];
  }
  std::map<std::string, std::string> mounts;
  static const std::regex mount("- name: (\\S+)\\s+mountPath: (\\S+)");
  for (auto it = std::sregex_iterator(deployment.begin(), deployment.end(), mount);
       it != std::sregex_iterator(); ++it) {
    if (volume_secret.count((*it)[1])) mounts[(*it)[2]] = volume_secret[(*it)[1]];
  }
  return mounts;
}

// The keys of each Secret in secret.example.yaml: secret name -> keys.
std::map<std::string, std::set<std::string>> ExampleSecretKeys(const std::string& text) {
  std::map<std::string, std::set<std::string>> secrets;
  std::string name;
  static const std::regex name_line("^  name: (\\S+)$");
  static const std::regex key_line("^  ([A-Za-z0-9_.-]+): \\|$");
  for (const std::string& line : Split(text)) {
    std::smatch match;
    if (line == "---") {
      name.clear();
    } else if (std::regex_match(line, match, name_line)) {
      name = match[1];
    } else if (std::regex_match(line, match, key_line) && !name.empty()) {
      secrets[name].insert(match[1]);
    }
  }
  return secrets;
}

TEST(KubernetesTest, GracePeriodCoversDrainAndProbesCheckHealth) {
  const std::string deployment = ReadFile(K8sDir() / "deployment.yaml");
  const std::vector<std::string> args = ListAfter(deployment, "args");
  const std::string drain = FlagValue(args, "--drain-timeout");
  ASSERT_FALSE(drain.empty()) << "the Deployment sets no --drain-timeout";
  std::smatch grace, pre_stop;
  ASSERT_TRUE(
      std::regex_search(deployment, grace, std::regex("terminationGracePeriodSeconds: ([0-9]+)")));
  double pre_stop_seconds = 0;
  if (std::regex_search(deployment, pre_stop,
                        std::regex("preStop:[\\s\\S]*?\"sleep\", \"([0-9]+)\""))) {
    pre_stop_seconds = std::stod(pre_stop[1]);
  }
  EXPECT_GT(std::stod(grace[1]), std::stod(drain) + pre_stop_seconds)
      << "terminationGracePeriodSeconds must exceed preStop plus --drain-timeout";
  // The kubelet's grpc: probes speak plaintext only: with TLS on, each probe
  // runs clca-client health over TLS in the container instead.
  const bool tls = !FlagValue(args, "--tls-cert").empty();
  const auto exec_probes = ExecProbes(deployment);
  for (const char* probe : {"startupProbe", "readinessProbe", "livenessProbe"}) {
    const bool grpc =
        std::regex_search(deployment, std::regex(std::string(probe) + ":\\s+grpc:\\s+port: 50051"));
    if (!tls && grpc) continue;
    ASSERT_TRUE(exec_probes.count(probe))
        << probe << " is neither a gRPC probe on port 50051 (without TLS) nor an exec of "
        << "clca-client health";
    const std::vector<std::string>& command = exec_probes.at(probe);
    ASSERT_GE(command.size(), 2u);
    EXPECT_EQ(command[0], "clca-client") << probe;
    EXPECT_EQ(command[1], "health") << probe;
    EXPECT_EQ(FlagValue(command, "--server"), "127.0.0.1:50051") << probe;
    if (tls) {
      EXPECT_FALSE(FlagValue(command, "--tls-ca").empty()) << probe << " without TLS";
    }
  }
  const std::string services = ReadFile(K8sDir() / "service.yaml");
  EXPECT_THAT(services, HasSubstr("clusterIP: None"));
  const std::string hpa = ReadFile(K8sDir() / "hpa.yaml");
  EXPECT_THAT(hpa, HasSubstr("name: clca_queue_depth"));
}

// Every file the server and its probes read lies in a mounted Secret, under
// a key that secret.example.yaml shows, and the README says how to create
// each Secret.
TEST(KubernetesTest, TlsAndTokenFilesComeFromMountedSecrets) {
  const std::string deployment = ReadFile(K8sDir() / "deployment.yaml");
  const std::vector<std::string> args = ListAfter(deployment, "args");
  const std::map<std::string, std::string> mounts = SecretMounts(deployment);
  auto example = ExampleSecretKeys(ReadFile(K8sDir() / "secret.example.yaml"));
  const std::string readme = ReadFile(K8sDir() / "README.md");
  std::vector<std::pair<std::string, std::string>> files;  // what, path
  for (const char* flag : {"--tls-cert", "--tls-key", "--auth-tokens"}) {
    files.emplace_back(flag, FlagValue(args, flag));
  }
  for (const auto& [probe, command] : ExecProbes(deployment)) {
    files.emplace_back(probe + " --tls-ca", FlagValue(command, "--tls-ca"));
  }
  for (const auto& [what, path] : files) {
    ASSERT_FALSE(path.empty()) << "the Deployment sets no " << what;
    const fs::path file(path);
    const std::string dir = file.parent_path().string();
    ASSERT_TRUE(mounts.count(dir)) << what << ": " << path << " is not in a mounted Secret";
    const std::string& secret = mounts.at(dir);
    EXPECT_TRUE(example[secret].count(file.filename().string()))
        << what << ": secret.example.yaml shows no key " << file.filename() << " in " << secret;
    EXPECT_NE(readme.find("kubectl create secret generic " + secret), std::string::npos)
        << "deploy/k8s/README.md does not say how to create " << secret
        << " (kubectl create secret generic " << secret << " ...)";
  }
  const std::string kustomization = ReadFile(K8sDir() / "kustomization.yaml");
  for (const char* resource : {"deployment.yaml", "service.yaml"}) {
    EXPECT_THAT(kustomization, HasSubstr("  - " + std::string(resource)));
  }
  // The placeholders must never be applied over real Secrets.
  EXPECT_THAT(kustomization, Not(HasSubstr("  - secret.example.yaml")));
}

// --- Flags -----------------------------------------------------------------

// clca-server starts with the flags each deployment gives it (repository,
// address and ports swapped for loopback ones, secrets for test files).
TEST(ServerFlagsTest, ServerAcceptsTheShippedFlags) {
  ASSERT_TRUE(IsExecutable(kDockerCompose));
  std::map<std::string, std::vector<std::string>> shipped;
  for (const Instruction& instruction : ParseDockerfile(ReadFile(Dockerfile()))) {
    if (instruction.keyword == "CMD") {
      const auto json = nlohmann::json::parse(instruction.arguments, nullptr, false);
      ASSERT_TRUE(json.is_array()) << "CMD is not in exec form: " << instruction.arguments;
      shipped["Dockerfile CMD"] = json.get<std::vector<std::string>>();
    }
  }
  const CommandResult config = Compose({"config"});
  ASSERT_EQ(config.exit_code, 0) << config.output;
  shipped["docker-compose.yml"] =
      ListAfter(ComposeServices(config.output)["clca-server"], "command");
  const CommandResult secure = Compose({"config"}, /*secure=*/true);
  ASSERT_EQ(secure.exit_code, 0) << secure.output;
  shipped["docker-compose.secure.yml"] =
      ListAfter(ComposeServices(secure.output)["clca-server"], "command");
  shipped["deployment.yaml"] = ListAfter(ReadFile(K8sDir() / "deployment.yaml"), "args");

  TempDir dir;
  TestRepository repository;
  TestSecrets secrets;
  for (const auto& [source, args] : shipped) {
    ASSERT_FALSE(args.empty()) << source;
    FlagServer server;
    EXPECT_TRUE(server.Start(ForLoopback(secrets.ForServer(args), repository.path()),
                             dir.path() / "server.log"))
        << source;
    EXPECT_EQ(server.Stop(), 0) << source << ": " << server.Log();
  }
}

// The deployments that turn on TLS and tokens, run with test secrets: the
// server speaks TLS only, refuses calls without a token, answers those with
// one, and the deployment's own health checks pass.
TEST(ServerFlagsTest, SecureDeploymentsServeTlsAndRequireTokens) {
  ASSERT_TRUE(IsExecutable(kDockerCompose));
  ASSERT_TRUE(IsExecutable(ClientBinary()));
  struct Deployment {
    std::vector<std::string> args;
    std::map<std::string, std::vector<std::string>> health_checks;
  };
  std::map<std::string, Deployment> deployments;
  const CommandResult secure = Compose({"config"}, /*secure=*/true);
  ASSERT_EQ(secure.exit_code, 0) << secure.output;
  const std::string compose_server = ComposeServices(secure.output)["clca-server"];
  std::vector<std::string> compose_health = ListAfter(compose_server, "test");
  ASSERT_FALSE(compose_health.empty()) << compose_server;
  ASSERT_EQ(compose_health[0], "CMD") << compose_server;
  compose_health.erase(compose_health.begin());
  for (std::string& word : compose_health) {  // `- '3000'`
    if (word.size() >= 2 && word.front() == '\'' && word.back() == '\'') {
      word = word.substr(1, word.size() - 2);
    }
  }
  deployments["docker-compose.secure.yml"] = {ListAfter(compose_server, "command"),
                                              {{"healthcheck", compose_health}}};
  const std::string k8s = ReadFile(K8sDir() / "deployment.yaml");
  deployments["deployment.yaml"] = {ListAfter(k8s, "args"), ExecProbes(k8s)};

  TempDir dir;
  TestRepository repository;
  TestSecrets secrets;
  for (const auto& [source, deployment] : deployments) {
    SCOPED_TRACE(source);
    for (const char* flag : {"--tls-cert", "--tls-key", "--auth-tokens"}) {
      EXPECT_FALSE(FlagValue(deployment.args, flag).empty()) << source << " sets no " << flag;
    }
    ASSERT_FALSE(deployment.health_checks.empty()) << source << " has no health check";
    FlagServer server;
    ASSERT_TRUE(server.Start(ForLoopback(secrets.ForServer(deployment.args), repository.path()),
                             dir.path() / "server.log"));

    for (const auto& [name, shipped_command] : deployment.health_checks) {
      ASSERT_EQ(shipped_command[0], "clca-client") << name;
      EXPECT_FALSE(FlagValue(shipped_command, "--tls-server-name").empty())
          << name << " names no --tls-server-name: the certificate would have to be for "
          << "127.0.0.1";
      std::vector<std::string> command = secrets.ForClient(shipped_command);
      command[0] = ClientBinary();
      std::vector<std::string> live = command;
      std::replace(live.begin(), live.end(), std::string("127.0.0.1:50051"), server.address());
      ASSERT_NE(live, command) << name << " does not address 127.0.0.1:50051";
      const CommandResult healthy = RunCommand(live);
      EXPECT_EQ(healthy.exit_code, 0) << name << ": " << healthy.output;
      EXPECT_THAT(healthy.output, HasSubstr("SERVING")) << name;
      std::vector<std::string> dead = command;
      std::replace(dead.begin(), dead.end(), std::string("127.0.0.1:50051"),
                   "127.0.0.1:" + std::to_string(FreePort()));
      EXPECT_NE(RunCommand(dead).exit_code, 0) << name << " passes without a server";
    }

    const std::vector<std::string> tls = {ClientBinary(),      "--server",
                                          server.address(),    "--tls-ca",
                                          secrets.path("ca.pem"), "--tls-server-name",
                                          TestSecrets::kServerName, "--timeout",
                                          "30000"};
    std::vector<std::string> models = tls;
    models.push_back("models");
    const CommandResult no_token = RunCommand(models);
    EXPECT_EQ(no_token.exit_code, 1) << no_token.output;
    EXPECT_THAT(no_token.output, HasSubstr("UNAUTHENTICATED"));
    models.insert(models.end() - 1, {"--token-file", secrets.path("token")});
    const CommandResult with_token = RunCommand(models);
    EXPECT_EQ(with_token.exit_code, 0) << with_token.output;
    EXPECT_THAT(with_token.output, HasSubstr("AVAILABLE"));
    // Plaintext does not reach it, health included.
    const CommandResult plaintext = RunCommand(
        {ClientBinary(), "--server", server.address(), "--timeout", "30000", "health"});
    EXPECT_NE(plaintext.exit_code, 0) << plaintext.output;
    EXPECT_EQ(server.Stop(), 0) << server.Log();
  }
}

}  // namespace
}  // namespace clca::deploy_test
