#include "server/observability/metrics_endpoint.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>
#include <vector>

#include <prometheus/text_serializer.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace clca::server {
namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

std::string Response(const char* status, const char* content_type, const std::string& body) {
  return absl::StrCat("HTTP/1.0 ", status, "\r\nContent-Type: ", content_type,
                      "\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n\r\n", body);
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const MetricsEndpointOptions& options, std::shared_ptr<prometheus::Collectable> collectable) {
  const std::string host = options.host.empty() ? "0.0.0.0" : options.host;
  const std::string address = absl::StrCat(host, ":", options.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(options.port);
  if (int error = getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
      error != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot serve metrics on ", address, ": ", gai_strerror(error)));
  }
  int fd = -1;
  std::string cause = "no address";
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 64) != 0) {
      cause = std::strerror(errno);
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", address, ": ", cause));
  }
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
  const int bound_port = ntohs(bound.ss_family == AF_INET6
                                   ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                   : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return std::unique_ptr<MetricsEndpoint>(
      new MetricsEndpoint(options, fd, bound_port, std::move(collectable)));
}

MetricsEndpoint::MetricsEndpoint(const MetricsEndpointOptions& options, int listen_fd, int port,
                                 std::shared_ptr<prometheus::Collectable> collectable)
    : options_(options), listen_fd_(listen_fd), port_(port), collectable_(std::move(collectable)) {
  if (pipe2(wake_fds_, O_CLOEXEC) != 0) wake_fds_[0] = wake_fds_[1] = -1;
  thread_ = std::thread([this] { Loop(); });
}

MetricsEndpoint::~MetricsEndpoint() {
  if (wake_fds_[1] >= 0) {
    const char byte = 0;
    (void)!write(wake_fds_[1], &byte, 1);
  }
  thread_.join();
  close(listen_fd_);
  for (int fd : wake_fds_) {
    if (fd >= 0) close(fd);
  }
}

// One client: its request head as it arrives, then the answer as it leaves.
struct MetricsEndpoint::Connection {
  int fd = -1;
  SteadyTime deadline;
  std::string request;
  std::string response;
  size_t sent = 0;
  bool answering = false;
};

void MetricsEndpoint::Loop() {
  std::vector<Connection> connections;
  const auto drop = [&connections](size_t i) {
    close(connections[i].fd);
    connections.erase(connections.begin() + static_cast<std::ptrdiff_t>(i));
  };
  while (true) {
    std::vector<pollfd> fds = {{wake_fds_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    SteadyTime next = SteadyTime::max();
    for (const Connection& c : connections) {
      fds.push_back({c.fd, static_cast<short>(c.answering ? POLLOUT : POLLIN), 0});
      next = std::min(next, c.deadline);
    }
    int timeout_ms = -1;
    if (next != SteadyTime::max()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          next - std::chrono::steady_clock::now());
      timeout_ms = static_cast<int>(std::max<int64_t>(0, left.count() + 1));
    }
    if (poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) return;
    if (fds[0].revents != 0) break;
    // Serve the open connections first (indices shift as they close).
    const SteadyTime now = std::chrono::steady_clock::now();
    for (size_t i = connections.size(); i-- > 0;) {
      Connection& c = connections[i];
      const short events = fds[i + 2].revents;
      if (now >= c.deadline || (events & (POLLERR | POLLHUP | POLLNVAL)) != 0) {
        drop(i);
        continue;
      }
      if (!c.answering && (events & POLLIN) != 0) {
        char buffer[2048];
        const ssize_t n = recv(c.fd, buffer, sizeof(buffer), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
          drop(i);
          continue;
        }
        if (n > 0) c.request.append(buffer, static_cast<size_t>(n));
        const bool complete = c.request.find("\r\n\r\n") != std::string::npos ||
                              c.request.find("\n\n") != std::string::npos;
        if (complete || c.request.size() >= options_.max_request_bytes) {
          c.response = complete ? Answer(c.request)
                                : Response("431 Request Header Fields Too Large", "text/plain",
                                           "request head too large\n");
          c.answering = true;
        }
      }
      if (c.answering && (events & POLLOUT) != 0) {
        const ssize_t n = send(c.fd, c.response.data() + c.sent, c.response.size() - c.sent,
                               MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
          drop(i);
          continue;
        }
        if (n > 0) c.sent += static_cast<size_t>(n);
        if (c.sent == c.response.size()) drop(i);
      }
    }
    if ((fds[1].revents & POLLIN) != 0) {
      while (true) {
        const int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (client < 0) break;
        // The oldest connection makes way: a scrape completes in moments,
        // so clients that hold connections open cannot crowd it out.
        if (static_cast<int>(connections.size()) >= std::max(1, options_.max_connections)) {
          drop(0);
        }
        Connection c;
        c.fd = client;
        c.deadline = std::chrono::steady_clock::now() + options_.connection_deadline;
        connections.push_back(std::move(c));
      }
    }
  }
  for (const Connection& c : connections) close(c.fd);
}

std::string MetricsEndpoint::Answer(const std::string& request) const {
  const std::string line = request.substr(0, request.find_first_of("\r\n"));
  if (!absl::StartsWith(line, "GET ")) {
    return Response("405 Method Not Allowed", "text/plain", "only GET\n");
  }
  const std::string path = line.substr(4, line.find(' ', 4) - 4);
  if (path != "/metrics" && !absl::StartsWith(path, "/metrics?")) {
    return Response("404 Not Found", "text/plain", "see /metrics\n");
  }
  const std::string body = prometheus::TextSerializer().Serialize(collectable_->Collect());
  return Response("200 OK", "text/plain; version=0.0.4; charset=utf-8", body);
}

}  // namespace clca::server
