#include "kafka/kafka_writer.h"

#include <algorithm>
#include <stdexcept>
#include <thread>

#include "kafka/record_key.h"
#include "util/log.h"
#include "wal/event_codec.h"

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

// Half of the budget for events waiting to be batched, half for librdkafka's buffer (see producerSettingsOf).
size_t guardBytesOf(const WriterSettings& settings) {
    return std::max(settings.max_queue_bytes / 2, settings.batch_bytes);
}

WriterSettings producerSettingsOf(WriterSettings settings) {
    settings.max_queue_bytes =
        std::max(settings.max_queue_bytes - std::min(settings.max_queue_bytes, guardBytesOf(settings)),
                 settings.max_message_bytes);
    return settings;
}

BatchSettings batchSettingsOf(const WriterSettings& settings) {
    BatchSettings batch;
    batch.max_queue_bytes = guardBytesOf(settings);
    batch.batch_size = settings.batch_size;
    batch.batch_bytes = settings.batch_bytes;
    batch.batch_timeout = settings.batch_timeout;
    // librdkafka already retries every transient error forever: a record it refuses is refused for good
    // (kFatal), and sending a batch again would only duplicate its delivered part.
    batch.max_send_attempts = 1;
    return batch;
}

}  // namespace

KafkaWriter::KafkaWriter(WriterSettings settings, Acknowledger& acknowledger, StopToken stop,
                         std::unique_ptr<OutputMetrics> metrics)
    : settings_(std::move(settings)),
      acknowledger_(acknowledger),
      stop_(std::move(stop)),
      metrics_(std::move(metrics)) {
    producer_ = std::make_unique<OrderedProducer>(
        producerSettingsOf(settings_),
        [this](const std::vector<DeliveredRecord>& delivered) {
            // In order: the i-th report is the oldest event still in flight.
            std::vector<InFlight> done;
            {
                std::lock_guard lock(mutex_);
                for (size_t i = 0; i < delivered.size() && !in_flight_.empty(); ++i) {
                    done.push_back(std::move(in_flight_.front()));
                    in_flight_.pop_front();
                }
            }
            for (const auto& record : done) {
                if (metrics_) {
                    metrics_->record(*record.event, OutputOutcome::kDelivered);
                    if (record.ends_batch)
                        batch_latency_->Observe(
                            std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                          record.batch_handed_over)
                                .count());
                }
                acknowledger_.acknowledge(*record.event);
            }
        },
        [](const std::string& message) { log::warn(message); }, stop_);
    BatchSettings batch = batchSettingsOf(settings_);
    if (metrics_) batch.on_result = metrics_->result_recorder();
    // Every record produced is kPending: the delivery reports above acknowledge it, in order.
    sender_ = std::make_unique<BatchSender>(
        "kafka writer", batch, [this](const std::vector<EventPtr>& events) { return sendBatch(events); },
        acknowledger_, event_weight, stop_);
    if (metrics_) {
        metrics_->observe_memory(sender_->memory());
        Metrics& registry = metrics_->registry();
        batch_size_ = &registry.histogram("pgstream.kafka.writer.batch.size", "{message}",
                                          "Records per batch the Kafka writer hands to the producer",
                                          Metrics::size_buckets());
        batch_bytes_ =
            &registry.histogram("pgstream.kafka.writer.batch.bytes", "By",
                                "Bytes (keys and values) per batch the Kafka writer hands to the producer",
                                Metrics::size_buckets());
        batch_latency_ = &registry.histogram(
            "pgstream.kafka.writer.latency", "s",
            "Time from handing a batch to the producer to the delivery report of its last record (acks=all)",
            Metrics::latency_buckets());
    }
}

void KafkaWriter::start() {
    std::call_once(started_, [this] { preparer_ = std::thread([this] { prepareTopic(); }); });
}

