#include "kafka-mock/mock_cluster.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <stdexcept>
#include <vector>

namespace pgstream::kafka {

namespace {
void throwOnError(rd_kafka_resp_err_t err, const std::string& what) {
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        throw std::runtime_error("kafka mock cluster: " + what + ": " + rd_kafka_err2str(err));
    }
}
}  // namespace

MockCluster::MockCluster(int broker_count) : broker_count_(broker_count) {
    if (broker_count < 1) throw std::invalid_argument("kafka mock cluster: --brokers must be at least 1");
    char errstr[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    // The handle only hosts the mock cluster's threads; keep it quiet.
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
    handle_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (handle_ == nullptr) {
        rd_kafka_conf_destroy(conf);
        throw std::runtime_error(std::string("kafka mock cluster: ") + errstr);
    }
    cluster_ = rd_kafka_mock_cluster_new(handle_, broker_count);
    if (cluster_ == nullptr) {
        rd_kafka_destroy(handle_);
        throw std::runtime_error("kafka mock cluster: could not create the mock brokers");
    }
}

MockCluster::~MockCluster() {
    rd_kafka_mock_cluster_destroy(cluster_);
    rd_kafka_destroy(handle_);
}

std::string MockCluster::bootstrapServers() const {
    return rd_kafka_mock_cluster_bootstraps(cluster_);
}

void MockCluster::createTopic(const std::string& topic, int partitions, int replication_factor) {
    throwOnError(rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, replication_factor),
                 "create topic " + topic);
}

void MockCluster::setBrokerDown(int32_t broker_id) {
    throwOnError(rd_kafka_mock_broker_set_down(cluster_, broker_id), "set broker down");
}

void MockCluster::setBrokerUp(int32_t broker_id) {
    throwOnError(rd_kafka_mock_broker_set_up(cluster_, broker_id), "set broker up");
}

void MockCluster::setAllBrokersDown() {
    for (int32_t id = 1; id <= broker_count_; ++id) setBrokerDown(id);
}

void MockCluster::setAllBrokersUp() {
    for (int32_t id = 1; id <= broker_count_; ++id) setBrokerUp(id);
}

void MockCluster::setBrokerRoundTripMs(int32_t broker_id, int rtt_ms) {
    throwOnError(rd_kafka_mock_broker_set_rtt(cluster_, broker_id, rtt_ms), "set broker rtt");
}

void MockCluster::pushRequestErrors(int16_t api_key, int count, int error) {
    std::vector<rd_kafka_resp_err_t> errors(static_cast<size_t>(count),
                                            static_cast<rd_kafka_resp_err_t>(error));
    rd_kafka_mock_push_request_errors_array(cluster_, api_key, errors.size(), errors.data());
}

void MockCluster::clearRequestErrors(int16_t api_key) {
    rd_kafka_mock_clear_request_errors(cluster_, api_key);
}

}  // namespace pgstream::kafka
