// The Kafka listener: a consumer-group member (manual commits) that hands each record to the pipeline and
// commits, per partition, only offsets below which every record was acknowledged by every output.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kafka/kafka_settings.h"
#include "kafka/offset_watermark.h"

namespace RdKafka {
class KafkaConsumer;
}

namespace pgstream::kafka {

struct ConsumedRecord {
    TopicPartitionOffset position;
    std::string key;
    std::string value;
};

struct ReaderCounters {
    uint64_t consumed = 0;
    uint64_t commits = 0;          // successful commit requests
    uint64_t commit_failures = 0;  // failed attempts, retried or not
    uint64_t rebalances = 0;
};

class KafkaReader {
  public:
    // Receives every record, in order per partition, on the reader's thread. May block (back-pressure).
    // Throwing stops the reader; run() rethrows.
    using RecordFn = std::function<void(const ConsumedRecord&)>;
    using LogFn = std::function<void(const std::string&)>;

    KafkaReader(ReaderSettings settings, RecordFn on_record, LogFn log = nullptr);
    // Shares `watermark` with a checkpointer that acknowledges into it (it must outlive the reader).
    KafkaReader(ReaderSettings settings, OffsetWatermark& watermark, RecordFn on_record, LogFn log = nullptr);
    ~KafkaReader();
    KafkaReader(const KafkaReader&) = delete;
    KafkaReader& operator=(const KafkaReader&) = delete;

    // Consumes until stop(); then calls `drain` (e.g. flush the outputs), commits what is acknowledged and
    // leaves the group.
    void run(const std::function<void()>& drain = nullptr);
    void stop();

    // The checkpointer side: a record was delivered by every output. Thread-safe; acks of partitions revoked
    // since are ignored.
    void acknowledge(const TopicPartitionOffset& record);
    void acknowledge(const std::string& position);

    // Commits acknowledged offsets now, with the configured retry policy. Called by run() on the commit
    // interval, on revoke and on stop; returns false when the commit finally failed.
    bool commitAcknowledged();

    ReaderCounters counters() const;
    std::vector<std::pair<std::string, int32_t>> assignment() const;

  private:
    class RebalanceHandler;
    void onRevoke(const std::vector<TopicPartitionOffset>& partitions);
    void holdPeriodicCommits(bool hold);
    bool periodicCommitsHeld() const;
    bool commitWithRetries(const std::vector<TopicPartitionOffset>& commits);
    void log(const std::string& message) const;

    ReaderSettings settings_;
    RecordFn on_record_;
    LogFn log_;
    std::unique_ptr<RebalanceHandler> rebalance_handler_;
    std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
    OffsetWatermark owned_watermark_;
    OffsetWatermark& watermark_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> revoked_this_round_{false};
    std::chrono::steady_clock::time_point commits_held_until_{};

    mutable std::mutex mutex_;
    std::condition_variable acked_cv_;
    ReaderCounters counters_;
    std::vector<std::pair<std::string, int32_t>> assignment_;
};

}  // namespace pgstream::kafka
