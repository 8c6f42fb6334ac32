// The Kafka listener against the mock cluster: consumer groups, rebalances, commits by the watermark rule.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <librdkafka/rdkafkacpp.h>

#include "kafka/in_order_acks.h"
#include "kafka/kafka_listener.h"
#include "kafka/kafka_reader.h"
#include "kafka/ordered_producer.h"
#include "kafka_mock_fixture.h"

namespace pgstream::kafka {
namespace {

using testing::KafkaMockTest;
using namespace std::chrono_literals;

TEST(KafkaPosition, FormatsAndParsesTopicPartitionOffset) {
    EXPECT_EQ(formatPosition({"my.topic", 3, 42}), "my.topic/3/42");
    auto parsed = parsePosition("my.topic/3/42");
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->topic, "my.topic");
    EXPECT_EQ(parsed->partition, 3);
    EXPECT_EQ(parsed->offset, 42);
    EXPECT_FALSE(parsePosition("0/16B3748").has_value());
    EXPECT_FALSE(parsePosition("t/x/1").has_value());
    EXPECT_FALSE(parsePosition("t/1/").has_value());
    EXPECT_FALSE(parsePosition("/1/2").has_value());
}

TEST(OffsetWatermark, CommitsOnlyBelowTheFirstUnacknowledgedOffset) {
    OffsetWatermark watermark;
    for (int64_t offset = 10; offset < 15; ++offset) watermark.registerConsumed({"t", 0, offset}, 100);
    watermark.registerConsumed({"t", 1, 7}, 50);
    EXPECT_TRUE(watermark.pendingCommits().empty());
    EXPECT_TRUE(watermark.acknowledge({"t", 0, 12}));
    EXPECT_TRUE(watermark.acknowledge({"t", 0, 11}));
    EXPECT_TRUE(watermark.pendingCommits().empty()) << "offset 10 is still in flight";
    EXPECT_TRUE(watermark.acknowledge({"t", 0, 10}));
    auto commits = watermark.pendingCommits();
    ASSERT_EQ(commits.size(), 1u);
    EXPECT_EQ(commits[0].partition, 0);
    EXPECT_EQ(commits[0].offset, 13) << "commit = last contiguous acked offset + 1";
    watermark.markCommitted(commits[0]);
    EXPECT_TRUE(watermark.pendingCommits().empty());
    ASSERT_EQ(watermark.pendingStores().size(), 1u) << "stored and committed are tracked apart";
    EXPECT_EQ(watermark.pendingStores()[0].offset, 13);
    watermark.markStored(watermark.pendingStores()[0]);
    EXPECT_TRUE(watermark.pendingStores().empty());
    EXPECT_EQ(watermark.inFlightBytes(), 250u);
    watermark.forget("t", 0);
    EXPECT_FALSE(watermark.acknowledge({"t", 0, 13})) << "acks of revoked partitions are ignored";
    EXPECT_EQ(watermark.inFlightBytes(), 50u);
    EXPECT_EQ(watermark.inFlightRecords(), 1u);
}

// Acknowledgements arrive on output and delivery-report threads: one that contradicts the order must be
// reported (the run stops with it), never thrown there (std::terminate, no final checkpoint).
TEST(InOrderAcks, ACompletionThatIsNotPendingIsRefusedNotThrown) {
    InOrderAcks<int> acks;
    const uint64_t first = acks.add(1);
    const uint64_t second = acks.add(2);
    std::vector<int> released;
    EXPECT_TRUE(acks.complete(second, released));
    EXPECT_TRUE(released.empty());
    EXPECT_FALSE(acks.complete(second, released)) << "completed twice";
    EXPECT_FALSE(acks.complete(second + 7, released)) << "never added";
    EXPECT_TRUE(acks.complete(first, released));
    EXPECT_EQ(released, (std::vector<int>{1, 2}));
    EXPECT_FALSE(acks.complete(first, released)) << "already released";
    EXPECT_EQ(acks.pendingCount(), 0u);
}

TEST(KafkaCheckpointer, AnEventAcknowledgedTwiceIsAFatalError) {
    KafkaCheckpointer checkpointer;
    checkpointer.watermark().registerConsumed({"t", 0, 5}, 10);
    Event event;
    event.position = "t/0/5";
    event.checkpoint_token = checkpointer.track({"t", 0, 5});
    checkpointer.acknowledge(event);
    EXPECT_EQ(checkpointer.fatal_error(), "");
    checkpointer.acknowledge(event);
    EXPECT_NE(checkpointer.fatal_error().find("t/0/5"), std::string::npos) << checkpointer.fatal_error();
    ASSERT_EQ(checkpointer.watermark().pendingCommits().size(), 1u);
    EXPECT_EQ(checkpointer.watermark().pendingCommits()[0].offset, 6);
}

TEST(BackoffSettings, ExponentialAndConstantPolicies) {
    BackoffSettings none;
    EXPECT_FALSE(none.delayBeforeRetry(1).has_value());
    BackoffSettings exponential{BackoffSettings::Kind::kExponential, 100ms, 350ms, 4};
    EXPECT_EQ(exponential.delayBeforeRetry(1), 100ms);
    EXPECT_EQ(exponential.delayBeforeRetry(2), 200ms);
    EXPECT_EQ(exponential.delayBeforeRetry(3), 350ms);
    EXPECT_EQ(exponential.delayBeforeRetry(4), 350ms);
    EXPECT_FALSE(exponential.delayBeforeRetry(5).has_value());
    BackoffSettings constant{BackoffSettings::Kind::kConstant, 50ms, 0ms, 2};
    EXPECT_EQ(constant.delayBeforeRetry(2), 50ms);
    EXPECT_FALSE(constant.delayBeforeRetry(3).has_value());
}

class KafkaReaderTest : public KafkaMockTest {
  protected:
    void fillTopic(const std::string& topic, int partitions, int count) {
        cluster().createTopic(topic, partitions);
        produce(topic, count);
    }
    // Records with values first..first+count-1.
    void produce(const std::string& topic, int count, int first = 0) {
        WriterSettings settings;
        settings.connection.servers = servers();
        settings.connection.topic = topic;
        OrderedProducer producer(settings, [](const std::vector<DeliveredRecord>&) {});
        for (int i = first; i < first + count; ++i) {
            producer.produce("key" + std::to_string(i % 7), std::to_string(i), static_cast<uint64_t>(i));
        }
        ASSERT_TRUE(producer.flush(20s));
    }

