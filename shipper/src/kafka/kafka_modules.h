// The Kafka modules on the module contract (pipeline/module.h): the writer (output "kafka writer", YAML
// target.kafka) and the reader (source "kafka listener", YAML source.kafka).
#pragma once

namespace pgstream::kafka {

// Registers both; idempotent. Called by register_builtin_modules().
void register_kafka_modules();

}  // namespace pgstream::kafka
