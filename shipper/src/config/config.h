// Configuration: PGSTREAM_* keys from a .env-style or YAML file and the environment (the environment wins),
// with typed accessors that reject bad values with one line naming the key.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace pgstream {

class ConfigError : public std::runtime_error {
  public:
    // what() is "invalid KEY: why" when a key is given, else `why` alone.
    ConfigError(const std::string& key, const std::string& why)
        : std::runtime_error(key.empty() ? why : "invalid " + key + ": " + why), key_(key) {}
    const std::string& key() const { return key_; }

  private:
    std::string key_;
};

class Config {
  public:
    Config() = default;
    explicit Config(std::map<std::string, std::string> values) : values_(std::move(values)) {}

    // Reads `file` (.env-style, or YAML when it ends in .yaml/.yml; empty = none), then overlays every
    // PGSTREAM_* variable of `environment` (a NULL-terminated environ array; nullptr = the process's). A key
    // set twice in the file, a directory, a malformed line: ConfigError. Passwords in the values are
    // remembered for masking (util/redact.h).
    static Config load(const std::string& file, char** environment = nullptr);
    static std::map<std::string, std::string> parse_env_file(const std::string& text, const std::string& origin);
    static std::map<std::string, std::string> parse_yaml(const std::string& text, const std::string& origin);

    bool has(const std::string& key) const;
    std::optional<std::string> get(const std::string& key) const;
    std::string get_string(const std::string& key, const std::string& fallback = {}) const;
    bool get_bool(const std::string& key, bool fallback) const;
    int64_t get_int(const std::string& key, int64_t fallback, int64_t min = 0,
                    int64_t max = INT64_MAX) const;
    uint64_t get_size(const std::string& key, uint64_t fallback) const;
    std::chrono::milliseconds get_duration(const std::string& key, std::chrono::milliseconds fallback) const;
    // Comma-separated items, trimmed; an empty item ("a,,b", a trailing comma) is an error.
    std::vector<std::string> get_list(const std::string& key) const;
    // Validates a libpq connection string / postgres:// URL.
    std::string get_url(const std::string& key) const;

    void set(const std::string& key, const std::string& value) { values_[key] = value; }
    const std::map<std::string, std::string>& values() const { return values_; }
    // Keys that look like pgstream settings but that no module knows (for a warning each).
    std::vector<std::string> unknown_keys() const;
    // Throws ConfigError naming both settings when two of them contradict each other: two listeners (a
    // Postgres URL and a Kafka consumer group), or both the exponential (*_EXP_BACKOFF_*) and the constant
    // (*_BACKOFF_*) retry policy of one component.
    void check_conflicts() const;

  private:
    std::map<std::string, std::string> values_;
};

// Every module declares its keys so that typos get a warning (thread-unsafe; call at startup). The core list
// holds only the pipeline's own keys (filter, translator, logging, shutdown): a module's keys are known once
// the module is registered (pipeline/module.h), so the key of a module that is not built is unknown.
void register_config_keys(const std::vector<std::string>& keys);
bool is_known_config_key(const std::string& key);

// A section of the Go pgstream's YAML layout that a module owns: `<group>.<kind>` (e.g. target.kafka). The
// rest of a path below it, upper-cased and joined with '_' ("BATCH_SIZE" for batch: {size: ...}), maps onto
// one of the module's keys.
struct YamlSection {
    std::string group;  // "source" or "target"
    std::string kind;   // e.g. "kafka"
    std::function<std::string(const std::string& rest)> key_for;
    // Set to "true" by the section's mere presence (an empty `target: {stdout: }` enables stdout); optional.
    std::string enabled_by_presence;
};
// Thread-unsafe; call at startup. A second section of the same group and kind is ignored.
void register_yaml_section(YamlSection section);

// Parsers shared with tests; throw std::invalid_argument with one line: the value, what is wrong, the
// accepted form. Malformed numbers ("1.5.5s", "."), unknown units and values past the limits (100 years;
// 2^63-1 bytes) are refused, never rounded or wrapped.
std::chrono::milliseconds parse_duration(const std::string& text);  // 1s, 500ms, 1min, 2m, 1h, 1m30s, 0
uint64_t parse_size(const std::string& text);                       // 100MiB, 1MB, 4096, 1.5KiB
bool parse_bool(const std::string& text);                           // true/false/1/0/yes/no/on/off

}  // namespace pgstream
