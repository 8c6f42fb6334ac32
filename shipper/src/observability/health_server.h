// The health server: GET /health, /ready, /status and, when enabled, the Prometheus endpoint.
//
// /health answers 200 while the process serves requests. /ready asks every registered readiness check (the
// source connection, each output) and answers 200, or 503 with the failing components, as the Go pgstream
// does: {"status":"unready","failures":[{"component":"postgres_source","error":"..."}]}. /status adds each
// registered status section (slot, confirmed LSN, lag, per-output queue) to the /health payload.
//
// Only GET is served, bodies are refused (payload limit 0), and reads and writes time out, so a slow or
// hostile client cannot hold the server. It binds to localhost unless told otherwise.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http/server_thread.h"

#include "observability/metrics.h"

namespace httplib {
class Server;
}

namespace pgstream {

struct HealthServerSettings {
    std::string address = "localhost:9910";  // host:port; ":9910" listens on every address
    bool prometheus_enabled = false;
    std::string prometheus_path = "/metrics";
};

class HealthServer {
  public:
    // "" when ready, else what is wrong (never a secret: redact URLs before returning them).
    using ReadinessCheck = std::function<std::string()>;
    // A JSON value (object, number, string...) as text.
    using StatusSection = std::function<std::string()>;

    // Throws ConfigError when the settings are not valid (see validate()).
    HealthServer(HealthServerSettings settings, Metrics& metrics);
    // Checks the address (PGSTREAM_HEALTH_CHECK_ADDRESS) and the metrics path without binding anything;
    // throws ConfigError naming the setting.
    static void validate(const HealthServerSettings& settings);
    ~HealthServer();
    HealthServer(const HealthServer&) = delete;
    HealthServer& operator=(const HealthServer&) = delete;

    void add_readiness_check(std::string component, ReadinessCheck check);
    void add_status_section(std::string name, StatusSection section);

    // Binds and starts serving on a thread of its own; throws std::runtime_error when the address cannot be
    // bound (in use, not local). Returns the port bound (useful with port 0).
    int start();
    void stop();

    // The bodies the endpoints answer with (tests and the server itself).
    std::pair<int, std::string> ready_response() const;
    std::string status_response() const;
    static std::string health_response();

  private:
    HealthServerSettings settings_;
    std::string host_;
    int port_ = 0;
    Metrics& metrics_;
    mutable std::mutex mutex_;
    std::vector<std::pair<std::string, ReadinessCheck>> readiness_checks_;
    std::vector<std::pair<std::string, StatusSection>> status_sections_;
    std::unique_ptr<httplib::Server> server_;
    HttpServerThread serving_thread_;
};

// Splits "host:port", ":port" or "[v6]:port"; false when malformed or the port is outside 0..65535.
bool parse_listen_address(const std::string& address, std::string& host, int& port);

}  // namespace pgstream
