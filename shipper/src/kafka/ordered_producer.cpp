#include "kafka/ordered_producer.h"

#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

namespace pgstream::kafka {

namespace {

std::string describeRecord(const std::string& key, size_t bytes, const std::string& context) {
    std::string description = "record with key '" + key + "' (" + std::to_string(bytes) + " bytes";
    if (!context.empty()) description += ", " + context;
    return description + ")";
}

std::string contextOf(const OrderedProducer::DescribeFn& describe) {
    return describe ? describe() : std::string();
}

}  // namespace

class OrderedProducer::Callbacks : public RdKafka::DeliveryReportCb, public RdKafka::EventCb {
  public:
    explicit Callbacks(OrderedProducer& owner) : owner_(owner) {}

    // Runs inside poll(), which serves every report that is ready: they are collected and handled together
    // once poll() returns (one lock, one acknowledgement call) instead of one at a time.
    void dr_cb(RdKafka::Message& message) override {
        const auto sequence = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(message.msg_opaque()));
        // Purged at shutdown: deliberately left unacknowledged, not a failure.
        if (message.err() == RdKafka::ERR__PURGE_QUEUE || message.err() == RdKafka::ERR__PURGE_INFLIGHT)
            return;
        DeliveryReport report{
            sequence, message.err() == RdKafka::ERR_NO_ERROR, {}, message.len() + message.key_len(), {}};
        if (!report.ok) {
            report.error = message.errstr();
            if (message.key() != nullptr) report.key = *message.key();
        }
        reports_.push_back(std::move(report));
    }

    std::vector<DeliveryReport>& reports() { return reports_; }

    void event_cb(RdKafka::Event& event) override {
        if (event.type() == RdKafka::Event::EVENT_ERROR) {
            if (event.fatal()) {
                owner_.fail("kafka writer: fatal producer error: " + event.str());
                return;
            }
            if (event.err() == RdKafka::ERR__ALL_BROKERS_DOWN) owner_.all_brokers_down_ = true;
            // Broker connection problems are retried forever by librdkafka; say so, but not on every
            // reconnect.
            const auto now = std::chrono::steady_clock::now();
            if (now - last_error_log_ > std::chrono::seconds(5)) {
                last_error_log_ = now;
                owner_.log("kafka writer: " + RdKafka::err2str(event.err()) + ": " + event.str() +
                           " (retrying)");
            }
        } else if (event.type() == RdKafka::Event::EVENT_LOG &&
                   event.severity() <= RdKafka::Event::EVENT_SEVERITY_ERROR) {
            const auto now = std::chrono::steady_clock::now();
            if (now - last_librdkafka_log_ > std::chrono::seconds(5)) {
                last_librdkafka_log_ = now;
                owner_.log("kafka writer: librdkafka: " + event.str());
            }
        }
    }

  private:
    OrderedProducer& owner_;
    std::vector<DeliveryReport> reports_;
    std::chrono::steady_clock::time_point last_error_log_{};
    std::chrono::steady_clock::time_point last_librdkafka_log_{};
};

