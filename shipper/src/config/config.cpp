#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "util/pg.h"
#include "util/redact.h"

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

// The pipeline's own keys; every module adds its own when it is registered (pipeline/module.h).
std::set<std::string>& known_keys() {
    static std::set<std::string> keys = {
        "PGSTREAM_SHUTDOWN_DRAIN_TIMEOUT",
        // translator, filter, logging
        "PGSTREAM_TRANSLATOR_STORE_POSTGRES_URL", "PGSTREAM_TRANSLATOR_ENABLED", "PGSTREAM_FILTER_INCLUDE_SCHEMAS",
        "PGSTREAM_FILTER_EXCLUDE_SCHEMAS", "PGSTREAM_FILTER_INCLUDE_TABLES", "PGSTREAM_FILTER_EXCLUDE_TABLES",
        "PGSTREAM_LOG_FORMAT", "PGSTREAM_LOG_LEVEL"};
    return keys;
}

std::vector<YamlSection>& yaml_sections() {
    static std::vector<YamlSection> sections;
    return sections;
}

const YamlSection* find_yaml_section(const std::string& group, const std::string& kind) {
    for (const auto& section : yaml_sections())
        if (section.group == group && section.kind == kind) return &section;
    return nullptr;
}

// "kafka, stdout": the kinds registered under `group`, for messages.
std::string yaml_kinds(const std::string& group) {
    std::string kinds;
    for (const auto& section : yaml_sections())
        if (section.group == group) kinds += (kinds.empty() ? "" : ", ") + section.kind;
    return kinds.empty() ? "none registered" : kinds;
}

// A value as the user wrote it, for messages; long ones (a typo'd 400-digit number) are cut.
std::string shown(const std::string& value) {
    constexpr size_t kLongest = 40;
    if (value.size() <= kLongest) return "\"" + value + "\"";
    return "\"" + value.substr(0, kLongest - 8) + "...\" (" + std::to_string(value.size()) + " characters)";
}

bool is_env_key(const std::string& key) {
    if (key.empty() || std::isdigit(static_cast<unsigned char>(key[0]))) return false;
    for (char c : key)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
    return true;
}

