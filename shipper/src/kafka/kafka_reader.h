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
#include "observability/metrics.h"
#include "util/stop_token.h"

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
    uint64_t commits = 0;          // successful commit requests (librdkafka's and commitAcknowledged()'s)
    uint64_t commit_failures = 0;  // failed attempts, retried or not
    // Revoked partitions whose acknowledged offsets the coordinator did not take before the handover: their
    // next owner reads the records after the previous commit again.
    uint64_t handover_commit_failures = 0;
    uint64_t rebalances = 0;
};

class KafkaReader {
  public:
    // Receives every record, in order per partition, on the reader's thread. May block (back-pressure).
    // Throwing stops the reader; run() rethrows.
    using RecordFn = std::function<void(const ConsumedRecord&)>;
    using LogFn = std::function<void(const std::string&)>;

    // stop() requests `stop`, and any stop of `stop` ends run(); its waits watch it.
    KafkaReader(ReaderSettings settings, RecordFn on_record, LogFn log = nullptr, StopToken stop = {});
    // Shares `watermark` with a checkpointer that acknowledges into it (it must outlive the reader).
    KafkaReader(ReaderSettings settings, OffsetWatermark& watermark, RecordFn on_record, LogFn log = nullptr,
                StopToken stop = {});
    ~KafkaReader();
    KafkaReader(const KafkaReader&) = delete;
    KafkaReader& operator=(const KafkaReader&) = delete;

    // Consumes until stop(); then calls `drain` (e.g. flush the outputs) and leaves the group, which commits
    // what is acknowledged. `check` runs between records (at least every 100 ms); throwing from it stops the
    // reader like a throwing RecordFn.
    void run(const std::function<void()>& drain = nullptr, const std::function<void()>& check = nullptr);
    void stop();

    // The checkpointer side: a record was delivered by every output. Thread-safe; acks of partitions revoked
    // since are ignored.
    void acknowledge(const TopicPartitionOffset& record);
    void acknowledge(const std::string& position);

    // Commits acknowledged offsets now, with the configured retry policy; returns false when the commit
    // finally failed. run() does not need it: acknowledged offsets go to librdkafka's offset store, which
    // commits them on the commit interval (only while the group is stable), and the revoke callback commits
    // revoked partitions. A commit requested while this member is rejoining may be answered with
    // ILLEGAL_GENERATION, which makes librdkafka treat the assignment as lost.
    bool commitAcknowledged();

    // Records the Go pgstream's pgstream.kafka.reader.* histograms into `metrics` from now on (call before
    // run()): msg.bytes (value bytes per record), fetch.latency (a consume call that returned a record),
    // commit.latency (a synchronous commit: a partition handover, commitAcknowledged()) and commit.batch.size
    // (records a successful commit moves past, librdkafka's interval commits included).
    void instrument(Metrics& metrics);

    ReaderCounters counters() const;
    std::vector<std::pair<std::string, int32_t>> assignment() const;

  private:
    class RebalanceHandler;
    class CommitResultHandler;
    void onRevoke(const std::vector<TopicPartitionOffset>& partitions, bool lost);
    // Hands acknowledged offsets (of `only` these partitions, when given) to librdkafka's offset store.
    void storeAcknowledged(const std::vector<TopicPartitionOffset>* only = nullptr);
    void countCommit(bool ok);
    // Marks `committed` and observes how many records it moved past.
    void markCommitted(const std::vector<TopicPartitionOffset>& committed);
    bool commitWithRetries(const std::vector<TopicPartitionOffset>& commits);
    // close() and destroy the consumer, avoiding librdkafka#4312 on versions before 2.3.0.
    void closeConsumer();
    void log(const std::string& message) const;

    ReaderSettings settings_;
    RecordFn on_record_;
    LogFn log_;
    std::unique_ptr<RebalanceHandler> rebalance_handler_;
    std::unique_ptr<CommitResultHandler> commit_handler_;
    std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
    OffsetWatermark owned_watermark_;
    OffsetWatermark& watermark_;
    StopToken stop_;
    // An assignment (even an empty one) was handed to the rebalance callback: a SyncGroup succeeded.
    std::atomic<bool> assigned_once_{false};

    // Null until instrument().
    prometheus::Histogram* msg_bytes_ = nullptr;
    prometheus::Histogram* fetch_latency_ = nullptr;
    prometheus::Histogram* commit_latency_ = nullptr;
    prometheus::Histogram* commit_batch_size_ = nullptr;

    mutable std::mutex mutex_;
    ReaderCounters counters_;
    std::vector<std::pair<std::string, int32_t>> assignment_;
};

}  // namespace pgstream::kafka
