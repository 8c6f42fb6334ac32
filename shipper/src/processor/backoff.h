// The retry policy every module shares, set the way the Go pgstream sets it: exponential
// (<PREFIX>_EXP_BACKOFF_INITIAL_INTERVAL, _MAX_INTERVAL, _MAX_RETRIES) or constant
// (<PREFIX>_BACKOFF_INTERVAL, _MAX_RETRIES). Config::check_conflicts refuses both at once.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"

namespace pgstream {

struct BackoffSettings {
    enum class Kind { kNone, kExponential, kConstant };
    Kind kind = Kind::kNone;
    std::chrono::milliseconds initial_interval{0};  // exponential: first wait; constant: every wait
    std::chrono::milliseconds max_interval{0};      // exponential only; 0 = no cap
    unsigned max_retries = 0;                       // 0 with a policy = retry forever

    // Wait before retry number `attempt` (1-based), or nullopt when no retry is allowed.
    std::optional<std::chrono::milliseconds> delayBeforeRetry(unsigned attempt) const;
};

// Reads `prefix`_EXP_BACKOFF_* or `prefix`_BACKOFF_* (e.g. prefix "PGSTREAM_KAFKA_COMMIT"); Kind::kNone when
// neither is set. Throws ConfigError naming the key on a bad value or when both are given.
BackoffSettings parse_backoff(const Config& config, const std::string& prefix);

// The five keys parse_backoff reads, for a module's settings list.
std::vector<std::string> backoff_keys(const std::string& prefix);

}  // namespace pgstream
