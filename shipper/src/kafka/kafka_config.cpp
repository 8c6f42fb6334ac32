#include "kafka/kafka_config.h"

#include <algorithm>
#include <cctype>

namespace pgstream::kafka {

namespace {

std::string lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    return text;
}

// validate() names the key first ("PGSTREAM_X must ..."); keep that as the ConfigError's key.
[[noreturn]] void throwFirstProblem(const std::vector<std::string>& problems) {
    const std::string& problem = problems.front();
    const std::string key = problem.substr(0, problem.find_first_of(" :"));
    std::string why = problem.substr(key.size());
    why.erase(0, why.find_first_not_of(" :"));
    throw ConfigError(key, why);
}

ConnectionSettings connectionFromConfig(const Config& config) {
    ConnectionSettings connection;
    auto servers = config.get_list("PGSTREAM_KAFKA_SERVERS");
    for (size_t i = 0; i < servers.size(); ++i) {
        if (i != 0) connection.servers += ',';
        connection.servers += servers[i];
    }
    if (connection.servers.empty()) throw ConfigError("PGSTREAM_KAFKA_SERVERS", "is required");
    connection.topic = config.get_string("PGSTREAM_KAFKA_TOPIC_NAME");
    if (connection.topic.empty()) throw ConfigError("PGSTREAM_KAFKA_TOPIC_NAME", "is required");
    if (connection.topic.find('/') != std::string::npos) {
        throw ConfigError("PGSTREAM_KAFKA_TOPIC_NAME", "must not contain '/'");
    }
    connection.tls.enabled = config.get_bool("PGSTREAM_KAFKA_TLS_ENABLED", false);
    connection.tls.ca_cert_file = config.get_string("PGSTREAM_KAFKA_TLS_CA_CERT_FILE");
    connection.tls.client_cert_file = config.get_string("PGSTREAM_KAFKA_TLS_CLIENT_CERT_FILE");
    connection.tls.client_key_file = config.get_string("PGSTREAM_KAFKA_TLS_CLIENT_KEY_FILE");
    return connection;
}

}  // namespace

bool kafkaListenerConfigured(const Config& config) {
    // With a PostgreSQL listener URL too, Config::check_conflicts refuses the configuration.
    return config.has("PGSTREAM_KAFKA_READER_CONSUMER_GROUP_ID");
}

bool kafkaWriterConfigured(const Config& config) {
    // A consumer group means Kafka is the source, whatever else is set: never write into the topic being
    // read.
    return config.has("PGSTREAM_KAFKA_SERVERS") && !config.has("PGSTREAM_KAFKA_READER_CONSUMER_GROUP_ID");
}

WriterSettings writerSettingsFromConfig(const Config& config) {
    WriterSettings settings;
    settings.connection = connectionFromConfig(config);
    settings.topic_auto_create = config.get_bool("PGSTREAM_KAFKA_TOPIC_AUTO_CREATE", false);
    settings.topic_partitions =
        static_cast<int>(config.get_int("PGSTREAM_KAFKA_TOPIC_PARTITIONS", 1, 1, 100000));
    settings.topic_replication_factor =
        static_cast<int>(config.get_int("PGSTREAM_KAFKA_TOPIC_REPLICATION_FACTOR", 1, 1, 1000));
    settings.batch_timeout =
        config.get_duration("PGSTREAM_KAFKA_WRITER_BATCH_TIMEOUT", settings.batch_timeout);
    settings.batch_bytes = config.get_size("PGSTREAM_KAFKA_WRITER_BATCH_BYTES", settings.batch_bytes);
    settings.batch_size =
        static_cast<size_t>(config.get_int("PGSTREAM_KAFKA_WRITER_BATCH_SIZE", 100, 1, 1000000));
    settings.max_queue_bytes =
        config.get_size("PGSTREAM_KAFKA_WRITER_MAX_QUEUE_BYTES", settings.max_queue_bytes);
    settings.max_message_bytes =
        config.get_size("PGSTREAM_KAFKA_WRITER_MAX_MESSAGE_BYTES", settings.max_message_bytes);
    settings.flush_timeout =
        config.get_duration("PGSTREAM_KAFKA_WRITER_FLUSH_TIMEOUT", settings.flush_timeout);
    settings.oversized_record_file = config.get_string("PGSTREAM_KAFKA_WRITER_OVERSIZED_RECORD_FILE");
    if (!settings.oversized_record_file.empty())
        settings.oversized_policy = OversizedRecordPolicy::kWriteToFile;
    auto problems = validate(settings);
    if (!problems.empty()) throwFirstProblem(problems);
    return settings;
}

ReaderSettings readerSettingsFromConfig(const Config& config) {
    ReaderSettings settings;
    settings.connection = connectionFromConfig(config);
    settings.consumer_group_id = config.get_string("PGSTREAM_KAFKA_READER_CONSUMER_GROUP_ID");
    const std::string start =
        lower(config.get_string("PGSTREAM_KAFKA_READER_CONSUMER_GROUP_START_OFFSET", "earliest"));
    if (start == "earliest") {
        settings.start_offset = StartOffset::kEarliest;
    } else if (start == "latest") {
        settings.start_offset = StartOffset::kLatest;
    } else {
        throw ConfigError("PGSTREAM_KAFKA_READER_CONSUMER_GROUP_START_OFFSET",
                          "must be earliest or latest, got '" + start + "'");
    }
    settings.commit_backoff = parse_backoff(config, "PGSTREAM_KAFKA_COMMIT");
    settings.commit_interval =
        config.get_duration("PGSTREAM_KAFKA_READER_COMMIT_INTERVAL", settings.commit_interval);
    if (settings.commit_interval.count() < 1) {
        throw ConfigError("PGSTREAM_KAFKA_READER_COMMIT_INTERVAL", "must be at least 1ms");
    }
    settings.max_in_flight_bytes =
        config.get_size("PGSTREAM_KAFKA_READER_MAX_IN_FLIGHT_BYTES", settings.max_in_flight_bytes);
    auto problems = validate(settings);
    if (!problems.empty()) throwFirstProblem(problems);
    return settings;
}

}  // namespace pgstream::kafka
