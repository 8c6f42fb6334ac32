// Configuration: PGSTREAM_* keys from a .env-style or YAML file and the environment (the environment wins),
// with typed accessors that reject bad values with one line naming the key.
#pragma once

#include <chrono>
#include <cstdint>
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
    // PGSTREAM_* variable of `environment` (a NULL-terminated environ array; nullptr = the process's).
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
    std::vector<std::string> get_list(const std::string& key) const;
    // Validates a libpq connection string / postgres:// URL.
    std::string get_url(const std::string& key) const;

    void set(const std::string& key, const std::string& value) { values_[key] = value; }
    const std::map<std::string, std::string>& values() const { return values_; }
    // Keys that look like pgstream settings but that no module knows (for a warning each).
    std::vector<std::string> unknown_keys() const;

  private:
    std::map<std::string, std::string> values_;
};

// Every module declares its keys so that typos get a warning (thread-unsafe; call at startup).
void register_config_keys(const std::vector<std::string>& keys);
bool is_known_config_key(const std::string& key);

// Parsers shared with tests; throw std::invalid_argument with the reason.
std::chrono::milliseconds parse_duration(const std::string& text);  // 1s, 500ms, 1min, 2m, 1h, 1m30s, 0
uint64_t parse_size(const std::string& text);                       // 100MiB, 1MB, 4096, 1.5KiB
bool parse_bool(const std::string& text);                           // true/false/1/0/yes/no/on/off

}  // namespace pgstream
