// The batching and memory guard every output uses.
//
// MemoryGuard is a byte budget: submit() blocks the caller (ultimately the listener) while the bytes held
// by unsent and unacknowledged events would exceed it, so a slow output slows the source down instead of
// growing memory. BatchSender cuts the accepted events into batches by count, bytes and age, hands each
// batch to the output's send function on its own thread, retries failures with exponential backoff, and
// acknowledges the batch's events only after the send succeeded.
//
// An output may also prepare batches (build request bodies): the sender then cuts and prepares the next batch
// on a thread of its own while the current one is sent, so that the output's work overlaps its server's. The
// batches are still sent, retried and acknowledged one after the other, in order.
//
// Shutdown (the StopToken): a stop ends the memory guard's wait (submit() throws Stopped) and the retry
// backoff (one more attempt, then the batch is given up); flush() waits for deliveries until the drain is
// over, after which nothing more is sent. A batch failed for good ends the drain for the whole pipeline:
// nothing after it can be confirmed, so nobody waits any longer.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "checkpoint/acknowledger.h"
#include "config/config.h"
#include "processor/dead_letter.h"
#include "processor/event_result.h"
#include "util/stop_token.h"
#include "wal/event.h"

namespace pgstream {

struct BatchSettings {
    size_t max_queue_bytes = 100u << 20;            // memory guard budget
    size_t batch_size = 100;                        // events per batch
    size_t batch_bytes = 1572864;                   // bytes per batch (by event weight)
    std::chrono::milliseconds batch_timeout{1000};  // max age of the oldest event in an open batch
    int max_send_attempts = 0;                      // per event; 0 = retry forever
    std::chrono::milliseconds retry_initial{100};
    std::chrono::milliseconds retry_max{10000};
    // Where events given up go (kGiveUp, or retries exhausted); without one, giving up fails the sender.
    // Not owned; must outlive the sender.
    DeadLetterSink* dead_letters = nullptr;
    // Told every result (retries included), on the sending thread, outside any lock: metrics.
    std::function<void(const Event&, const EventResult&)> on_result;
};

struct BatchCounters {
    uint64_t delivered = 0;
    uint64_t skipped = 0;
    uint64_t retried = 0;  // results asking for a retry (an event retried twice counts twice)
    uint64_t dead_lettered = 0;
    uint64_t pending = 0;
};

// Reads `prefix`_MAX_QUEUE_BYTES, _BATCH_SIZE, _BATCH_BYTES and _BATCH_TIMEOUT over `defaults`; throws
// ConfigError naming the key (a zero budget, a queue smaller than a batch).
BatchSettings batch_settings_from(const Config& config, const std::string& prefix, BatchSettings defaults);
// The four keys batch_settings_from reads, for a module's settings list.
std::vector<std::string> batch_setting_keys(const std::string& prefix);

// Approximate resident bytes of an event: its object, its vectors and its heap-allocated strings.
size_t event_weight(const Event& event);

class MemoryGuard {
  public:
    explicit MemoryGuard(size_t budget);
    // Blocks until `bytes` fit. An item larger than the whole budget is admitted when nothing else is held,
    // so it cannot deadlock. Returns false if the guard was closed (or `stop` requested) while waiting.
    bool acquire(size_t bytes);
    bool acquire(size_t bytes, const StopToken& stop);
    // Non-blocking variant.
    bool try_acquire(size_t bytes);
    void release(size_t bytes);
    void close();
    size_t in_use() const;
    size_t budget() const { return budget_; }
    // Largest amount ever held at once (tests and metrics).
    size_t peak() const;
    // Total time acquire() callers spent waiting for memory (back-pressure), for metrics. Lock-free.
    std::chrono::nanoseconds blocked_time() const {
        return std::chrono::nanoseconds(blocked_ns_.load(std::memory_order_relaxed));
    }
    // acquire() callers waiting right now.
    size_t waiting() const;

  private:
    const size_t budget_;
    mutable std::mutex mutex_;
    std::condition_variable released_;
    size_t in_use_ = 0;
    size_t peak_ = 0;
    bool closed_ = false;
    size_t waiting_ = 0;
    std::atomic<int64_t> blocked_ns_{0};
};

// What an output prepared for a batch ahead of sending it (see BatchSender's Prepare).
struct PreparedBatch {
    virtual ~PreparedBatch() = default;
};

class BatchSender {
  public:
    // Sends one batch and returns one result per event, in the batch's order. Throws on a failure of the
    // whole batch (every event is then retried), or Stopped when the stop's drain ended its wait for the
    // output (the batch stays unacknowledged without a failure).
    using SendEvents = std::function<std::vector<EventResult>(const std::vector<EventPtr>& batch)>;
    // For outputs where a batch succeeds or fails as a whole: returning means every event is delivered.
    using SendBatch = std::function<void(const std::vector<EventPtr>& batch)>;
    using Weigh = std::function<size_t(const Event&)>;
    // Work on a batch that needs no answer of the output, done while the batch before it is sent. Returns
    // null when the batch cannot be prepared ahead (what it needs depends on sending the batches before it):
    // such a batch is then sent alone, and the next one is prepared only after it. A throw counts as null.
    using Prepare = std::function<std::unique_ptr<PreparedBatch>(const std::vector<EventPtr>& batch)>;
    // Like SendEvents, with what `prepare` made of the batch (null: not prepared, and always so for a resend
    // of the events that asked for a retry).
    using SendPrepared =
        std::function<std::vector<EventResult>(const std::vector<EventPtr>& batch, PreparedBatch* prepared)>;

