#include "processor/batching.h"

#include <algorithm>
#include <stdexcept>

#include "util/log.h"

namespace pgstream {

namespace {

// What a string holds on the heap beyond its own object: nothing while it fits the small-string buffer.
size_t heap_bytes(const std::string& text) {
    constexpr size_t kAllocationOverhead = 16;
    return text.capacity() > std::string().capacity() ? text.capacity() + 1 + kAllocationOverhead : 0;
}

}  // namespace

size_t event_weight(const Event& event) {
    // The shared_ptr control block: an allocation of its own for recycled events (wal/recycled_events.h: the
    // stream's and the snapshot's), about 32 bytes with the allocator's rounding. Shared texts (column heads,
    // metadata ids, the commit time) count as their handles only (inside sizeof(Event) and sizeof(Column)):
    // they are held once per table or transaction, however many of its events are queued.
    size_t weight = sizeof(Event) + 48;
    for (const std::string* text : {&event.xid, &event.schema, &event.table, &event.prefix, &event.content,
                                    &event.position, &event.metadata.version})
        weight += heap_bytes(*text);
    for (const auto* columns : {&event.columns, &event.identity}) {
        weight += columns->capacity() * sizeof(Column);
        for (const auto& column : *columns) weight += heap_bytes(column.value.text);
    }
    return weight;
}

MemoryGuard::MemoryGuard(size_t budget) : budget_(budget) {}

bool MemoryGuard::acquire(size_t bytes) {
    return acquire(bytes, StopToken());
}

bool MemoryGuard::acquire(size_t bytes, const StopToken& stop) {
    std::unique_lock<std::mutex> lock(mutex_);
    auto fits_now = [&] { return closed_ || in_use_ == 0 || in_use_ + bytes <= budget_; };
    bool fits = fits_now();
    if (!fits) {
        // Only a wait reads the clock: the common case stays two comparisons.
        auto blocked_since = std::chrono::steady_clock::now();
        ++waiting_;
        fits = stop.wait(lock, released_, fits_now);
        --waiting_;
        blocked_ns_.fetch_add(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::steady_clock::now() - blocked_since)
                                  .count(),
                              std::memory_order_relaxed);
    }
    if (closed_ || !fits) return false;
    in_use_ += bytes;
    peak_ = std::max(peak_, in_use_);
    return true;
}

bool MemoryGuard::try_acquire(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_ || (in_use_ != 0 && in_use_ + bytes > budget_)) return false;
    in_use_ += bytes;
    peak_ = std::max(peak_, in_use_);
    return true;
}

void MemoryGuard::release(size_t bytes) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        in_use_ -= std::min(bytes, in_use_);
    }
    released_.notify_all();
}

void MemoryGuard::close() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        closed_ = true;
    }
    released_.notify_all();
}

size_t MemoryGuard::in_use() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return in_use_;
}

size_t MemoryGuard::waiting() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return waiting_;
}

size_t MemoryGuard::peak() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return peak_;
}

BatchSender::BatchSender(std::string name, BatchSettings settings, SendEvents send,
                         Acknowledger& acknowledger, Weigh weigh, StopToken stop)
    : BatchSender(
          std::move(name), std::move(settings), Prepare(),
          [send = std::move(send)](const std::vector<EventPtr>& batch, PreparedBatch*) {
              return send(batch);
          },
          acknowledger, std::move(weigh), std::move(stop)) {}

BatchSender::BatchSender(std::string name, BatchSettings settings, Prepare prepare, SendPrepared send,
                         Acknowledger& acknowledger, Weigh weigh, StopToken stop)
    : name_(std::move(name)),
      settings_(std::move(settings)),
      prepare_(std::move(prepare)),
      send_(std::move(send)),
      acknowledger_(acknowledger),
      weigh_(std::move(weigh)),
      stop_(std::move(stop)),
      guard_(settings_.max_queue_bytes) {
    if (settings_.batch_size == 0) throw std::invalid_argument("batch size must be at least 1");
    if (prepare_) sending_thread_ = std::thread([this] { send_handed_over(); });
    thread_ = std::thread([this] { run(); });
}

BatchSender::SendEvents BatchSender::whole_batch(SendBatch send) {
    return [send = std::move(send)](const std::vector<EventPtr>& batch) {
        send(batch);
        return std::vector<EventResult>(batch.size());
    };
}

BatchSender::~BatchSender() {
    close();
}

