// PGSTREAM_KAFKA_* configuration → typed Kafka settings (see docs/kafka.md for every key and default).
#pragma once

#include "config/config.h"
#include "kafka/kafka_settings.h"

namespace pgstream::kafka {

// The Kafka listener is selected by its consumer group (a PostgreSQL listener URL as well is a conflict that
// Config::check_conflicts refuses); the Kafka writer by the servers, unless a consumer group is set (reading
// and writing one topic in one process would feed the stream back into itself).
bool kafkaListenerConfigured(const Config& config);
bool kafkaWriterConfigured(const Config& config);

// Throw ConfigError naming the key on a missing or bad value.
WriterSettings writerSettingsFromConfig(const Config& config);
ReaderSettings readerSettingsFromConfig(const Config& config);

}  // namespace pgstream::kafka
