// Plugs the Kafka writer (output) and the Kafka reader (source) into `pgstream run`.
#include <memory>

#include "kafka/kafka_config.h"
#include "kafka/kafka_listener.h"
#include "kafka/kafka_writer.h"
#include "pipeline/registry.h"

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
        return listener.run();
    }

    void stop() override { stop_.request_stop(); }

  private:
    ReaderSettings settings_;
    StopToken stop_;
    KafkaCheckpointer checkpointer_;
};

struct KeyRegistration {
    KeyRegistration() { registerKafkaConfigKeys(); }
};

const KeyRegistration kafka_keys;

const OutputRegistration kafka_writer({
    "kafka writer",
    [](const Config& config) { return kafkaWriterConfigured(config); },
    [](const Config& config, Acknowledger& acknowledger,
       const StopToken& stop) -> std::unique_ptr<Processor> {
        WriterSettings settings = writerSettingsFromConfig(config);
        try {
            return std::make_unique<KafkaWriter>(settings, acknowledger, stop);
        } catch (const std::runtime_error& e) {
            throw ConfigError("PGSTREAM_KAFKA_SERVERS", e.what());
        }
    },
});

const SourceRegistration kafka_source({
    "kafka listener",
    [](const Config& config) { return kafkaListenerConfigured(config); },
    [](const Config& config, const StopToken& stop) -> std::unique_ptr<Source> {
        return std::make_unique<KafkaSource>(readerSettingsFromConfig(config), stop);
    },
});

}  // namespace

}  // namespace pgstream::kafka
