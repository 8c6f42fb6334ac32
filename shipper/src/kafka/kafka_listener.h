// Kafka as the source: a consumer-group member feeding the pipeline, and the checkpointer that turns the
// outputs' acknowledgements into per-partition offset commits (only below the first unacknowledged record).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "checkpoint/acknowledger.h"
#include "kafka/kafka_reader.h"
#include "kafka/offset_watermark.h"
#include "listener/listener.h"
#include "processor/processor.h"

namespace pgstream::kafka {

// The Acknowledger the outputs are built with when the listener is Kafka.
class KafkaCheckpointer : public Acknowledger {
  public:
    // Registers a consumed record and returns the Event::checkpoint_token for it.
    uint64_t track(const TopicPartitionOffset& position);
    void acknowledge(const Event& event) override;
    void retain(const Event& event, int additional) override;

    OffsetWatermark& watermark() { return watermark_; }
    // Records handed to the pipeline and not yet acknowledged by every output.
    size_t inFlight() const;

  private:
    struct Tracked {
        TopicPartitionOffset position;
        int64_t remaining;
    };
    mutable std::mutex mutex_;
    std::unordered_map<uint64_t, Tracked> tracked_;
    uint64_t next_token_ = 1;
    OffsetWatermark watermark_;
};

struct KafkaListenerStats {
    std::atomic<uint64_t> records{0};
    std::atomic<uint64_t> skipped_records{
        0};  // not a pgstream event: logged with its position, committed past
};

class KafkaListener : public Listener {
  public:
    KafkaListener(ReaderSettings settings, Processor& next, KafkaCheckpointer& checkpointer,
                  std::chrono::milliseconds drain_timeout = std::chrono::seconds(30));
    ~KafkaListener() override;

    std::string run() override;
    void stop() override;

    const KafkaListenerStats& stats() const { return stats_; }
    ReaderCounters readerCounters() const { return reader_.counters(); }

  private:
    void handle(const ConsumedRecord& record);

    Processor& next_;
    KafkaCheckpointer& checkpointer_;
    std::chrono::milliseconds drain_timeout_;
    KafkaListenerStats stats_;
    KafkaReader reader_;
};

}  // namespace pgstream::kafka
