#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "util/pg.h"

extern char** environ;

namespace pgstream {

namespace {

std::string trim(const std::string& text) {
    size_t begin = 0, end = text.size();
    while (begin < end && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
    while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
    return text.substr(begin, end - begin);
}

std::string lower(std::string text) {
    for (auto& c : text) c = char(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

bool ends_with(const std::string& text, const std::string& suffix) {
    return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::set<std::string>& known_keys() {
    static std::set<std::string> keys = {
        // postgres listener
        "PGSTREAM_POSTGRES_LISTENER_URL", "PGSTREAM_POSTGRES_LISTENER_SLOT_NAME",
        "PGSTREAM_POSTGRES_LISTENER_PLUGIN", "PGSTREAM_POSTGRES_LISTENER_PACK_BYTES",
        "PGSTREAM_POSTGRES_LISTENER_HANDOFF_BYTES", "PGSTREAM_POSTGRES_LISTENER_RECONNECT_INITIAL_INTERVAL",
        "PGSTREAM_POSTGRES_LISTENER_RECONNECT_MAX_INTERVAL", "PGSTREAM_CHECKPOINT_INTERVAL",
        "PGSTREAM_SHUTDOWN_DRAIN_TIMEOUT",
        // stdout
        "PGSTREAM_STDOUT_WRITER_ENABLED", "PGSTREAM_STDOUT_WRITER_FILE", "PGSTREAM_STDOUT_WRITER_MAX_QUEUE_BYTES",
        "PGSTREAM_STDOUT_WRITER_BATCH_SIZE", "PGSTREAM_STDOUT_WRITER_BATCH_BYTES",
        "PGSTREAM_STDOUT_WRITER_BATCH_TIMEOUT",
        // translator, filter, logging
        "PGSTREAM_TRANSLATOR_STORE_POSTGRES_URL", "PGSTREAM_TRANSLATOR_ENABLED", "PGSTREAM_FILTER_INCLUDE_SCHEMAS",
        "PGSTREAM_FILTER_EXCLUDE_SCHEMAS", "PGSTREAM_FILTER_INCLUDE_TABLES", "PGSTREAM_FILTER_EXCLUDE_TABLES",
        "PGSTREAM_LOG_FORMAT", "PGSTREAM_LOG_LEVEL",
        // kafka (listener and writer)
        "PGSTREAM_KAFKA_SERVERS", "PGSTREAM_KAFKA_TOPIC_NAME", "PGSTREAM_KAFKA_READER_CONSUMER_GROUP_ID",
        "PGSTREAM_KAFKA_READER_CONSUMER_GROUP_START_OFFSET", "PGSTREAM_KAFKA_TLS_ENABLED",
        "PGSTREAM_KAFKA_TLS_CA_CERT_FILE", "PGSTREAM_KAFKA_TLS_CLIENT_CERT_FILE", "PGSTREAM_KAFKA_TLS_CLIENT_KEY_FILE",
        "PGSTREAM_KAFKA_COMMIT_EXP_BACKOFF_INITIAL_INTERVAL", "PGSTREAM_KAFKA_COMMIT_EXP_BACKOFF_MAX_INTERVAL",
        "PGSTREAM_KAFKA_COMMIT_EXP_BACKOFF_MAX_RETRIES", "PGSTREAM_KAFKA_COMMIT_BACKOFF_INTERVAL",
        "PGSTREAM_KAFKA_COMMIT_BACKOFF_MAX_RETRIES", "PGSTREAM_KAFKA_TOPIC_PARTITIONS",
        "PGSTREAM_KAFKA_TOPIC_REPLICATION_FACTOR", "PGSTREAM_KAFKA_TOPIC_AUTO_CREATE",
        "PGSTREAM_KAFKA_WRITER_BATCH_TIMEOUT", "PGSTREAM_KAFKA_WRITER_BATCH_BYTES", "PGSTREAM_KAFKA_WRITER_BATCH_SIZE",
        "PGSTREAM_KAFKA_WRITER_MAX_QUEUE_BYTES",
        // search
        "PGSTREAM_OPENSEARCH_STORE_URL", "PGSTREAM_ELASTICSEARCH_STORE_URL", "PGSTREAM_SEARCH_INDEXER_BATCH_TIMEOUT",
        "PGSTREAM_SEARCH_INDEXER_BATCH_SIZE", "PGSTREAM_SEARCH_INDEXER_MAX_QUEUE_BYTES",
        "PGSTREAM_SEARCH_INDEXER_CLEANUP_EXP_BACKOFF_INITIAL_INTERVAL",
        "PGSTREAM_SEARCH_INDEXER_CLEANUP_EXP_BACKOFF_MAX_INTERVAL",
        "PGSTREAM_SEARCH_INDEXER_CLEANUP_EXP_BACKOFF_MAX_RETRIES", "PGSTREAM_SEARCH_INDEXER_CLEANUP_BACKOFF_INTERVAL",
        "PGSTREAM_SEARCH_INDEXER_CLEANUP_BACKOFF_MAX_RETRIES", "PGSTREAM_SEARCH_STORE_EXP_BACKOFF_INITIAL_INTERVAL",
        "PGSTREAM_SEARCH_STORE_EXP_BACKOFF_MAX_INTERVAL", "PGSTREAM_SEARCH_STORE_EXP_BACKOFF_MAX_RETRIES",
        "PGSTREAM_SEARCH_STORE_BACKOFF_INTERVAL", "PGSTREAM_SEARCH_STORE_BACKOFF_MAX_RETRIES",
        // webhooks
        "PGSTREAM_WEBHOOK_SUBSCRIPTION_STORE_URL", "PGSTREAM_WEBHOOK_SUBSCRIPTION_STORE_CACHE_ENABLED",
        "PGSTREAM_WEBHOOK_SUBSCRIPTION_STORE_CACHE_REFRESH_INTERVAL", "PGSTREAM_WEBHOOK_NOTIFIER_MAX_QUEUE_BYTES",
        "PGSTREAM_WEBHOOK_NOTIFIER_WORKER_COUNT", "PGSTREAM_WEBHOOK_NOTIFIER_CLIENT_TIMEOUT",
        "PGSTREAM_WEBHOOK_SUBSCRIPTION_SERVER_ADDRESS", "PGSTREAM_WEBHOOK_SUBSCRIPTION_SERVER_READ_TIMEOUT",
        "PGSTREAM_WEBHOOK_SUBSCRIPTION_SERVER_WRITE_TIMEOUT"};
    return keys;
}

std::string strip_quotes(const std::string& value, bool* quoted) {
    *quoted = false;
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
        *quoted = true;
        std::string inner = value.substr(1, value.size() - 2);
        if (value.front() == '\'') return inner;
        std::string out;
        for (size_t i = 0; i < inner.size(); ++i) {
            if (inner[i] == '\\' && i + 1 < inner.size()) {
                char next = inner[++i];
                out += next == 'n' ? '\n' : next == 't' ? '\t' : next;
            } else {
                out += inner[i];
            }
        }
        return out;
    }
    return value;
}

std::string upper_token(const std::string& key) {
    std::string upper;
    for (char c : key) upper += (c == '-' || c == '.') ? '_' : char(std::toupper(static_cast<unsigned char>(c)));
    return upper;
}

std::string join(const std::vector<std::string>& parts, size_t from) {
    std::string out;
    for (size_t i = from; i < parts.size(); ++i) out += (out.empty() ? "" : "_") + parts[i];
    return out;
}

// Maps a YAML path (upper-cased tokens) onto a PGSTREAM_* key. Besides flat keys (PGSTREAM_X: value) and
// nested ones (postgres: {listener: {url: ...}} → PGSTREAM_POSTGRES_LISTENER_URL), the sections of the Go
// pgstream's YAML (source / target / modifiers) are understood; see docs/configuration.md.
std::string map_yaml_path(const std::vector<std::string>& path, const std::string& origin) {
    const std::string& head = path[0];
    std::string rest = join(path, 2);
    if (head == "SOURCE" && path.size() >= 2) {
        const std::string& kind = path[1];
        if (kind == "POSTGRES") {
            if (rest == "URL") return "PGSTREAM_POSTGRES_LISTENER_URL";
            if (rest == "REPLICATION_REPLICATION_SLOT" || rest == "REPLICATION_SLOT_NAME" || rest == "SLOT_NAME" ||
                rest == "REPLICATION_SLOT")
                return "PGSTREAM_POSTGRES_LISTENER_SLOT_NAME";
            if (rest == "REPLICATION_PLUGIN" || rest == "REPLICATION_PLUGIN_NAME")
                return "PGSTREAM_POSTGRES_LISTENER_PLUGIN";
            return "PGSTREAM_POSTGRES_LISTENER_" + rest;
        }
        if (kind == "KAFKA") {
            if (rest == "CONSUMER_GROUP_ID") return "PGSTREAM_KAFKA_READER_CONSUMER_GROUP_ID";
            if (rest == "CONSUMER_GROUP_START_OFFSET") return "PGSTREAM_KAFKA_READER_CONSUMER_GROUP_START_OFFSET";
            return "PGSTREAM_KAFKA_" + rest;
        }
        throw ConfigError("", origin + ": unknown listener source." + lower(kind) + " (known: postgres, kafka)");
    }
    if (head == "TARGET" && path.size() >= 2) {
        const std::string& kind = path[1];
        if (kind == "STDOUT") {
            if (rest.rfind("BATCH_MAX_QUEUE_BYTES", 0) == 0) return "PGSTREAM_STDOUT_WRITER_MAX_QUEUE_BYTES";
            return "PGSTREAM_STDOUT_WRITER_" + rest;
        }
        if (kind == "KAFKA") {
            if (rest == "BATCH_MAX_QUEUE_BYTES" || rest == "MAX_QUEUE_BYTES") return "PGSTREAM_KAFKA_WRITER_MAX_QUEUE_BYTES";
            if (rest.rfind("BATCH_", 0) == 0) return "PGSTREAM_KAFKA_WRITER_" + rest;
            return "PGSTREAM_KAFKA_" + rest;
        }
        if (kind == "SEARCH" || kind == "OPENSEARCH" || kind == "ELASTICSEARCH" || kind == "WEBHOOKS" ||
            kind == "WEBHOOK")
            return "PGSTREAM_" + (kind == "WEBHOOKS" ? std::string("WEBHOOK") : kind) + "_" + rest;
        throw ConfigError("", origin + ": unknown processor target." + lower(kind) +
                                  " (known: stdout, kafka, search, webhooks)");
    }
    if (head == "MODIFIERS" && path.size() >= 2) {
        const std::string& kind = path[1];
        if (kind == "FILTER") return "PGSTREAM_FILTER_" + rest;
        if (kind == "TRANSLATOR" || kind == "INJECTOR") {
            if (rest == "ENABLED") return "PGSTREAM_TRANSLATOR_ENABLED";
            return "PGSTREAM_TRANSLATOR_STORE_POSTGRES_URL";
        }
        throw ConfigError("", origin + ": unknown modifier modifiers." + lower(kind) + " (known: filter, translator)");
    }
    std::string key = join(path, 0);
    return key.rfind("PGSTREAM_", 0) == 0 ? key : "PGSTREAM_" + key;
}

void flatten_yaml(const YAML::Node& node, std::vector<std::string>& path, std::map<std::string, std::string>& out,
                  const std::string& origin) {
    // A target section, even an empty one, enables that output.
    if (path.size() == 2 && path[0] == "TARGET" && path[1] == "STDOUT")
        out.emplace("PGSTREAM_STDOUT_WRITER_ENABLED", "true");
    if (node.IsMap()) {
        for (const auto& entry : node) {
            path.push_back(upper_token(entry.first.as<std::string>()));
            flatten_yaml(entry.second, path, out, origin);
            path.pop_back();
        }
        return;
    }
    if (path.empty()) return;
    std::string key = map_yaml_path(path, origin);  // also rejects unknown sections
    if (node.IsSequence()) {
        std::string joined;
        for (const auto& item : node) {
            if (!item.IsScalar()) throw ConfigError("", origin + ": " + key + " must be a list of scalars");
            if (!joined.empty()) joined += ',';
            joined += item.as<std::string>();
        }
        out[key] = joined;
    } else if (node.IsScalar()) {
        out[key] = node.as<std::string>();
    } else if (node.IsNull() && !(path.size() == 2 && path[0] == "TARGET")) {
        out[key] = "";
    }
}

}  // namespace

void register_config_keys(const std::vector<std::string>& keys) {
    for (const auto& key : keys) known_keys().insert(key);
}

bool is_known_config_key(const std::string& key) { return known_keys().count(key) != 0; }

std::map<std::string, std::string> Config::parse_env_file(const std::string& text, const std::string& origin) {
    std::map<std::string, std::string> values;
    std::istringstream stream(text);
    std::string line;
    int number = 0;
    while (std::getline(stream, line)) {
        ++number;
        std::string content = trim(line);
        if (content.empty() || content[0] == '#') continue;
        if (content.rfind("export ", 0) == 0) content = trim(content.substr(7));
        size_t equals = content.find('=');
        if (equals == std::string::npos || equals == 0)
            throw ConfigError("", origin + ":" + std::to_string(number) + ": expected KEY=VALUE");
        std::string key = trim(content.substr(0, equals));
        std::string raw = trim(content.substr(equals + 1));
        bool quoted = false;
        std::string value = strip_quotes(raw, &quoted);
        if (!quoted) {
            // An unquoted value ends at " #" (an inline comment).
            size_t comment = value.find(" #");
            if (comment != std::string::npos) value = trim(value.substr(0, comment));
        }
        values[key] = value;
    }
    return values;
}

std::map<std::string, std::string> Config::parse_yaml(const std::string& text, const std::string& origin) {
    std::map<std::string, std::string> values;
    try {
        YAML::Node root = YAML::Load(text);
        if (root.IsNull()) return values;
        if (!root.IsMap()) throw ConfigError("", origin + ": the YAML document must be a mapping");
        std::vector<std::string> path;
        flatten_yaml(root, path, values, origin);
    } catch (const YAML::Exception& e) {
        throw ConfigError("", origin + ": invalid YAML: " + e.what());
    }
    return values;
}

Config Config::load(const std::string& file, char** environment) {
    std::map<std::string, std::string> values;
    if (!file.empty()) {
        std::ifstream input(file, std::ios::binary);
        if (!input) throw ConfigError("", "cannot read configuration file " + file);
        std::stringstream buffer;
        buffer << input.rdbuf();
        if (input.bad()) throw ConfigError("", "cannot read configuration file " + file);
        if (ends_with(lower(file), ".yaml") || ends_with(lower(file), ".yml"))
            values = parse_yaml(buffer.str(), file);
        else
            values = parse_env_file(buffer.str(), file);
    }
    for (char** entry = environment ? environment : environ; entry && *entry; ++entry) {
        std::string text(*entry);
        if (text.rfind("PGSTREAM_", 0) != 0) continue;
        size_t equals = text.find('=');
        if (equals == std::string::npos) continue;
        values[text.substr(0, equals)] = text.substr(equals + 1);
    }
    return Config(std::move(values));
}

bool Config::has(const std::string& key) const {
    auto it = values_.find(key);
    return it != values_.end() && !it->second.empty();
}

std::optional<std::string> Config::get(const std::string& key) const {
    auto it = values_.find(key);
    if (it == values_.end() || it->second.empty()) return std::nullopt;
    return it->second;
}

std::string Config::get_string(const std::string& key, const std::string& fallback) const {
    return get(key).value_or(fallback);
}

bool Config::get_bool(const std::string& key, bool fallback) const {
    auto value = get(key);
    if (!value) return fallback;
    try {
        return parse_bool(*value);
    } catch (const std::invalid_argument& e) {
        throw ConfigError(key, e.what());
    }
}

int64_t Config::get_int(const std::string& key, int64_t fallback, int64_t min, int64_t max) const {
    auto value = get(key);
    if (!value) return fallback;
    std::string text = trim(*value);
    size_t used = 0;
    int64_t number;
    try {
        number = std::stoll(text, &used, 10);
    } catch (const std::exception&) {
        throw ConfigError(key, "\"" + *value + "\" is not an integer");
    }
    if (used != text.size()) throw ConfigError(key, "\"" + *value + "\" is not an integer");
    if (number < min) throw ConfigError(key, "must be at least " + std::to_string(min) + ", got " + text);
    if (number > max) throw ConfigError(key, "must be at most " + std::to_string(max) + ", got " + text);
    return number;
}

uint64_t Config::get_size(const std::string& key, uint64_t fallback) const {
    auto value = get(key);
    if (!value) return fallback;
    try {
        return parse_size(*value);
    } catch (const std::invalid_argument& e) {
        throw ConfigError(key, e.what());
    }
}

std::chrono::milliseconds Config::get_duration(const std::string& key, std::chrono::milliseconds fallback) const {
    auto value = get(key);
    if (!value) return fallback;
    try {
        return parse_duration(*value);
    } catch (const std::invalid_argument& e) {
        throw ConfigError(key, e.what());
    }
}

std::vector<std::string> Config::get_list(const std::string& key) const {
    std::vector<std::string> items;
    auto value = get(key);
    if (!value) return items;
    std::stringstream stream(*value);
    std::string item;
    while (std::getline(stream, item, ',')) {
        item = trim(item);
        if (!item.empty()) items.push_back(item);
    }
    return items;
}

std::string Config::get_url(const std::string& key) const {
    auto value = get(key);
    if (!value) return {};
    std::string why;
    if (!pg::looks_like_connection_string(*value, &why)) throw ConfigError(key, why);
    return *value;
}

std::vector<std::string> Config::unknown_keys() const {
    std::vector<std::string> unknown;
    for (const auto& [key, value] : values_) {
        if (key.rfind("PGSTREAM_", 0) != 0) continue;
        // Test harness variables live in the same namespace.
        if (key.rfind("PGSTREAM_TEST_", 0) == 0 || key == "PGSTREAM_BINARY_DIR" || key == "PGSTREAM_SOURCE_DIR")
            continue;
        if (!is_known_config_key(key)) unknown.push_back(key);
    }
    return unknown;
}

std::chrono::milliseconds parse_duration(const std::string& input) {
    std::string text = trim(input);
    if (text.empty()) throw std::invalid_argument("empty duration");
    if (text == "0") return std::chrono::milliseconds(0);
    if (text[0] == '-') throw std::invalid_argument("\"" + input + "\" is negative");
    double total_ms = 0;
    size_t i = 0;
    while (i < text.size()) {
        size_t start = i;
        while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
        if (start == i) throw std::invalid_argument("\"" + input + "\" is not a duration (e.g. 500ms, 1s, 1min, 2h)");
        double number = std::stod(text.substr(start, i - start));
        size_t unit_start = i;
        while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
        std::string unit = lower(text.substr(unit_start, i - unit_start));
        double scale;
        if (unit == "ms") scale = 1;
        else if (unit == "s" || unit == "sec") scale = 1000;
        else if (unit == "m" || unit == "min") scale = 60000;
        else if (unit == "h") scale = 3600000;
        else if (unit == "us") scale = 0.001;
        else if (unit == "ns") scale = 0.000001;
        else if (unit.empty())
            throw std::invalid_argument("\"" + input + "\" has no unit (use ms, s, min or h)");
        else
            throw std::invalid_argument("\"" + input + "\" has an unknown unit \"" + unit + "\" (use ms, s, min or h)");
        total_ms += number * scale;
    }
    return std::chrono::milliseconds(static_cast<int64_t>(std::llround(total_ms)));
}

uint64_t parse_size(const std::string& input) {
    std::string text = trim(input);
    if (text.empty()) throw std::invalid_argument("empty size");
    if (text[0] == '-') throw std::invalid_argument("\"" + input + "\" is negative");
    size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (i == 0) throw std::invalid_argument("\"" + input + "\" is not a size (e.g. 4096, 100MiB, 1MB)");
    double number = std::stod(text.substr(0, i));
    std::string unit = lower(trim(text.substr(i)));
    double scale;
    if (unit.empty() || unit == "b") scale = 1;
    else if (unit == "k" || unit == "kb") scale = 1e3;
    else if (unit == "kib") scale = 1024;
    else if (unit == "m" || unit == "mb") scale = 1e6;
    else if (unit == "mib") scale = 1024.0 * 1024;
    else if (unit == "g" || unit == "gb") scale = 1e9;
    else if (unit == "gib") scale = 1024.0 * 1024 * 1024;
    else throw std::invalid_argument("\"" + input + "\" has an unknown unit (use B, KB, KiB, MB, MiB, GB, GiB)");
    return static_cast<uint64_t>(std::llround(number * scale));
}

bool parse_bool(const std::string& input) {
    std::string text = lower(trim(input));
    if (text == "true" || text == "1" || text == "yes" || text == "on" || text == "t") return true;
    if (text == "false" || text == "0" || text == "no" || text == "off" || text == "f") return false;
    throw std::invalid_argument("\"" + input + "\" is not a boolean (true or false)");
}

}  // namespace pgstream
