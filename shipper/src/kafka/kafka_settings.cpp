#include "kafka/kafka_settings.h"

#include <librdkafka/rdkafkacpp.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

namespace pgstream::kafka {

namespace {

void checkReadableFile(const std::string& path, const std::string& variable,
                       std::vector<std::string>& problems) {
    if (!path.empty() && access(path.c_str(), R_OK) != 0) {
        problems.push_back(variable + ": cannot read file '" + path + "'");
    }
}

void validateConnection(const ConnectionSettings& settings, std::vector<std::string>& problems) {
    if (settings.servers.empty()) problems.push_back("PGSTREAM_KAFKA_SERVERS is required");
    if (settings.topic.empty()) problems.push_back("PGSTREAM_KAFKA_TOPIC_NAME is required");
    const TlsSettings& tls = settings.tls;
    if (tls.enabled && tls.ca_cert_file.empty()) {
        problems.push_back(
            "PGSTREAM_KAFKA_TLS_CA_CERT_FILE is required when PGSTREAM_KAFKA_TLS_ENABLED is true");
    }
    if (tls.client_cert_file.empty() != tls.client_key_file.empty()) {
        problems.push_back(
            "PGSTREAM_KAFKA_TLS_CLIENT_CERT_FILE and PGSTREAM_KAFKA_TLS_CLIENT_KEY_FILE must be given "
            "together");
    }
    if (tls.enabled) {
        checkReadableFile(tls.ca_cert_file, "PGSTREAM_KAFKA_TLS_CA_CERT_FILE", problems);
        checkReadableFile(tls.client_cert_file, "PGSTREAM_KAFKA_TLS_CLIENT_CERT_FILE", problems);
        checkReadableFile(tls.client_key_file, "PGSTREAM_KAFKA_TLS_CLIENT_KEY_FILE", problems);
    }
}

}  // namespace

std::vector<std::string> validate(const WriterSettings& settings) {
    std::vector<std::string> problems;
    validateConnection(settings.connection, problems);
    if (settings.topic_partitions < 1)
        problems.push_back("PGSTREAM_KAFKA_TOPIC_PARTITIONS must be at least 1");
    if (settings.topic_replication_factor < 1) {
        problems.push_back("PGSTREAM_KAFKA_TOPIC_REPLICATION_FACTOR must be at least 1");
    }
    if (settings.batch_size < 1) problems.push_back("PGSTREAM_KAFKA_WRITER_BATCH_SIZE must be at least 1");
    if (settings.batch_bytes < 1) problems.push_back("PGSTREAM_KAFKA_WRITER_BATCH_BYTES must be at least 1");
    if (settings.batch_timeout.count() < 1) {
        problems.push_back("PGSTREAM_KAFKA_WRITER_BATCH_TIMEOUT must be at least 1ms");
    }
    if (settings.max_queue_bytes < settings.batch_bytes) {
        problems.push_back(
            "PGSTREAM_KAFKA_WRITER_MAX_QUEUE_BYTES must be at least PGSTREAM_KAFKA_WRITER_BATCH_BYTES");
    }
    // librdkafka's own limits for message.max.bytes.
    if (settings.max_message_bytes < 1000 || settings.max_message_bytes > 1000000000) {
        problems.push_back("PGSTREAM_KAFKA_WRITER_MAX_MESSAGE_BYTES must be between 1000 and 1000000000");
    }
    if (settings.max_queue_bytes < settings.max_message_bytes) {
        problems.push_back(
            "PGSTREAM_KAFKA_WRITER_MAX_QUEUE_BYTES must be at least PGSTREAM_KAFKA_WRITER_MAX_MESSAGE_BYTES");
    }
    if (settings.oversized_policy == OversizedRecordPolicy::kWriteToFile &&
        settings.oversized_record_file.empty()) {
        problems.push_back("PGSTREAM_KAFKA_WRITER_OVERSIZED_RECORD_FILE must name a file");
    }
    return problems;
}

std::vector<std::string> validate(const ReaderSettings& settings) {
    std::vector<std::string> problems;
    validateConnection(settings.connection, problems);
    if (settings.consumer_group_id.empty())
        problems.push_back("PGSTREAM_KAFKA_READER_CONSUMER_GROUP_ID is required");
    return problems;
}

void setProperty(RdKafka::Conf& conf, const std::string& name, const std::string& value) {
    std::string error;
    if (conf.set(name, value, error) != RdKafka::Conf::CONF_OK) {
        throw std::runtime_error("kafka: invalid librdkafka setting " + name + "=" + value + ": " + error);
    }
}

void applyConnectionSettings(const ConnectionSettings& settings, RdKafka::Conf& conf) {
    setProperty(conf, "bootstrap.servers", settings.servers);
    if (settings.tls.enabled) {
        setProperty(conf, "security.protocol", "ssl");
        setProperty(conf, "ssl.ca.location", settings.tls.ca_cert_file);
        if (!settings.tls.client_cert_file.empty()) {
            setProperty(conf, "ssl.certificate.location", settings.tls.client_cert_file);
            setProperty(conf, "ssl.key.location", settings.tls.client_key_file);
        }
    }
    for (const auto& [name, value] : settings.librdkafka_overrides) setProperty(conf, name, value);
}

}  // namespace pgstream::kafka