void BatchSender::submit(EventPtr event) {
    size_t weight = weigh_(*event);
    // Why a submit is refused, checked under the lock; the common case takes the lock once per event.
    auto refusal_locked = [this]() -> std::string {
        if (!fatal_error_.empty()) return name_ + ": " + fatal_error_;
        if (closing_ || sender_done_) return name_ + ": closed";
        return {};
    };
    if (!guard_.try_acquire(weight)) {
        std::string refused;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            refused = refusal_locked();
        }
        if (!refused.empty()) throw std::runtime_error(refused);
        // Nothing taken now could be delivered before the final checkpoint.
        if (stop_.drain_over()) throw Stopped(name_ + ": the shutdown drain is over");
        log::debug(name_, ": memory guard full (", guard_.in_use(), " of ", guard_.budget(),
                   " bytes held), waiting for the output");
        if (!guard_.acquire(weight, stop_)) {
            if (stop_.stop_requested()) throw Stopped(name_ + ": stopped while waiting for the output");
            throw std::runtime_error(name_ + ": closed while waiting for memory");
        }
    }
    bool wake;
    {
        std::unique_lock<std::mutex> lock(mutex_);
        std::string refused = refusal_locked();
        const bool drain_over = refused.empty() && stop_.drain_over();
        if (!refused.empty() || drain_over) {
            lock.unlock();
            guard_.release(weight);
            if (drain_over) throw Stopped(name_ + ": the shutdown drain is over");
            throw std::runtime_error(refused);
        }
        bool was_empty = queue_.empty();
        if (was_empty) oldest_ = std::chrono::steady_clock::now();
        queue_.push_back({std::move(event), weight});
        queued_weight_ += weight;
        ++submitted_;
        // Waking the sender for every event costs more than the send itself: only when it has to start the
        // batch timer or a batch is full.
        wake = was_empty || queue_.size() == settings_.batch_size ||
               (queued_weight_ >= settings_.batch_bytes && queued_weight_ - weight < settings_.batch_bytes);
    }
    if (wake) wake_sender_.notify_one();
}

void BatchSender::flush() {
    std::unique_lock<std::mutex> lock(mutex_);
    flush_target_ = std::max(flush_target_, submitted_);
    uint64_t target = submitted_;
    wake_sender_.notify_one();
    stop_.wait_for_delivery(lock, progress_,
                            [&] { return completed_ >= target || !fatal_error_.empty() || sender_done_; });
}

void BatchSender::send_pending() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (queue_.empty() || flush_target_ >= submitted_) return;
        flush_target_ = submitted_;
    }
    wake_sender_.notify_one();
}

void BatchSender::close() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (closing_ && !thread_.joinable()) return;
        closing_ = true;
        flush_target_ = submitted_;
    }
    wake_sender_.notify_one();
    if (thread_.joinable()) thread_.join();
    guard_.close();
    progress_.notify_all();
}

std::string BatchSender::fatal_error() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return fatal_error_.empty() ? std::string() : name_ + ": " + fatal_error_;
}

uint64_t BatchSender::batches_sent() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return batches_sent_;
}

uint64_t BatchSender::events_sent() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_sent_;
}

BatchCounters BatchSender::counters() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return counters_;
}

bool BatchSender::batch_ready_locked(std::chrono::steady_clock::time_point now) const {
    if (queue_.empty()) return false;
    return queue_.size() >= settings_.batch_size || queued_weight_ >= settings_.batch_bytes || closing_ ||
           flush_target_ > completed_ || now - oldest_ >= settings_.batch_timeout;
}

void BatchSender::drop_queue_locked() {
    for (const auto& item : queue_) guard_.release(item.weight);
    completed_ += queue_.size();
    queue_.clear();
    queued_weight_ = 0;
    if (handoff_) {
        abandon_locked(*handoff_);
        handoff_.reset();
    }
}

void BatchSender::abandon_locked(CutBatch& cut) {
    guard_.release(cut.weight);
    completed_ += cut.events.size();
    cut.events.clear();
    cut.prepared.reset();
}

BatchSender::CutBatch BatchSender::cut_batch_locked(std::chrono::steady_clock::time_point now) {
    // Up to batch_size events and batch_bytes, but always at least one event.
    CutBatch cut;
    cut.events.reserve(std::min(queue_.size(), settings_.batch_size));
    while (!queue_.empty() && cut.events.size() < settings_.batch_size) {
        Item& next = queue_.front();
        if (!cut.events.empty() && cut.weight + next.weight > settings_.batch_bytes) break;
        cut.weight += next.weight;
        cut.events.push_back(
            std::move(next.event));  // the queue entry is popped next: no refcount round trip
        queued_weight_ -= next.weight;
        queue_.pop_front();
    }
    if (!queue_.empty()) oldest_ = now;  // the remainder starts a new batch
    return cut;
}