OrderedProducer::OrderedProducer(const WriterSettings& settings, DeliveredFn on_delivered, LogFn log,
                                 StopToken stop)
    : settings_(settings),
      on_delivered_(std::move(on_delivered)),
      log_(std::move(log)),
      stop_(std::move(stop)) {
    callbacks_ = std::make_unique<Callbacks>(*this);
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    applyConnectionSettings(settings_.connection, *conf);
    // Exactly-once per partition and per-key order across retries.
    setProperty(*conf, "enable.idempotence", "true");
    setProperty(*conf, "acks", "all");
    setProperty(*conf, "max.in.flight.requests.per.connection", "5");
    // Never give up on a record: an outage blocks the pipeline instead of losing data.
    setProperty(*conf, "message.timeout.ms", "0");
    // Reconnect within a second of a broker's return (librdkafka's default backs off up to 10 s).
    setProperty(*conf, "reconnect.backoff.max.ms", "1000");
    // Small produce requests (one batch of a quiet stream) must not wait for Nagle's algorithm.
    setProperty(*conf, "socket.nagle.disable", "true");
    // Key-to-partition by CRC32 like the Go pgstream's kafka-go CRC32Balancer; an empty key (logical messages
    // outside any schema) maps to one fixed partition too, so it keeps its order.
    setProperty(*conf, "partitioner", "consistent");
    setProperty(*conf, "linger.ms", std::to_string(settings_.linger.count()));
    // PGSTREAM_KAFKA_WRITER_BATCH_* cut pgstream's batches (what is handed over together, the memory guard);
    // the wire batches are librdkafka's. Capping a produce request at the pgstream batch size (100 records)
    // meant one acks=all round trip per 100 records per partition: a fifth more CPU per row and a throughput
    // limit. librdkafka's defaults (10000 records, 1 MB) apply, raised so that the largest allowed record
    // fits.
    setProperty(*conf, "batch.size", std::to_string(std::max<size_t>(1000000, settings_.max_message_bytes)));
    setProperty(*conf, "message.max.bytes", std::to_string(settings_.max_message_bytes + 4096));
    // librdkafka's buffer is the writer's in-flight memory: bound it by the writer's budget, by bytes only.
    setProperty(*conf, "queue.buffering.max.kbytes",
                std::to_string(std::max<size_t>(settings_.max_queue_bytes / 1024, 1)));
    setProperty(*conf, "queue.buffering.max.messages", "10000000");
    std::string error;
    if (conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(callbacks_.get()), error) !=
            RdKafka::Conf::CONF_OK ||
        conf->set("event_cb", static_cast<RdKafka::EventCb*>(callbacks_.get()), error) !=
            RdKafka::Conf::CONF_OK) {
        throw std::runtime_error("kafka writer: " + error);
    }
    for (const auto& [name, value] : settings_.connection.librdkafka_overrides)
        setProperty(*conf, name, value);
    producer_.reset(RdKafka::Producer::create(conf.get(), error));
    if (!producer_) throw std::runtime_error("kafka writer: cannot create producer: " + error);
    poll_thread_ = std::thread([this] { pollLoop(); });
}

void OrderedProducer::warmUp() {
    // Learn the topic's partitions now: otherwise the first records wait for librdkafka's first metadata
    // refresh (about a second), and every later record waits behind them. Unreachable brokers are not an
    // error here; records then wait in the buffer like during any outage.
    RdKafka::Topic* topic = nullptr;
    {
        std::lock_guard lock(mutex_);
        topic = &topicLocked();
    }
    RdKafka::Metadata* metadata = nullptr;
    if (producer_->metadata(false, topic, &metadata, 5000) == RdKafka::ERR_NO_ERROR) delete metadata;
}

RdKafka::Topic& OrderedProducer::topicLocked() {
    if (!topic_) {
        std::string error;
        topic_.reset(RdKafka::Topic::create(producer_.get(), settings_.connection.topic, nullptr, error));
        if (!topic_)
            throw std::runtime_error("kafka writer: cannot use topic '" + settings_.connection.topic +
                                     "': " + error);
    }
    return *topic_;
}

OrderedProducer::~OrderedProducer() {
    stop();
    poll_running_ = false;
    if (poll_thread_.joinable()) poll_thread_.join();
    // Unacknowledged records are simply not acknowledged: the source replays them after a restart.
    producer_->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT |
                     RdKafka::Producer::PURGE_NON_BLOCKING);
    pollOnce(0);
}

std::string OrderedProducer::connection_problem() const {
    if (!all_brokers_down_) return {};
    return "no Kafka broker of " + settings_.connection.servers + " is reachable";
}

