#include "kafka/kafka_modules.h"

#include <memory>

#include "kafka/kafka_config.h"
#include "kafka/kafka_listener.h"
#include "kafka/kafka_writer.h"
#include "pipeline/module.h"
#include "processor/backoff.h"

namespace pgstream::kafka {

namespace {

class KafkaSource : public Source {
  public:
    KafkaSource(ReaderSettings settings, StopToken stop)
        : settings_(std::move(settings)), stop_(std::move(stop)) {}

    std::string name() const override { return "kafka listener"; }
    Acknowledger& acknowledger() override { return checkpointer_; }

    std::string run(Processor& head) override {
        if (stop_.stop_requested()) return {};
        KafkaListener listener(settings_, head, checkpointer_, stop_);
        if (metrics_) listener.instrument(*metrics_);
        return listener.run();
    }

    void stop() override { stop_.request_stop(); }
    void observe(Metrics& metrics) override { metrics_ = &metrics; }

  private:
    Metrics* metrics_ = nullptr;  // set when something reads metrics
    ReaderSettings settings_;
    StopToken stop_;
    KafkaCheckpointer checkpointer_;
};

// Settings both modules read: the connection and the topic.
std::vector<Setting> connection_settings() {
    return {
        {"PGSTREAM_KAFKA_SERVERS", "", "comma-separated bootstrap brokers (host:port)"},
        {"PGSTREAM_KAFKA_TOPIC_NAME", "", "the topic written or read"},
        {"PGSTREAM_KAFKA_TLS_ENABLED", "false", "connect with TLS"},
        {"PGSTREAM_KAFKA_TLS_CA_CERT_FILE", "", "CA certificate (PEM)"},
        {"PGSTREAM_KAFKA_TLS_CLIENT_CERT_FILE", "", "client certificate (PEM), with the key"},
        {"PGSTREAM_KAFKA_TLS_CLIENT_KEY_FILE", "", "client key (PEM), with the certificate"},
    };
}

// YAML source.kafka / target.kafka: keys under the section name the PGSTREAM_KAFKA_* setting.
std::string kafka_key(const std::string& rest) {
    return "PGSTREAM_KAFKA_" + rest;
}

}  // namespace

void register_kafka_modules() {
    OutputModule writer;
    writer.name = "kafka writer";
    writer.settings = connection_settings();
    writer.settings.insert(
        writer.settings.end(),
        {
            {"PGSTREAM_KAFKA_TOPIC_PARTITIONS", "1", "partitions of an auto-created topic"},
            {"PGSTREAM_KAFKA_TOPIC_REPLICATION_FACTOR", "1", "replication factor of an auto-created topic"},
            {"PGSTREAM_KAFKA_TOPIC_AUTO_CREATE", "false", "create the topic at start-up unless it exists"},
            {"PGSTREAM_KAFKA_WRITER_BATCH_TIMEOUT", "1s", "longest wait of an open batch"},
            {"PGSTREAM_KAFKA_WRITER_BATCH_BYTES", "1572864", "bytes per batch"},
            {"PGSTREAM_KAFKA_WRITER_BATCH_SIZE", "100", "events per batch"},
            {"PGSTREAM_KAFKA_WRITER_MAX_QUEUE_BYTES", "100MiB", "memory budget of the writer"},
            {"PGSTREAM_KAFKA_WRITER_MAX_MESSAGE_BYTES", "1000000", "largest record the writer produces"},
            {"PGSTREAM_KAFKA_WRITER_OVERSIZED_RECORD_FILE", "",
             "where larger records go instead of stopping"},
            {"PGSTREAM_KAFKA_WRITER_FLUSH_TIMEOUT", "30s", "longest wait for deliveries on shutdown"},
        });
    writer.yaml = YamlSection{"target", "kafka",
                              [](const std::string& rest) -> std::string {
                                  if (rest == "BATCH_MAX_QUEUE_BYTES" || rest == "MAX_QUEUE_BYTES")
                                      return "PGSTREAM_KAFKA_WRITER_MAX_QUEUE_BYTES";
                                  if (rest.rfind("BATCH_", 0) == 0) return "PGSTREAM_KAFKA_WRITER_" + rest;
                                  return kafka_key(rest);
                              },
                              ""};
    writer.configured = [](const Config& config) { return kafkaWriterConfigured(config); };
    writer.validate = [](const Config& config) { writerSettingsFromConfig(config); };
    writer.create = [](const Config& config, Acknowledger& acknowledger,
                       RuntimeContext& context) -> std::unique_ptr<Processor> {
        // No broker is contacted here: a broker that is down is the writer's runtime condition (start()).
        return std::make_unique<KafkaWriter>(writerSettingsFromConfig(config), acknowledger, context.stop(),
                                             context.output_metrics("kafka-batch-writer"));
    };
    register_output_module(std::move(writer));

    SourceModule reader;
    reader.name = "kafka listener";
    reader.settings = connection_settings();
    reader.settings.insert(
        reader.settings.end(),
        {
            {"PGSTREAM_KAFKA_READER_CONSUMER_GROUP_ID", "", "consumer group (selects this source)"},
            {"PGSTREAM_KAFKA_READER_CONSUMER_GROUP_START_OFFSET", "earliest",
             "where a new group starts: earliest or latest"},
            {"PGSTREAM_KAFKA_READER_COMMIT_INTERVAL", "1s", "interval of offset commits"},
            {"PGSTREAM_KAFKA_READER_MAX_IN_FLIGHT_BYTES", "100MiB", "bytes read and not yet acknowledged"},
        });
    for (const auto& key : backoff_keys("PGSTREAM_KAFKA_COMMIT"))
        reader.settings.push_back({key, "", "retry policy of offset commits (see docs/configuration.md)"});
    reader.yaml = YamlSection{"source", "kafka",
                              [](const std::string& rest) -> std::string {
                                  if (rest == "CONSUMER_GROUP_ID")
                                      return "PGSTREAM_KAFKA_READER_CONSUMER_GROUP_ID";
                                  if (rest == "CONSUMER_GROUP_START_OFFSET")
                                      return "PGSTREAM_KAFKA_READER_CONSUMER_GROUP_START_OFFSET";
                                  return kafka_key(rest);
                              },
                              ""};
    reader.configured = [](const Config& config) { return kafkaListenerConfigured(config); };
    reader.validate = [](const Config& config) { readerSettingsFromConfig(config); };
    reader.create = [](const Config& config, RuntimeContext& context) -> std::unique_ptr<Source> {
        return std::make_unique<KafkaSource>(readerSettingsFromConfig(config), context.stop());
    };
    register_source_module(std::move(reader));
}

}  // namespace pgstream::kafka
