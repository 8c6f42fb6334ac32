#include "kafka/kafka_reader.h"

#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <iostream>

namespace pgstream::kafka {

namespace {

// How long a revoke waits for in-flight records of the revoked partitions to be acknowledged, so that the
// next owner does not re-deliver them. Bounded: a stuck output must not stall the whole group.
constexpr std::chrono::milliseconds kRevokeDrainTimeout{2000};

// How often acknowledged offsets are handed to librdkafka's offset store (at most; commits happen on the
// commit interval).
constexpr std::chrono::milliseconds kMaxStoreInterval{100};

// librdkafka before 2.3.0 aborts in rd_kafka_destroy() (rd_kafka_cgrp_destroy_final() ->
// rd_kafka_sticky_assignor_state_destroy(): `rd_assert(assignor_state)`, rdkafka_sticky_assignor.c:1896 in
// 2.0.2) when a cooperative-sticky member got a JoinGroup response but never a SyncGroup assignment: the
// assignor is set on JoinGroup, its state only on a successful SyncGroup (librdkafka#4312, fixed in 2.3.0).
constexpr int kFirstVersionWithoutIssue4312 = 0x020300ff;
// Before closing such a member, how long to keep serving the group for its first assignment.
constexpr std::chrono::milliseconds kFirstAssignmentWait{15000};

// Whether `position` is on one of `partitions`.
bool onPartitions(const TopicPartitionOffset& position, const std::vector<TopicPartitionOffset>& partitions) {
    return std::any_of(partitions.begin(), partitions.end(), [&](const TopicPartitionOffset& tp) {
        return tp.topic == position.topic && tp.partition == position.partition;
    });
}

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
            owner_.assigned_once_ = true;
            if (cooperative) {
                delete consumer->incremental_assign(partitions);
            } else {
                consumer->assign(partitions);
            }
            std::lock_guard lock(owner_.mutex_);
            for (const auto* tp : partitions) owner_.assignment_.emplace_back(tp->topic(), tp->partition());
            return;
        }
        // Revoked (or lost): commit what the outputs acknowledged, then give the partitions up, so that the
        // next owner starts right after them. With the cooperative protocol this happens right after a
        // SyncGroup, while the group is stable (a rebalancing coordinator may refuse commits).
        owner_.onRevoke(toPositions(partitions), consumer->assignment_lost());
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

// Results of the commits librdkafka makes from the offset store (commit interval, revoke, close).
class KafkaReader::CommitResultHandler : public RdKafka::OffsetCommitCb {
  public:
    explicit CommitResultHandler(KafkaReader& owner) : owner_(owner) {}

    void offset_commit_cb(RdKafka::ErrorCode err, std::vector<RdKafka::TopicPartition*>& offsets) override {
        if (err == RdKafka::ERR__NO_OFFSET) return;  // nothing was stored since the last commit
        std::string problem = err != RdKafka::ERR_NO_ERROR ? RdKafka::err2str(err) : "";
        std::vector<TopicPartitionOffset> committed;
        for (const auto* tp : offsets) {
            if (tp->err() != RdKafka::ERR_NO_ERROR) {
                problem =
                    tp->topic() + "/" + std::to_string(tp->partition()) + ": " + RdKafka::err2str(tp->err());
            } else if (err == RdKafka::ERR_NO_ERROR && tp->offset() >= 0) {
                committed.push_back({tp->topic(), tp->partition(), tp->offset()});
            }
        }
        owner_.markCommitted(committed);
        owner_.countCommit(problem.empty());
        // The offsets stay stored: the next commit (interval, revoke or close) sends them again.
        if (!problem.empty()) owner_.log("kafka reader: offset commit failed: " + problem);
    }

