// The webhook subscription server (docs/webhooks.md): POST /webhooks/subscribe (201), POST
// /webhooks/unsubscribe (200), GET /webhooks/subscriptions, over cpp-httplib on a thread of its own.
//
// Every answer is JSON; errors are {"error":"..."}: 400 for a bad body or a refused URL, 401 without the
// bearer token (when one is set), 413 for a body over the limit, 503 when the store cannot be used. Secrets
// never leave it: the list says whether a subscription has one ("secret_set"), and neither the token nor a
// secret is logged.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "http/address_policy.h"
#include "http/server_thread.h"
#include "webhooks/subscription_settings.h"
#include "webhooks/subscription_store.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace pgstream::webhooks {

class SubscriptionServer {
  public:
    // `on_change` runs (on a server thread, no lock held) after each subscribe or unsubscribe that the store
    // accepted, e.g. StoreSubscriptionSource::invalidate. Throws ConfigError for invalid settings. No I/O.
    SubscriptionServer(SubscriptionServerSettings settings, std::shared_ptr<SubscriptionStore> store,
                       AddressPolicy address_policy, std::function<void()> on_change = {});
    ~SubscriptionServer();
    SubscriptionServer(const SubscriptionServer&) = delete;
    SubscriptionServer& operator=(const SubscriptionServer&) = delete;

    // Binds and serves on a thread of its own; returns the port bound (useful with port 0). Throws
    // std::runtime_error when the address cannot be bound.
    int start();
    void stop();

    // "" while serving, else why not. Thread-safe.
    std::string readiness() const;

  private:
    bool authorized(const httplib::Request& request) const;
    void subscribe(const httplib::Request& request, httplib::Response& response);
    void unsubscribe(const httplib::Request& request, httplib::Response& response);
    void list(httplib::Response& response);

    const SubscriptionServerSettings settings_;
    const std::shared_ptr<SubscriptionStore> store_;
    const AddressPolicy address_policy_;
    const std::function<void()> on_change_;
    std::string token_digest_;  // SHA-256 of the token: compared in constant time
    std::unique_ptr<httplib::Server> server_;
    HttpServerThread serving_thread_;
    std::atomic<bool> serving_{false};
};

}  // namespace pgstream::webhooks
