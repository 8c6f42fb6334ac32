// The pgstream commands. Each returns the process exit code: 0 success, 1 runtime failure, 2 bad usage or
// configuration (with one "pgstream: ..." line on stderr).
#pragma once

#include <string>

namespace pgstream::cli {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

struct RunOptions {
    std::string config_file;  // empty: environment only
    std::string log_level;    // empty: PGSTREAM_LOG_LEVEL or info
};
int run(const RunOptions& options);
// `pgstream snapshot`: a one-off snapshot of the chosen tables into the configured outputs, without
// streaming.
struct SnapshotOptions {
    RunOptions run;
    std::string tables;  // overrides PGSTREAM_POSTGRES_INITIAL_SNAPSHOT_TABLES
};
int snapshot(const SnapshotOptions& options);

struct DatabaseOptions {
    std::string url;
    std::string slot;    // empty: pgstream_<dbname>_slot
    std::string plugin;  // init only; empty: pgstream when the extension is available, else wal2json
    // init only: give tables whose UPDATE/DELETE cannot be decoded a replica identity: "index" (USING INDEX
    // on a unique NOT NULL index, where there is one), "full", or "none"/empty (only name them).
    std::string replica_identity;
    // init only: install schema tracking but leave the slot to `pgstream run` with the initial snapshot,
    // which creates it with an exported snapshot (an exact hand-over, docs/snapshot.md).
    bool no_slot = false;
};
int init(const DatabaseOptions& options);
int tear_down(const DatabaseOptions& options);
int status(const DatabaseOptions& options);

// Prints "pgstream: <message>" on stderr, passwords masked.
void print_error(const std::string& message);

}  // namespace pgstream::cli