void BatchSender::run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!sending_stopped_) {
        if (handoff_) {
            // The next batch is cut once the sending thread took the last one: the events that came in
            // meanwhile then go into it, and at most two batches are out of the queue.
            handoff_changed_.wait(lock, [this] { return !handoff_ || sending_stopped_; });
            continue;
        }
        auto now = std::chrono::steady_clock::now();
        if (queue_.empty()) {
            if (closing_) break;
            wake_sender_.wait(lock);
            continue;
        }
        if (stop_.drain_over()) {
            // Whatever would be sent now comes after the final checkpoint: leave it to the next start.
            log::warn(name_, ": the shutdown drain is over; ", queue_.size(),
                      " events stay unacknowledged and are sent again on the next start");
            drop_queue_locked();
            break;
        }
        if (!batch_ready_locked(now)) {
            wake_sender_.wait_until(lock, oldest_ + settings_.batch_timeout);
            continue;
        }
        CutBatch cut = cut_batch_locked(now);
        lock.unlock();
        if (!prepare_) {
            const bool go_on = send_cut(cut);
            lock.lock();
            if (!go_on) break;
            continue;
        }
        try {
            cut.prepared = prepare_(cut.events);
        } catch (const std::exception& e) {
            log::warn(name_, ": preparing a batch failed (", e.what(), "); it is sent unprepared");
        }
        const bool alone = cut.prepared == nullptr;
        lock.lock();
        if (sending_stopped_) {
            abandon_locked(cut);  // unacknowledged, like the queue the sending thread dropped
            break;
        }
        handoff_ = std::move(cut);
        handoff_changed_.notify_all();
        // A batch that could not be prepared ahead is sent before the next one is prepared.
        if (alone)
            handoff_changed_.wait(lock, [this] { return (!handoff_ && !sending_) || sending_stopped_; });
    }
    if (prepare_) {
        cutting_done_ = true;
        handoff_changed_.notify_all();
        lock.unlock();
        sending_thread_.join();
        lock.lock();
    }
    sender_done_ = true;
    bool failed = !fatal_error_.empty();
    lock.unlock();
    progress_.notify_all();
    // Nothing after this batch can be confirmed any more: stop the pipeline and its drain (the source reports
    // fatal_error()).
    if (failed) stop_.end_drain();
}

void BatchSender::send_handed_over() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
        handoff_changed_.wait(lock, [this] { return handoff_.has_value() || cutting_done_; });
        if (!handoff_) break;
        CutBatch cut = std::move(*handoff_);
        handoff_.reset();
        sending_ = true;
        handoff_changed_.notify_all();
        lock.unlock();
        bool go_on;
        if (stop_.drain_over()) {
            // Handed over before the drain ended, not sent yet: it comes after the final checkpoint.
            log::warn(name_, ": the shutdown drain is over; ", cut.events.size(),
                      " events stay unacknowledged and are sent again on the next start");
            lock.lock();
            abandon_locked(cut);
            drop_queue_locked();
            go_on = false;
        } else {
            go_on = send_cut(cut);
            lock.lock();
        }
        sending_ = false;
        if (!go_on) sending_stopped_ = true;
        handoff_changed_.notify_all();
        if (!go_on) {
            wake_sender_.notify_all();  // the cutting thread may wait for events or a batch timeout
            break;
        }
    }
}

bool BatchSender::send_cut(CutBatch& cut) {
    Outcome outcome = send_with_retries(cut.events, cut.prepared.get());
    const size_t batch_events = cut.events.size();
    // The batch's events are freed now, before the lock is taken: freeing a thousand events takes long
    // enough to hold up submit() on the producing thread.
    cut.events.clear();
    cut.prepared.reset();
    guard_.release(cut.weight);

    std::lock_guard<std::mutex> lock(mutex_);
    completed_ += batch_events;
    if (outcome == Outcome::kSent) {
        ++batches_sent_;
        events_sent_ += batch_events;
        progress_.notify_all();
        return true;
    }
    // Failed for good or abandoned: the events stay unacknowledged, so the source will send them again.
    drop_queue_locked();
    return false;
}

