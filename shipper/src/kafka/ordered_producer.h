// The Kafka side of the batch writer: an idempotent librdkafka producer (acks=all, infinite retries) that
// reports deliveries strictly in the order records were handed to it, driven only by librdkafka's delivery
// reports. A broker outage blocks (librdkafka's queue fills, produce() waits); nothing is dropped or
// reordered.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kafka/in_order_acks.h"
#include "kafka/kafka_settings.h"
#include "util/stop_token.h"

namespace RdKafka {
class Producer;
class Topic;
}

namespace pgstream::kafka {

// Thrown by produce() once the writer has stopped; what() says why (names the record for oversized ones).
class WriterStopped : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct DeliveredRecord {
    uint64_t token;  // the caller's token from produce()
    size_t bytes;    // key + value bytes, for releasing a memory budget
};

struct ProducerCounters {
    uint64_t produced = 0;
    uint64_t delivered = 0;
    uint64_t oversized = 0;
};

class OrderedProducer {
  public:
    // Called with records whose delivery (and that of every earlier record) is confirmed, oldest first. Runs
    // on the producer's poll thread only (records diverted to the oversized-record file too), without any of
    // the producer's locks held; calls never overlap.
    using DeliveredFn = std::function<void(const std::vector<DeliveredRecord>&)>;
    using LogFn = std::function<void(const std::string&)>;

    // A permanent failure ends `stop`'s drain: nothing after the failed record can be acknowledged any more.
    OrderedProducer(const WriterSettings& settings, DeliveredFn on_delivered, LogFn log = nullptr,
                    StopToken stop = {});
    ~OrderedProducer();
    OrderedProducer(const OrderedProducer&) = delete;
    OrderedProducer& operator=(const OrderedProducer&) = delete;

    // Fetches the topic's metadata so that the first records do not wait for librdkafka's first refresh.
    // After ensureTopicExists(): with broker-side auto-creation this request creates the topic.
    void warmUp();

    // Creates the topic with the configured partitions and replication factor unless it exists (Admin API).
    void ensureTopicExists(std::chrono::milliseconds timeout = std::chrono::seconds(30));

    // Labels a record in error messages (e.g. "schema.table at LSN 0/16B3748"); called only when one is
    // written, so the hot path builds no label.
    using DescribeFn = std::function<std::string()>;

    // Queues one record. Blocks while librdkafka's buffer (bounded by max_queue_bytes) is full. Throws
    // WriterStopped after a permanent failure or stop(), Stopped once the stop's drain is over.
    void produce(const std::string& key, const std::string& value, uint64_t token,
                 const DescribeFn& describe = {});

    // Waits until every queued record is delivered and reported (true) or the timeout/failure/stop/end of the
    // drain comes first (false).
    bool flush(std::chrono::milliseconds timeout);
    bool flush();

    // Makes blocked and future produce() calls throw; pending records stay unacknowledged.
    void stop();

    std::optional<std::string> failure() const;
    // "" unless librdkafka reported every broker down since the last delivery (for GET /ready).
    std::string connection_problem() const;
    ProducerCounters counters() const;
    size_t inFlightRecords() const;

  private:
    class Callbacks;
    void pollLoop();
    struct DeliveryReport {
        uint64_t sequence;
        bool ok;
        std::string error;  // and key: only for a refused record
        size_t bytes;
        std::string key;
    };
    // Serves librdkafka's callbacks, then hands what became acknowledgeable to on_delivered_ (poll thread).
    void pollOnce(int timeout_ms);
    // Applies delivery reports to acks_; returns the first permanent failure they caused ("" if none).
    std::string applyReportsLocked(const std::vector<DeliveryReport>& reports);
    // Marks a record delivered; "" when it was awaiting its delivery, else the violation.
    std::string completeLocked(uint64_t sequence);
    // Records the first permanent failure; true when `reason` is it (the caller then calls failed()
    // unlocked).
    bool failLocked(const std::string& reason);
    // After the first failure, outside the lock: wakes the waiters and ends the stop's drain.
    void failed();
    void fail(const std::string& reason);
    bool flushUntil(std::chrono::steady_clock::time_point until);
    bool allReportedLocked() const { return acks_.pendingCount() == 0 && ready_.empty() && !reporting_; }
    void divertOversized(const std::string& key, const std::string& value, uint64_t token,
                         const DescribeFn& describe);
    void log(const std::string& message) const;
    RdKafka::Topic& topicLocked();

    WriterSettings settings_;
    DeliveredFn on_delivered_;
    LogFn log_;
    std::unique_ptr<Callbacks> callbacks_;
    std::unique_ptr<RdKafka::Producer> producer_;
    // Produced to through a handle: by name, librdkafka looks the topic up (lock, hash, refcount) per record.
    // Made on first use, not in the constructor: its metadata request could create the topic broker-side
    // before ensureTopicExists() creates it with the configured partitions.
    std::unique_ptr<RdKafka::Topic> topic_;

    mutable std::mutex mutex_;
    std::condition_variable delivered_cv_;
    // Records handed to librdkafka, released in the order they were produced.
    InOrderAcks<DeliveredRecord> acks_;
    // Released by acks_, waiting for the poll thread to hand them to on_delivered_ (kept for its capacity).
    std::vector<DeliveredRecord> ready_;
    bool reporting_ = false;                        // the poll thread is calling on_delivered_
    std::vector<DeliveredRecord> reporting_batch_;  // what it hands over (poll thread only)
    std::optional<std::string> failure_;
    ProducerCounters counters_;
    StopToken stop_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> all_brokers_down_{false};  // set by librdkafka's error event, cleared by a delivery
    std::atomic<bool> poll_running_{true};
    std::thread poll_thread_;
};

}  // namespace pgstream::kafka