void OrderedProducer::pollOnce(int timeout_ms) {
    producer_->poll(timeout_ms);
    auto& reports = callbacks_->reports();
    if (!reports.empty()) all_brokers_down_ = false;
    std::string failure;
    {
        std::lock_guard lock(mutex_);
        if (reports.empty() && ready_.empty()) return;
        failure = applyReportsLocked(reports);
        // Nothing at or after a failed record may be acknowledged, or the source would forget it.
        if (failure_) ready_.clear();
        reporting_batch_.swap(ready_);
        reporting_ = !reporting_batch_.empty();
    }
    reports.clear();
    if (!failure.empty()) {
        log(failure);
        failed();
    }
    if (!reporting_batch_.empty()) {
        // Outside the lock: the acknowledger takes its own locks and may be slow.
        on_delivered_(reporting_batch_);
        std::lock_guard lock(mutex_);
        counters_.delivered += reporting_batch_.size();
        reporting_ = false;
        reporting_batch_.clear();
    }
    delivered_cv_.notify_all();
}

std::string OrderedProducer::applyReportsLocked(const std::vector<DeliveryReport>& reports) {
    std::string first_failure;
    for (const DeliveryReport& report : reports) {
        if (!report.ok) {
            // Only permanent errors reach here (infinite retries): the broker refused the record.
            std::string reason = "kafka writer: broker refused " +
                                 describeRecord(report.key, report.bytes, "") + ": " + report.error +
                                 "; stopping without acknowledging it";
            if (failLocked(reason)) first_failure = reason;
            continue;
        }
        std::string violation = completeLocked(report.sequence);
        if (!violation.empty() && failLocked(violation)) first_failure = violation;
    }
    return first_failure;
}

std::string OrderedProducer::completeLocked(uint64_t sequence) {
    if (acks_.complete(sequence, ready_)) return {};
    return "kafka writer: a delivery was reported for record " + std::to_string(sequence) +
           ", which is not awaiting one (acknowledgement order violated); stopping without acknowledging "
           "anything after it";
}

bool OrderedProducer::failLocked(const std::string& reason) {
    if (failure_) return false;
    failure_ = reason;
    return true;
}

void OrderedProducer::failed() {
    delivered_cv_.notify_all();
    stop_.end_drain();
}

void OrderedProducer::pollLoop() {
    while (poll_running_) pollOnce(50);
}

void OrderedProducer::log(const std::string& message) const {
    if (log_) {
        log_(message);
    } else {
        std::cerr << message << std::endl;
    }
}

void OrderedProducer::ensureTopicExists(std::chrono::milliseconds timeout) {
    rd_kafka_t* handle = producer_->c_ptr();
    const std::string& topic = settings_.connection.topic;
    const rd_kafka_metadata_t* metadata = nullptr;
    // All-topics metadata never triggers broker-side auto-creation, so it tells whether the topic exists.
    rd_kafka_resp_err_t err =
        rd_kafka_metadata(handle, 1, nullptr, &metadata, static_cast<int>(timeout.count()));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        throw std::runtime_error("kafka writer: cannot list topics on " + settings_.connection.servers +
                                 ": " + rd_kafka_err2str(err));
    }
    bool exists = false;
    for (int i = 0; i < metadata->topic_cnt; ++i) {
        if (topic == metadata->topics[i].topic && metadata->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
            exists = true;
    }
    rd_kafka_metadata_destroy(metadata);
    if (exists) return;

    char errstr[512];
    rd_kafka_NewTopic_t* new_topic = rd_kafka_NewTopic_new(
        topic.c_str(), settings_.topic_partitions, settings_.topic_replication_factor, errstr, sizeof errstr);
    if (new_topic == nullptr)
        throw std::runtime_error(std::string("kafka writer: PGSTREAM_KAFKA_TOPIC_*: ") + errstr);
    rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(handle, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(options, static_cast<int>(timeout.count()), errstr,
                                              sizeof errstr);
    rd_kafka_AdminOptions_set_operation_timeout(options, static_cast<int>(timeout.count()), errstr,
                                                sizeof errstr);
    rd_kafka_queue_t* queue = rd_kafka_queue_new(handle);
    rd_kafka_CreateTopics(handle, &new_topic, 1, options, queue);
    // The admin request times out on its own; wait a little longer than it.
    rd_kafka_event_t* event = rd_kafka_queue_poll(queue, static_cast<int>(timeout.count()) + 5000);
    std::string problem;
    if (event == nullptr) {
        problem = "no answer to CreateTopics";
    } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        problem = rd_kafka_event_error_string(event);
    } else {
        size_t count = 0;
        const rd_kafka_topic_result_t** results =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &count);
        for (size_t i = 0; i < count; ++i) {
            rd_kafka_resp_err_t topic_err = rd_kafka_topic_result_error(results[i]);
            if (topic_err != RD_KAFKA_RESP_ERR_NO_ERROR &&
                topic_err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                const char* message = rd_kafka_topic_result_error_string(results[i]);
                problem = message != nullptr ? message : rd_kafka_err2str(topic_err);
            }
        }
    }
    if (event != nullptr) rd_kafka_event_destroy(event);
    rd_kafka_queue_destroy(queue);
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_NewTopic_destroy(new_topic);
    if (!problem.empty()) {
        throw std::runtime_error("kafka writer: PGSTREAM_KAFKA_TOPIC_AUTO_CREATE: cannot create topic '" +
                                 topic + "' (" + std::to_string(settings_.topic_partitions) +
                                 " partitions, replication factor " +
                                 std::to_string(settings_.topic_replication_factor) + "): " + problem);
    }
    log("kafka writer: created topic '" + topic + "'");
}

