// The Kafka batch writer output: events are cut into batches by the shared BatchSender (size, bytes, timeout,
// memory guard) and each batch is handed to an idempotent producer without waiting for the previous one, so
// several batches are in flight. Events are acknowledged only from librdkafka's delivery reports (acks=all),
// in the order they were accepted. Memory: the guard bounds what waits for a batch, librdkafka's buffer
// (same budget, split in two) bounds what waits for Kafka.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint/acknowledger.h"
#include "kafka/kafka_settings.h"
#include "kafka/ordered_producer.h"
#include "observability/output_metrics.h"
#include "processor/batching.h"
#include "processor/processor.h"

namespace pgstream::kafka {

class KafkaWriter : public Processor {
  public:
    // Throws std::runtime_error when the producer cannot be created (librdkafka refuses its configuration).
    // Does no network I/O: start() prepares the topic. Its waits for deliveries end with `stop`'s drain; a
    // permanent failure ends that drain.
    // `metrics` (null: none) records each delivery and the memory guard.
    KafkaWriter(WriterSettings settings, Acknowledger& acknowledger, StopToken stop = {},
                std::unique_ptr<OutputMetrics> metrics = nullptr);
    ~KafkaWriter() override;

    std::string name() const override { return "kafka writer"; }
    // Starts preparing the topic on a thread of its own (auto-creation, then its metadata); brokers that are
    // down are retried with backoff until the stop, and nothing is produced before the topic is prepared.
    // Called by the pipeline; the first batch calls it when nobody did.
    void start() override;
    // "" once the topic is prepared and a broker is reachable, else why not.
    std::string readiness() const override;
    void process(EventPtr event) override;
    void flush() override;
    // Producing is asynchronous and librdkafka batches per partition itself (linger.ms): hand over at once.
    void source_idle() override;
    void close() override;
    std::string fatal_error() const override;

    ProducerCounters counters() const { return producer_->counters(); }
    const BatchSender& sender() const { return *sender_; }

  private:
    // Hands the batch to the producer: kPending for each record produced (its delivery report acknowledges
    // it), kFatal from a record the producer refused on (oversized, or the producer failed for good).
    std::vector<EventResult> sendBatch(const std::vector<EventPtr>& batch);
    void giveUp(const std::string& reason);
    void prepareTopic();
    // Waits (until the stop) for prepareTopic() to be done; false when the stop came first.
    bool waitUntilPrepared();

    WriterSettings settings_;
    std::unique_ptr<OrderedProducer> producer_;

    Acknowledger& acknowledger_;
    StopToken stop_;
    std::mutex mutex_;
    struct InFlight {
        EventPtr event;
        // The batch's last record carries when the batch was handed over: its delivery ends the batch.
        bool ends_batch = false;
        std::chrono::steady_clock::time_point batch_handed_over;
    };
    std::deque<InFlight> in_flight_;  // handed to the producer, oldest first, until their delivery report
    uint64_t next_token_ = 0;
    std::string value_buffer_;

    std::once_flag started_;
    std::thread preparer_;
    mutable std::mutex prepare_mutex_;
    std::condition_variable prepared_changed_;
    bool prepared_ = false;
    bool closing_ = false;  // the destructor ends the preparation
    std::string prepare_problem_ = "kafka writer: the topic is not prepared yet";

    std::unique_ptr<BatchSender> sender_;
    // Declared after the sender: destroyed first, it stops reading the sender's memory guard.
    std::unique_ptr<OutputMetrics> metrics_;
    // The Go pgstream's pgstream.kafka.writer.* histograms; null without metrics.
    prometheus::Histogram* batch_size_ = nullptr;
    prometheus::Histogram* batch_bytes_ = nullptr;
    prometheus::Histogram* batch_latency_ = nullptr;
};

}  // namespace pgstream::kafka
