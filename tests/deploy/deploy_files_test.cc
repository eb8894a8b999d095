// The deployment files, checked with the tools at hand (no container engine
// or cluster needed): docker-compose validates the compose file with every
// profile; the Dockerfile installs only Debian 12 packages, and its runtime
// packages provide every shared library the built binaries load; the images'
// health check works; the server accepts the flags that the Dockerfile,
// compose file and Kubernetes Deployment give it; grace periods exceed the
// drain timeout.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/deploy/deploy_harness.h"

namespace clca::deploy_test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kDockerCompose = "/usr/bin/docker-compose";

fs::path ComposeFile() { return SourceDir() / "docker-compose.yml"; }
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

// `args` with the repository, address and ports a test server on loopback
// needs in place of the shipped ones.
std::vector<std::string> ForLoopback(const std::vector<std::string>& args,
                                     const std::string& repository) {
  const std::map<std::string, std::string> replaced = {{"--model-repository", repository},
                                                       {"--host", "127.0.0.1"},
                                                       {"--port", "0"},
                                                       {"--metrics-port", "0"}};
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

CommandResult Compose(std::vector<std::string> args) {
  args.insert(args.begin(), {kDockerCompose, "--project-directory", SourceDir().string(), "-f",
                             ComposeFile().string()});
  return RunCommand(args);
}

TEST(ComposeTest, ConfigIsValidWithAndWithoutTheScaleProfile) {
  ASSERT_TRUE(IsExecutable(kDockerCompose));
  const CommandResult plain = Compose({"config", "-q"});
  EXPECT_EQ(plain.exit_code, 0) << plain.output;
  const CommandResult scale = Compose({"--profile", "scale", "config", "-q"});
  EXPECT_EQ(scale.exit_code, 0) << scale.output;
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

TEST(KubernetesTest, GracePeriodCoversDrainAndProbesUseGrpc) {
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
  for (const char* probe : {"readinessProbe", "livenessProbe"}) {
    EXPECT_TRUE(
        std::regex_search(deployment, std::regex(std::string(probe) + ":\\s+grpc:\\s+port: 50051")))
        << probe << " is not a gRPC probe on port 50051";
  }
  const std::string services = ReadFile(K8sDir() / "service.yaml");
  EXPECT_THAT(services, HasSubstr("clusterIP: None"));
  const std::string hpa = ReadFile(K8sDir() / "hpa.yaml");
  EXPECT_THAT(hpa, HasSubstr("name: clca_queue_depth"));
}

// --- Flags -----------------------------------------------------------------

// clca-server starts with the flags each deployment gives it (repository,
// address and ports swapped for loopback ones).
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
  shipped["deployment.yaml"] = ListAfter(ReadFile(K8sDir() / "deployment.yaml"), "args");

  TempDir dir;
  TestRepository repository;
  for (const auto& [source, args] : shipped) {
    ASSERT_FALSE(args.empty()) << source;
    std::vector<std::string> loopback = ForLoopback(args, repository.path());
    ChildProcess server;
    std::vector<std::string> argv = {ServerBinary()};
    argv.insert(argv.end(), loopback.begin(), loopback.end());
    const fs::path log = dir.path() / "server.log";
    fs::remove(log);
    ASSERT_TRUE(server.Start(argv, log));
    const bool listening = WaitFor(
        [&] {
          return server.Log().find("clca-server listening") != std::string::npos ||
                 !server.Running();
        },
        seconds(30));
    EXPECT_TRUE(listening && server.Running()) << source << ": " << server.Log();
    EXPECT_EQ(server.Stop(SIGTERM, seconds(20)), 0) << source << ": " << server.Log();
  }
}

}  // namespace
}  // namespace clca::deploy_test
