#include "webhooks/notifier.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <ctime>
#include <deque>

#include "util/log.h"
#include "wal/record_parser.h"
#include "webhooks/signing.h"

namespace pgstream::webhooks {

namespace {

using Clock = std::chrono::steady_clock;

// Bytes a queued delivery holds besides the shared payload (its key, headers built per attempt, bookkeeping).
constexpr size_t kDeliveryOverhead = 512;
// A Retry-After longer than this is taken as this: a subscriber cannot park its queue for days.
constexpr std::chrono::milliseconds kMaxRetryAfter = std::chrono::hours(1);
// Waits between failed attempts to write a dead letter (the store is down): never skipped, never busy.
constexpr std::chrono::milliseconds kDeadLetterRetryInitial{500};
constexpr std::chrono::milliseconds kDeadLetterRetryMax{30000};
// Longest use of one read of the subscriptions while events keep coming (see current_subscriptions()).
constexpr std::chrono::milliseconds kSubscriptionsMaxAge{1000};
// Wait between reads while the store has never answered.
constexpr std::chrono::milliseconds kSubscriptionsRetry{500};

// One event on its way to every subscription it matched.
struct Notification {
    EventPtr event;
    std::string body;  // encoded once, sent as is to every subscription (HttpRequest::shared_body)
    // Content-Type, User-Agent and X-Pgstream-LSN: the same for every delivery and attempt, built once
    // (HttpRequest::shared_headers).
    std::vector<std::string> headers;
    size_t weight = 0;
    int unsettled = 0;       // deliveries without a final outcome (Core::mutex)
    bool abandoned = false;  // one of them was abandoned by a stop: never acknowledged
};

struct Delivery {
    std::shared_ptr<Notification> notification;
    int64_t subscription_id = 0;
    // Its URL and secret: a pointer into the subscription list read when the event was taken (no copies).
    std::shared_ptr<const Subscription> subscription;
    std::string key;  // Idempotency-Key and webhook-id
    unsigned attempts = 0;
    long last_status = 0;
    std::string last_error;
};

struct SubscriptionQueue {
    enum class State { kReady, kInFlight, kWaiting, kDeadLettering };
    std::deque<Delivery> deliveries;
    State state = State::kReady;
    Clock::time_point retry_at;
    bool scheduled = false;  // listed in Core::ready
};

std::string describe_failure(const HttpResponse& response) {
    if (!response.error.empty()) return response.error;
    return "HTTP " + std::to_string(response.status) +
           (response.body.empty() ? std::string() : ": " + response.body.substr(0, 200));
}

std::optional<std::string> header_value(const HttpResponse& response, const std::string& name) {
    for (const auto& header : response.headers) {
        if (header.size() <= name.size() || header[name.size()] != ':') continue;
        if (!std::equal(name.begin(), name.end(), header.begin(), [](char a, char b) {
                return std::tolower(static_cast<unsigned char>(a)) ==
                       std::tolower(static_cast<unsigned char>(b));
            }))
            continue;
        std::string value = header.substr(name.size() + 1);
        size_t begin = value.find_first_not_of(" \t");
        size_t end = value.find_last_not_of(" \t\r\n");
        return begin == std::string::npos ? std::string() : value.substr(begin, end - begin + 1);
    }
    return std::nullopt;
}

}  // namespace

BackoffSettings NotifierSettings::default_backoff() {
    BackoffSettings backoff;
    backoff.kind = BackoffSettings::Kind::kExponential;
    backoff.initial_interval = std::chrono::seconds(1);
    backoff.max_interval = std::chrono::minutes(1);
    backoff.max_retries = 15;
    return backoff;
}

std::string webhook_payload(const Event& event) {
    std::string body = "{\"Data\":";
    append_event_json(body, event);
    body += '}';
    return body;
}

std::optional<std::chrono::milliseconds> parse_retry_after(const std::string& value,
                                                           std::chrono::system_clock::time_point now) {
    if (value.empty()) return std::nullopt;
    if (std::all_of(value.begin(), value.end(),
                    [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
        if (value.size() > 9) return kMaxRetryAfter;
        return std::chrono::milliseconds(std::stoll(value) * 1000);
    }
    // IMF-fixdate, the form RFC 9110 requires senders to use: "Sun, 06 Nov 1994 08:49:37 GMT".
    std::tm date{};
    const char* end = strptime(value.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &date);
    if (end == nullptr || *end != '\0') return std::nullopt;
    auto at = std::chrono::system_clock::from_time_t(timegm(&date));
    if (at <= now) return std::chrono::milliseconds(0);
    return std::chrono::duration_cast<std::chrono::milliseconds>(at - now);
}

bool is_retryable(const HttpResponse& response) {
    if (response.address_refused) return false;
    if (response.status == 0) return true;  // no response: refused, reset, timed out
    return response.status == 408 || response.status == 429 || response.status >= 500;
}

struct WebhookNotifier::Core : std::enable_shared_from_this<Core> {
    Core(NotifierSettings settings_in, std::shared_ptr<SubscriptionSource> subscriptions_in,
         HttpClient& http_in, std::unique_ptr<DeadLetterStore> dead_letters_in, Acknowledger& acknowledger_in,
         StopToken stop_in, Metrics* metrics)
        : settings(std::move(settings_in)),
          subscriptions(std::move(subscriptions_in)),
          http(http_in),
          dead_letters(std::move(dead_letters_in)),
          acknowledger(acknowledger_in),
          stop(std::move(stop_in)),
          guard(settings.max_queue_bytes) {
        if (metrics) instruments.emplace(*metrics);
    }

    struct Instruments {
        explicit Instruments(Metrics& metrics)
            : delivered(metrics.counter("pgstream.webhooks.deliveries", "{delivery}",
                                        "webhook deliveries by final outcome", {{"outcome", "delivered"}})),
              dead_lettered(metrics.counter("pgstream.webhooks.deliveries", "{delivery}",
                                            "webhook deliveries by final outcome",
                                            {{"outcome", "dead_lettered"}})),
              abandoned(metrics.counter("pgstream.webhooks.deliveries", "{delivery}",
                                        "webhook deliveries by final outcome", {{"outcome", "abandoned"}})),
              retries(metrics.counter("pgstream.webhooks.retries", "{request}",
                                      "webhook requests that failed and are tried again")),
              request_duration(metrics.histogram("pgstream.webhooks.request.duration", "s",
                                                 "time from sending a webhook request to its response",
                                                 Metrics::latency_buckets())) {}
        prometheus::Counter& delivered;
        prometheus::Counter& dead_lettered;
        prometheus::Counter& abandoned;
        prometheus::Counter& retries;
        prometheus::Histogram& request_duration;
    };

    struct Completion {
        int64_t subscription_id;
        HttpResponse response;
        Clock::duration elapsed;
    };
    struct DeadLetterJob {
        int64_t subscription_id;
        DeadLetter letter;
    };
    struct DeadLetterOutcome {
        int64_t subscription_id;
        bool written;
    };
    struct Outgoing {
        int64_t subscription_id;
        HttpRequest request;
    };

    const NotifierSettings settings;
    const std::shared_ptr<SubscriptionSource> subscriptions;
    HttpClient& http;
    const std::unique_ptr<DeadLetterStore> dead_letters;
    Acknowledger& acknowledger;
    StopToken stop;
    MemoryGuard guard;
    std::optional<Instruments> instruments;

    mutable std::mutex mutex;
    std::condition_variable wake_dispatcher;
    std::condition_variable wake_dead_letter_writer;
    std::condition_variable progress;  // flush()
    std::map<int64_t, SubscriptionQueue> queues;
    std::deque<int64_t> ready;  // queues whose first delivery may be sent now
    std::vector<Completion> completions;
    std::deque<DeadLetterJob> dead_letter_jobs;
    std::vector<DeadLetterOutcome> dead_letter_outcomes;
    uint64_t accepted = 0;  // notifications taken by process()
    uint64_t settled = 0;   // acknowledged, or abandoned by the stop
    Counters counters;
    std::string fatal_error;
    std::string dead_letter_failure;  // the last failed dead-letter write, until one succeeds (readiness)
    bool closing = false;
    bool drained_out = false;  // the drain ended: everything left was abandoned
    std::atomic<size_t> in_flight{0};

    void mark_ready_locked(int64_t id, SubscriptionQueue& queue) {
        if (queue.state != SubscriptionQueue::State::kReady || queue.deliveries.empty() || queue.scheduled)
            return;
        queue.scheduled = true;
        ready.push_back(id);
    }

    // The first delivery of `queue` has its final outcome.
    void settle_front_locked(SubscriptionQueue& queue, std::vector<std::shared_ptr<Notification>>& finished) {
        Delivery delivery = std::move(queue.deliveries.front());
        queue.deliveries.pop_front();
        if (--delivery.notification->unsettled == 0) finished.push_back(std::move(delivery.notification));
    }

    // The stop (or a fatal error) leaves `queue`'s deliveries without an outcome: their events stay
    // unacknowledged and the source sends them again after the restart.
    void abandon_locked(SubscriptionQueue& queue, std::vector<std::shared_ptr<Notification>>& finished) {
        if (instruments && !queue.deliveries.empty())
            instruments->abandoned.Increment(double(queue.deliveries.size()));
        while (!queue.deliveries.empty()) {
            queue.deliveries.front().notification->abandoned = true;
            settle_front_locked(queue, finished);
        }
        queue.state = SubscriptionQueue::State::kReady;
    }

    void abandon_all_locked(std::vector<std::shared_ptr<Notification>>& finished) {
        for (auto& [id, queue] : queues)
            if (queue.state != SubscriptionQueue::State::kInFlight &&
                queue.state != SubscriptionQueue::State::kDeadLettering)
                abandon_locked(queue, finished);
            else
                for (size_t i = 1; i < queue.deliveries.size(); ++i)
                    queue.deliveries[i].notification->abandoned = true;
    }

    // Acknowledges (or, abandoned, just forgets) notifications whose deliveries all have an outcome. Called
    // without the lock: the acknowledger takes its own.
    void finish(std::vector<std::shared_ptr<Notification>>& finished) {
        if (finished.empty()) return;
        uint64_t acknowledged = 0;
        for (auto& notification : finished) {
            if (!notification->abandoned) {
                acknowledger.acknowledge(*notification->event);
                ++acknowledged;
            }
            guard.release(notification->weight);
        }
        {
            std::lock_guard<std::mutex> lock(mutex);
            settled += finished.size();
            counters.acknowledged += acknowledged;
        }
        progress.notify_all();
        finished.clear();
    }

    void give_up_locked(int64_t id, SubscriptionQueue& queue, bool& failed) {
        Delivery& delivery = queue.deliveries.front();
        std::string why = "subscription " + std::to_string(id) + ": delivery of the event at " +
                          delivery.notification->event->lsn.str() + " failed after " +
                          std::to_string(delivery.attempts) +
                          (delivery.attempts == 1 ? " attempt: " : " attempts: ") + delivery.last_error;
        if (settings.strict || !dead_letters) {
            if (fatal_error.empty()) fatal_error = "webhook notifier: " + why + " (strict mode: stopping)";
            log::error(fatal_error);
            failed = true;
            return;
        }
        log::warn("webhook notifier: ", why, "; writing a dead letter");
        queue.state = SubscriptionQueue::State::kDeadLettering;
        DeadLetter letter;
        letter.subscription_id = id;
        letter.url = delivery.subscription->url;
        letter.payload = delivery.notification->body;
        letter.lsn = delivery.notification->event->lsn;
        letter.idempotency_key = delivery.key;
        letter.status = int(delivery.last_status);
        letter.last_error = delivery.last_error;
        letter.attempts = int(delivery.attempts);
        dead_letter_jobs.push_back({id, std::move(letter)});
        wake_dead_letter_writer.notify_one();
    }

    void handle_completion_locked(Completion& completion,
                                  std::vector<std::shared_ptr<Notification>>& finished, bool& failed) {
        in_flight.fetch_sub(1);
        if (instruments)
            instruments->request_duration.Observe(std::chrono::duration<double>(completion.elapsed).count());
        auto found = queues.find(completion.subscription_id);
        if (found == queues.end() || found->second.state != SubscriptionQueue::State::kInFlight) return;
        SubscriptionQueue& queue = found->second;
        Delivery& delivery = queue.deliveries.front();
        const HttpResponse& response = completion.response;
        ++delivery.attempts;
        if (response.ok()) {
            ++counters.delivered;
            if (instruments) instruments->delivered.Increment();
            settle_front_locked(queue, finished);
            queue.state = SubscriptionQueue::State::kReady;
            mark_ready_locked(completion.subscription_id, queue);
            return;
        }
        delivery.last_status = response.status;
        delivery.last_error = describe_failure(response);
        if (!is_retryable(response)) return give_up_locked(completion.subscription_id, queue, failed);
        if (stop.stop_requested()) {
            log::warn("webhook notifier: subscription ", completion.subscription_id, ": ",
                      delivery.last_error, " while stopping; its ", queue.deliveries.size(),
                      " queued deliveries stay unacknowledged and are sent again after the restart");
            queue.state = SubscriptionQueue::State::kReady;
            return abandon_locked(queue, finished);
        }
        std::optional<std::chrono::milliseconds> delay = settings.backoff.delayBeforeRetry(delivery.attempts);
        if (!delay) return give_up_locked(completion.subscription_id, queue, failed);
        if (response.status == 429 || response.status == 503) {
            if (auto header = header_value(response, "Retry-After"))
                if (auto asked = parse_retry_after(*header, std::chrono::system_clock::now()))
                    delay = std::min(*asked, kMaxRetryAfter);
        }
        ++counters.retried;
        if (instruments) instruments->retries.Increment();
        log::warn("webhook notifier: subscription ", completion.subscription_id, ": ", delivery.last_error,
                  " (attempt ", delivery.attempts, "); retrying in ", delay->count(), "ms");
        queue.state = SubscriptionQueue::State::kWaiting;
        queue.retry_at = Clock::now() + *delay;
    }

    void handle_dead_letter_locked(const DeadLetterOutcome& outcome,
                                   std::vector<std::shared_ptr<Notification>>& finished) {
        SubscriptionQueue& queue = queues[outcome.subscription_id];
        queue.state = SubscriptionQueue::State::kReady;
        if (!outcome.written) return abandon_locked(queue, finished);
        ++counters.dead_lettered;
        if (instruments) instruments->dead_lettered.Increment();
        settle_front_locked(queue, finished);
        mark_ready_locked(outcome.subscription_id, queue);
    }

    // Queues whose backoff is over become ready (all of them once a stop is requested: one last attempt);
    // returns the earliest retry still to come.
    Clock::time_point wake_waiting_locked() {
        Clock::time_point now = Clock::now();
        Clock::time_point earliest = Clock::time_point::max();
        const bool stopping = stop.stop_requested();
        for (auto& [id, queue] : queues) {
            if (queue.state != SubscriptionQueue::State::kWaiting) continue;
            if (stopping || queue.retry_at <= now) {
                queue.state = SubscriptionQueue::State::kReady;
                mark_ready_locked(id, queue);
            } else {
                earliest = std::min(earliest, queue.retry_at);
            }
        }
        return earliest;
    }

    HttpRequest build_request(const Delivery& delivery) const {
        HttpRequest request;
        request.method = "POST";
        request.url = delivery.subscription->url;
        request.timeout = settings.client_timeout;
        request.address_policy = settings.address_policy;
        request.follow_redirects = false;
        // One HTTP client lane per subscription: its requests reuse that lane's connections to its URL.
        request.affinity = uint64_t(delivery.subscription_id);
        const Notification& notification = *delivery.notification;
        request.shared_body = std::shared_ptr<const std::string>(delivery.notification, &notification.body);
        request.shared_headers =
            std::shared_ptr<const std::vector<std::string>>(delivery.notification, &notification.headers);
        request.headers.reserve(delivery.subscription->secret ? 4 : 1);
        request.headers.push_back("Idempotency-Key: " + delivery.key);
        if (delivery.subscription->secret) {
            // Signed at every attempt: receivers reject timestamps that are too old.
            std::optional<std::string> key = signing_key(*delivery.subscription->secret);
            const int64_t timestamp = std::chrono::duration_cast<std::chrono::seconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count();
            request.headers.push_back("webhook-id: " + delivery.key);
            request.headers.push_back("webhook-timestamp: " + std::to_string(timestamp));
            if (key)
                request.headers.push_back("webhook-signature: " +
                                          sign(*key, delivery.key, timestamp, notification.body));
        }
        return request;
    }

    // Takes the first delivery of ready queues while fewer than worker_count requests are in flight.
    void take_ready_locked(std::vector<Delivery>& to_build) {
        while (!drained_out && in_flight.load() < settings.worker_count && !ready.empty()) {
            const int64_t id = ready.front();
            ready.pop_front();
            SubscriptionQueue& queue = queues[id];
            queue.scheduled = false;
            if (queue.state != SubscriptionQueue::State::kReady || queue.deliveries.empty()) continue;
            queue.state = SubscriptionQueue::State::kInFlight;
            in_flight.fetch_add(1);
            to_build.push_back(queue.deliveries.front());
        }
    }

    // Without the lock: acknowledges what is finished, then sends what was taken.
    void finish_and_send(std::vector<std::shared_ptr<Notification>>& finished,
                         std::vector<Delivery>& to_build) {
        finish(finished);
        std::vector<Outgoing> outgoing;
        outgoing.reserve(to_build.size());
        for (auto& delivery : to_build)
            outgoing.push_back({delivery.subscription_id, build_request(delivery)});
        to_build.clear();
        for (auto& request : outgoing) send(std::move(request));
    }

    // A response arrives (on the HTTP client's thread, no lock of the client held). A success is handled
    // right here and the subscription's next delivery sent at once: a thread hop less per delivery, which is
    // most of a subscriber's wait between two events. Everything else goes to the dispatcher.
    //
    // With several client lanes, complete() runs on several threads at once (and beside the dispatcher,
    // which it always did). That is safe: every queue and counter is changed under `mutex` only; a
    // subscription has one request in flight, so its completions cannot overtake each other (commit order
    // holds whichever lane runs them); finish() runs without the lock on any thread, as it did on the
    // dispatcher's and the client's: the acknowledger and the memory guard take locks of their own, and a
    // notification reaches `finished` once, when its last delivery settles under `mutex`.
    void complete(Completion completion) {
        std::vector<std::shared_ptr<Notification>> finished;
        std::vector<Delivery> to_build;
        {
            std::lock_guard<std::mutex> lock(mutex);
            if (!completion.response.ok() || closing || drained_out || !completions.empty()) {
                completions.push_back(std::move(completion));
                wake_dispatcher.notify_one();
                return;
            }
            bool failed = false;  // a success never fails the notifier
            handle_completion_locked(completion, finished, failed);
            take_ready_locked(to_build);
        }
        finish_and_send(finished, to_build);
    }

    void send(Outgoing outgoing) {
        std::weak_ptr<Core> weak = shared_from_this();
        const int64_t id = outgoing.subscription_id;
        const Clock::time_point started = Clock::now();
        http.send(std::move(outgoing.request), [weak, id, started](HttpResponse response) {
            if (std::shared_ptr<Core> core = weak.lock())
                core->complete({id, std::move(response), Clock::now() - started});
        });
    }

    void dispatch() {
        std::vector<std::shared_ptr<Notification>> finished;
        std::vector<Delivery> to_build;
        std::unique_lock<std::mutex> lock(mutex);
        while (true) {
            bool failed = false;
            std::vector<Completion> done;
            done.swap(completions);
            for (auto& completion : done) handle_completion_locked(completion, finished, failed);
            std::vector<DeadLetterOutcome> letters;
            letters.swap(dead_letter_outcomes);
            for (const auto& outcome : letters) handle_dead_letter_locked(outcome, finished);
            if (failed || closing || stop.drain_over()) {
                // Nothing more is sent: what is left stays unacknowledged.
                if (!drained_out) abandon_all_locked(finished);
                drained_out = true;
            }
            if (failed) {
                lock.unlock();
                finish(finished);
                stop.end_drain();  // nothing after the failed event can be confirmed
                lock.lock();
                continue;
            }
            Clock::time_point next_retry = wake_waiting_locked();
            take_ready_locked(to_build);
            if (!finished.empty() || !to_build.empty()) {
                lock.unlock();
                finish_and_send(finished, to_build);
                lock.lock();
                continue;
            }
            // Closing: requests still in flight complete into a Core nobody reads (their events stay
            // unacknowledged); the HTTP client's timeout ends them.
            if (closing) break;
            auto has_work = [&] {
                return !completions.empty() || !dead_letter_outcomes.empty() || closing ||
                       (!drained_out && !ready.empty() && in_flight.load() < settings.worker_count);
            };
            if (drained_out) {
                wake_dispatcher.wait(lock, has_work);
            } else if (!stop.stop_requested()) {
                // A stop ends the backoff waits.
                stop.wait_until(lock, wake_dispatcher, next_retry, has_work);
            } else {
                // Stopping: deliveries in flight may still complete until the drain is over.
                stop.wait_for_delivery(lock, wake_dispatcher, has_work, next_retry);
            }
        }
    }

    void write_dead_letters() {
        std::unique_lock<std::mutex> lock(mutex);
        while (true) {
            wake_dead_letter_writer.wait(lock, [&] { return !dead_letter_jobs.empty() || closing; });
            if (dead_letter_jobs.empty()) return;
            DeadLetterJob job = std::move(dead_letter_jobs.front());
            dead_letter_jobs.pop_front();
            bool written = false;
            std::chrono::milliseconds delay = kDeadLetterRetryInitial;
            while (true) {
                lock.unlock();
                std::string failure;
                try {
                    dead_letters->write(job.letter);
                    written = true;
                } catch (const std::exception& e) {
                    failure = e.what();
                }
                lock.lock();
                if (written) {
                    dead_letter_failure.clear();
                    break;
                }
                dead_letter_failure =
                    "writing a dead letter to " + dead_letters->describe() + " failed: " + failure;
                log::warn("webhook notifier: subscription ", job.subscription_id, ": ", dead_letter_failure,
                          "; retrying in ", delay.count(), "ms");
                // A stop (or close) ends the wait: the delivery then stays unacknowledged, never skipped.
                if (stop.wait_for(lock, wake_dead_letter_writer, delay, [&] { return closing; }) ||
                    stop.stop_requested())
                    break;
                delay = std::min(delay * 2, kDeadLetterRetryMax);
            }
            dead_letter_outcomes.push_back({job.subscription_id, written});
            wake_dispatcher.notify_one();
        }
    }

    std::thread dispatcher;
    std::thread dead_letter_writer;
};

WebhookNotifier::WebhookNotifier(NotifierSettings settings, std::shared_ptr<SubscriptionSource> subscriptions,
                                 HttpClient& http, std::unique_ptr<DeadLetterStore> dead_letters,
                                 Acknowledger& acknowledger, StopToken stop, Metrics* metrics)
    : core_(std::make_shared<Core>(std::move(settings), std::move(subscriptions), http,
                                   std::move(dead_letters), acknowledger, std::move(stop), metrics)) {
    if (metrics) {
        std::weak_ptr<Core> weak = core_;
        metrics->observe_gauge("pgstream.webhooks.requests.in_flight", "{request}",
                               "webhook requests sent and not yet answered", {}, [weak] {
                                   auto core = weak.lock();
                                   return core ? double(core->in_flight.load()) : 0.0;
                               });
        metrics->observe_gauge("pgstream.webhooks.queue.bytes", "By",
                               "bytes held by webhook notifications not yet acknowledged", {}, [weak] {
                                   auto core = weak.lock();
                                   return core ? double(core->guard.in_use()) : 0.0;
                               });
    }
}

WebhookNotifier::~WebhookNotifier() {
    close();
}

void WebhookNotifier::start() {
    std::lock_guard<std::mutex> lock(core_->mutex);
    if (core_->dispatcher.joinable() || core_->closing) return;
    Core* core = core_.get();
    core_->dispatcher = std::thread([core] { core->dispatch(); });
    if (core_->dead_letters) core_->dead_letter_writer = std::thread([core] { core->write_dead_letters(); });
}

void WebhookNotifier::process(EventPtr event) {
    if (std::string failure = fatal_error(); !failure.empty()) throw std::runtime_error(failure);
    std::shared_ptr<const std::vector<Subscription>> subscriptions = current_subscriptions();
    std::vector<std::shared_ptr<const Subscription>> matching;
    for (const auto& subscription : *subscriptions)
        if (subscription.matches(*event)) matching.emplace_back(subscriptions, &subscription);
    if (matching.empty()) {
        core_->acknowledger.acknowledge(*event);
        std::lock_guard<std::mutex> lock(core_->mutex);
        ++core_->counters.acknowledged;
        return;
    }
    auto notification = std::make_shared<Notification>();
    notification->body = webhook_payload(*event);
    notification->headers.reserve(3);
    notification->headers.emplace_back("Content-Type: application/json");
    notification->headers.emplace_back("User-Agent: pgstream/" PGSTREAM_VERSION);
    notification->headers.push_back("X-Pgstream-LSN: " + event->lsn.str());
    notification->weight =
        event_weight(*event) + notification->body.size() + kDeliveryOverhead * matching.size();
    notification->unsettled = int(matching.size());
    notification->event = std::move(event);
    if (!core_->guard.acquire(notification->weight, core_->stop))
        throw Stopped("webhook notifier: stopped while waiting for memory");
    std::vector<Delivery> deliveries;
    deliveries.reserve(matching.size());
    for (auto& subscription : matching) {
        Delivery delivery;
        delivery.notification = notification;
        delivery.subscription_id = subscription->id;
        delivery.key = idempotency_key(subscription->id, *notification->event);
        delivery.subscription = std::move(subscription);
        deliveries.push_back(std::move(delivery));
    }
    std::vector<Delivery> to_send;
    {
        std::lock_guard<std::mutex> lock(core_->mutex);
        if (core_->drained_out) {
            // Too late to deliver: the event stays unacknowledged, as if never taken.
            core_->guard.release(notification->weight);
            throw Stopped("webhook notifier: stopped");
        }
        ++core_->accepted;
        for (auto& delivery : deliveries) {
            const int64_t id = delivery.subscription_id;
            SubscriptionQueue& queue = core_->queues[id];
            queue.deliveries.push_back(std::move(delivery));
            core_->mark_ready_locked(id, queue);
        }
        // Sent from here when a request may start now: no wake-up of the dispatcher per event. A queue
        // whose previous delivery is in flight gets this one from that delivery's completion.
        core_->take_ready_locked(to_send);
    }
    std::vector<std::shared_ptr<Notification>> nothing_finished;
    core_->finish_and_send(nothing_finished, to_send);
}

std::shared_ptr<const std::vector<Subscription>> WebhookNotifier::current_subscriptions() {
    const auto now = Clock::now();
    // Re-read when the stream resumes after an idle moment and at least every kSubscriptionsMaxAge under
    // load: a subscription committed while the stream was idle applies to the next change, and a store
    // without a cache is asked once per burst, not once per event.
    if (!subscriptions_ || source_was_idle_.exchange(false) ||
        now - subscriptions_read_at_ >= kSubscriptionsMaxAge) {
        if (auto fresh = core_->subscriptions->current()) {
            subscriptions_ = std::move(fresh);
            subscriptions_read_at_ = now;
        }
    }
    // Never read yet (the store is down since the start): hold the events back rather than take them for
    // unsubscribed.
    bool warned = false;
    while (!subscriptions_) {
        if (!warned) {
            log::warn("webhook notifier: no subscription list yet (", core_->subscriptions->readiness(),
                      "); holding events back until the store answers");
            warned = true;
        }
        if (!core_->stop.sleep_for(kSubscriptionsRetry))
            throw Stopped("webhook notifier: stopped while waiting for the subscription store");
        subscriptions_ = core_->subscriptions->current();
        subscriptions_read_at_ = Clock::now();
    }
    return subscriptions_;
}

void WebhookNotifier::source_idle() {
    source_was_idle_ = true;
}

void WebhookNotifier::flush() {
    std::unique_lock<std::mutex> lock(core_->mutex);
    core_->stop.wait_for_delivery(lock, core_->progress, [&] {
        return core_->settled == core_->accepted || !core_->fatal_error.empty() || core_->drained_out;
    });
}

void WebhookNotifier::close() {
    {
        std::lock_guard<std::mutex> lock(core_->mutex);
        core_->closing = true;
    }
    core_->wake_dispatcher.notify_all();
    core_->wake_dead_letter_writer.notify_all();
    if (core_->dead_letter_writer.joinable()) core_->dead_letter_writer.join();
    if (core_->dispatcher.joinable()) core_->dispatcher.join();
    core_->guard.close();
}

std::string WebhookNotifier::fatal_error() const {
    std::lock_guard<std::mutex> lock(core_->mutex);
    return core_->fatal_error;
}

std::string WebhookNotifier::readiness() const {
    std::string why = core_->subscriptions->readiness();
    if (!why.empty()) return "webhook notifier: " + why;
    std::lock_guard<std::mutex> lock(core_->mutex);
    if (!core_->dead_letter_failure.empty()) return "webhook notifier: " + core_->dead_letter_failure;
    return {};
}

WebhookNotifier::Counters WebhookNotifier::counters() const {
    std::lock_guard<std::mutex> lock(core_->mutex);
    return core_->counters;
}

const MemoryGuard& WebhookNotifier::memory() const {
    return core_->guard;
}

}  // namespace pgstream::webhooks