    ReaderSettings readerSettings(const std::string& topic, const std::string& group) {
        ReaderSettings settings;
        settings.connection.servers = servers();
        settings.connection.topic = topic;
        settings.consumer_group_id = group;
        settings.commit_interval = 200ms;
        settings.connection.librdkafka_overrides = {{"session.timeout.ms", "6000"},
                                                    {"heartbeat.interval.ms", "200"}};
        if (getenv("KDEBUG")) settings.connection.librdkafka_overrides["debug"] = "cgrp";
        return settings;
    }
};

// Two members of one group, each with a slow output that acknowledges every record it is handed.
class TwoReaders {
  public:
    explicit TwoReaders(ReaderSettings settings) : settings_(std::move(settings)) {}
    ~TwoReaders() {
        for (int id : {1, 2}) stop(id);
    }

    void start(int id) {
        auto& reader = readers_[id];
        reader = std::make_unique<KafkaReader>(settings_, [this, id](const ConsumedRecord& record) {
            {
                std::lock_guard lock(mutex_);
                ++times_seen_[record.value];
                partitions_by_reader_[id].insert(record.position.partition);
            }
            std::this_thread::sleep_for(15ms);  // a slow output: rebalances happen mid-stream
            readers_[id]->acknowledge(formatPosition(record.position));
        });
        threads_[id] = std::thread([&reader] { reader->run(); });
    }
    void stop(int id) {
        if (!threads_[id].joinable()) return;
        readers_[id]->stop();
        threads_[id].join();
    }
    KafkaReader& reader(int id) { return *readers_[id]; }

