// Kafka as the source: a consumer-group member feeding the pipeline, and the checkpointer that turns the
// outputs' acknowledgements into per-partition offset commits (only below the first unacknowledged record).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
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
    // An acknowledgement of an event that is not in flight (acknowledged once too often) is recorded as a
    // violation (fatal_error()), not thrown: it arrives on an output's thread.
    void acknowledge(const Event& event) override;
    void retain(const Event& event, int additional) override;
    std::string fatal_error() const override;
    // The event of `token` was not taken by the pipeline: it is no longer waited for, and its offset stays
    // uncommitted.
    void withdraw(uint64_t token);

    OffsetWatermark& watermark() { return watermark_; }
    // Records handed to the pipeline and not yet acknowledged by every output.
    size_t inFlight() const;
    // Until nothing is in flight or the stop's drain is over; true when drained.
    bool waitDrained(const StopToken& stop) const;

  private:
    struct Tracked {
        TopicPartitionOffset position;
        int64_t remaining;
    };
    mutable std::mutex mutex_;
    mutable std::condition_variable drained_;
    std::unordered_map<uint64_t, Tracked> tracked_;
    uint64_t next_token_ = 1;
    std::string violation_;
    OffsetWatermark watermark_;
};

struct KafkaListenerStats {
    std::atomic<uint64_t> records{0};
    std::atomic<uint64_t> skipped_records{
        0};  // not a pgstream event: logged with its position, committed past
};

class KafkaListener : public Listener {
  public:
    // `stop`: stop() requests it, any stop of it ends run(); the drain waits for the outputs until its
    // drain deadline.
    KafkaListener(ReaderSettings settings, Processor& next, KafkaCheckpointer& checkpointer,
                  StopToken stop = StopToken(std::chrono::seconds(30)));
    ~KafkaListener() override;

    std::string run() override;
    void stop() override;

    // Records the reader's histograms into `metrics` (before run()).
    void instrument(Metrics& metrics) { reader_.instrument(metrics); }

    const KafkaListenerStats& stats() const { return stats_; }
    ReaderCounters readerCounters() const { return reader_.counters(); }

  private:
    void handle(const ConsumedRecord& record);
    // A failed output or broken acknowledgements, "" while healthy.
    std::string pipeline_error() const;

    Processor& next_;
    KafkaCheckpointer& checkpointer_;
    StopToken stop_;
    KafkaListenerStats stats_;
    KafkaReader reader_;
};

}  // namespace pgstream::kafka
