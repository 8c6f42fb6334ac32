// Per-partition watermark for the Kafka reader: offsets are registered in consumption order and acknowledged
// by the pipeline (possibly out of order across partitions); the committable offset of a partition is one
// past the highest offset below which everything is acknowledged.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kafka/in_order_acks.h"
#include "util/stop_token.h"

namespace pgstream::kafka {

struct TopicPartitionOffset {
    std::string topic;
    int32_t partition = -1;
    int64_t offset = -1;
};

// "topic/partition/offset", the Go pgstream's Kafka position format. Topic names cannot contain '/'.
std::string formatPosition(const TopicPartitionOffset& position);
std::optional<TopicPartitionOffset> parsePosition(const std::string& text);

class OffsetWatermark {
  public:
    using Key = std::pair<std::string, int32_t>;

    // A record was handed to the pipeline. Offsets of one partition must be registered in increasing order.
    void registerConsumed(const TopicPartitionOffset& record, size_t bytes);
    // The pipeline acknowledged a record. Unknown partitions (revoked since) and offsets are ignored: returns
    // false. Wakes the waits below.
    bool acknowledge(const TopicPartitionOffset& record);

    // Until at most `limit` bytes are in flight, or the stop; true when they are.
    bool waitInFlightBytesAtMost(size_t limit, const StopToken& stop) const;
    // Until nothing of `partitions` is in flight, `until` passes or the stop's drain is over; true when
    // drained.
    bool waitDrained(const std::vector<TopicPartitionOffset>& partitions,
                     std::chrono::steady_clock::time_point until, const StopToken& stop) const;
    // Non-empty once the acknowledgements contradicted the registered order (see InOrderAcks::complete).
    std::string violation() const;

    // Offsets to commit (next offset to read) for partitions that advanced since the last markCommitted().
    std::vector<TopicPartitionOffset> pendingCommits() const;
    // Returns how many records the commit moves past (from the previous commit, or the partition's first
    // record consumed here): 0 when it does not advance.
    int64_t markCommitted(const TopicPartitionOffset& commit);
    // The same for handing offsets to the consumer's offset store (which librdkafka commits): partitions that
    // advanced since the last markStored().
    std::vector<TopicPartitionOffset> pendingStores() const;
    void markStored(const TopicPartitionOffset& stored);

    // Drops everything known about a partition (revoked): later acks for it are ignored.
    void forget(const std::string& topic, int32_t partition);

    size_t inFlightRecords() const;
    size_t inFlightBytes() const;
    size_t inFlightRecords(const std::string& topic, int32_t partition) const;

  private:
    struct Entry {
        int64_t offset;
        size_t bytes;
    };
    struct PartitionState {
        InOrderAcks<Entry> acks;
        std::map<int64_t, uint64_t> sequence_of_offset;
        int64_t next_to_commit = -1;  // offset+1 of the newest fully acknowledged record
        int64_t committed = -1;
        int64_t first_consumed = -1;
        int64_t stored = -1;
    };
    // Positions of the partitions whose watermark is past `mark` (committed or stored), and moving `mark` on.
    std::vector<TopicPartitionOffset> behind(int64_t PartitionState::*mark) const;
    void advance(int64_t PartitionState::*mark, const TopicPartitionOffset& position);
    size_t inFlightRecordsLocked(const std::vector<TopicPartitionOffset>& partitions) const;

    mutable std::mutex mutex_;
    mutable std::condition_variable acknowledged_;
    std::string violation_;
    std::map<Key, PartitionState> partitions_;
    size_t in_flight_bytes_ = 0;
};

}  // namespace pgstream::kafka