    size_t distinctSeen() {
        std::lock_guard lock(mutex_);
        return times_seen_.size();
    }
    std::set<int32_t> partitionsOf(int id) {
        std::lock_guard lock(mutex_);
        return partitions_by_reader_[id];
    }
    // Partitions read by both members.
    size_t movedPartitions() {
        std::lock_guard lock(mutex_);
        size_t moved = 0;
        for (int32_t partition : partitions_by_reader_[1]) moved += partitions_by_reader_[2].count(partition);
        return moved;
    }
    std::map<std::string, int> timesSeen() {
        std::lock_guard lock(mutex_);
        return times_seen_;
    }
    template <typename Predicate>
    bool waitFor(Predicate predicate, std::chrono::steady_clock::time_point deadline) {
        while (!predicate() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
        return predicate();
    }

  private:
    ReaderSettings settings_;
    std::mutex mutex_;
    std::map<std::string, int> times_seen_;  // value -> count, over the whole group
    std::map<int, std::set<int32_t>> partitions_by_reader_;
    std::array<std::unique_ptr<KafkaReader>, 3> readers_;  // by id (1, 2); each thread reads only its own
    std::array<std::thread, 3> threads_;
};

void expectEachRecordOnce(const std::map<std::string, int>& times_seen, int records) {
    EXPECT_EQ(times_seen.size(), static_cast<size_t>(records)) << "every record is consumed";
    size_t duplicates = 0;
    for (const auto& [value, count] : times_seen) {
        if (count != 1) {
            ++duplicates;
            ADD_FAILURE() << "record " << value << " consumed " << count << " times";
        }
    }
    EXPECT_EQ(duplicates, 0u);
}

TEST_F(KafkaReaderTest, TwoConsumersInOneGroupReadEveryRecordOnceAcrossARebalance) {
    // A second member joins while the first is mid-stream: the first hands two partitions over.
    constexpr int kBefore = 600;  // in the topic when the first member starts
    constexpr int kAfter = 200;   // produced once the second member owns partitions
    constexpr int kRecords = kBefore + kAfter;
    fillTopic("shared", 4, kBefore);
    TwoReaders group(readerSettings("shared", "group-a"));
    const auto deadline = std::chrono::steady_clock::now() + 60s;

    group.start(1);
    ASSERT_TRUE(group.waitFor([&] { return group.distinctSeen() >= kBefore / 8; }, deadline))
        << "first reader never started consuming";
    ASSERT_LT(group.distinctSeen(), static_cast<size_t>(kBefore))
        << "first reader finished before the rebalance; slow it down";
    group.start(2);
    EXPECT_TRUE(group.waitFor([&] { return !group.reader(2).assignment().empty(); }, deadline))
        << "the second member never got partitions";
    produce("shared", kAfter, kBefore);
    group.waitFor([&] { return group.distinctSeen() >= kRecords; }, deadline);
    std::this_thread::sleep_for(1s);  // duplicates, if any, would arrive now
    group.stop(1);
    group.stop(2);

    EXPECT_GT(group.movedPartitions(), 0u) << "no partition moved from the first member to the second";
    EXPECT_GT(group.reader(1).counters().rebalances, 1u);
    const auto refused = group.reader(1).counters().handover_commit_failures;
    if (refused == 0) {
        // The revoked partitions were committed before the handover: the new owner starts right after them.
        expectEachRecordOnce(group.timesSeen(), kRecords);
    } else {
        // librdkafka 2.0.2's mock coordinator sometimes starts another rebalance right after the SyncGroup
        // that revokes (a member whose SyncGroup arrives after the leader's gets INVALID_REQUEST and
        // rejoins), and refuses commits while the group is joining. Then the records acknowledged since the
        // last commit are read again by the new owner: nothing lost, nothing read more than twice.
        const auto times_seen = group.timesSeen();
        EXPECT_EQ(times_seen.size(), static_cast<size_t>(kRecords)) << "every record is consumed";
        for (const auto& [value, count] : times_seen) EXPECT_LE(count, 2) << "record " << value;
        std::cout << "note: the coordinator refused the handover commit of " << refused
                  << " partition(s); their records since the last commit were read again\n";
    }
}

TEST_F(KafkaReaderTest, TwoConsumersInOneGroupReadEveryRecordOnceWhenOneLeaves) {
    // Both members share the topic; one leaves mid-stream and the other takes its partitions over.
    constexpr int kRecords = 600;
    cluster().createTopic("leave", 4);
    TwoReaders group(readerSettings("leave", "group-b"));
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    group.start(1);
    ASSERT_TRUE(group.waitFor([&] { return !group.reader(1).assignment().empty(); }, deadline));
    group.start(2);
    ASSERT_TRUE(group.waitFor(
        [&] { return !group.reader(2).assignment().empty() && group.reader(1).assignment().size() < 4; },
        deadline))
        << "the group never settled with two members";

    produce("leave", kRecords);
    ASSERT_TRUE(group.waitFor(
        [&] { return group.partitionsOf(2).size() >= 1 && group.distinctSeen() >= 150; }, deadline));
    ASSERT_LT(group.distinctSeen(), static_cast<size_t>(kRecords))
        << "finished before the second member left";
    group.stop(2);  // leaves the group: its partitions move to the first member
    group.waitFor([&] { return group.distinctSeen() >= kRecords; }, deadline);
    std::this_thread::sleep_for(1s);  // duplicates, if any, would arrive now
    group.stop(1);

    EXPECT_EQ(group.reader(2).counters().handover_commit_failures, 0u);
    EXPECT_GT(group.movedPartitions(), 0u) << "no partition moved from the leaving member";
    expectEachRecordOnce(group.timesSeen(), kRecords);
}

TEST_F(KafkaReaderTest, StoppingAMemberThatWasNeverAssignedDoesNotAbort) {
    // librdkafka#4312 (before 2.3.0): destroying a cooperative-sticky member that got a JoinGroup response
    // but no assignment yet aborts the process. Its first SyncGroup is refused here, so it rejoins and waits
    // about 5 s in that state; the reader is stopped right then.
    constexpr int16_t kSyncGroupApiKey = 14;
    constexpr int kRebalanceInProgress = 27;
    fillTopic("first-join", 2, 10);
    cluster().pushRequestErrors(kSyncGroupApiKey, 1, kRebalanceInProgress);
    std::atomic<int> consumed{0};
    KafkaReader reader(readerSettings("first-join", "group-f"), [&](const ConsumedRecord&) { ++consumed; });
    std::thread thread([&] { reader.run(); });
    // The mock answers a new group's first JoinGroup after 3 s; the refused SyncGroup follows at once.
    std::this_thread::sleep_for(4500ms);
    EXPECT_TRUE(reader.assignment().empty()) << "assigned before the stop: the test missed the window";
    const auto stop_started = std::chrono::steady_clock::now();
    reader.stop();
    thread.join();
    EXPECT_LT(std::chrono::steady_clock::now() - stop_started, 20s);
    // The stop waited for the group's assignment before closing the member (and then handed nothing on).
    EXPECT_GE(reader.counters().rebalances, 1u);
    EXPECT_EQ(consumed.load(), 0);
}

TEST_F(KafkaReaderTest, RestartResumesFromTheCommittedWatermark) {
    fillTopic("resume", 1, 50);
    // First run: the output acknowledges offsets 0..29 only (30.. are still "in flight" when it stops).
    {
        KafkaReader* self = nullptr;
        std::atomic<int> consumed{0};
        KafkaReader reader(readerSettings("resume", "group-r"), [&](const ConsumedRecord& record) {
            if (record.position.offset < 30) self->acknowledge(record.position);
            ++consumed;
        });
        self = &reader;
        std::thread thread([&] { reader.run(); });
        const auto deadline = std::chrono::steady_clock::now() + 20s;
        while (consumed < 50 && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(10ms);
        EXPECT_EQ(consumed.load(), 50);
        reader.stop();
        thread.join();
    }
    produce("resume", 10, 50);
    // Second run, same group: resumes at offset 30 (replays the unacknowledged 20), never before.
    std::vector<int64_t> offsets;
    std::mutex mutex;
    KafkaReader* self = nullptr;
    KafkaReader reader(readerSettings("resume", "group-r"), [&](const ConsumedRecord& record) {
        std::lock_guard lock(mutex);
        offsets.push_back(record.position.offset);
        self->acknowledge(record.position);
    });
    self = &reader;
    std::thread thread([&] { reader.run(); });
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    auto count = [&] {
        std::lock_guard lock(mutex);
        return offsets.size();
    };
    while (count() < 30 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
    std::this_thread::sleep_for(500ms);
    reader.stop();
    thread.join();
    ASSERT_EQ(offsets.size(), 30u);
    for (size_t i = 0; i < offsets.size(); ++i) EXPECT_EQ(offsets[i], static_cast<int64_t>(30 + i));
}

TEST_F(KafkaReaderTest, StartOffsetLatestSkipsExistingRecords) {
    fillTopic("latest", 1, 20);
    auto settings = readerSettings("latest", "group-l");
    settings.start_offset = StartOffset::kLatest;
    std::atomic<int> consumed{0};
    std::atomic<int64_t> first_offset{-1};
    KafkaReader reader(settings, [&](const ConsumedRecord& record) {
        int64_t expected = -1;
        first_offset.compare_exchange_strong(expected, record.position.offset);
        ++consumed;
    });
    std::thread thread([&] { reader.run(); });
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (reader.assignment().empty() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    std::this_thread::sleep_for(1s);
    produce("latest", 5, 20);
    while (consumed < 5 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
    reader.stop();
    thread.join();
    EXPECT_EQ(consumed.load(), 5);
    EXPECT_EQ(first_offset.load(), 20);
}

TEST_F(KafkaReaderTest, CommitFailuresAreRetriedWithTheConfiguredBackoff) {
    fillTopic("commits", 1, 5);
    auto settings = readerSettings("commits", "group-c");
    settings.commit_interval = 1h;  // commits only when the test asks
    settings.commit_backoff = {BackoffSettings::Kind::kConstant, 100ms, 0ms, 5};
    std::atomic<int> consumed{0};
    KafkaReader* self = nullptr;
    KafkaReader reader(settings, [&](const ConsumedRecord& record) {
        self->acknowledge(record.position);
        ++consumed;
    });
    self = &reader;
    std::thread thread([&] { reader.run(); });
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (consumed < 5 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
    ASSERT_EQ(consumed.load(), 5);
    // UNKNOWN_MEMBER_ID would trigger a rejoin; OFFSET_METADATA_TOO_LARGE (12) is a plain refusal.
    cluster().pushRequestErrors(testing::kOffsetCommitApiKey, 2, 12);
    EXPECT_TRUE(reader.commitAcknowledged());
    const auto counters = reader.counters();
    EXPECT_EQ(counters.commit_failures, 2u);
    EXPECT_GE(counters.commits, 1u);
    reader.stop();
    thread.join();
}

}  // namespace
}  // namespace pgstream::kafka
