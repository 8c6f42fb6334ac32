#include "observability/health_server.h"

#include <httplib.h>

#include <stdexcept>

#include "config/config.h"
#include "util/log.h"
#include "wal/json.h"

namespace pgstream {

bool parse_listen_address(const std::string& address, std::string& host, int& port) {
    size_t colon = address.rfind(':');
    if (colon == std::string::npos) return false;
    host = address.substr(0, colon);
    std::string port_text = address.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    else if (host.find(':') != std::string::npos)
        return false;  // a bare IPv6 address needs brackets
    if (host.empty()) host = "0.0.0.0";
    if (port_text.empty() || port_text.size() > 5) return false;
    for (char c : port_text)
        if (c < '0' || c > '9') return false;
    port = std::stoi(port_text);
    return port <= 65535;
}

void HealthServer::validate(const HealthServerSettings& settings) {
    std::string host;
    int port;
    if (!parse_listen_address(settings.address, host, port))
        throw ConfigError("PGSTREAM_HEALTH_CHECK_ADDRESS",
                          "\"" + settings.address + "\" is not host:port (e.g. localhost:9910 or :9910)");
    if (settings.prometheus_path.empty() || settings.prometheus_path.front() != '/')
        throw ConfigError("PGSTREAM_METRICS_PROMETHEUS_ENDPOINT",
                          "\"" + settings.prometheus_path + "\" is not a path starting with /");
}

HealthServer::HealthServer(HealthServerSettings settings, Metrics& metrics)
    : settings_(std::move(settings)), metrics_(metrics) {
    validate(settings_);
    parse_listen_address(settings_.address, host_, port_);
}

HealthServer::~HealthServer() {
    stop();
}

void HealthServer::add_readiness_check(std::string component, ReadinessCheck check) {
    std::lock_guard<std::mutex> lock(mutex_);
    readiness_checks_.emplace_back(std::move(component), std::move(check));
}

void HealthServer::add_status_section(std::string name, StatusSection section) {
    std::lock_guard<std::mutex> lock(mutex_);
    status_sections_.emplace_back(std::move(name), std::move(section));
}

std::string HealthServer::health_response() {
    return std::string("{\"status\":\"ok\",\"version\":") + json_quote(PGSTREAM_VERSION) + "}";
}

std::pair<int, std::string> HealthServer::ready_response() const {
    decltype(readiness_checks_) checks;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        checks = readiness_checks_;
    }
    std::string failures;
    for (const auto& [component, check] : checks) {
        std::string error;
        try {
            error = check();
        } catch (const std::exception& e) {
            error = e.what();
        }
        if (error.empty()) continue;
        failures += failures.empty() ? "" : ",";
        failures += "{\"component\":" + json_quote(component) + ",\"error\":" + json_quote(error) + "}";
    }
    if (failures.empty()) return {200, "{\"status\":\"ready\"}"};
    return {503, "{\"status\":\"unready\",\"failures\":[" + failures + "]}"};
}

std::string HealthServer::status_response() const {
    decltype(status_sections_) sections;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        sections = status_sections_;
    }
    std::string body = health_response();
    body.pop_back();
    for (const auto& [name, section] : sections) body += "," + json_quote(name) + ":" + section();
    return body + "}";
}

int HealthServer::start() {
    server_ = std::make_unique<httplib::Server>();
    httplib::Server& server = *server_;
    server.set_payload_max_length(0);
    server.set_read_timeout(5, 0);
    server.set_write_timeout(10, 0);
    server.set_keep_alive_max_count(100);
    // Two workers: probes and scrapes are small and rare; the default pool would start a thread per core.
    server.new_task_queue = [] { return new httplib::ThreadPool(2); };
    auto json = [](httplib::Response& response, int status, const std::string& body) {
        response.status = status;
        response.set_content(body, "application/json");
    };
    server.Get("/health", [json](const httplib::Request&, httplib::Response& response) {
        json(response, 200, health_response());
    });
    server.Get("/ready", [this, json](const httplib::Request&, httplib::Response& response) {
        auto [status, body] = ready_response();
        json(response, status, body);
    });
    server.Get("/status", [this, json](const httplib::Request&, httplib::Response& response) {
        json(response, 200, status_response());
    });
    if (settings_.prometheus_enabled) {
        server.Get(settings_.prometheus_path, [this](const httplib::Request&, httplib::Response& response) {
            response.set_content(metrics_.prometheus_text(), "text/plain; version=0.0.4; charset=utf-8");
        });
    }
    int bound =
        port_ == 0 ? server.bind_to_any_port(host_) : (server.bind_to_port(host_, port_) ? port_ : -1);
    if (bound < 0)
        throw std::runtime_error("health server: cannot listen on " + settings_.address +
                                 " (PGSTREAM_HEALTH_CHECK_ADDRESS): address in use or not local");
    serving_thread_.start(server);
    log::info(
        "health server: listening on ", host_, ":", bound,
        settings_.prometheus_enabled ? " (Prometheus metrics at " + settings_.prometheus_path + ")" : "");
    return bound;
}

void HealthServer::stop() {
    serving_thread_.stop();
}

}  // namespace pgstream
