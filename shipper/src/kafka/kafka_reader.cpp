#include "kafka/kafka_reader.h"

#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <iostream>
#include <thread>

namespace pgstream::kafka {

namespace {

// How long a revoke waits for in-flight records of the revoked partitions to be acknowledged, so that the
// next owner does not re-deliver them. Bounded: a stuck output must not stall the whole group.
constexpr std::chrono::milliseconds kRevokeDrainTimeout{2000};

// A commit that reaches the coordinator behind a pending JoinGroup is answered, after the join, with
// ILLEGAL_GENERATION, and librdkafka then drops the whole assignment (everything uncommitted is read again).
// So periodic commits pause from the first sign of a rebalance until it completes; the rebalance callback
// commits the revoked partitions itself. The limit only guards against a missed end of rebalance.
constexpr std::chrono::milliseconds kCommitHoldLimit{15000};

constexpr int kFirstSafeCooperativeVersion = 0x020300ff;

std::vector<TopicPartitionOffset> toPositions(const std::vector<RdKafka::TopicPartition*>& partitions) {
    std::vector<TopicPartitionOffset> positions;
    for (const auto* tp : partitions) positions.push_back({tp->topic(), tp->partition(), tp->offset()});
    return positions;
}

}  // namespace

class KafkaReader::RebalanceHandler : public RdKafka::RebalanceCb {
  public:
    explicit RebalanceHandler(KafkaReader& owner) : owner_(owner) {}

    void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                      std::vector<RdKafka::TopicPartition*>& partitions) override {
        {
            std::lock_guard lock(owner_.mutex_);
            ++owner_.counters_.rebalances;
        }
        const bool cooperative = consumer->rebalance_protocol() == "COOPERATIVE";
        if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
            // The assignment that follows a revoke in the same round precedes a rejoin: keep holding commits
            // until the rejoin's own assignment.
            if (owner_.revoked_this_round_) {
                owner_.revoked_this_round_ = false;
            } else {
                owner_.holdPeriodicCommits(false);
            }
            if (cooperative) {
                delete consumer->incremental_assign(partitions);
            } else {
                consumer->assign(partitions);
            }
            std::lock_guard lock(owner_.mutex_);
            for (const auto* tp : partitions) owner_.assignment_.emplace_back(tp->topic(), tp->partition());
            return;
        }
        // Revoked (or lost): commit what the outputs acknowledged, then forget the partitions.
        owner_.onRevoke(toPositions(partitions));
        owner_.revoked_this_round_ = cooperative;
        owner_.holdPeriodicCommits(true);
        if (cooperative) {
            delete consumer->incremental_unassign(partitions);
        } else {
            consumer->unassign();
        }
        std::lock_guard lock(owner_.mutex_);
        for (const auto* tp : partitions) {
            auto& assigned = owner_.assignment_;
            assigned.erase(
                std::remove(assigned.begin(), assigned.end(), std::make_pair(tp->topic(), tp->partition())),
                assigned.end());
        }
    }

  private:
    KafkaReader& owner_;
};

KafkaReader::KafkaReader(ReaderSettings settings, RecordFn on_record, LogFn log)
    : KafkaReader(std::move(settings), owned_watermark_, std::move(on_record), std::move(log)) {}