  private:
    KafkaReader& owner_;
};

KafkaReader::KafkaReader(ReaderSettings settings, RecordFn on_record, LogFn log, StopToken stop)
    : KafkaReader(std::move(settings), owned_watermark_, std::move(on_record), std::move(log),
                  std::move(stop)) {}

KafkaReader::KafkaReader(ReaderSettings settings, OffsetWatermark& watermark, RecordFn on_record, LogFn log,
                         StopToken stop)
    : settings_(std::move(settings)),
      on_record_(std::move(on_record)),
      log_(std::move(log)),
      watermark_(watermark),
      stop_(std::move(stop)) {
    rebalance_handler_ = std::make_unique<RebalanceHandler>(*this);
    commit_handler_ = std::make_unique<CommitResultHandler>(*this);
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    applyConnectionSettings(settings_.connection, *conf);
    setProperty(*conf, "group.id", settings_.consumer_group_id);
    // Offsets are stored by us, from acknowledgements, never by librdkafka on consume; librdkafka commits
    // what is stored. Its commit timer only runs while the member is in a stable group: a commit sent behind
    // our own pending JoinGroup would be answered with ILLEGAL_GENERATION, which makes librdkafka drop the
    // whole assignment as lost (everything uncommitted would be read again).
    setProperty(*conf, "enable.auto.commit", "true");
    setProperty(*conf, "auto.commit.interval.ms",
                std::to_string(std::max<int64_t>(1, settings_.commit_interval.count())));
    setProperty(*conf, "enable.auto.offset.store", "false");
    setProperty(*conf, "enable.partition.eof", "false");
    setProperty(*conf, "reconnect.backoff.max.ms", "1000");
    setProperty(*conf, "auto.offset.reset",
                settings_.start_offset == StartOffset::kEarliest ? "earliest" : "latest");
    // Incremental rebalancing: members keep consuming the partitions that do not move, and a revoked
    // partition is handed over only after its acknowledged offsets are committed, in a round of its own
    // after the SyncGroup (the group is stable then, so the commit is accepted). Eager rebalancing would
    // revoke and commit while the group is joining, which a coordinator may refuse (librdkafka's mock
    // cluster does). librdkafka before 2.3.0 needs care when such a member is destroyed: closeConsumer().
    setProperty(*conf, "partition.assignment.strategy", "cooperative-sticky");
    // The Go reader's MaxBytes.
    setProperty(*conf, "fetch.max.bytes", std::to_string(25 << 20));
    std::string error;
    if (conf->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(rebalance_handler_.get()), error) !=
            RdKafka::Conf::CONF_OK ||
        conf->set("offset_commit_cb", static_cast<RdKafka::OffsetCommitCb*>(commit_handler_.get()), error) !=
            RdKafka::Conf::CONF_OK) {
        throw std::runtime_error("kafka reader: " + error);
    }
    for (const auto& [name, value] : settings_.connection.librdkafka_overrides)
        setProperty(*conf, name, value);
    consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), error));
    if (!consumer_) throw std::runtime_error("kafka reader: cannot create consumer: " + error);
}

KafkaReader::~KafkaReader() {
    closeConsumer();
}

void KafkaReader::log(const std::string& message) const {
    if (log_) {
        log_(message);
    } else {
        std::cerr << message << std::endl;
    }
}

void KafkaReader::stop() {
    stop_.request_stop();
}