void KafkaWriter::prepareTopic() {
    // A broker that is down at start-up is an outage like any later one: retried, logged, reported by
    // readiness(), never a configuration error.
    const BackoffSettings backoff{BackoffSettings::Kind::kExponential, std::chrono::milliseconds(500),
                                  std::chrono::seconds(30), 0};
    for (unsigned attempt = 1; !stop_.stop_requested(); ++attempt) {
        try {
            if (settings_.topic_auto_create) producer_->ensureTopicExists(std::chrono::seconds(5));
            producer_->warmUp();
            {
                std::lock_guard lock(prepare_mutex_);
                prepared_ = true;
                prepare_problem_.clear();
            }
            prepared_changed_.notify_all();
            return;
        } catch (const std::exception& e) {
            const auto delay = *backoff.delayBeforeRetry(attempt);
            log::warn(e.what(), "; retrying in ", delay.count(), "ms");
            std::unique_lock lock(prepare_mutex_);
            prepare_problem_ = e.what();
            stop_.wait_for(lock, prepared_changed_, delay, [this] { return closing_; });
            if (closing_) return;
        }
    }
}

bool KafkaWriter::waitUntilPrepared() {
    start();
    std::unique_lock lock(prepare_mutex_);
    return stop_.wait(lock, prepared_changed_, [this] { return prepared_ || closing_; }) && prepared_;
}

std::string KafkaWriter::readiness() const {
    if (auto failure = producer_->failure()) return *failure;
    {
        std::lock_guard lock(prepare_mutex_);
        if (!prepared_) return prepare_problem_;
    }
    std::string problem = producer_->connection_problem();
    return problem.empty() ? problem : "kafka writer: " + problem;
}

KafkaWriter::~KafkaWriter() {
    {
        std::lock_guard lock(prepare_mutex_);
        closing_ = true;
    }
    prepared_changed_.notify_all();
    if (preparer_.joinable()) preparer_.join();
    close();
    // The producer's delivery reports record into the metrics, and the metrics read the sender's memory
    // guard.
    producer_.reset();
    metrics_.reset();
    sender_.reset();
}

void KafkaWriter::process(EventPtr event) {
    sender_->submit(std::move(event));
}

std::vector<EventResult> KafkaWriter::sendBatch(const std::vector<EventPtr>& batch) {
    if (!waitUntilPrepared()) throw Stopped("kafka writer: stopped before the topic was prepared");
    std::vector<EventResult> results;
    results.reserve(batch.size());
    const auto handed_over =
        metrics_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    size_t batch_bytes = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
        const EventPtr& event = batch[i];
        value_buffer_.clear();
        append_event_json(value_buffer_, *event);
        std::string key = kafkaKey(*event);
        batch_bytes += key.size() + value_buffer_.size();
        uint64_t token = 0;
        {
            std::lock_guard lock(mutex_);
            // Registered before producing: its delivery report may arrive before produce() returns.
            in_flight_.push_back({event, i + 1 == batch.size(), handed_over});
            token = next_token_++;
        }
        try {
            producer_->produce(key, value_buffer_, token, [&event] { return describe(*event); });
        } catch (const Stopped&) {
            throw;  // the drain is over: what was not produced stays unacknowledged, no failure
        } catch (const std::exception& e) {
            {
                std::lock_guard lock(mutex_);
                in_flight_.pop_back();  // never produced: no delivery report will come for it
            }
            // This record and the ones after it stay unacknowledged; the writer stops.
            results.resize(batch.size(), EventResult::fatal(e.what()));
            return results;
        }
        results.push_back(EventResult::pending());
    }
    if (metrics_) {
        batch_size_->Observe(double(batch.size()));
        batch_bytes_->Observe(double(batch_bytes));
    }
    return results;
}

void KafkaWriter::giveUp(const std::string& reason) {
    log::warn("kafka writer: ", reason);
    producer_->stop();  // ends the waits in flush()
}

void KafkaWriter::source_idle() {
    if (sender_) sender_->send_pending();
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
    // Every record handed over is acknowledged once the producer reports it delivered.
    producer_->flush();
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
