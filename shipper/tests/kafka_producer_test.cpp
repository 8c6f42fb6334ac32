// The Kafka side of the batch writer against a 3-broker mock cluster: delivery-report-driven in-order acks,
// broker outage, oversized records, memory bound.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "kafka/ordered_producer.h"
#include "kafka_mock_fixture.h"

namespace pgstream::kafka {
namespace {

using testing::KafkaMockTest;
using namespace std::chrono_literals;

class OrderedProducerTest : public KafkaMockTest {
  protected:
    WriterSettings settingsFor(const std::string& topic) {
        WriterSettings settings;
        settings.connection.servers = servers();
        settings.connection.topic = topic;
        return settings;
    }

    std::mutex acked_mutex_;
    std::vector<uint64_t> acked_;
    OrderedProducer::DeliveredFn recordAcks() {
        return [this](const std::vector<DeliveredRecord>& records) {
            std::lock_guard lock(acked_mutex_);
            for (const auto& record : records) acked_.push_back(record.token);
        };
    }
    std::vector<uint64_t> acked() {
        std::lock_guard lock(acked_mutex_);
        return acked_;
    }
};

TEST_F(OrderedProducerTest, AcknowledgesInProduceOrderAfterDelivery) {
    cluster().createTopic("events", 3);
    OrderedProducer producer(settingsFor("events"), recordAcks());
    const std::vector<std::string> schemas = {"alpha", "beta", "gamma"};
    constexpr uint64_t kRecords = 300;
    for (uint64_t i = 0; i < kRecords; ++i) {
        producer.produce(schemas[i % 3], "{\"n\":" + std::to_string(i) + "}", i);
    }
    ASSERT_TRUE(producer.flush(20s));
    std::vector<uint64_t> expected(kRecords);
    for (uint64_t i = 0; i < kRecords; ++i) expected[i] = i;
    EXPECT_EQ(acked(), expected);

    auto records = readTopic("events", 3, kRecords);
    ASSERT_EQ(records.size(), kRecords);
    std::map<std::string, int32_t> partition_of;
    std::map<std::string, int> last_n;
    for (const auto& record : records) {
        auto [it, inserted] = partition_of.emplace(record.key, record.partition);
        EXPECT_EQ(it->second, record.partition) << "one key, one partition";
        const int n = std::stoi(record.value.substr(5));
        EXPECT_EQ(schemas[static_cast<size_t>(n) % 3], record.key);
        auto last = last_n.find(record.key);
        if (last != last_n.end()) {
            EXPECT_GT(n, last->second) << "per-key order";
        }
        last_n[record.key] = n;
    }
    EXPECT_EQ(partition_of.size(), 3u);
}

// The acknowledger takes its own locks and may ask the producer (or anything that asks it) for its state: the
// delivery callback must not run under the producer's mutex.
TEST_F(OrderedProducerTest, TheDeliveryCallbackRunsWithoutTheProducersLock) {
    cluster().createTopic("unlocked", 1);
    std::atomic<OrderedProducer*> self{nullptr};
    std::atomic<size_t> delivered{0};
    OrderedProducer producer(settingsFor("unlocked"), [&](const std::vector<DeliveredRecord>& records) {
        delivered += records.size();
        if (OrderedProducer* producer = self.load()) producer->counters();  // takes the producer's mutex
    });
    self = &producer;
    for (uint64_t i = 0; i < 20; ++i) producer.produce("s", std::to_string(i), i);
    ASSERT_TRUE(producer.flush(20s)) << "the delivery callback deadlocked on the producer's mutex";
    EXPECT_EQ(delivered.load(), 20u);
    EXPECT_EQ(producer.counters().delivered, 20u);
}

TEST_F(OrderedProducerTest, BrokerOutageBlocksAcksAndLosesNothing) {
    cluster().createTopic("outage", 3);
    OrderedProducer producer(settingsFor("outage"), recordAcks());
    for (uint64_t i = 0; i < 50; ++i) producer.produce("k" + std::to_string(i % 5), std::to_string(i), i);
    ASSERT_TRUE(producer.flush(20s));
    ASSERT_EQ(acked().size(), 50u);

    cluster().setAllBrokersDown();
    for (uint64_t i = 50; i < 150; ++i) producer.produce("k" + std::to_string(i % 5), std::to_string(i), i);
    std::this_thread::sleep_for(5s);  // the writer-level test holds the outage for 10 s
    EXPECT_EQ(acked().size(), 50u) << "nothing may be acknowledged while every broker is down";
    EXPECT_FALSE(producer.failure().has_value());
    cluster().setAllBrokersUp();
    ASSERT_TRUE(producer.flush(60s)) << producer.failure().value_or("timeout");

    std::vector<uint64_t> expected(150);
    for (uint64_t i = 0; i < 150; ++i) expected[i] = i;
    EXPECT_EQ(acked(), expected);
    auto records = readTopic("outage", 3, 150);
    ASSERT_EQ(records.size(), 150u) << "no loss, no duplicates (idempotent producer)";
    std::map<std::string, int> last;
    for (const auto& record : records) {
        const int n = std::stoi(record.value);
        auto it = last.find(record.key);
        if (it != last.end()) {
            EXPECT_GT(n, it->second) << "per-key order across the outage";
        }
        last[record.key] = n;
    }
}

TEST_F(OrderedProducerTest, TransientProduceErrorsAreRetriedWithoutDuplicates) {
    cluster().createTopic("flaky", 1);
    OrderedProducer producer(settingsFor("flaky"), recordAcks());
    producer.produce("s", "0", 0);
    ASSERT_TRUE(producer.flush(10s));
    // NOT_LEADER_FOR_PARTITION (6) and REQUEST_TIMED_OUT (7) are retriable.
    cluster().pushRequestErrors(testing::kProduceApiKey, 3, 6);
    cluster().pushRequestErrors(testing::kProduceApiKey, 2, 7);
    for (uint64_t i = 1; i < 40; ++i) producer.produce("s", std::to_string(i), i);
    ASSERT_TRUE(producer.flush(30s)) << producer.failure().value_or("timeout");
    EXPECT_EQ(acked().size(), 40u);
    auto records = readTopic("flaky", 1, 40);
    ASSERT_EQ(records.size(), 40u);
    for (size_t i = 0; i < records.size(); ++i) EXPECT_EQ(records[i].value, std::to_string(i));
}

TEST_F(OrderedProducerTest, OversizedRecordStopsTheWriterByDefault) {
    cluster().createTopic("big", 1);
    auto settings = settingsFor("big");
    settings.max_message_bytes = 10000;
    OrderedProducer producer(settings, recordAcks());
    producer.produce("s", "small-0", 0);
    try {
        producer.produce("s", std::string(20000, 'x'), 1, [] { return "public.docs at LSN 0/16B3748"; });
        FAIL() << "an oversized record must not be accepted silently";
    } catch (const WriterStopped& e) {
        EXPECT_NE(std::string(e.what()).find("PGSTREAM_KAFKA_WRITER_MAX_MESSAGE_BYTES"), std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find("public.docs at LSN 0/16B3748"), std::string::npos) << e.what();
    }
    EXPECT_THROW(producer.produce("s", "small-2", 2), WriterStopped);
    std::this_thread::sleep_for(1s);
    EXPECT_EQ(producer.counters().oversized, 1u);
    EXPECT_TRUE(producer.failure().has_value());
    // Record 0 may have been delivered before the failure; nothing after the oversized one ever is.
    for (uint64_t token : acked()) EXPECT_EQ(token, 0u);
}

TEST_F(OrderedProducerTest, OversizedRecordGoesToTheOverflowFileInOrder) {
    cluster().createTopic("overflow", 1);
    auto settings = settingsFor("overflow");
    settings.max_message_bytes = 10000;
    settings.oversized_policy = OversizedRecordPolicy::kWriteToFile;
    settings.oversized_record_file =
        ::testing::TempDir() + "/kafka_oversized_" + std::to_string(getpid()) + ".jsonl";
    std::remove(settings.oversized_record_file.c_str());
    OrderedProducer producer(settings, recordAcks());
    producer.produce("s", "small-0", 0);
    producer.produce("s", std::string(20000, 'x'), 1, [] { return "public.docs"; });
    producer.produce("s", "small-2", 2);
    ASSERT_TRUE(producer.flush(10s)) << producer.failure().value_or("timeout");
    EXPECT_EQ(acked(), (std::vector<uint64_t>{0, 1, 2}));
    EXPECT_EQ(producer.counters().oversized, 1u);
    std::ifstream file(settings.oversized_record_file);
    std::string line;
    ASSERT_TRUE(std::getline(file, line));
    EXPECT_NE(line.find("\"key\":\"s\""), std::string::npos);
    EXPECT_NE(line.find("\"bytes\":20001"), std::string::npos);
    EXPECT_NE(line.find(std::string(20000, 'x')), std::string::npos);
    auto records = readTopic("overflow", 1, 2);
    ASSERT_EQ(records.size(), 2u);
    EXPECT_EQ(records[0].value, "small-0");
    EXPECT_EQ(records[1].value, "small-2");
}

TEST_F(OrderedProducerTest, BrokerRefusalStopsAcknowledging) {
    cluster().createTopic("refused", 1);
    OrderedProducer producer(settingsFor("refused"), recordAcks());
    producer.produce("s", "0", 0);
    ASSERT_TRUE(producer.flush(10s));
    // MESSAGE_TOO_LARGE (10): the topic's max.message.bytes is below ours. Not retriable.
    cluster().pushRequestErrors(testing::kProduceApiKey, 1, 10);
    producer.produce("s", "1", 1);
    EXPECT_FALSE(producer.flush(10s));
    ASSERT_TRUE(producer.failure().has_value());
    EXPECT_NE(producer.failure()->find("refused"), std::string::npos) << *producer.failure();
    EXPECT_EQ(acked(), (std::vector<uint64_t>{0}));
    EXPECT_THROW(producer.produce("s", "2", 2), WriterStopped);
}

TEST_F(OrderedProducerTest, ProduceBlocksWhenTheMemoryBudgetIsFull) {
    cluster().createTopic("budget", 1);
    auto settings = settingsFor("budget");
    settings.max_queue_bytes = 64 * 1024;
    settings.max_message_bytes = 8 * 1024;
    settings.batch_bytes = 8 * 1024;
    OrderedProducer producer(settings, recordAcks());
    cluster().setAllBrokersDown();
    std::atomic<uint64_t> produced{0};
    std::thread feeder([&] {
        try {
            for (uint64_t i = 0; i < 100; ++i) {
                producer.produce("s", std::string(4000, 'v'), i);
                ++produced;
            }
        } catch (const WriterStopped&) {
        }
    });
    std::this_thread::sleep_for(2s);
    EXPECT_LT(produced.load(), 40u) << "100 x 4KB must not fit a 64KB budget while brokers are down";
    cluster().setAllBrokersUp();
    feeder.join();
    EXPECT_EQ(produced.load(), 100u);
    ASSERT_TRUE(producer.flush(30s));
    EXPECT_EQ(acked().size(), 100u);
}

TEST_F(OrderedProducerTest, TopicAutoCreateKeepsAnExistingTopic) {
    cluster().createTopic("existing", 2);
    auto settings = settingsFor("existing");
    settings.topic_auto_create = true;
    settings.topic_partitions = 6;
    OrderedProducer producer(settings, recordAcks());
    EXPECT_NO_THROW(producer.ensureTopicExists(5s));
}

TEST_F(OrderedProducerTest, TopicAutoCreateFailureNamesTheSetting) {
    // The mock cluster does not implement CreateTopics: the request goes unanswered, as with a broker that
    // forbids it, and start-up must fail with a clear error instead of hanging.
    auto settings = settingsFor("missing");
    settings.topic_auto_create = true;
    OrderedProducer producer(settings, recordAcks());
    try {
        producer.ensureTopicExists(1500ms);
        FAIL() << "creating a topic on the mock cluster cannot succeed";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("PGSTREAM_KAFKA_TOPIC_AUTO_CREATE"), std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find("'missing'"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace pgstream::kafka
