// Typed Kafka settings (filled by the config module from PGSTREAM_KAFKA_* variables) and their mapping onto
// librdkafka configuration properties.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "processor/backoff.h"

namespace RdKafka {
class Conf;
}


namespace pgstream::kafka {

struct TlsSettings {
    bool enabled = false;          // PGSTREAM_KAFKA_TLS_ENABLED
    std::string ca_cert_file;      // PGSTREAM_KAFKA_TLS_CA_CERT_FILE (required when enabled)
    std::string client_cert_file;  // PGSTREAM_KAFKA_TLS_CLIENT_CERT_FILE
    std::string client_key_file;   // PGSTREAM_KAFKA_TLS_CLIENT_KEY_FILE
};

struct ConnectionSettings {
    std::string servers;  // PGSTREAM_KAFKA_SERVERS, comma-separated host:port
    std::string topic;    // PGSTREAM_KAFKA_TOPIC_NAME
    TlsSettings tls;
    // Raw librdkafka properties applied last (library users and tests; e.g. "debug").
    std::map<std::string, std::string> librdkafka_overrides;
};

// What the writer does with a record larger than max_message_bytes.
enum class OversizedRecordPolicy {
    // Stop: the record is reported and counted, the writer refuses further records and the checkpoint never
    // moves past it, so a restart (after raising the limits) resumes with it. The default.
    kFail,
    // Append the record to oversized_record_file (JSON line, fsynced) and acknowledge it in order.
    kWriteToFile,
};

struct WriterSettings {
    ConnectionSettings connection;
    bool topic_auto_create = false;                 // PGSTREAM_KAFKA_TOPIC_AUTO_CREATE
    int topic_partitions = 1;                       // PGSTREAM_KAFKA_TOPIC_PARTITIONS
    int topic_replication_factor = 1;               // PGSTREAM_KAFKA_TOPIC_REPLICATION_FACTOR
    std::chrono::milliseconds batch_timeout{1000};  // PGSTREAM_KAFKA_WRITER_BATCH_TIMEOUT
    size_t batch_bytes = 1572864;                   // PGSTREAM_KAFKA_WRITER_BATCH_BYTES
    size_t batch_size = 100;                        // PGSTREAM_KAFKA_WRITER_BATCH_SIZE
    size_t max_queue_bytes = 100u << 20;            // PGSTREAM_KAFKA_WRITER_MAX_QUEUE_BYTES
    // Largest record (key + value) the writer sends: Kafka's message.max.bytes default. Must not exceed the
    // topic's max.message.bytes, or the broker refuses the batch and the writer stops.
    size_t max_message_bytes = 1000000;  // PGSTREAM_KAFKA_WRITER_MAX_MESSAGE_BYTES
    OversizedRecordPolicy oversized_policy = OversizedRecordPolicy::kFail;
    std::string oversized_record_file;  // PGSTREAM_KAFKA_WRITER_OVERSIZED_RECORD_FILE (sets kWriteToFile)
    // The librdkafka linger: pgstream owns the batching, this only coalesces what one batch hands over.
    std::chrono::milliseconds linger{5};
    // On shutdown, how long flush() waits for Kafka (e.g. during an outage) before giving up; what is not
    // delivered by then stays unacknowledged and is sent again after a restart.
    std::chrono::milliseconds flush_timeout{30000};  // PGSTREAM_KAFKA_WRITER_FLUSH_TIMEOUT
};

enum class StartOffset { kEarliest, kLatest };

struct ReaderSettings {
    ConnectionSettings connection;
    std::string consumer_group_id;                      // PGSTREAM_KAFKA_READER_CONSUMER_GROUP_ID
    StartOffset start_offset = StartOffset::kEarliest;  // PGSTREAM_KAFKA_READER_CONSUMER_GROUP_START_OFFSET
    BackoffSettings commit_backoff;                     // PGSTREAM_KAFKA_COMMIT_[EXP_]BACKOFF_*
    // How often acknowledged offsets are committed while consuming (they are also committed on revoke/close).
    std::chrono::milliseconds commit_interval{1000};
    // Bound on consumed-but-unacknowledged record bytes before the reader stops fetching.
    size_t max_in_flight_bytes = 100u << 20;
};

// Empty when valid, else one line per problem, each naming the variable.
std::vector<std::string> validate(const WriterSettings& settings);
std::vector<std::string> validate(const ReaderSettings& settings);

// Sets bootstrap servers, TLS and overrides on `conf`; throws std::runtime_error naming the bad property.
void applyConnectionSettings(const ConnectionSettings& settings, RdKafka::Conf& conf);
// Sets one property or throws std::runtime_error naming it.
void setProperty(RdKafka::Conf& conf, const std::string& name, const std::string& value);

}  // namespace pgstream::kafka
