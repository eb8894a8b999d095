// A minimal HTTP/1.0 server answering GET /metrics with the Prometheus text
// format. prometheus-cpp's Exposer (civetweb) cannot start its threads in a
// process linked with LibTorch and OpenBLAS: their static TLS does not fit in
// civetweb's fixed small thread stacks. Scrapes are rare and tiny, so one
// thread answering one connection at a time is enough.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include <prometheus/collectable.h>

#include "absl/status/statusor.h"

namespace clca::server {

class MetricsEndpoint {
 public:
  // Binds host:port (port 0 picks a free one) and starts answering.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& host, int port, std::shared_ptr<prometheus::Collectable> collectable);
  // Stops answering and joins the thread.
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  int port() const { return port_; }

 private:
  MetricsEndpoint(int listen_fd, int port, std::shared_ptr<prometheus::Collectable> collectable);
  void Loop();
  void Answer(int fd) const;

  const int listen_fd_;
  const int port_;
  const std::shared_ptr<prometheus::Collectable> collectable_;
  // Written to on stop, to wake the loop.
  int wake_fds_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace clca::server
