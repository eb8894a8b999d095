// Helpers of the end-to-end server tests: a temporary model repository, the
// real clca-server binary as a child process, and a tiny HTTP client for
// /metrics.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "client/client.h"

namespace clca::testing {

namespace fs = std::filesystem;

inline std::string TestData(const std::string& relative) {
  return std::string(CLCA_TEST_DATA) + "/" + relative;
}

inline std::string ServerBinary() { return std::string(CLCA_BINARY_DIR) + "/server/clca-server"; }
inline std::string ClientBinary() { return std::string(CLCA_BINARY_DIR) + "/client/clca-client"; }

// One clca-client run: exit code and stdout + stderr.
struct ClientRun {
  int exit_code = -1;
  std::string output;
};

inline ClientRun RunClient(const std::string& args) {
  ClientRun run;
  const std::string command = ClientBinary() + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) run.output.append(buffer, n);
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

// A directory removed when it goes out of scope.
class TempDir {
 public:
  TempDir() {
    std::random_device random;
    path_ = fs::temp_directory_path() /
            ("clca-server-test-" + std::to_string(getpid()) + "-" + std::to_string(random()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline constexpr const char* kTestModel = "leafnet";
inline constexpr int kTestClasses = 7;

// The test model's class names.
inline std::vector<std::string> TestLabels() {
  return {"Zhonghuang 13", "Williams 82", "Jidou 17", "Heinong 44",
          "Suinong 14",    "Kenfeng 16",  "Hefeng 25"};
}

// A model repository holding the tiny EViT+CLCA parity model as
// <kTestModel>/<version>/, with labels and the given serving.json.
class TestRepository {
 public:
  explicit TestRepository(const std::string& serving_json = "", std::vector<int> versions = {1}) {
    for (int version : versions) AddVersion(kTestModel, version, serving_json);
  }

  void AddVersion(const std::string& model, int version, const std::string& serving_json) {
    WriteVersion(dir_.path() / model / std::to_string(version), serving_json);
  }

  // Writes the version under a name the server skips, then moves it into
  // place: how operators are told to publish a version.
  void MoveVersionIn(const std::string& model, int version, const std::string& serving_json = "") {
    const fs::path staging = dir_.path() / model / (".staging-" + std::to_string(version));
    WriteVersion(staging, serving_json);
    fs::rename(staging, dir_.path() / model / std::to_string(version));
  }

  // A version whose checkpoint is not one.
  void AddCorruptVersion(const std::string& model, int version) {
    const fs::path staging = dir_.path() / model / (".staging-" + std::to_string(version));
    WriteVersion(staging, "");
    fs::remove(staging / "model.pth");
    WriteText(staging / "model.pth", "PK\x03\x04 not a torch.save archive");
    fs::rename(staging, dir_.path() / model / std::to_string(version));
  }

  void RemoveVersion(const std::string& model, int version) {
    fs::remove_all(dir_.path() / model / std::to_string(version));
  }

  void WriteModelConfig(const std::string& model, const std::string& config_json) {
    WriteText(dir_.path() / model / "config.json", config_json);
  }

  std::string path() const { return dir_.path().string(); }

 private:
  static void WriteVersion(const fs::path& dir, const std::string& serving_json) {
    fs::create_directories(dir);
    fs::create_symlink(TestData("parity/evit_kr0.5_clca.pth"), dir / "model.pth");
    fs::copy_file(TestData("parity/evit_kr0.5_clca.config.json"), dir / "model.json");
    std::string labels;
    for (const std::string& label : TestLabels()) labels += label + "\n";
    WriteText(dir / "labels.txt", labels);
    if (!serving_json.empty()) WriteText(dir / "serving.json", serving_json);
  }

  TempDir dir_;
};

// The clca-server binary running as a child process; its stdout and stderr
// are collected in output().
class ServerProcess {
 public:
  ServerProcess() = default;
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (stdout_fd_ >= 0) close(stdout_fd_);
  }

  // Starts the server on loopback with free ports and waits for its
  // "listening" line. Returns false (with the output so far) on failure.
  ::testing::AssertionResult Start(const std::string& repository,
                                   const std::vector<std::string>& extra_args = {},
                                   std::chrono::seconds timeout = std::chrono::seconds(60)) {
    std::vector<std::string> args = {ServerBinary(), "--model-repository", repository,
                                     "--host",       "127.0.0.1",        "--port",
                                     "0",            "--metrics-port",   "0",
                                     "--preprocess-threads", "2"};
    // Defaults unless the test sets them: two cores are shared by parallel
    // tests.
    std::vector<std::pair<std::string, std::string>> defaults = {{"--log-level", "warn"},
                                                                 {"--intra-op-threads", "1"}};
    // CLCA_TEST_SERVER_FLAGS="--device cuda --precision float32" runs every
    // server test's server with those flags (where the test sets none).
    if (const char* env = std::getenv("CLCA_TEST_SERVER_FLAGS")) {
      std::istringstream words(env);
      for (std::string flag, value; words >> flag >> value;) defaults.emplace_back(flag, value);
    }
    for (const auto& [flag, value] : defaults) {
      if (std::find(extra_args.begin(), extra_args.end(), flag) == extra_args.end()) {
        args.insert(args.end(), {flag, value});
      }
    }
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    // Built before fork: the child may only exec.
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) return ::testing::AssertionFailure() << "pipe failed";
    pid_ = fork();
    if (pid_ == 0) {
      dup2(pipe_fds[1], STDOUT_FILENO);
      dup2(pipe_fds[1], STDERR_FILENO);
      close(pipe_fds[0]);
      close(pipe_fds[1]);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(pipe_fds[1]);
    stdout_fd_ = pipe_fds[0];
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    static const std::regex listening(
        "clca-server listening grpc=([0-9.]+):([0-9]+) metrics=([0-9.]+):([0-9]+)");
    while (std::chrono::steady_clock::now() < deadline) {
      std::smatch match;
      if (std::regex_search(output_, match, listening)) {
        port_ = std::stoi(match[2]);
        metrics_port_ = std::stoi(match[4]);
        return ::testing::AssertionSuccess();
      }
      if (ReadSome(std::chrono::milliseconds(100)) < 0) break;
    }
    // It may have exited: collect what it said.
    exit_code_ = Wait(std::chrono::seconds(5));
    return ::testing::AssertionFailure() << "clca-server did not start; output: " << output_;
  }

  // Sends `signal` and waits for the process to end; returns its exit code,
  // or nullopt if it did not exit normally within `timeout`.
  std::optional<int> Stop(int signal = SIGTERM,
                          std::chrono::seconds timeout = std::chrono::seconds(60)) {
    if (pid_ <= 0) return std::nullopt;
    kill(pid_, signal);
    return Wait(timeout);
  }

  void Signal(int signal) { kill(pid_, signal); }

  // Waits for the process to end, collecting its output.
  std::optional<int> Wait(std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    do {
      int status = 0;
      if (pid_ > 0 && waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        while (ReadSome(std::chrono::milliseconds(0)) > 0) {
        }
        if (WIFEXITED(status)) return WEXITSTATUS(status);
        return std::nullopt;
      }
      ReadSome(std::chrono::milliseconds(20));
    } while (std::chrono::steady_clock::now() < deadline);
    return std::nullopt;
  }

  // Threads of the server process whose name is `name`.
  int ThreadsNamed(const std::string& name) const {
    int count = 0;
    std::error_code error;
    for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid_) + "/task", error)) {
      std::ifstream comm(task.path() / "comm");
      std::string thread;
      std::getline(comm, thread);
      if (thread == name) ++count;
    }
    return count;
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // The server's process id while it runs (-1 before Start and after exit).
  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  // What the server wrote until Start or Wait last read it.
  const std::string& output() const { return output_; }
  // What the server has written so far, reading what is pending.
  const std::string& ReadOutput() {
    while (ReadSome(std::chrono::milliseconds(0)) > 0) {
    }
    return output_;
  }
  // The exit code when Start failed because the process exited.
  std::optional<int> exit_code() const { return exit_code_; }

  std::unique_ptr<Client> NewClient(std::chrono::milliseconds timeout =
                                        std::chrono::milliseconds(30000)) const {
    ClientOptions options;
    options.timeout = timeout;
    return Client::Create(address(), options);
  }

 private:
  // Reads what the child wrote: 1 if something was read, 0 if nothing came
  // within `wait`, -1 at end of file.
  int ReadSome(std::chrono::milliseconds wait) {
    if (stdout_fd_ < 0) return -1;
    pollfd fd = {stdout_fd_, POLLIN, 0};
    if (poll(&fd, 1, static_cast<int>(wait.count())) <= 0) return 0;
    char buffer[4096];
    ssize_t n = read(stdout_fd_, buffer, sizeof(buffer));
    if (n <= 0) return -1;
    output_.append(buffer, static_cast<size_t>(n));
    return 1;
  }

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string output_;
  int port_ = 0;
  int metrics_port_ = 0;
  std::optional<int> exit_code_;
};

// GET http://127.0.0.1:port/path over a plain socket; returns the body, or ""
// on failure.
inline std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return "";
  }
  const std::string request =
      "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (send(fd, request.data(), request.size(), 0) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return "";
  }
  std::string response;
  char buffer[8192];
  ssize_t n;
  while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) response.append(buffer, n);
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || body == std::string::npos) return "";
  if (response.find(" 200 ") > body) return "";
  return response.substr(body + 4);
}

// The value of the sample `name{labels}` in Prometheus text format, where
// `labels` are all required to be present; 0 when absent.
inline double MetricValue(const std::string& text, const std::string& name,
                          const std::map<std::string, std::string>& labels = {}) {
  std::istringstream lines(text);
  std::string line;
  double total = 0;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line.compare(0, name.size(), name) != 0) continue;
    const char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != '{' && next != ' ') continue;
    bool match = true;
    for (const auto& [key, value] : labels) {
      if (line.find(key + "=\"" + value + "\"") == std::string::npos) match = false;
    }
    if (!match) continue;
    total += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return total;
}

inline std::string Metrics(const ServerProcess& server) {
  return HttpGet(server.metrics_port(), "/metrics");
}

// Polls `condition` every 10 ms until it holds or `timeout` passes.
template <typename Condition>
bool WaitFor(Condition condition, std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

}  // namespace clca::testing