KafkaReader::KafkaReader(ReaderSettings settings, OffsetWatermark& watermark, RecordFn on_record, LogFn log)
    : settings_(std::move(settings)),
      on_record_(std::move(on_record)),
      log_(std::move(log)),
      watermark_(watermark) {
    rebalance_handler_ = std::make_unique<RebalanceHandler>(*this);
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    applyConnectionSettings(settings_.connection, *conf);
    setProperty(*conf, "group.id", settings_.consumer_group_id);
    setProperty(*conf, "enable.auto.commit", "false");
    // Offsets are stored by us, from acknowledgements, never by librdkafka on consume.
    setProperty(*conf, "enable.auto.offset.store", "false");
    setProperty(*conf, "enable.partition.eof", "false");
    setProperty(*conf, "reconnect.backoff.max.ms", "1000");
    setProperty(*conf, "auto.offset.reset",
                settings_.start_offset == StartOffset::kEarliest ? "earliest" : "latest");
    // Incremental rebalancing: members keep consuming the partitions that do not move, and a revoked
    // partition is handed over only after its acknowledged offsets are committed (the group is stable by
    // then, so the commit is accepted). librdkafka before 2.3.0 aborts when a cooperative-sticky member that
    // never led the group is destroyed (librdkafka#4312), so older versions use eager rebalancing.
    setProperty(
        *conf, "partition.assignment.strategy",
        RdKafka::version() >= kFirstSafeCooperativeVersion ? "cooperative-sticky" : "range,roundrobin");
    // The Go reader's MaxBytes.
    setProperty(*conf, "fetch.max.bytes", std::to_string(25 << 20));
    std::string error;
    if (conf->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(rebalance_handler_.get()), error) !=
        RdKafka::Conf::CONF_OK) {
        throw std::runtime_error("kafka reader: " + error);
    }
    for (const auto& [name, value] : settings_.connection.librdkafka_overrides)
        setProperty(*conf, name, value);
    consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), error));
    if (!consumer_) throw std::runtime_error("kafka reader: cannot create consumer: " + error);
}

KafkaReader::~KafkaReader() {
    if (consumer_) consumer_->close();
}

void KafkaReader::log(const std::string& message) const {
    if (log_) {
        log_(message);
    } else {
        std::cerr << message << std::endl;
    }
}

void KafkaReader::stop() {
    stopping_ = true;
    acked_cv_.notify_all();
}

void KafkaReader::run(const std::function<void()>& drain) {
    const RdKafka::ErrorCode err = consumer_->subscribe({settings_.connection.topic});
    if (err != RdKafka::ERR_NO_ERROR) {
        throw std::runtime_error("kafka reader: cannot subscribe to PGSTREAM_KAFKA_TOPIC_NAME '" +
                                 settings_.connection.topic + "': " + RdKafka::err2str(err));
    }
    auto next_commit = std::chrono::steady_clock::now() + settings_.commit_interval;
    try {
        while (!stopping_) {
            if (watermark_.inFlightBytes() > settings_.max_in_flight_bytes) {
                // Memory bound: wait for acknowledgements. Heartbeats run on librdkafka's own threads.
                std::unique_lock lock(mutex_);
                acked_cv_.wait_for(lock, std::chrono::milliseconds(100));
            } else {
                std::unique_ptr<RdKafka::Message> message(consumer_->consume(100));
                if (message->err() == RdKafka::ERR_NO_ERROR) {
                    ConsumedRecord record;
                    record.position = {message->topic_name(), message->partition(), message->offset()};
                    if (message->key() != nullptr) record.key = *message->key();
                    record.value.assign(static_cast<const char*>(message->payload()), message->len());
                    watermark_.registerConsumed(record.position, record.key.size() + record.value.size());
                    {
                        std::lock_guard lock(mutex_);
                        ++counters_.consumed;
                    }
                    on_record_(record);
                } else if (message->err() != RdKafka::ERR__TIMED_OUT &&
                           message->err() != RdKafka::ERR__PARTITION_EOF) {
                    log("kafka reader: " + message->errstr() + " (retrying)");
                }
            }
            if (std::chrono::steady_clock::now() >= next_commit && !periodicCommitsHeld()) {
                commitAcknowledged();
                next_commit = std::chrono::steady_clock::now() + settings_.commit_interval;
            }
        }
    } catch (...) {
        commitAcknowledged();
        consumer_->close();
        consumer_.reset();
        throw;
    }
    if (drain) drain();
    commitAcknowledged();
    // Leaving the group revokes our partitions, which commits once more through the rebalance callback.
    consumer_->close();
    consumer_.reset();
}

void KafkaReader::acknowledge(const TopicPartitionOffset& record) {
    if (watermark_.acknowledge(record)) acked_cv_.notify_all();
}

void KafkaReader::acknowledge(const std::string& position) {
    auto parsed = parsePosition(position);
    if (!parsed) {
        log("kafka reader: ignoring acknowledgement of malformed position '" + position + "'");
        return;
    }
    acknowledge(*parsed);
}

