#include "snapshot/snapshot_settings.h"

namespace pgstream {

namespace {

// Escapes LIKE's own wildcards, then makes * the wildcard; a character after a backslash is literal.
std::string like_pattern(const std::string& text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '\\' && i + 1 < text.size()) {
            out += '\\';
            out += text[++i];
            continue;
        }
        if (c == '%' || c == '_') out += '\\';
        out += c == '*' ? '%' : c;
    }
    return out;
}

}  // namespace

TablePattern parse_table_pattern(const std::string& text, const std::string& setting) {
    TablePattern pattern;
    pattern.text = text;
    // Up to two parts separated by a dot outside double quotes; a quoted part is taken as written ("" is a
    // quote), an unquoted one may hold * as a wildcard.
    std::vector<std::string> parts(1);
    bool quoted = false;
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '"') {
            if (quoted && i + 1 < text.size() && text[i + 1] == '"') {
                parts.back() += "\\\"";  // marks an escaped quote for like_pattern below
                ++i;
                continue;
            }
            quoted = !quoted;
            continue;
        }
        if (c == '.' && !quoted) {
            parts.emplace_back();
            continue;
        }
        if (quoted && (c == '*' || c == '%' || c == '_' || c == '\\'))
            parts.back() += '\\';  // literal, not a wildcard
        parts.back() += c;
    }
    bool valid = !quoted && parts.size() <= 2;
    for (const auto& part : parts) valid = valid && !part.empty();
    if (!valid)
        throw ConfigError(setting, "\"" + text +
                                       "\" is not a table pattern: expected *, schema.*, name or schema.name "
                                       "(double-quote names holding dots)");
    std::string schema = parts.size() == 1 ? "public" : parts[0];
    pattern.schema_like = like_pattern(schema);
    pattern.table_like = like_pattern(parts.back());
    return pattern;
}

SnapshotSettings SnapshotSettings::from(const Config& config) {
    SnapshotSettings settings;
    settings.enabled = config.get_bool("PGSTREAM_POSTGRES_LISTENER_INITIAL_SNAPSHOT_ENABLED", false);
    settings.tables = config.get_list("PGSTREAM_POSTGRES_INITIAL_SNAPSHOT_TABLES");
    settings.excluded_tables = config.get_list("PGSTREAM_POSTGRES_SNAPSHOT_EXCLUDED_TABLES");
    for (const auto& table : settings.tables)
        parse_table_pattern(table, "PGSTREAM_POSTGRES_INITIAL_SNAPSHOT_TABLES");
    for (const auto& table : settings.excluded_tables)
        parse_table_pattern(table, "PGSTREAM_POSTGRES_SNAPSHOT_EXCLUDED_TABLES");
    if (settings.enabled && settings.tables.empty())
        throw ConfigError(
            "PGSTREAM_POSTGRES_INITIAL_SNAPSHOT_TABLES",
            "must list the tables to snapshot (*, schema.*, name or schema.name, comma-separated) "
            "when PGSTREAM_POSTGRES_LISTENER_INITIAL_SNAPSHOT_ENABLED is true");
    settings.workers = int(config.get_int("PGSTREAM_POSTGRES_SNAPSHOT_WORKERS", settings.workers, 1, 256));
    settings.table_workers =
        int(config.get_int("PGSTREAM_POSTGRES_SNAPSHOT_TABLE_WORKERS", settings.table_workers, 1, 256));
    settings.schema_workers =
        int(config.get_int("PGSTREAM_POSTGRES_SNAPSHOT_SCHEMA_WORKERS", settings.schema_workers, 1, 256));
    settings.batch_page_size = config.get_int("PGSTREAM_POSTGRES_SNAPSHOT_BATCH_PAGE_SIZE",
                                              settings.batch_page_size, 1, int64_t(1) << 31);
    settings.handoff_bytes =
        config.get_size("PGSTREAM_POSTGRES_SNAPSHOT_HANDOFF_BYTES", settings.handoff_bytes);
    if (settings.handoff_bytes == 0)
        throw ConfigError("PGSTREAM_POSTGRES_SNAPSHOT_HANDOFF_BYTES",
                          "must be positive (a size such as 16MiB)");
    settings.progress_interval =
        config.get_duration("PGSTREAM_POSTGRES_SNAPSHOT_PROGRESS_INTERVAL", settings.progress_interval);
    if (settings.progress_interval.count() <= 0)
        throw ConfigError("PGSTREAM_POSTGRES_SNAPSHOT_PROGRESS_INTERVAL", "must be positive");
    return settings;
}

std::vector<Setting> snapshot_setting_docs() {
    return {
        {"PGSTREAM_POSTGRES_LISTENER_INITIAL_SNAPSHOT_ENABLED", "false",
         "snapshot the existing rows of the chosen tables before streaming"},
        {"PGSTREAM_POSTGRES_INITIAL_SNAPSHOT_TABLES", "",
         "tables to snapshot: *, schema.*, name or schema.name (comma-separated)"},
        {"PGSTREAM_POSTGRES_SNAPSHOT_EXCLUDED_TABLES", "", "tables left out of the snapshot (same forms)"},
        {"PGSTREAM_POSTGRES_SNAPSHOT_WORKERS", "4", "reader connections sharing the snapshot"},
        {"PGSTREAM_POSTGRES_SNAPSHOT_TABLE_WORKERS", "4", "readers on one table at once"},
        {"PGSTREAM_POSTGRES_SNAPSHOT_SCHEMA_WORKERS", "4", "schemas whose tables are read at once"},
        {"PGSTREAM_POSTGRES_SNAPSHOT_BATCH_PAGE_SIZE", "1000",
         "heap pages per range (parallelism, resumption)"},
        {"PGSTREAM_POSTGRES_SNAPSHOT_HANDOFF_BYTES", "16MiB", "rows read, not yet handed to the pipeline"},
        {"PGSTREAM_POSTGRES_SNAPSHOT_PROGRESS_INTERVAL", "10s",
         "progress log lines when stderr is no terminal"},
    };
}

}  // namespace pgstream
