#include "kafka/kafka_listener.h"

#include <thread>

#include "kafka/event_codec.h"
#include "util/log.h"
#include "wal/json.h"

namespace pgstream::kafka {

uint64_t KafkaCheckpointer::track(const TopicPartitionOffset& position) {
    std::lock_guard lock(mutex_);
    const uint64_t token = next_token_++;
    tracked_.emplace(token, Tracked{position, 1});
    return token;
}

void KafkaCheckpointer::acknowledge(const Event& event) {
    TopicPartitionOffset done;
    {
        std::lock_guard lock(mutex_);
        auto it = tracked_.find(event.checkpoint_token);
        if (it == tracked_.end()) return;
        if (--it->second.remaining > 0) return;
        done = it->second.position;
        tracked_.erase(it);
    }
    watermark_.acknowledge(done);
}

void KafkaCheckpointer::retain(const Event& event, int additional) {
    std::lock_guard lock(mutex_);
    auto it = tracked_.find(event.checkpoint_token);
    if (it != tracked_.end()) it->second.remaining += additional;
}

size_t KafkaCheckpointer::inFlight() const {
    std::lock_guard lock(mutex_);
    return tracked_.size();
}

KafkaListener::KafkaListener(ReaderSettings settings, Processor& next, KafkaCheckpointer& checkpointer,
                             std::chrono::milliseconds drain_timeout)
    : next_(next),
      checkpointer_(checkpointer),
      drain_timeout_(drain_timeout),
      reader_(
          std::move(settings), checkpointer.watermark(),
          [this](const ConsumedRecord& record) { handle(record); },
          [](const std::string& message) { log::warn(message); }) {}

KafkaListener::~KafkaListener() = default;

void KafkaListener::handle(const ConsumedRecord& record) {
    ++stats_.records;
    EventPtr event;
    try {
        event = eventFromKafkaValue(record.value);
    } catch (const JsonError& e) {
        // One unreadable record must not stop the stream forever; it is reported with its position so that it
        // can be inspected, and committed past.
        ++stats_.skipped_records;
        log::error("kafka listener: skipping record ", formatPosition(record.position), " (key '", record.key,
                   "'): not a pgstream event: ", e.what());
        checkpointer_.watermark().acknowledge(record.position);
        return;
    }
    event->position = formatPosition(record.position);
    event->checkpoint_token = checkpointer_.track(record.position);
    next_.process(std::move(event));
}

std::string KafkaListener::run() {
    auto drain = [this] {
        next_.flush();
        const auto deadline = std::chrono::steady_clock::now() + drain_timeout_;
        while (checkpointer_.inFlight() > 0 && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        if (checkpointer_.inFlight() > 0) {
            log::warn("kafka listener: ", checkpointer_.inFlight(),
                      " records still unacknowledged at shutdown; they will be read again");
        }
    };
    try {
        reader_.run(drain);
    } catch (const std::exception& e) {
        return std::string("kafka listener: ") + e.what();
    }
    return {};
}

void KafkaListener::stop() {
    reader_.stop();
}

}  // namespace pgstream::kafka
