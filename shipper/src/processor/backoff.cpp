#include "processor/backoff.h"

#include <algorithm>

namespace pgstream {

std::optional<std::chrono::milliseconds> BackoffSettings::delayBeforeRetry(unsigned attempt) const {
    if (kind == Kind::kNone) return std::nullopt;
    if (max_retries != 0 && attempt > max_retries) return std::nullopt;
    if (kind == Kind::kConstant) return initial_interval;
    std::chrono::milliseconds delay = initial_interval;
    for (unsigned i = 1; i < attempt; ++i) {
        delay *= 2;
        if (max_interval.count() > 0 && delay >= max_interval) return max_interval;
    }
    if (max_interval.count() > 0) delay = std::min(delay, max_interval);
    return delay;
}

std::vector<std::string> backoff_keys(const std::string& prefix) {
    return {prefix + "_EXP_BACKOFF_INITIAL_INTERVAL", prefix + "_EXP_BACKOFF_MAX_INTERVAL",
            prefix + "_EXP_BACKOFF_MAX_RETRIES", prefix + "_BACKOFF_INTERVAL",
            prefix + "_BACKOFF_MAX_RETRIES"};
}

BackoffSettings parse_backoff(const Config& config, const std::string& prefix) {
    const std::string exp = prefix + "_EXP_BACKOFF_";
    const std::string constant_prefix = prefix + "_BACKOFF_";
    const bool exponential = config.has(exp + "INITIAL_INTERVAL") || config.has(exp + "MAX_INTERVAL") ||
                             config.has(exp + "MAX_RETRIES");
    const bool constant =
        config.has(constant_prefix + "INTERVAL") || config.has(constant_prefix + "MAX_RETRIES");
    BackoffSettings backoff;
    if (exponential && constant) {
        throw ConfigError(constant_prefix + "INTERVAL", "give either the exponential (" + exp +
                                                            "*) or the constant (" + constant_prefix +
                                                            "*) retry policy, not both");
    }
    if (exponential) {
        backoff.initial_interval =
            config.get_duration(exp + "INITIAL_INTERVAL", std::chrono::milliseconds(0));
        backoff.max_interval = config.get_duration(exp + "MAX_INTERVAL", std::chrono::milliseconds(0));
        backoff.max_retries = static_cast<unsigned>(config.get_int(exp + "MAX_RETRIES", 0, 0, 1000000));
        // An exponential policy needs a start; zero would retry in a busy loop.
        if (backoff.initial_interval.count() == 0) backoff.initial_interval = std::chrono::milliseconds(100);
        backoff.kind = BackoffSettings::Kind::kExponential;
    } else if (constant) {
        backoff.initial_interval =
            config.get_duration(constant_prefix + "INTERVAL", std::chrono::milliseconds(0));
        backoff.max_retries =
            static_cast<unsigned>(config.get_int(constant_prefix + "MAX_RETRIES", 0, 0, 1000000));
        backoff.kind = BackoffSettings::Kind::kConstant;
    }
    return backoff;
}

}  // namespace pgstream