    BatchSender(std::string name, BatchSettings settings, SendEvents send, Acknowledger& acknowledger,
                Weigh weigh = event_weight, StopToken stop = {});
    // A send function returning nothing (a SendBatch).
    template <
        typename Send,
        std::enable_if_t<std::is_void_v<std::invoke_result_t<Send&, const std::vector<EventPtr>&>>, int> = 0>
    BatchSender(std::string name, BatchSettings settings, Send send, Acknowledger& acknowledger,
                Weigh weigh = event_weight, StopToken stop = {})
        : BatchSender(std::move(name), std::move(settings), whole_batch(SendBatch(std::move(send))),
                      acknowledger, std::move(weigh), std::move(stop)) {}
    // Prepares each batch on a thread of its own while the one before it is sent.
    BatchSender(std::string name, BatchSettings settings, Prepare prepare, SendPrepared send,
                Acknowledger& acknowledger, Weigh weigh = event_weight, StopToken stop = {});
    // Every event delivered when `send` returns, every one retried when it throws.
    static SendEvents whole_batch(SendBatch send);
    ~BatchSender();
    BatchSender(const BatchSender&) = delete;
    BatchSender& operator=(const BatchSender&) = delete;

    // Blocks while the memory guard is full. Throws std::runtime_error once the sender has failed or closed,
    // Stopped when a stop ended the wait for memory (the event was not taken).
    void submit(EventPtr event);
    // Sends everything submitted so far and waits for it (or for failure, or the end of the drain).
    void flush();
    // Starts sending everything submitted so far without waiting for the batch timeout; does not block.
    void send_pending();
    // Flushes and stops the sending thread.
    void close();

    // "<name>: <why>" once a batch failed for good (the error names the output).
    std::string fatal_error() const;
    const MemoryGuard& memory() const { return guard_; }
    uint64_t batches_sent() const;
    uint64_t events_sent() const;
    BatchCounters counters() const;

  private:
    struct Item {
        EventPtr event;
        size_t weight;
    };
    struct CutBatch {
        std::vector<EventPtr> events;
        size_t weight = 0;
        std::unique_ptr<PreparedBatch> prepared;
    };
    enum class Outcome { kSent, kFailed, kAbandoned };
    // The cutting thread: cuts batches and sends them, or with a Prepare prepares them and hands them over
    // to the sending thread (send_handed_over()).
    void run();
    void send_handed_over();
    bool batch_ready_locked(std::chrono::steady_clock::time_point now) const;
    CutBatch cut_batch_locked(std::chrono::steady_clock::time_point now);
    // Sends a batch with its retries, frees it and counts it done; false when nothing more may be sent (the
    // batch failed for good or was abandoned: what is pending is dropped, unacknowledged).
    bool send_cut(CutBatch& cut);
    Outcome send_with_retries(const std::vector<EventPtr>& batch, PreparedBatch* prepared);
    // Sends `batch` once; one result per event (a thrown failure becomes a retry of each).
    std::vector<EventResult> send_once(const std::vector<EventPtr>& batch, PreparedBatch* prepared,
                                       bool* stopped);
    // Acknowledges an event done with; false (fatal_error_ set) when the acknowledger threw.
    bool acknowledge(const Event& event);
    // Writes an event given up to the dead-letter sink, then acknowledges it; false (fatal_error_ set) when
    // there is no sink or it failed.
    bool dead_letter(const Event& event, const EventResult& result, int attempts);
    void fail(std::string error);
    // Drops what is queued and handed over, unacknowledged (the source sends it again), and releases its
    // memory.
    void drop_queue_locked();
    // Drops a cut batch the same way, counting it done.
    void abandon_locked(CutBatch& cut);

    const std::string name_;
    const BatchSettings settings_;
    Prepare prepare_;  // empty: batches are sent by the cutting thread as they are cut
    SendPrepared send_;
    Acknowledger& acknowledger_;
    Weigh weigh_;
    StopToken stop_;
    MemoryGuard guard_;

    mutable std::mutex mutex_;
    std::condition_variable wake_sender_;
    std::condition_variable progress_;
    std::deque<Item> queue_;
    size_t queued_weight_ = 0;
    std::chrono::steady_clock::time_point oldest_;
    uint64_t submitted_ = 0;
    uint64_t completed_ = 0;  // sent and acknowledged, or abandoned on failure
    uint64_t flush_target_ = 0;
    uint64_t batches_sent_ = 0;
    uint64_t events_sent_ = 0;
    BatchCounters counters_;
    bool closing_ = false;
    bool sender_done_ = false;  // the sending thread ended (closed, failed or abandoned)
    std::string fatal_error_;
    // With a Prepare: the prepared batch waiting for the sending thread, whether that thread is sending one,
    // whether the cutting thread is done, and whether the sending thread stopped for good.
    std::condition_variable handoff_changed_;
    std::optional<CutBatch> handoff_;
    bool sending_ = false;
    bool cutting_done_ = false;
    bool sending_stopped_ = false;
    std::thread thread_;
    std::thread sending_thread_;  // joined by the cutting thread
};

}  // namespace pgstream
