// Helpers of the deployment tests: child processes (clca-server, Prometheus,
// nginx, command-line tools) that are always stopped and reaped, a temporary
// model repository, loopback HTTP and the repository's deployment files.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/server/server_harness.h"

namespace clca::deploy_test {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The repository root: CLCA_TEST_DATA is <root>/tests/data.
inline fs::path SourceDir() {
  return fs::path(CLCA_TEST_DATA).lexically_normal().parent_path().parent_path();
}

// Shared with the end-to-end server tests (tests/server/server_harness.h).
using ::clca::testing::ClientBinary;
using ::clca::testing::ServerBinary;
using ::clca::testing::TempDir;
using ::clca::testing::TestData;
// A model repository holding the tiny EViT+CLCA parity model as leafnet/1/.
using ::clca::testing::TestRepository;

inline std::string ReadFile(const fs::path& path) {
  return ::clca::testing::ReadBytes(path.string());
}

inline void WriteFile(const fs::path& path, const std::string& text) {
  ::clca::testing::WriteText(path, text);
}

// Fails the calling test (with how to fix it) unless `path` is executable.
inline ::testing::AssertionResult IsExecutable(const std::string& path) {
  if (access(path.c_str(), X_OK) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << path << " is missing; scripts/install-deps.sh installs the Debian packages the "
         << "deployment tests use (prometheus, nginx, docker-compose)";
}

// A child process in its own process group, its stdout and stderr appended
// to a log file. The destructor kills the whole group and reaps the child.
class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() { Kill(); }

  ::testing::AssertionResult Start(std::vector<std::string> args, const fs::path& log) {
    log_ = log;
    // Built before fork: the child may only exec.
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) return ::testing::AssertionFailure() << "cannot open " << log;
    const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      dup2(null_fd, STDIN_FILENO);
      dup2(log_fd, STDOUT_FILENO);
      dup2(log_fd, STDERR_FILENO);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(log_fd);
    if (null_fd >= 0) close(null_fd);
    if (pid_ < 0) return ::testing::AssertionFailure() << "fork failed";
    // Also here: the group exists when Start returns, whoever runs first.
    setpgid(pid_, pid_);
    return ::testing::AssertionSuccess();
  }

  // Whether the child has not exited yet. An exited child stays a zombie
  // until Kill(), so its process group id cannot be reused meanwhile.
  bool Running() const {
    if (pid_ <= 0) return false;
    siginfo_t info{};
    if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
      return false;
    }
    return info.si_pid == 0;
  }

  // Sends `signal`, waits up to `timeout` for the child to exit, then kills
  // what is left of its group. Returns the exit code if it exited by itself.
  std::optional<int> Stop(int signal = SIGTERM, seconds timeout = seconds(10)) {
    if (pid_ > 0) {
      kill(pid_, signal);
      const auto deadline = Clock::now() + timeout;
      while (Running() && Clock::now() < deadline) {
        std::this_thread::sleep_for(milliseconds(20));
      }
    }
    Kill();
    if (exit_status_ && WIFEXITED(*exit_status_)) return WEXITSTATUS(*exit_status_);
    return std::nullopt;
  }

  // SIGKILL to the whole group (worker processes included), then reaps the
  // child.
  void Kill() {
    if (pid_ <= 0) return;
    kill(-pid_, SIGKILL);
    int status = 0;
    if (waitpid(pid_, &status, 0) == pid_) exit_status_ = status;
    pid_ = -1;
  }

  std::string Log() const { return ReadFile(log_); }

 private:
  pid_t pid_ = -1;
  fs::path log_;
  std::optional<int> exit_status_;
};

// What a command printed (stdout and stderr) and its exit code (-1 if it did
// not exit normally within the timeout; it is killed then).
struct CommandResult {
  int exit_code = -1;
  std::string output;
};

