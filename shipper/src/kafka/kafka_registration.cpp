// Plugs the Kafka writer (output) and the Kafka reader (source) into `pgstream run`.
#include <memory>
#include <mutex>

#include "kafka/kafka_config.h"
#include "kafka/kafka_listener.h"
#include "kafka/kafka_writer.h"
#include "pipeline/registry.h"

namespace pgstream::kafka {

namespace {

class KafkaSource : public Source {
  public:
    KafkaSource(ReaderSettings settings, std::chrono::milliseconds drain_timeout)
        : settings_(std::move(settings)), drain_timeout_(drain_timeout) {}

    std::string name() const override { return "kafka listener"; }
    Acknowledger& acknowledger() override { return checkpointer_; }

    std::string run(Processor& head) override {
        KafkaListener listener(settings_, head, checkpointer_, drain_timeout_);
        {
            std::lock_guard lock(mutex_);
            if (stopped_) return {};
            listener_ = &listener;
        }
        std::string error = listener.run();
        std::lock_guard lock(mutex_);
        listener_ = nullptr;
        return error;
    }

    void stop() override {
        std::lock_guard lock(mutex_);
        stopped_ = true;
        if (listener_ != nullptr) listener_->stop();
    }

  private:
    ReaderSettings settings_;
    std::chrono::milliseconds drain_timeout_;
    KafkaCheckpointer checkpointer_;
    std::mutex mutex_;
    bool stopped_ = false;
    KafkaListener* listener_ = nullptr;
};

struct KeyRegistration {
    KeyRegistration() { registerKafkaConfigKeys(); }
};

const KeyRegistration kafka_keys;

const OutputRegistration kafka_writer({
    "kafka writer",
    [](const Config& config) { return kafkaWriterConfigured(config); },
    [](const Config& config, Acknowledger& acknowledger) -> std::unique_ptr<Processor> {
        WriterSettings settings = writerSettingsFromConfig(config);
        try {
            return std::make_unique<KafkaWriter>(settings, acknowledger);
        } catch (const std::runtime_error& e) {
            throw ConfigError("PGSTREAM_KAFKA_SERVERS", e.what());
        }
    },
});

const SourceRegistration kafka_source({
    "kafka listener",
    [](const Config& config) { return kafkaListenerConfigured(config); },
    [](const Config& config) -> std::unique_ptr<Source> {
        return std::make_unique<KafkaSource>(
            readerSettingsFromConfig(config),
            config.get_duration("PGSTREAM_SHUTDOWN_DRAIN_TIMEOUT", std::chrono::milliseconds(30000)));
    },
});

}  // namespace

}  // namespace pgstream::kafka
