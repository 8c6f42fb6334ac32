// The Kafka listener against the mock cluster: consumer groups, rebalances, commits by the watermark rule.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <librdkafka/rdkafkacpp.h>

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
    EXPECT_EQ(watermark.inFlightBytes(), 250u);
    watermark.forget("t", 0);
    EXPECT_FALSE(watermark.acknowledge({"t", 0, 13})) << "acks of revoked partitions are ignored";
    EXPECT_EQ(watermark.inFlightBytes(), 50u);
    EXPECT_EQ(watermark.inFlightRecords(), 1u);
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
    void fillTopic(const std::string& topic, int partitions, int count, int first = 0) {
        if (first == 0) cluster().createTopic(topic, partitions);
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

TEST_F(KafkaReaderTest, TwoConsumersInOneGroupShareTheTopicAcrossARebalance) {
    constexpr int kRecords = 600;
    fillTopic("shared", 4, kRecords);

    std::mutex mutex;
    std::map<std::string, int> times_seen;  // value -> count, over the whole group
    std::map<int, std::set<int32_t>> partitions_by_reader;

    std::unique_ptr<KafkaReader> first, second;
    auto sink = [&](int id, KafkaReader** self) {
        return [&, id, self](const ConsumedRecord& record) {
            {
                std::lock_guard lock(mutex);
                ++times_seen[record.value];
                partitions_by_reader[id].insert(record.position.partition);
            }
            // A slow output, so that the second member joins while the first is mid-stream.
            std::this_thread::sleep_for(15ms);
            (*self)->acknowledge(formatPosition(record.position));
        };
    };
    KafkaReader* first_ptr = nullptr;
    KafkaReader* second_ptr = nullptr;
    first = std::make_unique<KafkaReader>(readerSettings("shared", "group-a"), sink(1, &first_ptr));
    first_ptr = first.get();
    std::thread first_thread([&] { first->run(); });

    auto seen = [&] {
        std::lock_guard lock(mutex);
        return times_seen.size();
    };
    const auto deadline = std::chrono::steady_clock::now() + 40s;
    while (seen() < kRecords / 8 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    ASSERT_GE(seen(), static_cast<size_t>(kRecords / 8)) << "first reader never started consuming";
    ASSERT_LT(seen(), static_cast<size_t>(kRecords))
        << "first reader finished before the rebalance; slow it down";

    second = std::make_unique<KafkaReader>(readerSettings("shared", "group-a"), sink(2, &second_ptr));
    second_ptr = second.get();
    std::thread second_thread([&] { second->run(); });

    while (seen() < kRecords && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(20ms);
    std::this_thread::sleep_for(1s);  // duplicates, if any, would arrive now
    first->stop();
    second->stop();
    first_thread.join();
    second_thread.join();

    std::lock_guard lock(mutex);
    EXPECT_EQ(times_seen.size(), static_cast<size_t>(kRecords)) << "every record is consumed";
    if (RdKafka::version() >= 0x020300ff) {
        // Incremental rebalancing: the revoked partitions are committed while the group is stable.
        for (const auto& [value, count] : times_seen)
            EXPECT_EQ(count, 1) << "record " << value << " consumed twice";
    } else {
        // Eager rebalancing (librdkafka < 2.3.0): the revoke-time commit happens while the group is joining,
        // which the mock coordinator refuses (a real broker accepts it), so the records consumed since the
        // last periodic commit are read again by the new owner: at least once, a bounded window.
        size_t duplicates = 0;
        for (const auto& [value, count] : times_seen) {
            EXPECT_LE(count, 2) << "record " << value;
            if (count > 1) ++duplicates;
        }
        EXPECT_LE(duplicates, static_cast<size_t>(kRecords / 10)) << "re-read window larger than expected";
    }
    EXPECT_GT(first->counters().rebalances, 1u);
    EXPECT_FALSE(partitions_by_reader[2].empty()) << "the second member got partitions after the rebalance";
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
    fillTopic("resume", 1, 10, 50);
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
    fillTopic("latest", 1, 5, 20);
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