void KafkaReader::run(const std::function<void()>& drain, const std::function<void()>& check) {
    const RdKafka::ErrorCode err = consumer_->subscribe({settings_.connection.topic});
    if (err != RdKafka::ERR_NO_ERROR) {
        throw std::runtime_error("kafka reader: cannot subscribe to PGSTREAM_KAFKA_TOPIC_NAME '" +
                                 settings_.connection.topic + "': " + RdKafka::err2str(err));
    }
    const auto store_interval =
        std::min<std::chrono::milliseconds>(settings_.commit_interval, kMaxStoreInterval);
    auto next_store = std::chrono::steady_clock::now() + store_interval;
    try {
        while (!stop_.stop_requested()) {
            if (check) check();
            if (watermark_.inFlightBytes() > settings_.max_in_flight_bytes) {
                // Memory bound: wait for acknowledgements (or the stop). Heartbeats run on librdkafka's own
                // threads.
                watermark_.waitInFlightBytesAtMost(settings_.max_in_flight_bytes, stop_);
            } else {
                const auto fetch_started = fetch_latency_ ? std::chrono::steady_clock::now()
                                                          : std::chrono::steady_clock::time_point();
                std::unique_ptr<RdKafka::Message> message(consumer_->consume(100));
                if (message->err() == RdKafka::ERR_NO_ERROR) {
                    if (fetch_latency_) {
                        fetch_latency_->Observe(
                            std::chrono::duration<double>(std::chrono::steady_clock::now() - fetch_started)
                                .count());
                        msg_bytes_->Observe(double(message->len()));
                    }
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
            if (std::chrono::steady_clock::now() >= next_store) {
                storeAcknowledged();
                next_store = std::chrono::steady_clock::now() + store_interval;
            }
        }
    } catch (...) {
        storeAcknowledged();
        closeConsumer();
        throw;
    }
    if (drain) drain();
    storeAcknowledged();
    // Leaving the group revokes our partitions: the rebalance callback commits what the drain acknowledged
    // before the member leaves.
    closeConsumer();
}

void KafkaReader::acknowledge(const TopicPartitionOffset& record) {
    watermark_.acknowledge(record);
}

void KafkaReader::acknowledge(const std::string& position) {
    auto parsed = parsePosition(position);
    if (!parsed) {
        log("kafka reader: ignoring acknowledgement of malformed position '" + position + "'");
        return;
    }
    acknowledge(*parsed);
}

void KafkaReader::onRevoke(const std::vector<TopicPartitionOffset>& partitions, bool lost) {
    if (!lost) {
        // Lost partitions (session timeout, fenced) may already be read by another member: nothing of ours
        // can be committed for them any more, so there is nothing to wait for either.
        watermark_.waitDrained(partitions, std::chrono::steady_clock::now() + kRevokeDrainTimeout, stop_);
        // Commit them now, before the partitions are given up: during a cooperative revoke librdkafka sends
        // no JoinGroup until we unassign, so this commit cannot queue behind one (the stored offsets would
        // also be committed by librdkafka on unassign, but without telling which commit was the handover's).
        storeAcknowledged(&partitions);
        std::vector<TopicPartitionOffset> commits;
        for (const auto& commit : watermark_.pendingCommits())
            if (onPartitions(commit, partitions)) commits.push_back(commit);
        if (!commits.empty() && !commitWithRetries(commits)) {
            std::lock_guard lock(mutex_);
            counters_.handover_commit_failures += commits.size();
        }
    } else {
        log("kafka reader: " + std::to_string(partitions.size()) +
            " partition(s) lost by the group; their unacknowledged records will be read again");
    }
    for (const auto& tp : partitions) watermark_.forget(tp.topic, tp.partition);
}

void KafkaReader::storeAcknowledged(const std::vector<TopicPartitionOffset>* only) {
    if (!consumer_) return;
    std::vector<RdKafka::TopicPartition*> offsets;
    for (const auto& store : watermark_.pendingStores()) {
        if (only != nullptr && !onPartitions(store, *only)) continue;
        offsets.push_back(RdKafka::TopicPartition::create(store.topic, store.partition, store.offset));
    }
    if (offsets.empty()) return;
    consumer_->offsets_store(offsets);
    for (const auto* tp : offsets) {
        // A partition revoked since it was acknowledged is refused (ERR__STATE): its acks no longer count.
        if (tp->err() == RdKafka::ERR_NO_ERROR)
            watermark_.markStored({tp->topic(), tp->partition(), tp->offset()});
    }
    RdKafka::TopicPartition::destroy(offsets);
}

void KafkaReader::countCommit(bool ok) {
    std::lock_guard lock(mutex_);
    if (ok) {
        ++counters_.commits;
    } else {
        ++counters_.commit_failures;
    }
}

void KafkaReader::instrument(Metrics& metrics) {
    msg_bytes_ = &metrics.histogram("pgstream.kafka.reader.msg.bytes", "By",
                                    "Value bytes of each record read", Metrics::size_buckets());
    fetch_latency_ =
        &metrics.histogram("pgstream.kafka.reader.fetch.latency", "s",
                           "Time a consume call took to return a record", Metrics::latency_buckets());
    commit_latency_ = &metrics.histogram(
        "pgstream.kafka.reader.commit.latency", "s",
        "Time a synchronous offset commit took (partition handover, shutdown)", Metrics::latency_buckets());
    commit_batch_size_ = &metrics.histogram("pgstream.kafka.reader.commit.batch.size", "{message}",
                                            "Records an offset commit moved past", Metrics::size_buckets());
}

void KafkaReader::markCommitted(const std::vector<TopicPartitionOffset>& committed) {
    int64_t records = 0;
    for (const auto& done : committed) records += watermark_.markCommitted(done);
    if (commit_batch_size_ && records > 0) commit_batch_size_->Observe(double(records));
}

bool KafkaReader::commitAcknowledged() {
    storeAcknowledged();
    const auto commits = watermark_.pendingCommits();
    if (commits.empty() || !consumer_) return true;
    return commitWithRetries(commits);
}

namespace {

// The result of one synchronous commit, delivered to this callback instead of the consumer's
// offset_commit_cb.
struct CommitResult : public RdKafka::OffsetCommitCb {
    RdKafka::ErrorCode err = RdKafka::ERR_NO_ERROR;
    std::vector<TopicPartitionOffset> committed;
    std::string problem;

    void offset_commit_cb(RdKafka::ErrorCode error, std::vector<RdKafka::TopicPartition*>& offsets) override {
        err = error;
        if (error != RdKafka::ERR_NO_ERROR) problem = RdKafka::err2str(error);
        for (const auto* tp : offsets) {
            if (tp->err() != RdKafka::ERR_NO_ERROR) {
                problem =
                    tp->topic() + "/" + std::to_string(tp->partition()) + ": " + RdKafka::err2str(tp->err());
            } else if (error == RdKafka::ERR_NO_ERROR) {
                committed.push_back({tp->topic(), tp->partition(), tp->offset()});
            }
        }
    }
};

}  // namespace

bool KafkaReader::commitWithRetries(const std::vector<TopicPartitionOffset>& commits) {
    for (unsigned attempt = 0;; ++attempt) {
        std::vector<RdKafka::TopicPartition*> offsets;
        for (const auto& commit : commits) {
            offsets.push_back(RdKafka::TopicPartition::create(commit.topic, commit.partition, commit.offset));
        }
        CommitResult result;
        const auto commit_started = std::chrono::steady_clock::now();
        const RdKafka::ErrorCode err = consumer_->commitSync(offsets, &result);
        if (commit_latency_)
            commit_latency_->Observe(
                std::chrono::duration<double>(std::chrono::steady_clock::now() - commit_started).count());
        RdKafka::TopicPartition::destroy(offsets);
        if (err != RdKafka::ERR_NO_ERROR && result.problem.empty()) result.problem = RdKafka::err2str(err);
        markCommitted(result.committed);
        countCommit(result.problem.empty());
        if (result.problem.empty()) return true;
        if (err == RdKafka::ERR_REBALANCE_IN_PROGRESS || err == RdKafka::ERR_ILLEGAL_GENERATION ||
            err == RdKafka::ERR_UNKNOWN_MEMBER_ID) {
            log("kafka reader: offset commit refused while the group rebalances (" + result.problem +
                "); the offsets stay stored for librdkafka's next commit in a stable group");
            return false;
        }
        const auto delay = settings_.commit_backoff.delayBeforeRetry(attempt + 1);
        if (!delay || stop_.stop_requested()) {
            log("kafka reader: offset commit failed: " + result.problem +
                (delay ? " (stopping)" : " (no more retries)"));
            return false;
        }
        log("kafka reader: offset commit failed: " + result.problem + "; retrying in " +
            std::to_string(delay->count()) + "ms");
        if (!stop_.sleep_for(*delay)) {
            log("kafka reader: stopping; the offsets stay stored for librdkafka's commit on close");
            return false;
        }
    }
}

void KafkaReader::closeConsumer() {
    if (!consumer_) return;
    const bool guard = RdKafka::version() < kFirstVersionWithoutIssue4312;
    // A member whose JoinGroup was answered (the rebalance protocol is known from then on) but that has not
    // been assigned yet is in librdkafka#4312's window: give the group the time to send the assignment.
    // Records that arrive meanwhile are not handed on: nothing of them is stored, the next owner reads them.
    const auto deadline = std::chrono::steady_clock::now() + kFirstAssignmentWait;
    while (guard && !assigned_once_ && consumer_->rebalance_protocol() == "COOPERATIVE" &&
           std::chrono::steady_clock::now() < deadline) {
        std::unique_ptr<RdKafka::Message> discarded(consumer_->consume(100));
    }
    consumer_->close();
    // After close() the group no longer processes JoinGroup or SyncGroup responses, so this is final.
    if (guard && !assigned_once_ && consumer_->rebalance_protocol() == "COOPERATIVE") {
        log("kafka reader: the consumer group never assigned this member; not destroying the librdkafka "
            "handle, which would abort the process with librdkafka " +
            RdKafka::version_str() + " (librdkafka#4312, fixed in 2.3.0)");
        static_cast<void>(consumer_.release());
        return;
    }
    consumer_.reset();
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
