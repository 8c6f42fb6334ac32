#include "webhooks/webhook_module.h"

#include "observability/output_metrics.h"
#include "pipeline/module.h"
#include "util/log.h"
#include "webhooks/subscription_server.h"
#include "webhooks/subscription_settings.h"
#include "webhooks/subscription_store.h"

namespace pgstream::webhooks {

namespace {

constexpr const char* kPrefix = "PGSTREAM_WEBHOOK_NOTIFIER";

// The output as the pipeline sees it: the notifier, with the subscription source it reads and the
// subscription server that writes the store, started and stopped together.
class WebhookOutput : public Processor {
  public:
    WebhookOutput(std::shared_ptr<StoreSubscriptionSource> subscriptions,
                  std::unique_ptr<SubscriptionServer> server, std::unique_ptr<WebhookNotifier> notifier,
                  std::unique_ptr<OutputMetrics> metrics)
        : subscriptions_(std::move(subscriptions)),
          server_(std::move(server)),
          notifier_(std::move(notifier)),
          metrics_(std::move(metrics)) {
        // pgstream_target_memory_used / _limit{target="webhooks-notifier"}, as every output's guard.
        if (metrics_) metrics_->observe_memory(notifier_->memory());
    }
    ~WebhookOutput() override { close(); }

    std::string name() const override { return notifier_->name(); }
    void start() override {
        subscriptions_->start();
        notifier_->start();
        try {
            int port = server_->start();
            log::info("webhook subscription server listening on port ", port);
        } catch (const std::exception& e) {
            // Deliveries go on without the API (subscriptions can still be made by SQL); /ready says why.
            log::error("webhook subscription server: ", e.what());
        }
    }
    void process(EventPtr event) override { notifier_->process(std::move(event)); }
    void flush() override { notifier_->flush(); }
    void source_idle() override { notifier_->source_idle(); }
    void close() override {
        if (closed_) return;
        closed_ = true;
        server_->stop();
        notifier_->close();
        subscriptions_->stop();
    }
    std::string fatal_error() const override { return notifier_->fatal_error(); }
    std::string readiness() const override {
        if (std::string why = notifier_->readiness(); !why.empty()) return why;
        if (std::string why = server_->readiness(); !why.empty())
            return "webhook subscription server: " + why;
        return {};
    }

  private:
    std::shared_ptr<StoreSubscriptionSource> subscriptions_;
    std::unique_ptr<SubscriptionServer> server_;
    std::unique_ptr<WebhookNotifier> notifier_;
    std::unique_ptr<OutputMetrics> metrics_;  // after notifier_: stops observing its guard before it goes
    bool closed_ = false;
};

}  // namespace

NotifierSettings notifier_settings_from(const Config& config) {
    NotifierSettings settings;
    settings.worker_count = size_t(
        config.get_int("PGSTREAM_WEBHOOK_NOTIFIER_WORKER_COUNT", int64_t(settings.worker_count), 1, 1000));
    settings.client_timeout =
        config.get_duration("PGSTREAM_WEBHOOK_NOTIFIER_CLIENT_TIMEOUT", settings.client_timeout);
    if (settings.client_timeout.count() <= 0)
        throw ConfigError("PGSTREAM_WEBHOOK_NOTIFIER_CLIENT_TIMEOUT",
                          "expected a positive duration (e.g. 10s)");
    settings.max_queue_bytes =
        config.get_size("PGSTREAM_WEBHOOK_NOTIFIER_MAX_QUEUE_BYTES", settings.max_queue_bytes);
    if (settings.max_queue_bytes == 0)
        throw ConfigError("PGSTREAM_WEBHOOK_NOTIFIER_MAX_QUEUE_BYTES",
                          "expected a positive size (e.g. 100MiB)");
    BackoffSettings backoff = parse_backoff(config, kPrefix);
    if (backoff.kind != BackoffSettings::Kind::kNone) settings.backoff = backoff;
    settings.strict = config.get_bool("PGSTREAM_WEBHOOK_NOTIFIER_STRICT", false);
    return settings;
}

void register_webhook_module() {
    OutputModule module;
    module.name = "webhook notifier";
    module.settings = subscription_store_settings();
    for (auto& setting : subscription_server_settings()) module.settings.push_back(std::move(setting));
    module.settings.insert(
        module.settings.end(),
        {
            {"PGSTREAM_WEBHOOK_NOTIFIER_WORKER_COUNT", "10",
             "webhook requests in flight across all subscriptions"},
            {"PGSTREAM_WEBHOOK_NOTIFIER_CLIENT_TIMEOUT", "10s", "longest wait for one webhook response"},
            {"PGSTREAM_WEBHOOK_NOTIFIER_MAX_QUEUE_BYTES", "100MiB",
             "memory budget of the events not yet delivered"},
            {"PGSTREAM_WEBHOOK_NOTIFIER_STRICT", "false",
             "stop the pipeline instead of writing a dead letter when a delivery is given up"},
        });
    for (const auto& key : backoff_keys(kPrefix))
        module.settings.push_back(
            {key, "", "retry policy of webhook deliveries (default: exponential, 1s to 1m, 15 retries)"});
    module.yaml = YamlSection{"target", "webhooks",
                              [](const std::string& rest) -> std::string {
                                  if (rest.rfind("SUBSCRIPTIONS_", 0) == 0)
                                      return "PGSTREAM_WEBHOOK_SUBSCRIPTION_" + rest.substr(14);
                                  return "PGSTREAM_WEBHOOK_" + rest;
                              },
                              ""};
    module.configured = [](const Config& config) { return !config.get_string(kStoreUrlKey).empty(); };
    module.validate = [](const Config& config) {
        validate(config);
        notifier_settings_from(config);
    };
    module.create = [](const Config& config, Acknowledger& acknowledger,
                       RuntimeContext& context) -> std::unique_ptr<Processor> {
        // No I/O here: the store, the server and the subscribers are reached from start() on.
        SubscriptionSettings subscription_settings = subscription_settings_from_config(config);
        NotifierSettings settings = notifier_settings_from(config);
        AddressPolicy policy = webhook_address_policy(config);
        settings.address_policy = std::make_shared<const AddressPolicy>(policy);
        auto store = std::make_shared<SubscriptionStore>(subscription_settings.store.url);
        auto subscriptions =
            std::make_shared<StoreSubscriptionSource>(store, subscription_settings.store, context.stop());
        auto server = std::make_unique<SubscriptionServer>(subscription_settings.server, store, policy,
                                                           [subscriptions] { subscriptions->invalidate(); });
        auto notifier = std::make_unique<WebhookNotifier>(
            settings, subscriptions, context.http_client(),
            std::make_unique<PostgresDeadLetters>(subscription_settings.store.url), acknowledger,
            context.stop(), &context.metrics());
        return std::make_unique<WebhookOutput>(std::move(subscriptions), std::move(server),
                                               std::move(notifier),
                                               context.output_metrics("webhooks-notifier"));
    };
    register_output_module(std::move(module));
}

}  // namespace pgstream::webhooks