void BatchSender::fail(std::string error) {
    log::error(name_, ": ", error);
    std::lock_guard<std::mutex> lock(mutex_);
    if (fatal_error_.empty()) fatal_error_ = std::move(error);
}

bool BatchSender::acknowledge(const Event& event) {
    try {
        acknowledger_.acknowledge(event);
        return true;
    } catch (const std::exception& e) {
        fail(std::string("acknowledging a delivered event failed: ") + e.what());
        return false;
    }
}

bool BatchSender::dead_letter(const Event& event, const EventResult& result, int attempts) {
    if (settings_.dead_letters == nullptr) {
        fail("gave up on an event after " + std::to_string(attempts) +
             (attempts == 1 ? " attempt" : " attempts") +
             " and has no dead-letter sink to put it in: " + result.reason);
        return false;
    }
    try {
        settings_.dead_letters->write(event, result, attempts);
    } catch (const std::exception& e) {
        // Acknowledging it now would lose it: stop instead, the event is sent again on the next start.
        fail("writing an event given up to the " + settings_.dead_letters->name() + " failed: " + e.what());
        return false;
    }
    return acknowledge(event);
}

std::vector<EventResult> BatchSender::send_once(const std::vector<EventPtr>& batch, PreparedBatch* prepared,
                                                bool* stopped) {
    *stopped = false;
    try {
        return send_(batch, prepared);
    } catch (const Stopped& e) {
        // The send's own wait for the output ended with the drain: not a failure of the output.
        log::warn(name_, ": ", e.what(), "; ", batch.size(),
                  " events stay unacknowledged and are sent again on the next start");
        *stopped = true;
        return {};
    } catch (const std::exception& e) {
        return std::vector<EventResult>(batch.size(), EventResult::retry(0, e.what()));
    }
}

