#include "kafka/kafka_writer.h"

#include <stdexcept>
#include <thread>

#include "kafka/event_codec.h"
#include "util/log.h"

namespace pgstream::kafka {

namespace {

std::string describe(const Event& event) {
    std::string context = event.schema + "." + event.table;
    if (!event.position.empty()) {
        context += " at " + event.position;
    } else if (event.lsn.valid()) {
        context += " at LSN " + event.lsn.str();
    }
    return context;
}

BatchSettings batchSettingsOf(const WriterSettings& settings) {
    BatchSettings batch;
    batch.max_queue_bytes = settings.max_queue_bytes;
    batch.batch_size = settings.batch_size;
    batch.batch_bytes = settings.batch_bytes;
    batch.batch_timeout = settings.batch_timeout;
    // librdkafka already retries every transient error forever; a send that throws failed for good (refused
    // or oversized record), and sending the batch again would only duplicate its delivered part.
    batch.max_send_attempts = 1;
    return batch;
}

}  // namespace

KafkaWriter::KafkaWriter(WriterSettings settings, Acknowledger& acknowledger)
    : settings_(std::move(settings)) {
    producer_ = std::make_unique<OrderedProducer>(
        settings_,
        [this](const std::vector<DeliveredRecord>& delivered) {
            {
                std::lock_guard lock(mutex_);
                delivered_count_ += delivered.size();
            }
            delivered_cv_.notify_all();
        },
        [](const std::string& message) { log::warn(message); });
    if (settings_.topic_auto_create) producer_->ensureTopicExists();
    sender_ = std::make_unique<BatchSender>(
        "kafka writer", batchSettingsOf(settings_),
        [this](const std::vector<EventPtr>& batch) { sendBatch(batch); }, acknowledger);
}

KafkaWriter::~KafkaWriter() {
    close();
    sender_.reset();
    producer_.reset();
}

void KafkaWriter::process(EventPtr event) {
    sender_->submit(std::move(event));
}

void KafkaWriter::sendBatch(const std::vector<EventPtr>& batch) {
    uint64_t target = 0;
    for (const auto& event : batch) {
        value_buffer_.clear();
        appendKafkaValue(value_buffer_, *event);
        uint64_t token = 0;
        {
            std::lock_guard lock(mutex_);
            token = next_token_;
        }
        producer_->produce(kafkaKey(*event), value_buffer_, token, describe(*event));
        std::lock_guard lock(mutex_);
        target = ++next_token_;
    }
    // The batch is done when its last record is acknowledged; in-order delivery covers the ones before it.
    // The producer's lock is taken by its delivery callback before ours, so never ask it while holding ours.
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            delivered_cv_.wait_for(lock, std::chrono::milliseconds(100),
                                   [&] { return delivered_count_ >= target || giving_up_; });
            if (delivered_count_ >= target) return;
            if (giving_up_) throw std::runtime_error("gave up waiting for Kafka on shutdown");
        }
        if (auto failure = producer_->failure()) throw std::runtime_error(*failure);
    }
}

void KafkaWriter::giveUp(const std::string& reason) {
    log::warn("kafka writer: ", reason);
    {
        std::lock_guard lock(mutex_);
        giving_up_ = true;
    }
    producer_->stop();
    delivered_cv_.notify_all();
}

void KafkaWriter::flush() {
    std::mutex watchdog_mutex;
    std::condition_variable watchdog_cv;
    bool flushed = false;
    std::thread watchdog([&] {
        std::unique_lock lock(watchdog_mutex);
        if (!watchdog_cv.wait_for(lock, settings_.flush_timeout, [&] { return flushed; })) {
            giveUp("not everything was delivered within PGSTREAM_KAFKA_WRITER_FLUSH_TIMEOUT (" +
                   std::to_string(settings_.flush_timeout.count()) +
                   "ms); the rest stays unacknowledged and is sent again after a restart");
        }
    });
    sender_->flush();
    {
        std::lock_guard lock(watchdog_mutex);
        flushed = true;
    }
    watchdog_cv.notify_all();
    watchdog.join();
}

void KafkaWriter::close() {
    if (!sender_) return;
    flush();
    sender_->close();
}

std::string KafkaWriter::fatal_error() const {
    if (auto failure = producer_->failure()) return *failure;
    return sender_->fatal_error();
}

}  // namespace pgstream::kafka
