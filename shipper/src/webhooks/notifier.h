// The webhook notifier: the output that POSTs every event to the subscriptions it matches.
//
// Order and isolation: each subscription has a queue of its own and gets its events in commit order, the next
// one only after the previous has its final outcome (delivered or dead-lettered). Up to `worker_count`
// requests are in flight across all subscriptions, taken from the ready queues in turn, so a slow or dead
// subscriber delays only itself, until the memory guard (`max_queue_bytes`, held by every event not yet
// acknowledged) is full and the source waits.
//
// Never silently lost: an event is acknowledged to the checkpointer once every subscription it matched has a
// final outcome (an event matching none is acknowledged at once). Network errors, 408, 429 (after its
// Retry-After) and 5xx are retried with the backoff; any other status, or the retries exhausted, writes a
// dead letter (a row of pgstream.webhook_dead_letters; a failed write is retried, never skipped) and the
// subscription's queue goes on; in strict mode the pipeline stops instead, the event unacknowledged.
//
// Shutdown: a stop ends every backoff wait (a delivery waiting for its retry gets one last attempt; one that
// fails again stays unacknowledged, as does what its subscription queued after it); requests already started
// and first attempts are delivered until the drain is over.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint/acknowledger.h"
#include "http/http_client.h"
#include "observability/metrics.h"
#include "processor/backoff.h"
#include "processor/batching.h"
#include "processor/processor.h"
#include "util/stop_token.h"
#include "webhooks/notifier_dead_letters.h"
#include "webhooks/subscription.h"

namespace pgstream::webhooks {

struct NotifierSettings {
    size_t worker_count = 10;                         // requests in flight across all subscriptions
    std::chrono::milliseconds client_timeout{10000};  // one request, connection included
    size_t max_queue_bytes = 100u << 20;              // memory guard of the events not yet acknowledged
    BackoffSettings backoff = default_backoff();
    bool strict = false;  // a delivery given up stops the pipeline instead of writing a dead letter
    // Which addresses deliveries may connect to; nullptr = the HTTP client's own policy.
    std::shared_ptr<const AddressPolicy> address_policy;

    // Exponential, 1 s doubling up to 1 min, 15 retries: a subscriber down for about 10 minutes loses
    // nothing.
    static BackoffSettings default_backoff();
};

// The body of a delivery: {"Data": <the event JSON, as the stdout writer prints it>}.
std::string webhook_payload(const Event& event);

// Seconds to wait from a Retry-After value (delta-seconds or an HTTP date, RFC 9110 §10.2.3) at `now`;
// std::nullopt when it is neither. A date in the past is 0.
std::optional<std::chrono::milliseconds> parse_retry_after(const std::string& value,
                                                           std::chrono::system_clock::time_point now);

// Whether a response is worth another attempt: no response at all (refused, reset, timed out), 408, 429, 5xx.
bool is_retryable(const HttpResponse& response);

class WebhookNotifier : public Processor {
  public:
    struct Counters {
        uint64_t delivered = 0;      // deliveries answered 2xx
        uint64_t retried = 0;        // attempts that were followed by another
        uint64_t dead_lettered = 0;  // dead letters written
        uint64_t acknowledged = 0;   // events acknowledged to the checkpointer
    };

    // `dead_letters` may be null in strict mode only (nothing is ever written then). `metrics` may be null.
    WebhookNotifier(NotifierSettings settings, std::shared_ptr<SubscriptionSource> subscriptions,
                    HttpClient& http, std::unique_ptr<DeadLetterStore> dead_letters,
                    Acknowledger& acknowledger, StopToken stop, Metrics* metrics = nullptr);
    ~WebhookNotifier() override;
    WebhookNotifier(const WebhookNotifier&) = delete;
    WebhookNotifier& operator=(const WebhookNotifier&) = delete;

    std::string name() const override { return "webhook notifier"; }
    void start() override;
    // Blocks while the memory guard is full; throws Stopped when a stop ended that wait, std::runtime_error
    // once the notifier failed (strict mode).
    void process(EventPtr event) override;
    // Waits until every accepted event has its final outcome (or was abandoned by the stop), the notifier
    // failed, or the drain is over.
    void flush() override;
    // The next event re-reads the subscriptions (a store without a cache is read once per burst).
    void source_idle() override;
    void close() override;
    std::string fatal_error() const override;
    std::string readiness() const override;

    Counters counters() const;
    const MemoryGuard& memory() const;

    struct Core;  // the state the dispatcher, the dead-letter writer and HTTP completions share

  private:
    // The subscriptions in force for the next event (listener thread only).
    std::shared_ptr<const std::vector<Subscription>> current_subscriptions();

    std::shared_ptr<Core> core_;
    std::shared_ptr<const std::vector<Subscription>> subscriptions_;
    std::chrono::steady_clock::time_point subscriptions_read_at_;
    std::atomic<bool> source_was_idle_{false};
};

}  // namespace pgstream::webhooks
