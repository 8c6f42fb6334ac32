#include "observability/output_metrics.h"

#include <algorithm>
#include <atomic>
#include <ctime>

#include "processor/batching.h"
#include "processor/event_result.h"

namespace pgstream {

namespace {

bool read_digits(const std::string& text, size_t& at, size_t count, int& value) {
    if (at + count > text.size()) return false;
    value = 0;
    for (size_t i = 0; i < count; ++i) {
        char c = text[at + i];
        if (c < '0' || c > '9') return false;
        value = value * 10 + (c - '0');
    }
    at += count;
    return true;
}

bool expect_char(const std::string& text, size_t& at, char expected) {
    if (at >= text.size() || text[at] != expected) return false;
    ++at;
    return true;
}

constexpr Action kActions[] = {Action::Insert, Action::Update, Action::Delete, Action::Truncate,
                               Action::Message};
constexpr const char* kOutcomeLabels[] = {"delivered", "skipped", "retried", "dead_lettered", "fatal"};

}  // namespace

std::optional<double> parse_commit_time(const std::string& text) {
    size_t at = 0;
    int year, month, day, hour, minute, second;
    if (!read_digits(text, at, 4, year) || !expect_char(text, at, '-') || !read_digits(text, at, 2, month) ||
        !expect_char(text, at, '-') || !read_digits(text, at, 2, day) || !expect_char(text, at, ' ') ||
        !read_digits(text, at, 2, hour) || !expect_char(text, at, ':') || !read_digits(text, at, 2, minute) ||
        !expect_char(text, at, ':') || !read_digits(text, at, 2, second))
        return std::nullopt;
    double fraction = 0;
    if (at < text.size() && text[at] == '.') {
        double scale = 0.1;
        for (++at; at < text.size() && text[at] >= '0' && text[at] <= '9'; ++at, scale /= 10)
            fraction += (text[at] - '0') * scale;
    }
    if (at >= text.size() || (text[at] != '+' && text[at] != '-')) return std::nullopt;
    int sign = text[at++] == '-' ? -1 : 1;
    int offset_hours, offset_minutes = 0, offset_seconds = 0;
    if (!read_digits(text, at, 2, offset_hours)) return std::nullopt;
    if (at < text.size() && !(expect_char(text, at, ':') && read_digits(text, at, 2, offset_minutes)))
        return std::nullopt;
    if (at < text.size() && !(expect_char(text, at, ':') && read_digits(text, at, 2, offset_seconds)))
        return std::nullopt;
    if (at != text.size()) return std::nullopt;
    std::tm fields{};
    fields.tm_year = year - 1900;
    fields.tm_mon = month - 1;
    fields.tm_mday = day;
    fields.tm_hour = hour;
    fields.tm_min = minute;
    fields.tm_sec = second;
    time_t utc = timegm(&fields);
    return double(utc) + fraction - sign * (offset_hours * 3600 + offset_minutes * 60 + offset_seconds);
}

// The collection reads the memory guard through this; the OutputMetrics' destructor detaches it, so a
// collection after the output is gone (the final OTLP push) reads nothing dangling.
struct OutputMetrics::Observed {
    std::mutex mutex;
    const MemoryGuard* guard = nullptr;
};

namespace {

// A histogram's observations by one writing thread, added to the instrument by the collecting thread. The
// writer stores with relaxed atomics (no read-modify-write: it is the only writer); the collector remembers
// what it has published and adds the difference. Buckets as prometheus::Histogram::Observe picks them: the
// first bound >= the value, else the last (+Inf) bucket.
class TalliedHistogram {
  public:
    explicit TalliedHistogram(std::vector<double> bounds)
        : bounds_(std::move(bounds)),
          counts_(new std::atomic<uint64_t>[bounds_.size() + 1]),
          published_counts_(bounds_.size() + 1, 0) {
        for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
    }

