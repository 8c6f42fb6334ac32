// Process-wide logger: one line per message on stderr, as text or JSON.
#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace pgstream::log {

enum class Level { Trace = 0, Debug, Info, Warn, Error };
enum class Format { Text, Json };

void configure(Level level, Format format);
bool enabled(Level level);
// Writes one line; passwords in `message` are masked (util/redact.h).
void write(Level level, std::string_view message);
// Parses trace|debug|info|warn|warning|error; false when unknown.
bool parse_level(std::string_view text, Level& level);

template <typename... Args>
void emit(Level level, Args&&... args) {
    if (!enabled(level)) return;
    std::ostringstream stream;
    (stream << ... << args);
    write(level, stream.str());
}

template <typename... Args> void trace(Args&&... args) { emit(Level::Trace, std::forward<Args>(args)...); }
template <typename... Args> void debug(Args&&... args) { emit(Level::Debug, std::forward<Args>(args)...); }
template <typename... Args> void info(Args&&... args) { emit(Level::Info, std::forward<Args>(args)...); }
template <typename... Args> void warn(Args&&... args) { emit(Level::Warn, std::forward<Args>(args)...); }
template <typename... Args> void error(Args&&... args) { emit(Level::Error, std::forward<Args>(args)...); }

}  // namespace pgstream::log