// The value part of a .env line: a single- or double-quoted string (double quotes know \n, \t and \x), or
// bare text up to an inline " #" comment. `where` ("file:line: KEY") prefixes errors, which never quote the
// value: it may be a password.
std::string env_value(const std::string& raw, const std::string& where) {
    if (raw.empty() || (raw.front() != '"' && raw.front() != '\'')) {
        size_t comment = raw.find(" #");
        return comment == std::string::npos ? raw : trim(raw.substr(0, comment));
    }
    const char quote = raw.front();
    std::string value;
    size_t i = 1;
    for (; i < raw.size() && raw[i] != quote; ++i) {
        if (quote == '"' && raw[i] == '\\' && i + 1 < raw.size()) {
            char next = raw[++i];
            value += next == 'n' ? '\n' : next == 't' ? '\t' : next;
        } else {
            value += raw[i];
        }
    }
    if (i >= raw.size())
        throw ConfigError("", where + " has no closing " + quote + " (quote the whole value: KEY=" + quote +
                                  "value" + quote + ")");
    std::string rest = trim(raw.substr(i + 1));
    if (!rest.empty() && rest[0] != '#')
        throw ConfigError("", where + " has text after the closing " + quote +
                                  " (only a # comment may follow a quoted value)");
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
    // source.<kind> and target.<kind> belong to the modules (pipeline/module.h).
    if ((head == "SOURCE" || head == "TARGET") && path.size() >= 2) {
        const std::string group = lower(head);
        if (const YamlSection* section = find_yaml_section(group, lower(path[1]))) return section->key_for(rest);
        if (group == "source")
            throw ConfigError("", origin + ": unknown listener source." + lower(path[1]) + " (known: " +
                                      yaml_kinds(group) + ")");
        throw ConfigError("", origin + ": unknown processor target." + lower(path[1]) + " (known: " +
                                  yaml_kinds(group) + ")");
    }
    if (head == "INSTRUMENTATION" && path.size() >= 3) {
        if (path[1] == "HEALTH") return "PGSTREAM_HEALTH_CHECK_" + rest;
        if (path[1] == "METRICS") return "PGSTREAM_METRICS_" + rest;
        throw ConfigError("", origin + ": unknown section instrumentation." + lower(path[1]) +
                                  " (known: health, metrics)");
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

// Where each key of a YAML document was set ("line N"), to refuse a key given twice: yaml-cpp keeps both
// entries of a duplicated mapping key, and two spellings (flat, nested, sectioned) may name the same setting.
using KeyLines = std::map<std::string, int>;

void flatten_yaml(const YAML::Node& node, std::vector<std::string>& path,
                  std::map<std::string, std::string>& out, KeyLines& lines, int line,
                  const std::string& origin) {
    // A target section, even an empty one, enables that output (an explicit enabled: key overrides it).
    if (path.size() == 2 && path[0] == "TARGET")
        if (const YamlSection* section = find_yaml_section("target", lower(path[1])))
            if (!section->enabled_by_presence.empty()) out.emplace(section->enabled_by_presence, "true");
    if (node.IsMap()) {
        for (const auto& entry : node) {
            path.push_back(upper_token(entry.first.as<std::string>()));
            flatten_yaml(entry.second, path, out, lines, entry.first.Mark().line + 1, origin);
            path.pop_back();
        }
        return;
    }
    if (path.empty()) return;
    std::string key = map_yaml_path(path, origin);  // also rejects unknown sections
    if (node.IsSequence() || node.IsScalar() ||
        (node.IsNull() && !(path.size() == 2 && path[0] == "TARGET"))) {
        auto [previous, first] = lines.emplace(key, line);
        if (!first)
            throw ConfigError("", origin + ":" + std::to_string(line) + ": " + key +
                                      " is set twice (also on line " + std::to_string(previous->second) +
                                      "): keep one");
    }
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

constexpr const char* kSizeForm =
    "expected a number with an optional unit B, KB, KiB, MB, MiB, GB or GiB (e.g. 4096, 100MiB, 1.5GB)";
constexpr const char* kDurationForm =
    "expected numbers with units ns, us, ms, s, m (or min) or h, alone or combined (e.g. 500ms, 1.5s, 1m30s, "
    "2h), "
    "or 0";
// Sizes must fit a signed 64-bit count of bytes, durations a 64-bit count of nanoseconds with room to spare
// (deadlines add them to the clock).
constexpr long double kMaxSize = 9223372036854775807.0L;
constexpr long double kMaxDurationMs = 100.0L * 365 * 24 * 3600 * 1000;

// The decimal number ("12", "1.5") starting at text[i], advancing i past it; nullopt when there is none or it
// is malformed ("1.", ".5", "1.2.3" is read as 1.2 and leaves ".3").
std::optional<long double> take_decimal(const std::string& text, size_t& i) {
    size_t start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    if (i == start) return std::nullopt;
    if (i < text.size() && text[i] == '.') {
        size_t fraction = ++i;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
        if (i == fraction) return std::nullopt;
    }
    // strtold saturates at HUGE_VALL, which the callers' limits reject.
    return std::strtold(text.substr(start, i - start).c_str(), nullptr);
}

std::string range_form(int64_t min, int64_t max) {
    if (max == INT64_MAX) return "expected a whole number of at least " + std::to_string(min);
    return "expected a whole number from " + std::to_string(min) + " to " + std::to_string(max);
}

}  // namespace

void register_config_keys(const std::vector<std::string>& keys) {
    for (const auto& key : keys) known_keys().insert(key);
}

bool is_known_config_key(const std::string& key) { return known_keys().count(key) != 0; }

void register_yaml_section(YamlSection section) {
    if (find_yaml_section(section.group, section.kind)) return;
    yaml_sections().push_back(std::move(section));
}

std::map<std::string, std::string> Config::parse_env_file(const std::string& text, const std::string& origin) {
    std::map<std::string, std::string> values;
    std::map<std::string, int> lines;
    std::istringstream stream(text);
    std::string line;
    int number = 0;
    while (std::getline(stream, line)) {
        ++number;
        std::string content = trim(line);
        if (content.empty() || content[0] == '#') continue;
        if (content.rfind("export ", 0) == 0) content = trim(content.substr(7));
        std::string where = origin + ":" + std::to_string(number);
        size_t equals = content.find('=');
        // The key is not echoed: a line without its '=' may be a bare password.
        if (equals == std::string::npos || !is_env_key(trim(content.substr(0, equals))))
            throw ConfigError("", where + ": expected KEY=VALUE (KEY of letters, digits and _)");
        std::string key = trim(content.substr(0, equals));
        std::string value = env_value(trim(content.substr(equals + 1)), where + ": the value of " + key);
        auto [previous, first] = lines.emplace(key, number);
        if (!first)
            throw ConfigError("", where + ": " + key + " is set twice (also on line " +
                                      std::to_string(previous->second) + "): keep one");
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
        KeyLines lines;
        flatten_yaml(root, path, values, lines, 0, origin);
    } catch (const YAML::Exception& e) {
        throw ConfigError("", origin + ": invalid YAML: " + e.what());
    }
    return values;
}

Config Config::load(const std::string& file, char** environment) {
    std::map<std::string, std::string> values;
    if (!file.empty()) {
        struct stat info {};
        if (stat(file.c_str(), &info) == 0 && S_ISDIR(info.st_mode))
            throw ConfigError("", "configuration file " + file +
                                      " is a directory: expected a .env-style or YAML (.yaml/.yml) file");
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
    // Every value that holds a password (URLs, conninfo strings) is masked in all later errors and logs.
    for (const auto& [key, value] : values) redact::remember(value);
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
    size_t digits = (!text.empty() && (text[0] == '-' || text[0] == '+')) ? 1 : 0;
    bool well_formed = digits < text.size();
    for (size_t i = digits; i < text.size(); ++i)
        well_formed &= std::isdigit(static_cast<unsigned char>(text[i])) != 0;
    if (!well_formed)
        throw ConfigError(key, shown(*value) + " is not a whole number: " + range_form(min, max));
    int64_t number;
    try {
        number = std::stoll(text, nullptr, 10);
    } catch (const std::out_of_range&) {
        throw ConfigError(key, shown(*value) + " is out of range: " + range_form(min, max));
    }
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
    std::string text = *value + ",";  // every item, the last one too, ends with a comma
    size_t begin = 0;
    for (size_t comma = text.find(','); comma != std::string::npos;
         begin = comma + 1, comma = text.find(',', begin)) {
        std::string item = trim(text.substr(begin, comma - begin));
        // "a,,b" or a trailing comma is a typo more often than a wish for fewer items.
        if (item.empty())
            throw ConfigError(
                key, shown(*value) + " has an empty item: expected comma-separated values (e.g. a,b,c)");
        items.push_back(item);
    }
    return items;
}

std::string Config::get_url(const std::string& key) const {
    auto value = get(key);
    if (!value) return {};
    std::string why;  // never quotes the password
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

void Config::check_conflicts() const {
    // Each of these settings chooses the listener; with two, one would be ignored (and the Kafka settings
    // would turn into a writer into the topic meant to be read).
    static const std::vector<std::string> kListenerSelectors = {"PGSTREAM_POSTGRES_LISTENER_URL",
                                                                "PGSTREAM_KAFKA_READER_CONSUMER_GROUP_ID"};
    std::vector<std::string> listeners;
    for (const auto& key : kListenerSelectors)
        if (has(key)) listeners.push_back(key);
    if (listeners.size() > 1)
        throw ConfigError("", "conflicting settings: " + listeners[0] + " and " + listeners[1] +
                                  " each choose the listener (Postgres or Kafka): set only one");
    // PGSTREAM_<C>_EXP_BACKOFF_* (exponential) against PGSTREAM_<C>_BACKOFF_* (constant), per component C.
    const std::string exponential_marker = "_EXP_BACKOFF_";
    for (const auto& [key, value] : values_) {
        size_t marker = key.find(exponential_marker);
        if (marker == std::string::npos || value.empty()) continue;
        std::string component = key.substr(0, marker);
        for (const char* suffix : {"_BACKOFF_INTERVAL", "_BACKOFF_MAX_RETRIES"}) {
            std::string constant = component + suffix;
            if (has(constant))
                throw ConfigError(
                    "", "conflicting settings: " + key + " (exponential backoff) and " + constant +
                            " (constant backoff) both set the retry policy: give either " + component +
                            "_EXP_BACKOFF_* or " + component + "_BACKOFF_*, not both");
        }
    }
}

std::chrono::milliseconds parse_duration(const std::string& input) {
    std::string text = trim(input);
    if (text == "0") return std::chrono::milliseconds(0);
    const std::string not_a_duration = shown(input) + " is not a duration: " + kDurationForm;
    if (text.empty()) throw std::invalid_argument(not_a_duration);
    if (text[0] == '-') throw std::invalid_argument(shown(input) + " is negative: " + kDurationForm);
    long double total_ms = 0;
    size_t i = 0;
    while (i < text.size()) {
        auto number = take_decimal(text, i);
        if (!number) throw std::invalid_argument(not_a_duration);
        size_t unit_start = i;
        while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
        std::string unit = lower(text.substr(unit_start, i - unit_start));
        // Sub-millisecond units divide, so that 1500us is exactly 1.5ms (and rounds to 2).
        long double scale = 1, divisor = 1;
        if (unit == "ms") scale = 1;
        else if (unit == "s" || unit == "sec") scale = 1000;
        else if (unit == "m" || unit == "min") scale = 60000;
        else if (unit == "h") scale = 3600000;
        else if (unit == "us")
            divisor = 1000;
        else if (unit == "ns")
            divisor = 1000000;
        else
            throw std::invalid_argument(not_a_duration);
        total_ms += *number * scale / divisor;
        if (!(total_ms <= kMaxDurationMs))
            throw std::invalid_argument(shown(input) + " is too large: expected at most 876000h (100 years)");
    }
    return std::chrono::milliseconds(static_cast<int64_t>(std::llround(total_ms)));
}

uint64_t parse_size(const std::string& input) {
    std::string text = trim(input);
    if (!text.empty() && text[0] == '-')
        throw std::invalid_argument(shown(input) + " is negative: " + kSizeForm);
    size_t i = 0;
    auto number = take_decimal(text, i);
    const std::string not_a_size = shown(input) + " is not a size: " + kSizeForm;
    if (!number) throw std::invalid_argument(not_a_size);
    std::string unit = lower(trim(text.substr(i)));
    long double scale;
    if (unit.empty() || unit == "b") scale = 1;
    else if (unit == "k" || unit == "kb")
        scale = 1e3L;
    else if (unit == "kib") scale = 1024;
    else if (unit == "m" || unit == "mb")
        scale = 1e6L;
    else if (unit == "mib")
        scale = 1024.0L * 1024;
    else if (unit == "g" || unit == "gb")
        scale = 1e9L;
    else if (unit == "gib")
        scale = 1024.0L * 1024 * 1024;
    else
        throw std::invalid_argument(not_a_size);
    long double bytes = *number * scale;
    if (!(bytes <= kMaxSize))
        throw std::invalid_argument(shown(input) +
                                    " is too large: expected at most 9223372036854775807 bytes (8EiB)");
    return static_cast<uint64_t>(std::llround(bytes));
}

bool parse_bool(const std::string& input) {
    std::string text = lower(trim(input));
    if (text == "true" || text == "1" || text == "yes" || text == "on" || text == "t") return true;
    if (text == "false" || text == "0" || text == "no" || text == "off" || text == "f") return false;
    throw std::invalid_argument(shown(input) +
                                " is not a boolean: expected true or false (or 1/0, yes/no, on/off)");
}

}  // namespace pgstream