void OrderedProducer::produce(const std::string& key, const std::string& value, uint64_t token,
                              const DescribeFn& describe) {
    const size_t bytes = key.size() + value.size();
    if (bytes > settings_.max_message_bytes) {
        divertOversized(key, value, token, describe);
        return;
    }
    std::unique_lock lock(mutex_);
    for (;;) {
        if (failure_) throw WriterStopped(*failure_);
        if (stopping_) throw WriterStopped("kafka writer: stopped");
        if (stop_.drain_over()) throw Stopped("kafka writer: the shutdown drain is over");
        const uint64_t sequence = acks_.nextSequence();
        const RdKafka::ErrorCode err =
            producer_->produce(&topicLocked(), RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                               const_cast<char*>(value.data()), value.size(), key.data(), key.size(),
                               reinterpret_cast<void*>(static_cast<uintptr_t>(sequence)));
        if (err == RdKafka::ERR_NO_ERROR) {
            acks_.add(DeliveredRecord{token, bytes});
            ++counters_.produced;
            return;
        }
        if (err == RdKafka::ERR__QUEUE_FULL) {
            // Back-pressure: the buffer drains as delivery reports come in (they wake us); librdkafka frees
            // space without telling, so try again at least every 100 ms.
            stop_.wait_for_delivery(
                lock, delivered_cv_, [&] { return failure_.has_value() || stopping_; },
                std::chrono::steady_clock::now() + std::chrono::milliseconds(100));
            continue;
        }
        const std::string reason = "kafka writer: cannot queue " +
                                   describeRecord(key, bytes, contextOf(describe)) + ": " +
                                   RdKafka::err2str(err);
        const bool first = failLocked(reason);
        lock.unlock();
        if (first) failed();
        throw WriterStopped(reason);
    }
}

