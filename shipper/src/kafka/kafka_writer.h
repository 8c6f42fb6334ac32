// The Kafka batch writer output: events are cut into batches by the shared BatchSender (size, bytes, timeout,
// memory guard) and each batch is handed to an idempotent producer without waiting for the previous one, so
// several batches are in flight. Events are acknowledged only from librdkafka's delivery reports (acks=all),
// in the order they were accepted. Memory: the guard bounds what waits for a batch, librdkafka's buffer
// (same budget, split in two) bounds what waits for Kafka.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "checkpoint/acknowledger.h"
#include "kafka/kafka_settings.h"
#include "kafka/ordered_producer.h"
#include "processor/batching.h"
#include "processor/processor.h"

namespace pgstream::kafka {

class KafkaWriter : public Processor {
  public:
    // Throws std::runtime_error when the producer cannot be created or the topic cannot be auto-created. Its
    // waits for deliveries end with `stop`'s drain; a permanent failure ends that drain.
    KafkaWriter(WriterSettings settings, Acknowledger& acknowledger, StopToken stop = {});
    ~KafkaWriter() override;

    std::string name() const override { return "kafka writer"; }
    void process(EventPtr event) override;
    void flush() override;
    // Producing is asynchronous and librdkafka batches per partition itself (linger.ms): hand over at once.
    void source_idle() override;
    void close() override;
    std::string fatal_error() const override;

    ProducerCounters counters() const { return producer_->counters(); }
    const BatchSender& sender() const { return *sender_; }

  private:
    void sendBatch(const std::vector<EventPtr>& batch);
    void giveUp(const std::string& reason);

    WriterSettings settings_;
    std::unique_ptr<OrderedProducer> producer_;

    class BatchAcknowledgements : public Acknowledger {
      public:
        // The BatchSender's own acknowledgement means "handed to librdkafka", not delivered: ignored.
        void acknowledge(const Event&) override {}
        void retain(const Event&, int) override {}
    };

    Acknowledger& acknowledger_;
    BatchAcknowledgements handed_over_;
    StopToken stop_;
    std::mutex mutex_;
    std::deque<EventPtr> in_flight_;  // handed to the producer, oldest first, until their delivery report
    uint64_t next_token_ = 0;
    std::string value_buffer_;

    std::unique_ptr<BatchSender> sender_;
};

}  // namespace pgstream::kafka
