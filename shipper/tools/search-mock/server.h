// The HTTP side of pgstream-search-mock: routes, query-parameter and content-type checks, authentication,
// and the fault injector that the admin API (/_mock/...) switches at run time.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "cluster.h"

namespace search_mock {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 0;  // 0: any free port
    Flavor flavor = Flavor::kOpenSearch;
    std::optional<std::string> user;     // "name:password" for basic auth
    std::optional<std::string> api_key;  // the encoded credential of "Authorization: ApiKey <key>"
    std::optional<std::string>
        admin_host;  // a second listener serving only /_mock/ (reachable during outages)
    int admin_port = 0;
};

// The faults currently switched on. Counters: 0 off, N for the next N requests, -1 until switched off.
struct Faults {
    double reject_bulk_items_ratio = 0;
    int64_t reject_requests = 0;
    int64_t unavailable_requests = 0;
    int64_t drop_connections = 0;
    int64_t drop_responses = 0;
    int64_t delay_ms = 0;
    int64_t outage_ms = 0;  // 0 with outage: until switched off through the admin listener
    bool outage = false;
    std::string path_filter;  // faults apply only to paths containing this ("" = every data request)
};

struct Stats {
    int64_t requests = 0;
    int64_t bulk_items_rejected = 0;
    int64_t requests_rejected = 0;
    int64_t requests_unavailable = 0;
    int64_t connections_dropped = 0;
    int64_t responses_dropped = 0;
    int64_t requests_delayed = 0;
    int64_t unauthorized = 0;
    int64_t outages = 0;
    int64_t answer_bytes = 0;  // the bodies of every answer sent (what filter_path makes smaller)
};

class MockServer {
  public:
    explicit MockServer(ServerOptions options);
    ~MockServer();
    MockServer(const MockServer&) = delete;
    MockServer& operator=(const MockServer&) = delete;

    // Binds the listeners; returns false with a message when a port cannot be bound.
    bool start(std::string& error);
    int port() const { return port_; }
    int adminPort() const { return admin_port_; }
    void stop();

  private:
    std::unique_ptr<httplib::Server> makeServer(bool admin_only);
    void handle(const httplib::Request& request, httplib::Response& response, bool admin_only);
    Response dispatch(const httplib::Request& request, const Params& params, bool& head,
                      const Cluster::ItemRejector& reject);
    Response admin(const httplib::Request& request, bool on_admin_listener);
    bool authorized(const httplib::Request& request, httplib::Response& response);
    void writeFaults(JsonWriter& out);
    bool applyFaults(const rapidjson::Value& json, std::string& error);
    void dropConnection(const httplib::Request& request);
    void supervise();  // outages: stops the data listener, brings it back on the same port
    void refreshLoop();
    bool bindData(std::string& error);

    ServerOptions options_;
    Cluster cluster_;
    int port_ = 0;
    int admin_port_ = 0;

    std::mutex mutex_;  // faults_, stats_, the listeners and the flags below
    std::condition_variable changed_;
    Faults faults_;
    Stats stats_;
    uint64_t bulk_items_seen_ = 0;
    bool stopping_ = false;
    bool outage_active_ = false;
    bool data_listening_ = false;  // false from the moment an outage has closed the data listener

    std::unique_ptr<httplib::Server> data_server_;
    std::thread data_thread_;
    std::unique_ptr<httplib::Server> admin_server_;
    std::thread admin_thread_;
    std::thread supervisor_thread_;
    std::thread refresh_thread_;
};

}  // namespace search_mock