inline CommandResult RunCommand(const std::vector<std::string>& args,
                                seconds timeout = seconds(30)) {
  TempDir dir;
  ChildProcess child;
  CommandResult result;
  if (!child.Start(args, dir.path() / "output")) return result;
  const auto deadline = Clock::now() + timeout;
  while (child.Running() && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  const std::optional<int> code = child.Stop(SIGKILL, seconds(0));
  result.exit_code = code.value_or(-1);
  result.output = child.Log();
  return result;
}

// A port free on loopback now (the kernel does not hand it out again soon).
inline int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

// Whether something accepts connections on 127.0.0.1:port.
inline bool Listening(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  close(fd);
  return ok;
}

// GET http://127.0.0.1:port/target; the body of a 200 answer, else nullopt.
inline std::optional<std::string> HttpGet(int port, const std::string& target) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return std::nullopt;
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return std::nullopt;
  }
  const std::string request =
      "GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return std::nullopt;
  }
  std::string response;
  char buffer[8192];
  ssize_t n;
  while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) response.append(buffer, n);
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  if (body == std::string::npos || response.rfind("HTTP/1.", 0) != 0) return std::nullopt;
  if (response.find(" 200 ") > body) return std::nullopt;
  return response.substr(body + 4);
}

// Percent-encodes everything but unreserved characters.
inline std::string UrlEncode(const std::string& text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// Sum of the samples of `name` in Prometheus text format.
inline double MetricSum(const std::string& text, const std::string& name) {
  std::istringstream lines(text);
  std::string line;
  double total = 0;
  while (std::getline(lines, line)) {
    if (line.compare(0, name.size(), name) != 0 || line.size() == name.size()) continue;
    if (line[name.size()] != '{' && line[name.size()] != ' ') continue;
    total += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return total;
}

// Polls `condition` every 100 ms until it holds or `timeout` passes.
template <typename Condition>
bool WaitFor(Condition condition, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return condition();
}

// clca-server on loopback with free ports, one LibTorch thread (the tests
// share two cores).
class Server {
 public:
  ::testing::AssertionResult Start(const std::string& repository, const fs::path& log) {
    if (auto ok = IsExecutable(ServerBinary()); !ok) return ok;
    auto started = process_.Start(
        {ServerBinary(), "--model-repository", repository, "--host", "127.0.0.1", "--port", "0",
         "--metrics-port", "0", "--log-level", "warn", "--intra-op-threads", "1",
         "--preprocess-threads", "1", "--drain-timeout", "5"},
        log);
    if (!started) return started;
    static const std::regex listening(
        "clca-server listening grpc=127\\.0\\.0\\.1:([0-9]+) metrics=127\\.0\\.0\\.1:([0-9]+)");
    std::smatch match;
    std::string output;
    const bool ok = WaitFor(
        [&] {
          output = process_.Log();
          return std::regex_search(output, match, listening) || !process_.Running();
        },
        seconds(30));
    if (!ok || match.empty()) {
      return ::testing::AssertionFailure() << "clca-server did not start; output:\n" << output;
    }
    port_ = std::stoi(match[1]);
    metrics_port_ = std::stoi(match[2]);
    return ::testing::AssertionSuccess();
  }

  void Stop() { process_.Stop(SIGTERM, seconds(10)); }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  std::string Metrics() const { return HttpGet(metrics_port_, "/metrics").value_or(""); }
  std::string Log() const { return process_.Log(); }

 private:
  ChildProcess process_;
  int port_ = 0;
  int metrics_port_ = 0;
};

// Replaces every match of `pattern` in `text`; adds a test failure unless
// there were exactly `expected` matches, so that a changed template is
// noticed.
inline std::string ReplaceExpecting(const std::string& text, const std::string& pattern,
                                    const std::string& replacement, int expected,
                                    const std::string& what) {
  const std::regex re(pattern);
  const auto count =
      std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator());
  EXPECT_EQ(count, expected) << what << ": /" << pattern << "/ matched " << count << " times";
  return std::regex_replace(text, re, replacement);
}

}  // namespace clca::deploy_test
