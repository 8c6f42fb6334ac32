// An in-process librdkafka mock cluster (a test tool, not part of libpgstream): real Kafka protocol on
// localhost listeners, used by the `pgstream-kafka-mock` tool, the Kafka tests and the Kafka benchmark.
#pragma once

#include <cstdint>
#include <string>

struct rd_kafka_s;
struct rd_kafka_mock_cluster_s;

namespace pgstream::kafka {

class MockCluster {
  public:
    // Broker ids are 1..broker_count. Throws std::runtime_error when librdkafka cannot start it.
    explicit MockCluster(int broker_count);
    ~MockCluster();
    MockCluster(const MockCluster&) = delete;
    MockCluster& operator=(const MockCluster&) = delete;

    // Comma-separated host:port list to use as bootstrap.servers.
    std::string bootstrapServers() const;
    int brokerCount() const { return broker_count_; }

    void createTopic(const std::string& topic, int partitions, int replication_factor = 1);

    // Fault injection. A broker that is down drops its connections and refuses new ones; its partitions keep
    // their leader, so clients must wait for it to come back.
    void setBrokerDown(int32_t broker_id);
    void setBrokerUp(int32_t broker_id);
    void setAllBrokersDown();
    void setAllBrokersUp();
    void setBrokerRoundTripMs(int32_t broker_id, int rtt_ms);
    // The next `count` requests of protocol `api_key` (e.g. 0 = Produce, 8 = OffsetCommit) fail with `error`
    // (an rd_kafka_resp_err_t value).
    void pushRequestErrors(int16_t api_key, int count, int error);
    void clearRequestErrors(int16_t api_key);

  private:
    int broker_count_;
    rd_kafka_s* handle_ = nullptr;
    rd_kafka_mock_cluster_s* cluster_ = nullptr;
};

}  // namespace pgstream::kafka
