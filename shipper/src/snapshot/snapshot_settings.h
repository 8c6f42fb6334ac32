// Settings of the initial snapshot / backfill (docs/snapshot.md), named as the later Go pgstream names them.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "pipeline/module.h"

namespace pgstream {

struct SnapshotSettings {
    // PGSTREAM_POSTGRES_LISTENER_INITIAL_SNAPSHOT_ENABLED: `pgstream run` snapshots before it streams.
    bool enabled = false;
    // PGSTREAM_POSTGRES_INITIAL_SNAPSHOT_TABLES: "*" (all tables of public), "schema.*", "name"
    // (public.name), "schema.name"; * may also stand inside a name ("orders_*").
    std::vector<std::string> tables;
    // PGSTREAM_POSTGRES_SNAPSHOT_EXCLUDED_TABLES: same forms, taken out of `tables`.
    std::vector<std::string> excluded_tables;
    // PGSTREAM_POSTGRES_SNAPSHOT_WORKERS: reader connections sharing the snapshot.
    int workers = 4;
    // PGSTREAM_POSTGRES_SNAPSHOT_TABLE_WORKERS: readers on the ranges of one table at once.
    int table_workers = 4;
    // PGSTREAM_POSTGRES_SNAPSHOT_SCHEMA_WORKERS: schemas whose tables are read at once.
    int schema_workers = 4;
    // PGSTREAM_POSTGRES_SNAPSHOT_BATCH_PAGE_SIZE: heap pages per range (the unit of parallelism and of
    // resumption).
    int64_t batch_page_size = 1000;
    // PGSTREAM_POSTGRES_SNAPSHOT_HANDOFF_BYTES: rows read, not yet handed to the pipeline.
    uint64_t handoff_bytes = 16u << 20;
    // PGSTREAM_POSTGRES_SNAPSHOT_PROGRESS_INTERVAL: progress log lines when stderr is not a terminal.
    std::chrono::milliseconds progress_interval{10000};

    // Throws ConfigError naming the setting. No I/O.
    static SnapshotSettings from(const Config& config);
};

// The settings above for the postgres source module's list (known keys, docs).
std::vector<Setting> snapshot_setting_docs();

// A table pattern split into schema and table name LIKE patterns; throws ConfigError naming `setting`.
struct TablePattern {
    std::string text;  // as given
    std::string schema_like;
    std::string table_like;
};
TablePattern parse_table_pattern(const std::string& text, const std::string& setting);

}  // namespace pgstream
