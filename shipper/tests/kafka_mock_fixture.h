// Test support for Kafka: an in-process librdkafka mock cluster per test (real Kafka protocol over
// localhost), fault injection, and a plain reader that returns everything in a topic.
#pragma once

#include <gtest/gtest.h>
#include <librdkafka/rdkafkacpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kafka-mock/mock_cluster.h"

namespace pgstream::kafka::testing {

constexpr int16_t kProduceApiKey = 0;
constexpr int16_t kOffsetCommitApiKey = 8;

struct TopicRecord {
    int32_t partition = -1;
    int64_t offset = -1;
    std::string key;
    std::string value;
};

class KafkaMockTest : public ::testing::Test {
  protected:
    virtual int brokerCount() const { return 3; }

    void SetUp() override { cluster_ = std::make_unique<MockCluster>(brokerCount()); }
    void TearDown() override { cluster_.reset(); }

    MockCluster& cluster() { return *cluster_; }
    std::string servers() const { return cluster_->bootstrapServers(); }

    // Reads partitions 0..partitions-1 of `topic` from the start until `expected` records arrived or the
    // timeout passed, then for `settle` more so that extra (duplicate) records would show up too.
    std::vector<TopicRecord> readTopic(const std::string& topic, int partitions, size_t expected,
                                       std::chrono::milliseconds timeout = std::chrono::seconds(20),
                                       std::chrono::milliseconds settle = std::chrono::milliseconds(300)) {
        std::string error;
        std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
        conf->set("bootstrap.servers", servers(), error);
        conf->set("group.id", "pgstream-test-reader", error);
        conf->set("enable.auto.commit", "false", error);
        conf->set("enable.partition.eof", "false", error);
        std::unique_ptr<RdKafka::KafkaConsumer> consumer(RdKafka::KafkaConsumer::create(conf.get(), error));
        if (!consumer) {
            ADD_FAILURE() << "cannot create test consumer: " << error;
            return {};
        }
        std::vector<RdKafka::TopicPartition*> assignment;
        for (int p = 0; p < partitions; ++p) {
            assignment.push_back(RdKafka::TopicPartition::create(topic, p, RdKafka::Topic::OFFSET_BEGINNING));
        }
        consumer->assign(assignment);
        RdKafka::TopicPartition::destroy(assignment);

        std::vector<TopicRecord> records;
        auto deadline = std::chrono::steady_clock::now() + timeout;
        bool settling = false;
        while (std::chrono::steady_clock::now() < deadline) {
            std::unique_ptr<RdKafka::Message> message(consumer->consume(100));
            if (message->err() == RdKafka::ERR_NO_ERROR) {
                TopicRecord record;
                record.partition = message->partition();
                record.offset = message->offset();
                if (message->key() != nullptr) record.key = *message->key();
                record.value.assign(static_cast<const char*>(message->payload()), message->len());
                records.push_back(std::move(record));
            }
            if (!settling && records.size() >= expected) {
                settling = true;
                deadline = std::chrono::steady_clock::now() + settle;
            }
        }
        consumer->close();
        return records;
    }

  private:
    std::unique_ptr<MockCluster> cluster_;
};

}  // namespace pgstream::kafka::testing
