// A real Prometheus server (Debian's `prometheus`) for tests: it scrapes one target on loopback, and tests
// ask its HTTP query API what it stored.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>

#include "support/process.h"

namespace pgstream_it {

class PrometheusServer {
  public:
    // Scrapes http://<target><metrics_path> every `interval`. Throws std::runtime_error when Prometheus is
    // not installed or does not become ready.
    PrometheusServer(const std::string& target, const std::string& metrics_path = "/metrics",
                     std::chrono::milliseconds interval = std::chrono::seconds(1));
    ~PrometheusServer();
    PrometheusServer(const PrometheusServer&) = delete;
    PrometheusServer& operator=(const PrometheusServer&) = delete;

    // GET /api/v1/query?query=<expression>: the response body (JSON), or nullopt when the request failed.
    std::optional<std::string> query(const std::string& expression) const;
    // The body of /api/v1/targets (scrape health and last error, for failure messages).
    std::string targets() const;
    int port() const { return port_; }

  private:
    TempDir dir_{"pgstream-prometheus"};
    int port_ = 0;
    pid_t pid_ = -1;
};

}  // namespace pgstream_it
