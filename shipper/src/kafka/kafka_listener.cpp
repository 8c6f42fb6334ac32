#include "kafka/kafka_listener.h"

#include "kafka/record_key.h"
#include "util/log.h"
#include "wal/event_codec.h"
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
        if (it == tracked_.end()) {
            if (violation_.empty())
                violation_ =
                    "kafka checkpoint: an event was acknowledged more often than it was handed out (" +
                    (event.position.empty() ? std::string("unknown position") : event.position) + ")";
            return;
        }
        if (--it->second.remaining > 0) return;
        done = it->second.position;
    }
    watermark_.acknowledge(done);
    {
        // Only now: a drain that finds nothing in flight must find every offset committable.
        std::lock_guard lock(mutex_);
        tracked_.erase(event.checkpoint_token);
    }
    drained_.notify_all();
}

void KafkaCheckpointer::withdraw(uint64_t token) {
    {
        std::lock_guard lock(mutex_);
        tracked_.erase(token);
    }
    drained_.notify_all();
}

std::string KafkaCheckpointer::fatal_error() const {
    {
        std::lock_guard lock(mutex_);
        if (!violation_.empty()) return violation_;
    }
    return watermark_.violation();
}

bool KafkaCheckpointer::waitDrained(const StopToken& stop) const {
    std::unique_lock lock(mutex_);
    return stop.wait_for_delivery(lock, drained_, [&] { return tracked_.empty(); });
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
                             StopToken stop)
    : next_(next),
      checkpointer_(checkpointer),
      stop_(stop),
      reader_(
          std::move(settings), checkpointer.watermark(),
          [this](const ConsumedRecord& record) { handle(record); },
          [](const std::string& message) { log::warn(message); }, std::move(stop)) {}

KafkaListener::~KafkaListener() = default;

void KafkaListener::handle(const ConsumedRecord& record) {
    ++stats_.records;
    MutableEventPtr event;
    try {
        event = event_from_json(record.value);
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
    const uint64_t token = checkpointer_.track(record.position);
    event->checkpoint_token = token;
    try {
        next_.process(std::move(event));
    } catch (const Stopped&) {
        // A stop ended the hand-over: not taken, its offset is not committed and it is read again. The reader
        // sees the stop and drains what the outputs did take.
        checkpointer_.withdraw(token);
    }
}

std::string KafkaListener::pipeline_error() const {
    std::string error = next_.fatal_error();
    return error.empty() ? checkpointer_.fatal_error() : error;
}

std::string KafkaListener::run() {
    bool drained = true;
    auto drain = [&] {
        next_.flush();
        drained = checkpointer_.waitDrained(stop_);
    };
    // An output that failed for good (or broken acknowledgements) ends the run, also while no record comes.
    auto check = [this] {
        std::string error = pipeline_error();
        if (!error.empty()) throw std::runtime_error(error);
    };
    std::string error;
    try {
        reader_.run(drain, check);
    } catch (const std::exception& e) {
        error = std::string("kafka listener: ") + e.what();
    }
    // The failing output names itself.
    std::string pipeline = pipeline_error();
    if (!pipeline.empty()) return pipeline;
    if (!error.empty()) return error;
    if (drained) return {};
    return "shutdown: the outputs did not deliver " + std::to_string(checkpointer_.inFlight()) +
           " records within PGSTREAM_SHUTDOWN_DRAIN_TIMEOUT (" +
           std::to_string(stop_.drain_timeout().count()) +
           "ms); their offsets are not committed and they are read again";
}

void KafkaListener::stop() {
    reader_.stop();
}

}  // namespace pgstream::kafka
