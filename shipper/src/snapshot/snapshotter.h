// The initial snapshot / backfill (docs/snapshot.md): reads the chosen tables in one consistent snapshot and
// hands their rows, as insert events marked as snapshot rows, to the pipeline's head (translator → filter →
// outputs) — the same memory guard and batching as the stream.
//
//  * New slot: the slot is created through the replication protocol with an exported snapshot
//    (CREATE_REPLICATION_SLOT ... (SNAPSHOT 'export')); the readers import it, so the snapshot holds exactly
//    what the stream does not (no gap, no overlap). The replication connection stays open until the end.
//  * Existing slot, a one-off `pgstream snapshot`, or a restart: a fresh snapshot (pg_export_snapshot()). The
//    stream from the slot then also carries changes the snapshot already holds; outputs reconcile them by
//    version (every snapshot row's version is below every change the stream can still deliver).
//
// Tables are split into ranges of heap pages read with TID range scans (COPY (SELECT ... WHERE ctid >= ...
// AND ctid < ...) TO STDOUT) by several reader connections at once. Ranges are recorded in
// pgstream.snapshot_ranges; a range is marked done once every output acknowledged every row of it, so a
// snapshot killed at any moment re-reads only the ranges not done.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "processor/processor.h"
#include "snapshot/copy_row.h"
#include "snapshot/snapshot_progress.h"
#include "snapshot/snapshot_settings.h"
#include "util/pg.h"
#include "util/stop_token.h"

namespace pgstream {

class Metrics;

struct SnapshotStats {
    std::atomic<uint64_t> rows{0};   // rows handed to the pipeline
    std::atomic<uint64_t> bytes{0};  // COPY bytes read
    std::atomic<uint64_t> tables_done{0};
    std::atomic<uint64_t> tables_total{0};
    std::atomic<uint64_t> ranges_reread{0};  // ranges read again after a restart
};

class Snapshotter {
  public:
    struct Target {
        std::string url;
        // The slot whose stream the snapshot hands over to: created with an exported snapshot when it does
        // not exist. Empty: a one-off snapshot (no slot is created).
        std::string slot_name;
        std::string plugin;  // for a created slot; empty: pgstream when installed, else wal2json
    };

    Snapshotter(SnapshotSettings settings, Target target, Processor& head, CheckpointRouter& router,
                StopToken stop);
    ~Snapshotter();

    // Reads every table and waits until every row is delivered. "" on success; else the error (the ranges not
    // done stay to be read on the next start). Throws ConfigError for a pattern that matches no table
    // (nothing is created or emitted then).
    // `one_off` (pgstream snapshot): no slot is created and the snapshot is recorded without one; an existing
    // slot still bounds the rows' version.
    std::string run(bool one_off);

    const SnapshotStats& stats() const { return stats_; }
    void observe(Metrics& metrics);
    // JSON object for GET /status.
    std::string status_json() const;

    struct Table {
        uint32_t oid = 0;
        std::string schema;
        std::string name;
        std::vector<SnapshotColumn> columns;
        std::string select_list;  // quoted column names
        std::string qualified;    // quoted schema.table
        int64_t pages = 0;
        int64_t estimated_rows = -1;
        bool selectable = true;
    };
    struct Range {
        size_t table = 0;  // index into tables_
        int64_t first_page = 0;
        int64_t end_page = -1;  // -1: to the end
        int64_t estimated_rows = -1;
        size_t progress_index = 0;
        bool persisted = true;  // false: the schema_log rows, not a table range
        int read_count = 0;
        bool reported_done = false;
        bool dropped = false;
        std::string custom_sql;  // the schema_log rows: a query of their own instead of a page range
        int64_t rows_reported = -1;
    };

  private:
    struct Chunk;
    class ChunkQueue;

    void prepare(PGconn* control);
    void resolve_tables(PGconn* conn, bool strict);
    void open_snapshot(PGconn* control);
    void load_or_create_ranges(PGconn* control);
    void add_schema_log_range(PGconn* conn);
    void reader_loop(int worker);
    bool next_range(size_t& range);
    void finish_range(size_t range);
    // Reads the range and hands its rows to `sink` in chunks, the range's end last; false when the sink
    // refused (a stop) or the read failed (fail() has the message).
    bool read_range(PGconn* conn, size_t range, const std::function<bool(Chunk&&)>& sink);
    // Hands a chunk's rows to the pipeline; false on a stop.
    bool deliver(Chunk& chunk);
    void bookkeeping_loop(PGconn* control);
    void persist(PGconn* control, bool final);
    void report_progress(bool final);
    void fail(const std::string& message);
    std::string error() const;

    SnapshotSettings settings_;
    Target target_;
    Processor& head_;
    CheckpointRouter& router_;
    StopToken stop_;
    SnapshotStats stats_;
    SnapshotProgress progress_;

    int64_t snapshot_id_ = 0;
    std::string snapshot_name_;
    Lsn position_;  // the stream position the snapshot is consistent with
    std::string version_;
    bool exported_by_slot_ = false;
    bool one_off_ = false;
    pg::ConnPtr exporter_;  // holds the exported snapshot (replication or SQL connection)
    std::vector<Table> tables_;
    std::vector<Range> ranges_;
    std::vector<std::string> schemas_;

    mutable std::mutex mutex_;
    std::condition_variable ranges_changed_;
    bool finished_ = false;  // the bookkeeping thread ends
    std::deque<size_t> pending_ranges_;
    size_t schema_log_range_ = SIZE_MAX;
    std::vector<int> active_per_table_;
    std::vector<std::string> active_schemas_;
    std::string error_;
    std::unique_ptr<ChunkQueue> queue_;
    std::chrono::steady_clock::time_point started_;
    std::atomic<int> phase_{0};  // 0 preparing, 1 reading, 2 delivering, 3 done, 4 failed
};

}  // namespace pgstream
