// A minimal HTTP/1.0 server answering GET /metrics with the Prometheus text
// format. prometheus-cpp's Exposer (civetweb) cannot start its threads in a
// process linked with LibTorch and OpenBLAS: their static TLS does not fit in
// civetweb's fixed small thread stacks.
//
// One thread serves every connection with poll(2), so a slow client holds
// only its own connection: each has a total deadline from its accept, and a
// connection beyond the cap closes the oldest open one.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <prometheus/collectable.h>

#include "absl/status/statusor.h"

namespace clca::server {

struct MetricsEndpointOptions {
  // Address to bind ("127.0.0.1", "::"; empty: every IPv4 address); port 0
  // picks a free one.
  std::string host;
  int port = 8080;
  // Time a connection has, from accept to the last byte of the answer.
  std::chrono::milliseconds connection_deadline{5000};
  // Connections served at once; a new one beyond it closes the oldest.
  int max_connections = 64;
  // Largest request head read (request line and headers).
  size_t max_request_bytes = 8192;
};

class MetricsEndpoint {
 public:
  // Binds and starts answering.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const MetricsEndpointOptions& options, std::shared_ptr<prometheus::Collectable> collectable);
  // Stops answering, closes every connection and joins the thread.
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  int port() const { return port_; }

 private:
  struct Connection;
  MetricsEndpoint(const MetricsEndpointOptions& options, int listen_fd, int port,
                  std::shared_ptr<prometheus::Collectable> collectable);
  void Loop();
  // The answer to a complete request head.
  std::string Answer(const std::string& request) const;

  const MetricsEndpointOptions options_;
  const int listen_fd_;
  const int port_;
  const std::shared_ptr<prometheus::Collectable> collectable_;
  // Written to on stop, to wake the loop.
  int wake_fds_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace clca::server