BatchSender::Outcome BatchSender::send_with_retries(const std::vector<EventPtr>& batch,
                                                    PreparedBatch* prepared) {
    // The batch itself until some of its events need another attempt: copying it would cost two reference
    // count changes per event on every batch.
    const std::vector<EventPtr>* outstanding = &batch;
    std::vector<EventPtr> retrying;
    auto delay = settings_.retry_initial;
    for (int attempt = 1;; ++attempt) {
        // An attempt begun after the stop is the last one: a failing output must not hold the shutdown.
        const bool last_chance = stop_.stop_requested();
        bool stopped = false;
        // What was prepared is for the whole batch's first attempt only.
        std::vector<EventResult> results =
            send_once(*outstanding, outstanding == &batch && attempt == 1 ? prepared : nullptr, &stopped);
        if (stopped) return Outcome::kAbandoned;
        if (results.size() != outstanding->size()) {
            fail("the output returned " + std::to_string(results.size()) + " results for " +
                 std::to_string(outstanding->size()) + " events");
            return Outcome::kFailed;
        }

        BatchCounters counted;
        std::vector<EventPtr> to_retry;
        const EventResult* retry_example = nullptr;
        size_t given_up = 0;
        const EventResult* given_up_example = nullptr;
        bool ok = true;
        for (size_t i = 0; i < outstanding->size() && ok; ++i) {
            const Event& event = *(*outstanding)[i];
            const EventResult& result = results[i];
            if (settings_.on_result) {
                // Giving up without a sink stops the sender: what the event's outcome really is.
                if (result.delivery == Delivery::kGiveUp && settings_.dead_letters == nullptr)
                    settings_.on_result(event, EventResult::fatal(result.reason));
                else
                    settings_.on_result(event, result);
            }
            switch (result.delivery) {
                case Delivery::kDelivered:
                    ++counted.delivered;
                    ok = acknowledge(event);
                    break;
                case Delivery::kSkipped:
                    ++counted.skipped;
                    ok = acknowledge(event);
                    break;
                case Delivery::kPending:
                    ++counted.pending;
                    break;
                case Delivery::kGiveUp:
                    ok = dead_letter(event, result, attempt);
                    if (ok) ++counted.dead_lettered, ++given_up, given_up_example = &result;
                    break;
                case Delivery::kFatal:
                    fail(result.reason.empty() ? std::string("the output failed") : result.reason);
                    ok = false;
                    break;
                case Delivery::kRetry:
                    ++counted.retried;
                    to_retry.push_back((*outstanding)[i]);
                    if (retry_example == nullptr) retry_example = &result;
                    break;
            }
        }
        {
            std::lock_guard<std::mutex> lock(mutex_);
            counters_.delivered += counted.delivered;
            counters_.skipped += counted.skipped;
            counters_.retried += counted.retried;
            counters_.dead_lettered += counted.dead_lettered;
            counters_.pending += counted.pending;
        }
        if (given_up > 0)
            log::warn(
                name_, ": gave up on ", given_up, given_up == 1 ? " event" : " events", " (",
                given_up_example->status ? "status " + std::to_string(given_up_example->status) + ": " : "",
                given_up_example->reason, "), written to the ", settings_.dead_letters->name());
        if (!ok) return Outcome::kFailed;
        if (to_retry.empty()) return Outcome::kSent;

        const std::string what = "sending " +
                                 std::string(to_retry.size() == batch.size() ? "a batch of " : "") +
                                 std::to_string(to_retry.size()) + " events failed";
        const std::string why =
            (retry_example->status ? "status " + std::to_string(retry_example->status) + ": "
                                   : std::string()) +
            retry_example->reason;
        bool closing;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            closing = closing_;
        }
        // A stop or a close without one ends the retries: the events stay unacknowledged (sent again on the
        // next start), never dead-lettered for want of time.
        if (last_chance || (closing && attempt >= 3)) {
            fail(what + " " + std::to_string(attempt) + (attempt == 1 ? " time" : " times") +
                 (last_chance ? " (stopping)" : "") + ": " + why);
            return Outcome::kFailed;
        }
        if (settings_.max_send_attempts > 0 && attempt >= settings_.max_send_attempts) {
            if (settings_.dead_letters == nullptr) {
                fail(what + " " + std::to_string(attempt) + (attempt == 1 ? " time" : " times") + ": " + why);
                if (settings_.on_result)
                    for (const auto& event : to_retry) settings_.on_result(*event, EventResult::fatal(why));
                return Outcome::kFailed;
            }
            size_t written = 0;
            for (const auto& event : to_retry) {
                EventResult exhausted = EventResult::give_up(
                    retry_example->status,
                    "retries exhausted after " + std::to_string(attempt) + " attempts: " + why);
                if (settings_.on_result) settings_.on_result(*event, exhausted);
                if (!dead_letter(*event, exhausted, attempt)) return Outcome::kFailed;
                ++written;
            }
            {
                std::lock_guard<std::mutex> lock(mutex_);
                counters_.dead_lettered += written;
            }
            log::warn(name_, ": ", what, " ", attempt, " times (", why, "); ", written,
                      " events written to the ", settings_.dead_letters->name());
            return Outcome::kSent;
        }
        log::warn(name_, ": ", what, " (attempt ", attempt, "): ", why, "; retrying in ", delay.count(),
                  "ms");
        stop_.sleep_for(delay);  // a stop ends the backoff: one last attempt follows
        delay = std::min(delay * 2, settings_.retry_max);
        retrying = std::move(to_retry);
        outstanding = &retrying;
    }
}

BatchSettings batch_settings_from(const Config& config, const std::string& prefix, BatchSettings defaults) {
    BatchSettings settings = defaults;
    settings.max_queue_bytes = config.get_size(prefix + "_MAX_QUEUE_BYTES", defaults.max_queue_bytes);
    settings.batch_size = size_t(config.get_int(prefix + "_BATCH_SIZE", int64_t(defaults.batch_size), 1));
    settings.batch_bytes = config.get_size(prefix + "_BATCH_BYTES", defaults.batch_bytes);
    settings.batch_timeout = config.get_duration(prefix + "_BATCH_TIMEOUT", defaults.batch_timeout);
    if (settings.max_queue_bytes == 0) throw ConfigError(prefix + "_MAX_QUEUE_BYTES", "must be positive");
    if (settings.batch_bytes == 0) throw ConfigError(prefix + "_BATCH_BYTES", "must be positive");
    if (settings.max_queue_bytes < settings.batch_bytes)
        throw ConfigError(prefix + "_MAX_QUEUE_BYTES", "must be at least " + prefix + "_BATCH_BYTES (" +
                                                           std::to_string(settings.batch_bytes) + ")");
    return settings;
}

std::vector<std::string> batch_setting_keys(const std::string& prefix) {
    return {prefix + "_MAX_QUEUE_BYTES", prefix + "_BATCH_SIZE", prefix + "_BATCH_BYTES",
            prefix + "_BATCH_TIMEOUT"};
}

}  // namespace pgstream
