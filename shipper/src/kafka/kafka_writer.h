// The Kafka batch writer output: events are cut into batches by the shared BatchSender (size, bytes, timeout,
// memory guard) and each batch goes to Kafka through an idempotent producer. A batch counts as sent, and its
// events are acknowledged, only when librdkafka's delivery reports confirmed every record of it (acks=all).
#pragma once

#include <condition_variable>
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
    // Throws std::runtime_error when the producer cannot be created or the topic cannot be auto-created.
    KafkaWriter(WriterSettings settings, Acknowledger& acknowledger);
    ~KafkaWriter() override;

    std::string name() const override { return "kafka writer"; }
    void process(EventPtr event) override;
    void flush() override;
    void close() override;
    std::string fatal_error() const override;

    ProducerCounters counters() const { return producer_->counters(); }
    const BatchSender& sender() const { return *sender_; }

  private:
    void sendBatch(const std::vector<EventPtr>& batch);
    void giveUp(const std::string& reason);

    WriterSettings settings_;
    std::unique_ptr<OrderedProducer> producer_;

    std::mutex mutex_;
    std::condition_variable delivered_cv_;
    uint64_t next_token_ = 0;
    uint64_t delivered_count_ = 0;
    bool giving_up_ = false;
    std::string value_buffer_;

    std::unique_ptr<BatchSender> sender_;
};

}  // namespace pgstream::kafka