void OrderedProducer::divertOversized(const std::string& key, const std::string& value, uint64_t token,
                                      const DescribeFn& describe) {
    const size_t bytes = key.size() + value.size();
    const std::string context = contextOf(describe);
    std::unique_lock lock(mutex_);
    ++counters_.oversized;
    const std::string description = describeRecord(key, bytes, context) +
                                    " exceeds PGSTREAM_KAFKA_WRITER_MAX_MESSAGE_BYTES (" +
                                    std::to_string(settings_.max_message_bytes) + ")";
    if (settings_.oversized_policy == OversizedRecordPolicy::kFail) {
        const std::string reason = "kafka writer: " + description +
                                   "; stopping without acknowledging it: raise the limit (and the topic's "
                                   "max.message.bytes) or set PGSTREAM_KAFKA_WRITER_OVERSIZED_RECORD_FILE";
        const bool first = failLocked(reason);
        lock.unlock();
        if (first) failed();
        throw WriterStopped(reason);
    }
    if (failure_) throw WriterStopped(*failure_);

    rapidjson::StringBuffer line;
    rapidjson::Writer<rapidjson::StringBuffer> writer(line);
    writer.StartObject();
    writer.Key("topic");
    writer.String(settings_.connection.topic.c_str(),
                  static_cast<rapidjson::SizeType>(settings_.connection.topic.size()));
    writer.Key("key");
    writer.String(key.c_str(), static_cast<rapidjson::SizeType>(key.size()));
    writer.Key("bytes");
    writer.Uint64(bytes);
    writer.Key("context");
    writer.String(context.c_str(), static_cast<rapidjson::SizeType>(context.size()));
    writer.Key("value");
    writer.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
    writer.EndObject();
    std::string text(line.GetString(), line.GetSize());
    text.push_back('\n');

    const int fd =
        open(settings_.oversized_record_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    bool written = fd >= 0;
    size_t offset = 0;
    while (written && offset < text.size()) {
        const ssize_t n = write(fd, text.data() + offset, text.size() - offset);
        if (n < 0)
            written = false;
        else
            offset += static_cast<size_t>(n);
    }
    // Acknowledging it means the source forgets it: it must be on disk first.
    if (written && fsync(fd) != 0) written = false;
    if (fd >= 0) close(fd);
    if (!written) {
        const std::string reason =
            "kafka writer: " + description +
            " and it cannot be written to PGSTREAM_KAFKA_WRITER_OVERSIZED_RECORD_FILE '" +
            settings_.oversized_record_file + "'";
        const bool first = failLocked(reason);
        lock.unlock();
        if (first) failed();
        throw WriterStopped(reason);
    }
    // Acknowledged by the poll thread, in order with the records produced before it.
    const std::string violation = completeLocked(acks_.add(DeliveredRecord{token, bytes}));
    const bool first = !violation.empty() && failLocked(violation);
    lock.unlock();
    if (first) failed();
    log("kafka writer: " + description + "; written to " + settings_.oversized_record_file);
}

void OrderedProducer::fail(const std::string& reason) {
    bool first;
    {
        std::lock_guard lock(mutex_);
        first = failLocked(reason);
    }
    if (!first) return;
    log(reason);
    failed();
}

bool OrderedProducer::flush(std::chrono::milliseconds timeout) {
    const auto now = std::chrono::steady_clock::now();
    const bool endless = timeout >= std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::time_point::max() - now);
    return flushUntil(endless ? std::chrono::steady_clock::time_point::max() : now + timeout);
}

bool OrderedProducer::flush() {
    return flushUntil(std::chrono::steady_clock::time_point::max());
}

bool OrderedProducer::flushUntil(std::chrono::steady_clock::time_point until) {
    std::unique_lock lock(mutex_);
    stop_.wait_for_delivery(
        lock, delivered_cv_, [&] { return allReportedLocked() || failure_.has_value() || stopping_; }, until);
    return allReportedLocked();
}

void OrderedProducer::stop() {
    stopping_ = true;
    std::lock_guard lock(mutex_);
    delivered_cv_.notify_all();
}

std::optional<std::string> OrderedProducer::failure() const {
    std::lock_guard lock(mutex_);
    return failure_;
}

ProducerCounters OrderedProducer::counters() const {
    std::lock_guard lock(mutex_);
    return counters_;
}

size_t OrderedProducer::inFlightRecords() const {
    std::lock_guard lock(mutex_);
    return acks_.pendingCount();
}

}  // namespace pgstream::kafka
