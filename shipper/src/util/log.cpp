#include "util/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "util/redact.h"
#include "wal/json.h"

namespace pgstream::log {

namespace {

std::atomic<int> g_level{static_cast<int>(Level::Info)};
std::atomic<int> g_format{static_cast<int>(Format::Text)};
std::mutex g_mutex;

const char* level_name(Level level) {
    switch (level) {
        case Level::Trace: return "trace";
        case Level::Debug: return "debug";
        case Level::Info: return "info";
        case Level::Warn: return "warn";
        case Level::Error: return "error";
    }
    return "info";
}

std::string now_text() {
    auto now = std::chrono::system_clock::now();
    auto seconds = std::chrono::system_clock::to_time_t(now);
    auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                  utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, int(millis));
    return buffer;
}

}  // namespace

void configure(Level level, Format format) {
    g_level = static_cast<int>(level);
    g_format = static_cast<int>(format);
}

bool enabled(Level level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }

void write(Level level, std::string_view raw_message) {
    const std::string message = redact::scrub(raw_message);
    std::string line;
    if (static_cast<Format>(g_format.load()) == Format::Json) {
        line = "{\"time\":\"" + now_text() + "\",\"level\":\"" + level_name(level) + "\",\"message\":";
        append_json_string(line, message);
        line += "}\n";
    } else {
        line = now_text() + " " + level_name(level) + " " + std::string(message) + "\n";
    }
    std::lock_guard<std::mutex> lock(g_mutex);
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

bool parse_level(std::string_view text, Level& level) {
    if (text == "trace") level = Level::Trace;
    else if (text == "debug") level = Level::Debug;
    else if (text == "info") level = Level::Info;
    else if (text == "warn" || text == "warning") level = Level::Warn;
    else if (text == "error") level = Level::Error;
    else return false;
    return true;
}

}  // namespace pgstream::log