    void observe(double value) {
        size_t bucket = size_t(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
        auto& count = counts_[bucket];
        count.store(count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        sum_.store(sum_.load(std::memory_order_relaxed) + value, std::memory_order_relaxed);
    }

    // The collecting thread (one collection at a time).
    void publish(prometheus::Histogram& into) {
        std::vector<double> increments(published_counts_.size());
        bool any = false;
        for (size_t i = 0; i < increments.size(); ++i) {
            uint64_t now = counts_[i].load(std::memory_order_relaxed);
            increments[i] = double(now - published_counts_[i]);
            any = any || now != published_counts_[i];
            published_counts_[i] = now;
        }
        double sum = sum_.load(std::memory_order_relaxed);
        if (any) into.ObserveMultiple(increments, sum - published_sum_);
        published_sum_ = sum;
    }

  private:
    const std::vector<double> bounds_;
    std::unique_ptr<std::atomic<uint64_t>[]> counts_;
    std::atomic<double> sum_{0};
    std::vector<uint64_t> published_counts_;
    double published_sum_ = 0;
};

void tally(std::atomic<uint64_t>& count) {
    count.store(count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

}  // namespace

struct OutputMetrics::Taken {
    std::array<std::atomic<uint64_t>, kActionCount> events{};
    std::array<uint64_t, kActionCount> published_events{};
    TalliedHistogram lag{Metrics::latency_buckets()};
    TalliedHistogram latency{Metrics::latency_buckets()};
};

OutputMetrics::OutputMetrics(Metrics& metrics, std::string target)
    : metrics_(metrics),
      target_(std::move(target)),
      lag_(metrics.histogram("pgstream.target.processing.lag", "s",
                             "Time from an event's commit to its output taking it",
                             Metrics::latency_buckets(), {{"target", target_}})),
      latency_(
          metrics.histogram("pgstream.target.processing.latency", "s",
                            "Time an output takes to accept an event (includes waiting for its memory guard)",
                            Metrics::latency_buckets(), {{"target", target_}})),
      observed_(std::make_shared<Observed>()),
      taken_(std::make_shared<Taken>()) {
    for (size_t action = 0; action < events_by_action_.size(); ++action) {
        events_by_action_[action] =
            &metrics.counter("pgstream.target.events", "{event}", "Events handed to an output",
                             {{"target", target_}, {"action", action_label(kActions[action])}});
        for (size_t outcome = 0; outcome < outcomes_[action].size(); ++outcome)
            outcomes_[action][outcome] = &metrics.counter(
                "pgstream.target.event.outcomes", "{event}",
                "What became of the events an output took: delivered, skipped, retried (one failed attempt), "
                "dead_lettered, fatal",
                {{"target", target_},
                 {"action", action_label(kActions[action])},
                 {"outcome", kOutcomeLabels[outcome]}});
    }
    // The series live as long as the registry; the tallies as long as the last of this object and the hook
    // (so a collection after the output is gone still adds its last events).
    metrics.on_collect([taken = taken_, events = events_by_action_, &lag = lag_, &latency = latency_] {
        for (size_t action = 0; action < kActionCount; ++action) {
            uint64_t now = taken->events[action].load(std::memory_order_relaxed);
            if (now != taken->published_events[action])
                events[action]->Increment(double(now - taken->published_events[action]));
            taken->published_events[action] = now;
        }
        taken->lag.publish(lag);
        taken->latency.publish(latency);
    });
}

OutputMetrics::~OutputMetrics() {
    std::lock_guard<std::mutex> lock(observed_->mutex);
    observed_->guard = nullptr;
}

std::chrono::system_clock::time_point OutputMetrics::taking(const Event& event) {
    auto started = std::chrono::system_clock::now();
    tally(taken_->events[action_index(event.action)]);
    if (!event.timestamp.empty()) {
        if (event.timestamp != last_commit_text_) {
            last_commit_text_ = event.timestamp;
            last_commit_time_ = parse_commit_time(event.timestamp);
        }
        if (last_commit_time_) {
            double now = std::chrono::duration<double>(started.time_since_epoch()).count();
            taken_->lag.observe(std::max(0.0, now - *last_commit_time_));
        }
    }
    return started;
}

void OutputMetrics::accepted(std::chrono::system_clock::time_point taking_started) {
    taken_->latency.observe(
        std::chrono::duration<double>(std::chrono::system_clock::now() - taking_started).count());
}

void OutputMetrics::record(Action action, OutputOutcome outcome, uint64_t events) {
    outcomes_[action_index(action)][size_t(outcome)]->Increment(double(events));
}

void OutputMetrics::record(const Event& event, const EventResult& result) {
    switch (result.delivery) {
        case Delivery::kDelivered:
            return record(event.action, OutputOutcome::kDelivered);
        case Delivery::kSkipped:
            return record(event.action, OutputOutcome::kSkipped);
        case Delivery::kRetry:
            return record(event.action, OutputOutcome::kRetried);
        case Delivery::kGiveUp:
            return record(event.action, OutputOutcome::kDeadLettered);
        case Delivery::kFatal:
            return record(event.action, OutputOutcome::kFatal);
        case Delivery::kPending:
            return;
    }
}

OutputMetrics::ResultCallback OutputMetrics::result_recorder(ResultCallback also) {
    return [this, also = std::move(also)](const Event& event, const EventResult& result) {
        record(event, result);
        if (also) also(event, result);
    };
}

void OutputMetrics::observe_memory(const MemoryGuard& guard) {
    {
        std::lock_guard<std::mutex> lock(observed_->mutex);
        observed_->guard = &guard;
    }
    MetricLabels labels{{"target", target_}};
    auto& used =
        metrics_.gauge("pgstream.target.memory.used", "By",
                       "Bytes of events an output's memory guard holds (queued or in flight)", labels);
    auto& limit =
        metrics_.gauge("pgstream.target.memory.limit", "By", "The output's memory guard budget", labels);
    auto& blocked =
        metrics_.counter("pgstream.target.memory.blocked", "s",
                         "Time the source waited for an output's memory guard (back-pressure)", labels);
    metrics_.on_collect([observed = observed_, &used, &limit, &blocked] {
        std::lock_guard<std::mutex> lock(observed->mutex);
        if (!observed->guard) return;
        used.Set(double(observed->guard->in_use()));
        limit.Set(double(observed->guard->budget()));
        double seconds = std::chrono::duration<double>(observed->guard->blocked_time()).count();
        if (seconds > blocked.Value()) blocked.Increment(seconds - blocked.Value());
    });
}

}  // namespace pgstream
