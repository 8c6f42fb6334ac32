#include "processor/dead_letter.h"

#include <chrono>
#include <ctime>

#include "wal/json.h"
#include "wal/record_parser.h"

namespace pgstream {

const char* delivery_name(Delivery delivery) {
    switch (delivery) {
        case Delivery::kDelivered:
            return "delivered";
        case Delivery::kSkipped:
            return "skipped";
        case Delivery::kRetry:
            return "retry";
        case Delivery::kGiveUp:
            return "given_up";
        case Delivery::kFatal:
            return "fatal";
        case Delivery::kPending:
            return "pending";
    }
    return "unknown";
}

namespace {

// RFC 3339 in UTC with milliseconds.
std::string utc_now() {
    auto now = std::chrono::system_clock::now();
    std::time_t seconds = std::chrono::system_clock::to_time_t(now);
    auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char text[32];
    size_t length = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
    std::snprintf(text + length, sizeof text - length, ".%03dZ", int(millis));
    return text;
}

}  // namespace

DeadLetterFile::DeadLetterFile(const std::string& path, std::string output)
    : output_(std::move(output)), sink_(LineSink::open_file(path, 0600)) {}

void DeadLetterFile::write(const Event& event, const EventResult& result, int attempts) {
    std::lock_guard<std::mutex> lock(mutex_);
    line_.clear();
    line_ += "{\"output\":";
    append_json_string(line_, output_);
    line_ +=
        ",\"failed_at\":\"" + utc_now() + "\",\"status\":" + std::to_string(result.status) + ",\"reason\":";
    append_json_string(line_, result.reason);
    line_ += ",\"attempts\":" + std::to_string(attempts) + ",\"event\":";
    append_event_json(line_, event);
    line_ += "}\n";
    sink_.write_all(line_);
    sink_.sync();
}

}  // namespace pgstream
