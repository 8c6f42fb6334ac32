#include "observability/instrumented_processor.h"

#include <ctime>

namespace pgstream {

namespace {

bool read_digits(const std::string& text, size_t& at, size_t count, int& value) {
    if (at + count > text.size()) return false;
    value = 0;
    for (size_t i = 0; i < count; ++i) {
        char c = text[at + i];
        if (c < '0' || c > '9') return false;
        value = value * 10 + (c - '0');
    }
    at += count;
    return true;
}

bool expect_char(const std::string& text, size_t& at, char expected) {
    if (at >= text.size() || text[at] != expected) return false;
    ++at;
    return true;
}

size_t action_index(Action action) {
    switch (action) {
        case Action::Insert:
            return 0;
        case Action::Update:
            return 1;
        case Action::Delete:
            return 2;
        case Action::Truncate:
            return 3;
        case Action::Message:
            return 4;
    }
    return 4;
}

}  // namespace

std::optional<double> parse_commit_time(const std::string& text) {
    size_t at = 0;
    int year, month, day, hour, minute, second;
    if (!read_digits(text, at, 4, year) || !expect_char(text, at, '-') || !read_digits(text, at, 2, month) ||
        !expect_char(text, at, '-') || !read_digits(text, at, 2, day) || !expect_char(text, at, ' ') ||
        !read_digits(text, at, 2, hour) || !expect_char(text, at, ':') || !read_digits(text, at, 2, minute) ||
        !expect_char(text, at, ':') || !read_digits(text, at, 2, second))
        return std::nullopt;
    double fraction = 0;
    if (at < text.size() && text[at] == '.') {
        double scale = 0.1;
        for (++at; at < text.size() && text[at] >= '0' && text[at] <= '9'; ++at, scale /= 10)
            fraction += (text[at] - '0') * scale;
    }
    if (at >= text.size() || (text[at] != '+' && text[at] != '-')) return std::nullopt;
    int sign = text[at++] == '-' ? -1 : 1;
    int offset_hours, offset_minutes = 0, offset_seconds = 0;
    if (!read_digits(text, at, 2, offset_hours)) return std::nullopt;
    if (at < text.size() && !(expect_char(text, at, ':') && read_digits(text, at, 2, offset_minutes)))
        return std::nullopt;
    if (at < text.size() && !(expect_char(text, at, ':') && read_digits(text, at, 2, offset_seconds)))
        return std::nullopt;
    if (at != text.size()) return std::nullopt;
    std::tm fields{};
    fields.tm_year = year - 1900;
    fields.tm_mon = month - 1;
    fields.tm_mday = day;
    fields.tm_hour = hour;
    fields.tm_min = minute;
    fields.tm_sec = second;
    time_t utc = timegm(&fields);
    return double(utc) + fraction - sign * (offset_hours * 3600 + offset_minutes * 60 + offset_seconds);
}

InstrumentedProcessor::InstrumentedProcessor(Processor& inner, std::string target, Metrics& metrics)
    : inner_(inner),
      lag_(metrics.histogram("pgstream.target.processing.lag", "s",
                             "Time from an event's commit to its output taking it",
                             Metrics::latency_buckets(), {{"target", target}})),
      latency_(
          metrics.histogram("pgstream.target.processing.latency", "s",
                            "Time an output takes to accept an event (includes waiting for its memory guard)",
                            Metrics::latency_buckets(), {{"target", target}})) {
    const char* actions[] = {"insert", "update", "delete", "truncate", "message"};
    for (size_t i = 0; i < events_by_action_.size(); ++i)
        events_by_action_[i] =
            &metrics.counter("pgstream.target.events", "{event}", "Events handed to an output",
                             {{"target", target}, {"action", actions[i]}});
}

void InstrumentedProcessor::process(EventPtr event) {
    auto started = std::chrono::system_clock::now();
    events_by_action_[action_index(event->action)]->Increment();
    if (!event->timestamp.empty()) {
        if (event->timestamp != last_commit_text_) {
            last_commit_text_ = event->timestamp;
            last_commit_time_ = parse_commit_time(event->timestamp);
        }
        if (last_commit_time_) {
            double now = std::chrono::duration<double>(started.time_since_epoch()).count();
            lag_.Observe(std::max(0.0, now - *last_commit_time_));
        }
    }
    inner_.process(std::move(event));
    latency_.Observe(std::chrono::duration<double>(std::chrono::system_clock::now() - started).count());
}

}  // namespace pgstream
