// PGSTREAM_KAFKA_* → typed settings and librdkafka properties; bad values name the variable.
#include <gtest/gtest.h>
#include <librdkafka/rdkafkacpp.h>

#include <fstream>

#include "kafka/kafka_config.h"

namespace pgstream::kafka {
namespace {

using namespace std::chrono_literals;

Config minimalWriter() {
    return Config(std::map<std::string, std::string>{{"PGSTREAM_KAFKA_SERVERS", "a:9092, b:9092"},
                                                     {"PGSTREAM_KAFKA_TOPIC_NAME", "cdc"}});
}

std::string keyOfError(const Config& config, bool reader) {
    try {
        if (reader) {
            readerSettingsFromConfig(config);
        } else {
            writerSettingsFromConfig(config);
        }
    } catch (const ConfigError& e) {
        return e.key();
    }
    return "no error";
}

TEST(KafkaConfig, WriterDefaultsMatchTheGoRelease) {
    WriterSettings settings = writerSettingsFromConfig(minimalWriter());
    EXPECT_EQ(settings.connection.servers, "a:9092,b:9092");
    EXPECT_EQ(settings.connection.topic, "cdc");
    EXPECT_EQ(settings.batch_timeout, 1s);
    EXPECT_EQ(settings.batch_bytes, 1572864u);
    EXPECT_EQ(settings.batch_size, 100u);
    EXPECT_EQ(settings.max_queue_bytes, 100u << 20);
    EXPECT_EQ(settings.topic_partitions, 1);
    EXPECT_EQ(settings.topic_replication_factor, 1);
    EXPECT_FALSE(settings.topic_auto_create);
    EXPECT_EQ(settings.oversized_policy, OversizedRecordPolicy::kFail);
}

TEST(KafkaConfig, WriterSettingsParse) {
    Config config = minimalWriter();
    config.set("PGSTREAM_KAFKA_WRITER_BATCH_TIMEOUT", "250ms");
    config.set("PGSTREAM_KAFKA_WRITER_BATCH_BYTES", "2MiB");
    config.set("PGSTREAM_KAFKA_WRITER_BATCH_SIZE", "500");
    config.set("PGSTREAM_KAFKA_WRITER_MAX_QUEUE_BYTES", "64MiB");
    config.set("PGSTREAM_KAFKA_TOPIC_AUTO_CREATE", "true");
    config.set("PGSTREAM_KAFKA_TOPIC_PARTITIONS", "12");
    config.set("PGSTREAM_KAFKA_TOPIC_REPLICATION_FACTOR", "3");
    config.set("PGSTREAM_KAFKA_WRITER_OVERSIZED_RECORD_FILE", "/var/lib/pgstream/oversized.jsonl");
    WriterSettings settings = writerSettingsFromConfig(config);
    EXPECT_EQ(settings.batch_timeout, 250ms);
    EXPECT_EQ(settings.batch_bytes, 2u << 20);
    EXPECT_EQ(settings.batch_size, 500u);
    EXPECT_EQ(settings.max_queue_bytes, 64u << 20);
    EXPECT_TRUE(settings.topic_auto_create);
    EXPECT_EQ(settings.topic_partitions, 12);
    EXPECT_EQ(settings.topic_replication_factor, 3);
    EXPECT_EQ(settings.oversized_policy, OversizedRecordPolicy::kWriteToFile);
}

TEST(KafkaConfig, BadWriterValuesNameTheVariable) {
    Config no_topic(std::map<std::string, std::string>{{"PGSTREAM_KAFKA_SERVERS", "a:9092"}});
    EXPECT_EQ(keyOfError(no_topic, false), "PGSTREAM_KAFKA_TOPIC_NAME");
    Config small_queue = minimalWriter();
    small_queue.set("PGSTREAM_KAFKA_WRITER_MAX_QUEUE_BYTES", "1MiB");
    EXPECT_EQ(keyOfError(small_queue, false), "PGSTREAM_KAFKA_WRITER_MAX_QUEUE_BYTES");
    Config tls = minimalWriter();
    tls.set("PGSTREAM_KAFKA_TLS_ENABLED", "true");
    EXPECT_EQ(keyOfError(tls, false), "PGSTREAM_KAFKA_TLS_CA_CERT_FILE");
    tls.set("PGSTREAM_KAFKA_TLS_CA_CERT_FILE", "/nonexistent/ca.pem");
    EXPECT_EQ(keyOfError(tls, false), "PGSTREAM_KAFKA_TLS_CA_CERT_FILE");
    Config partitions = minimalWriter();
    partitions.set("PGSTREAM_KAFKA_TOPIC_PARTITIONS", "0");
    EXPECT_EQ(keyOfError(partitions, false), "PGSTREAM_KAFKA_TOPIC_PARTITIONS");
}

TEST(KafkaConfig, ReaderSettingsAndCommitBackoff) {
    Config config = minimalWriter();
    config.set("PGSTREAM_KAFKA_READER_CONSUMER_GROUP_ID", "g");
    ReaderSettings defaults = readerSettingsFromConfig(config);
    EXPECT_EQ(defaults.start_offset, StartOffset::kEarliest);
    EXPECT_EQ(defaults.commit_backoff.kind, BackoffSettings::Kind::kNone);

    config.set("PGSTREAM_KAFKA_READER_CONSUMER_GROUP_START_OFFSET", "Latest");
    config.set("PGSTREAM_KAFKA_COMMIT_EXP_BACKOFF_INITIAL_INTERVAL", "200ms");
    config.set("PGSTREAM_KAFKA_COMMIT_EXP_BACKOFF_MAX_INTERVAL", "5s");
    config.set("PGSTREAM_KAFKA_COMMIT_EXP_BACKOFF_MAX_RETRIES", "7");
    ReaderSettings settings = readerSettingsFromConfig(config);
    EXPECT_EQ(settings.start_offset, StartOffset::kLatest);
    EXPECT_EQ(settings.commit_backoff.kind, BackoffSettings::Kind::kExponential);
    EXPECT_EQ(settings.commit_backoff.initial_interval, 200ms);
    EXPECT_EQ(settings.commit_backoff.max_interval, 5s);
    EXPECT_EQ(settings.commit_backoff.max_retries, 7u);

    config.set("PGSTREAM_KAFKA_COMMIT_BACKOFF_INTERVAL", "1s");
    EXPECT_EQ(keyOfError(config, true), "PGSTREAM_KAFKA_COMMIT_BACKOFF_INTERVAL") << "two policies at once";
    Config bad_offset = minimalWriter();
    bad_offset.set("PGSTREAM_KAFKA_READER_CONSUMER_GROUP_ID", "g");
    bad_offset.set("PGSTREAM_KAFKA_READER_CONSUMER_GROUP_START_OFFSET", "middle");
    EXPECT_EQ(keyOfError(bad_offset, true), "PGSTREAM_KAFKA_READER_CONSUMER_GROUP_START_OFFSET");
}

TEST(KafkaConfig, ListenerOrWriterSelection) {
    Config writer = minimalWriter();
    EXPECT_TRUE(kafkaWriterConfigured(writer));
    EXPECT_FALSE(kafkaListenerConfigured(writer));
    Config reader = minimalWriter();
    reader.set("PGSTREAM_KAFKA_READER_CONSUMER_GROUP_ID", "g");
    EXPECT_TRUE(kafkaListenerConfigured(reader));
    EXPECT_FALSE(kafkaWriterConfigured(reader)) << "never write back into the topic being read";
    // A Postgres listener as well is refused by Config::check_conflicts; even without that check the consumer
    // group never turns into a writer into the topic it names.
    reader.set("PGSTREAM_POSTGRES_LISTENER_URL", "postgres://localhost/db");
    EXPECT_FALSE(kafkaWriterConfigured(reader));
    EXPECT_THROW(reader.check_conflicts(), ConfigError);
}

TEST(KafkaConfig, TlsMapsToLibrdkafkaProperties) {
    const std::string dir = ::testing::TempDir();
    for (const char* name : {"ca.pem", "client.pem", "client.key"}) std::ofstream(dir + "/" + name) << "x";
    ConnectionSettings connection;
    connection.servers = "a:9093";
    connection.topic = "t";
    connection.tls = {true, dir + "/ca.pem", dir + "/client.pem", dir + "/client.key"};
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    applyConnectionSettings(connection, *conf);
    std::string value;
    ASSERT_EQ(conf->get("security.protocol", value), RdKafka::Conf::CONF_OK);
    EXPECT_EQ(value, "ssl");
    ASSERT_EQ(conf->get("ssl.ca.location", value), RdKafka::Conf::CONF_OK);
    EXPECT_EQ(value, dir + "/ca.pem");
    ASSERT_EQ(conf->get("ssl.certificate.location", value), RdKafka::Conf::CONF_OK);
    EXPECT_EQ(value, dir + "/client.pem");
    ASSERT_EQ(conf->get("ssl.key.location", value), RdKafka::Conf::CONF_OK);
    EXPECT_EQ(value, dir + "/client.key");
    ASSERT_EQ(conf->get("bootstrap.servers", value), RdKafka::Conf::CONF_OK);
    EXPECT_EQ(value, "a:9093");

    WriterSettings settings;
    settings.connection = connection;
    EXPECT_TRUE(validate(settings).empty());
    settings.connection.tls.client_key_file.clear();
    ASSERT_EQ(validate(settings).size(), 1u);
    EXPECT_NE(validate(settings)[0].find("PGSTREAM_KAFKA_TLS_CLIENT_KEY_FILE"), std::string::npos);
}

}  // namespace
}  // namespace pgstream::kafka
