#include "webhooks/subscription_server.h"

#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <strings.h>

#include <algorithm>
#include <array>
#include <stdexcept>

#include "observability/health_server.h"
#include "util/log.h"
#include "wal/json.h"
#include "webhooks/subscription_url.h"

namespace pgstream::webhooks {

namespace {

constexpr std::array<const char*, 4> kEventTypes = {"I", "U", "D", "T"};

std::string sha256(const std::string& text) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
    return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

void answer(httplib::Response& response, int status, const std::string& body) {
    response.status = status;
    response.set_content(body, "application/json");
}

void answer_error(httplib::Response& response, int status, const std::string& why) {
    answer(response, status, "{\"error\":" + json_quote(why) + "}");
}

class BadRequest : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// A string member, "" when absent or null; BadRequest when it has another type.
std::string string_member(const JsonValue& body, const char* name) {
    const JsonValue* value = body.find(name);
    if (value == nullptr || value->is_null()) return {};
    if (!value->is_string()) throw BadRequest(std::string(name) + " must be a string");
    return value->text;
}

// The body of subscribe and unsubscribe: {"url", "schema", "table", "event_types", "secret"}.
Subscription subscription_from_body(const std::string& text) {
    JsonValue body;
    try {
        body = parse_json(text);
    } catch (const JsonError&) {
        throw BadRequest(
            "body is not JSON; expected {\"url\":...,\"schema\":...,\"table\":...,\"event_types\":[...]}");
    }
    if (!body.is_object()) throw BadRequest("body must be a JSON object");
    for (const auto& [name, value] : body.members) {
        if (name != "url" && name != "schema" && name != "table" && name != "event_types" && name != "secret")
            throw BadRequest("unknown field " + json_quote(name) +
                             "; expected url, schema, table, event_types and secret");
    }
    Subscription subscription;
    subscription.url = string_member(body, "url");
    if (subscription.url.empty()) throw BadRequest("url is required");
    subscription.schema = string_member(body, "schema");
    subscription.table = string_member(body, "table");
    if (const JsonValue* types = body.find("event_types"); types != nullptr && !types->is_null()) {
        if (!types->is_array())
            throw BadRequest("event_types must be an array of \"I\", \"U\", \"D\", \"T\"");
        for (const JsonValue& type : types->items) {
            if (!type.is_string() ||
                std::find(kEventTypes.begin(), kEventTypes.end(), type.text) == kEventTypes.end())
                throw BadRequest("event_types must be an array of \"I\", \"U\", \"D\", \"T\"");
        }
        // Kept in I, U, D, T order without repeats, whatever order they came in.
        for (const char* known : kEventTypes) {
            bool wanted = std::any_of(types->items.begin(), types->items.end(),
                                      [known](const JsonValue& type) { return type.text == known; });
            if (wanted) subscription.event_types.emplace_back(known);
        }
    }
    if (const JsonValue* secret = body.find("secret"); secret != nullptr && !secret->is_null()) {
        if (!secret->is_string() || secret->text.empty())
            throw BadRequest("secret must be a non-empty string");
        subscription.secret = secret->text;
    }
    return subscription;
}

std::string subscription_json(const Subscription& subscription) {
    std::string json = "{\"id\":" + std::to_string(subscription.id) +
                       ",\"url\":" + json_quote(subscription.url) +
                       ",\"schema\":" + json_quote(subscription.schema) +
                       ",\"table\":" + json_quote(subscription.table) + ",\"event_types\":[";
    for (size_t i = 0; i < subscription.event_types.size(); ++i)
        json += (i > 0 ? "," : "") + json_quote(subscription.event_types[i]);
    json += "],\"secret_set\":";
    json += subscription.secret ? "true" : "false";
    return json + "}";
}

// What a log line may say about a subscription: its id and host (a webhook URL's path or query often is the
// credential itself).
std::string loggable(const Subscription& subscription) {
    WebhookUrl parsed;
    std::string host = parse_webhook_url(subscription.url, parsed).empty() ? parsed.host : "?";
    return "subscription " + std::to_string(subscription.id) + " (" + host + ")";
}

}  // namespace

SubscriptionServer::SubscriptionServer(SubscriptionServerSettings settings,
                                       std::shared_ptr<SubscriptionStore> store, AddressPolicy address_policy,
                                       std::function<void()> on_change)
    : settings_(std::move(settings)),
      store_(std::move(store)),
      address_policy_(std::move(address_policy)),
      on_change_(std::move(on_change)) {
    validate(settings_);
    if (!settings_.token.empty()) token_digest_ = sha256(settings_.token);
}

SubscriptionServer::~SubscriptionServer() {
    stop();
}

bool SubscriptionServer::authorized(const httplib::Request& request) const {
    if (token_digest_.empty()) return true;
    const std::string header = request.get_header_value("Authorization");
    // The scheme is case-insensitive (RFC 9110 §11.1).
    const std::string scheme = "bearer ";
    if (header.size() <= scheme.size() || strncasecmp(header.c_str(), scheme.c_str(), scheme.size()) != 0)
        return false;
    // Digests of equal length, compared in constant time: neither the token nor its length leaks by timing.
    const std::string presented = sha256(header.substr(scheme.size()));
    return CRYPTO_memcmp(presented.data(), token_digest_.data(), token_digest_.size()) == 0;
}

void SubscriptionServer::subscribe(const httplib::Request& request, httplib::Response& response) {
    Subscription wanted = subscription_from_body(request.body);
    if (std::string refusal = webhook_url_refusal(wanted.url, address_policy_); !refusal.empty())
        throw BadRequest(refusal);
    SubscriptionStore::UpsertResult stored = store_->upsert(wanted);
    log::info("webhook subscription server: ", stored.created ? "created " : "updated ",
              loggable(stored.subscription));
    if (on_change_) on_change_();
    std::string body = subscription_json(stored.subscription);
    body.insert(body.size() - 1, std::string(",\"created\":") + (stored.created ? "true" : "false"));
    answer(response, 201, body);
}

void SubscriptionServer::unsubscribe(const httplib::Request& request, httplib::Response& response) {
    Subscription target = subscription_from_body(request.body);
    std::optional<int64_t> removed = store_->remove(target.url, target.schema, target.table);
    if (removed) {
        target.id = *removed;
        log::info("webhook subscription server: removed ", loggable(target));
        if (on_change_) on_change_();
    }
    answer(response, 200, std::string("{\"removed\":") + (removed ? "true" : "false") + "}");
}

void SubscriptionServer::list(httplib::Response& response) {
    std::string body = "{\"subscriptions\":[";
    bool first = true;
    for (const Subscription& subscription : store_->list()) {
        if (!first) body += ',';
        first = false;
        body += subscription_json(subscription);
    }
    answer(response, 200, body + "]}");
}

int SubscriptionServer::start() {
    if (server_) throw std::logic_error("subscription server started twice");
    server_ = std::make_unique<httplib::Server>();
    httplib::Server& server = *server_;
    server.set_payload_max_length(settings_.max_body_bytes);
    server.set_read_timeout(settings_.read_timeout);
    server.set_write_timeout(settings_.write_timeout);
    // An idle kept-alive connection is closed as soon as a slow request would be (whole seconds for httplib).
    server.set_keep_alive_timeout(std::max<time_t>(
        1, std::chrono::duration_cast<std::chrono::seconds>(settings_.read_timeout).count()));
    // Subscriptions change rarely: a few workers are plenty, and a flood cannot start a thread per
    // connection.
    server.new_task_queue = [] { return new httplib::ThreadPool(4); };

    // The token is checked before the body is read.
    server.set_pre_routing_handler([this](const httplib::Request& request, httplib::Response& response) {
        if (authorized(request)) return httplib::Server::HandlerResponse::Unhandled;
        response.set_header("WWW-Authenticate", "Bearer");
        answer_error(response, 401, "missing or wrong bearer token (Authorization: Bearer <token>)");
        return httplib::Server::HandlerResponse::Handled;
    });
    // Every handler's failure becomes a JSON error.
    auto guarded = [](auto handler) {
        return [handler](const httplib::Request& request, httplib::Response& response) {
            try {
                handler(request, response);
            } catch (const BadRequest& error) {
                answer_error(response, 400, error.what());
            } catch (const StoreUnavailable& error) {
                answer_error(response, 503, error.what());
            }
        };
    };
    server.Post("/webhooks/subscribe",
                guarded([this](const httplib::Request& request, httplib::Response& response) {
                    subscribe(request, response);
                }));
    server.Post("/webhooks/unsubscribe",
                guarded([this](const httplib::Request& request, httplib::Response& response) {
                    unsubscribe(request, response);
                }));
    server.Get("/webhooks/subscriptions",
               guarded([this](const httplib::Request&, httplib::Response& response) { list(response); }));
    // Statuses httplib sets itself (404, 413 for a body over the limit, 400 for a malformed request) get a
    // JSON body too.
    server.set_error_handler(
        [max = settings_.max_body_bytes](const httplib::Request&, httplib::Response& response) {
            if (!response.body.empty()) return;
            if (response.status == 413)
                answer_error(response, 413, "request body larger than " + std::to_string(max) + " bytes");
            else if (response.status == 404)
                answer_error(response, 404,
                             "not found; the API is POST /webhooks/subscribe, POST /webhooks/unsubscribe and "
                             "GET /webhooks/subscriptions");
            else
                answer_error(response, response.status, "bad request");
        });

    std::string host;
    int port = 0;
    parse_listen_address(settings_.address, host, port);
    int bound = port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : -1);
    if (bound < 0) {
        server_.reset();
        throw std::runtime_error("webhook subscription server: cannot listen on " + settings_.address + " (" +
                                 kServerAddressKey + "): address in use or not local");
    }
    log::info("webhook subscription server: listening on ", host, ":", bound,
              token_digest_.empty() ? " without a token" : " (bearer token required)");
    serving_thread_.start(server);
    serving_ = true;
    return bound;
}

void SubscriptionServer::stop() {
    serving_ = false;
    serving_thread_.stop();
}

std::string SubscriptionServer::readiness() const {
    return serving_ ? std::string() : std::string("webhook subscription server not listening");
}

}  // namespace pgstream::webhooks