void KafkaReader::onRevoke(const std::vector<TopicPartitionOffset>& partitions) {
    const auto deadline = std::chrono::steady_clock::now() + kRevokeDrainTimeout;
    auto in_flight = [&] {
        size_t count = 0;
        for (const auto& tp : partitions) count += watermark_.inFlightRecords(tp.topic, tp.partition);
        return count;
    };
    {
        std::unique_lock lock(mutex_);
        while (in_flight() > 0 && std::chrono::steady_clock::now() < deadline) {
            acked_cv_.wait_for(lock, std::chrono::milliseconds(20));
        }
    }
    std::vector<TopicPartitionOffset> commits;
    for (const auto& commit : watermark_.pendingCommits()) {
        for (const auto& tp : partitions) {
            if (tp.topic == commit.topic && tp.partition == commit.partition) commits.push_back(commit);
        }
    }
    if (!commits.empty()) commitWithRetries(commits);
    for (const auto& tp : partitions) watermark_.forget(tp.topic, tp.partition);
}

void KafkaReader::holdPeriodicCommits(bool hold) {
    std::lock_guard lock(mutex_);
    commits_held_until_ =
        hold ? std::chrono::steady_clock::now() + kCommitHoldLimit : std::chrono::steady_clock::time_point{};
}

bool KafkaReader::periodicCommitsHeld() const {
    std::lock_guard lock(mutex_);
    return std::chrono::steady_clock::now() < commits_held_until_;
}

bool KafkaReader::commitAcknowledged() {
    const auto commits = watermark_.pendingCommits();
    if (commits.empty() || !consumer_) return true;
    return commitWithRetries(commits);
}

bool KafkaReader::commitWithRetries(const std::vector<TopicPartitionOffset>& commits) {
    for (unsigned attempt = 0;; ++attempt) {
        std::vector<RdKafka::TopicPartition*> offsets;
        for (const auto& commit : commits) {
            offsets.push_back(RdKafka::TopicPartition::create(commit.topic, commit.partition, commit.offset));
        }
        RdKafka::ErrorCode err = consumer_->commitSync(offsets);
        std::string problem;
        if (err != RdKafka::ERR_NO_ERROR) {
            problem = RdKafka::err2str(err);
        }
        for (const auto* tp : offsets) {
            if (tp->err() != RdKafka::ERR_NO_ERROR) {
                problem =
                    tp->topic() + "/" + std::to_string(tp->partition()) + ": " + RdKafka::err2str(tp->err());
            } else if (err == RdKafka::ERR_NO_ERROR) {
                watermark_.markCommitted({tp->topic(), tp->partition(), tp->offset()});
            }
        }
        RdKafka::TopicPartition::destroy(offsets);
        {
            std::lock_guard lock(mutex_);
            if (problem.empty()) {
                ++counters_.commits;
            } else {
                ++counters_.commit_failures;
            }
        }
        if (problem.empty()) return true;
        if (err == RdKafka::ERR_REBALANCE_IN_PROGRESS || err == RdKafka::ERR_ILLEGAL_GENERATION ||
            err == RdKafka::ERR_UNKNOWN_MEMBER_ID) {
            holdPeriodicCommits(true);
            log("kafka reader: offset commit deferred until the group rebalance completes (" + problem + ")");
            return false;
        }
        const auto delay = settings_.commit_backoff.delayBeforeRetry(attempt + 1);
        if (!delay || stopping_) {
            log("kafka reader: offset commit failed: " + problem +
                (delay ? " (stopping)" : " (no more retries)"));
            return false;
        }
        log("kafka reader: offset commit failed: " + problem + "; retrying in " +
            std::to_string(delay->count()) + "ms");
        std::this_thread::sleep_for(*delay);
    }
}

ReaderCounters KafkaReader::counters() const {
    std::lock_guard lock(mutex_);
    return counters_;
}

std::vector<std::pair<std::string, int32_t>> KafkaReader::assignment() const {
    std::lock_guard lock(mutex_);
    return assignment_;
}

}  // namespace pgstream::kafka
