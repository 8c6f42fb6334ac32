#include "snapshot/snapshotter.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include "observability/metrics.h"
#include "util/log.h"
#include "wal/recycled_events.h"

namespace pgstream {

namespace {

// Rows handed from a reader to the pipeline at once (fewer lock round trips than one by one).
constexpr size_t kChunkRows = 1024;
constexpr size_t kChunkBytes = 1u << 20;

std::string text_array(const std::vector<std::string>& items) {
    std::string out = "{";
    for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += ',';
        out += '"';
        for (char c : items[i]) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        out += '"';
    }
    return out + "}";
}

std::string format_rate(double per_second) {
    char buffer[32];
    snprintf(buffer, sizeof buffer, "%.0f", per_second);
    return buffer;
}

std::string format_duration(double seconds) {
    char buffer[32];
    if (seconds < 120)
        snprintf(buffer, sizeof buffer, "%.0fs", seconds);
    else if (seconds < 7200)
        snprintf(buffer, sizeof buffer, "%.0fm%02.0fs", seconds / 60 - 0.5, double(int64_t(seconds) % 60));
    else
        snprintf(buffer, sizeof buffer, "%.1fh", seconds / 3600);
    return buffer;
}

// The table's columns as the plugin shows them (every column but dropped ones, generated ones included) and
// the SELECT list reading them. `relation` is SQL naming the table (an OID or a regclass cast).
void read_columns(PGconn* conn, const std::string& relation, Snapshotter::Table& table) {
    auto columns = pg::exec(conn,
                            "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.atttypid, "
                            "pg_catalog.quote_ident(a.attname) FROM pg_catalog.pg_attribute a "
                            "WHERE a.attrelid = " +
                                relation + " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum");
    for (int row = 0; row < PQntuples(columns.get()); ++row) {
        SnapshotColumn column;
        column.name = SharedText::interned(pg::value(columns.get(), row, 0).value_or(""));
        column.type = SharedText::interned(pg::value(columns.get(), row, 1).value_or(""));
        column.rendering =
            rendering_for_type(uint32_t(std::stoul(pg::value(columns.get(), row, 2).value_or("0"))));
        if (row) table.select_list += ", ";
        table.select_list += pg::value(columns.get(), row, 3).value_or("");
        table.columns.push_back(std::move(column));
    }
}

}  // namespace

// Rows of one range on their way to the pipeline; `range_end` closes the range.
struct Snapshotter::Chunk {
    size_t range = 0;
    std::vector<EventPtr> events;
    size_t bytes = 0;
    bool range_end = false;
};

// Readers → the thread that hands rows to the pipeline, bounded in bytes (the readers wait when it is full,
// as the replication socket thread does).
class Snapshotter::ChunkQueue {
  public:
    ChunkQueue(uint64_t max_bytes, StopToken stop, int producers)
        : max_bytes_(max_bytes), stop_(std::move(stop)), producers_(producers) {}

    bool push(Chunk chunk) {
        std::unique_lock<std::mutex> lock(mutex_);
        size_t size = chunk.bytes + 64;
        if (!stop_.wait(lock, not_full_,
                        [&] { return aborted_ || chunks_.empty() || bytes_ + size <= max_bytes_; }))
            return false;
        if (aborted_) return false;
        bytes_ += size;
        chunks_.push_back(std::move(chunk));
        lock.unlock();
        not_empty_.notify_one();
        return true;
    }
    // False once every producer is done and the queue is empty, or on a stop.
    bool pop(Chunk& chunk) {
        std::unique_lock<std::mutex> lock(mutex_);
        if (!stop_.wait(lock, not_empty_, [&] { return aborted_ || !chunks_.empty() || producers_ == 0; }))
            return false;
        if (aborted_ || chunks_.empty()) return false;
        chunk = std::move(chunks_.front());
        chunks_.pop_front();
        bytes_ -= chunk.bytes + 64;
        lock.unlock();
        not_full_.notify_one();
        return true;
    }
    void producer_done() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            --producers_;
        }
        not_empty_.notify_all();
    }
    void abort() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            aborted_ = true;
        }
        not_empty_.notify_all();
        not_full_.notify_all();
    }

  private:
    const uint64_t max_bytes_;
    StopToken stop_;
    std::mutex mutex_;
    std::condition_variable not_empty_, not_full_;
    std::deque<Chunk> chunks_;
    uint64_t bytes_ = 0;
    int producers_;
    bool aborted_ = false;
};

Snapshotter::Snapshotter(SnapshotSettings settings, Target target, Processor& head, CheckpointRouter& router,
                         StopToken stop)
    : settings_(std::move(settings)),
      target_(std::move(target)),
      head_(head),
      router_(router),
      stop_(std::move(stop)) {}

Snapshotter::~Snapshotter() {
    router_.attach(nullptr);
}

void Snapshotter::fail(const std::string& message) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_.empty()) return;
        error_ = message;
    }
    if (queue_) queue_->abort();
    ranges_changed_.notify_all();
}

std::string Snapshotter::error() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return error_;
}

// ---------------------------------------------------------------------------------------------------------
// preparation

void Snapshotter::resolve_tables(PGconn* conn, bool strict) {
    std::map<uint32_t, Table> found;
    auto matching = [&](const TablePattern& pattern) {
        return pg::exec(
            conn,
            "WITH matched AS ("
            "  SELECT c.oid, c.relkind FROM pg_catalog.pg_class c"
            "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            "  WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p' AND n.nspname LIKE $1 AND c.relname "
            "LIKE $2"
            "    AND n.nspname NOT IN ('pgstream', 'pg_catalog', 'information_schema')"
            "    AND n.nspname !~ '^pg_(toast|temp)'),"
            " leaves AS ("
            "  SELECT oid FROM matched WHERE relkind = 'r'"
            "  UNION SELECT t.relid FROM matched m, pg_catalog.pg_partition_tree(m.oid) t"
            "  WHERE m.relkind = 'p' AND t.isleaf)"
            " SELECT c.oid, n.nspname, c.relname,"
            "  pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),"
            "  pg_catalog.has_table_privilege(c.oid, 'SELECT'),"
            "  pg_catalog.pg_relation_size(c.oid) / pg_catalog.current_setting('block_size')::bigint,"
            "  c.reltuples::bigint"
            " FROM leaves l JOIN pg_catalog.pg_class c ON c.oid = l.oid"
            " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind = 'r' AND c.relpersistence = 'p' ORDER BY 2, 3",
            {pattern.schema_like, pattern.table_like});
    };
    for (const auto& text : settings_.tables) {
        auto result = matching(parse_table_pattern(text, "PGSTREAM_POSTGRES_INITIAL_SNAPSHOT_TABLES"));
        if (strict && PQntuples(result.get()) == 0)
            throw ConfigError("PGSTREAM_POSTGRES_INITIAL_SNAPSHOT_TABLES",
                              "no table matches \"" + text +
                                  "\" (expected *, schema.*, name or schema.name of existing tables)");
        for (int row = 0; row < PQntuples(result.get()); ++row) {
            Table table;
            table.oid = uint32_t(std::stoul(pg::value(result.get(), row, 0).value_or("0")));
            table.schema = pg::value(result.get(), row, 1).value_or("");
            table.name = pg::value(result.get(), row, 2).value_or("");
            table.qualified = pg::value(result.get(), row, 3).value_or("");
            table.selectable = pg::value(result.get(), row, 4).value_or("f") == "t";
            table.pages = std::stoll(pg::value(result.get(), row, 5).value_or("0"));
            table.estimated_rows = std::stoll(pg::value(result.get(), row, 6).value_or("-1"));
            found.emplace(table.oid, std::move(table));
        }
    }
    for (const auto& text : settings_.excluded_tables) {
        auto result = matching(parse_table_pattern(text, "PGSTREAM_POSTGRES_SNAPSHOT_EXCLUDED_TABLES"));
        for (int row = 0; row < PQntuples(result.get()); ++row)
            found.erase(uint32_t(std::stoul(pg::value(result.get(), row, 0).value_or("0"))));
    }
    tables_.clear();
    for (auto& [oid, table] : found) {
        if (!table.selectable)
            throw std::runtime_error("snapshot: no SELECT privilege on table " + table.qualified +
                                     " (GRANT SELECT ON " + table.qualified +
                                     " TO the role of the URL, or "
                                     "leave it out with PGSTREAM_POSTGRES_SNAPSHOT_EXCLUDED_TABLES)");
        read_columns(conn, std::to_string(oid), table);
        tables_.push_back(std::move(table));
    }
}

void Snapshotter::open_snapshot(PGconn* control) {
    Lsn restart;
    bool slot_exists = false;
    if (!target_.slot_name.empty()) {
        auto slot = pg::exec(control,
                             "SELECT restart_lsn::text FROM pg_catalog.pg_replication_slots "
                             "WHERE slot_name = $1 AND database = pg_catalog.current_database()",
                             {target_.slot_name});
        slot_exists = PQntuples(slot.get()) > 0;
        if (slot_exists) restart = Lsn::parse(pg::value(slot.get(), 0, 0).value_or("")).value_or(Lsn());
    }
    if (!slot_exists && !one_off_ && !target_.slot_name.empty()) {
        std::string plugin = target_.plugin;
        if (plugin.empty()) {
            auto available = pg::exec(control,
                                      "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions "
                                      "WHERE name = 'pgstream')");
            plugin = pg::value(available.get(), 0, 0).value_or("f") == "t" ? "pgstream" : "wal2json";
        }
        exporter_ = pg::connect(target_.url, true, "pgstream snapshot");
        std::string command =
            "CREATE_REPLICATION_SLOT \"" + target_.slot_name + "\" LOGICAL " + plugin +
            (PQserverVersion(exporter_.get()) >= 150000 ? " (SNAPSHOT 'export')" : " EXPORT_SNAPSHOT");
        auto created = pg::exec(exporter_.get(), command);
        position_ = Lsn::parse(pg::value(created.get(), 0, 1).value_or("")).value_or(Lsn());
        snapshot_name_ = pg::value(created.get(), 0, 2).value_or("");
        exported_by_slot_ = true;
        auto slot = pg::exec(
            control, "SELECT restart_lsn::text FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
            {target_.slot_name});
        if (PQntuples(slot.get()) > 0)
            restart = Lsn::parse(pg::value(slot.get(), 0, 0).value_or("")).value_or(Lsn());
        log::info("snapshot: created replication slot \"", target_.slot_name, "\" (", plugin,
                  ") with an exported snapshot at ", position_.str(), "; the stream starts there");
    } else {
        // The slot's restart_lsn, read before the snapshot is taken, is at or below the first change of every
        // transaction the snapshot cannot see (those are still running or start later, and the slot keeps
        // WAL from before the oldest transaction it may still have to send).
        exporter_ = pg::connect(target_.url, false, "pgstream snapshot");
        pg::exec(exporter_.get(), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        auto exported = pg::exec(exporter_.get(),
                                 "SELECT pg_catalog.pg_export_snapshot(), "
                                 "pg_catalog.pg_current_wal_lsn()::text");
        snapshot_name_ = pg::value(exported.get(), 0, 0).value_or("");
        position_ = Lsn::parse(pg::value(exported.get(), 0, 1).value_or("")).value_or(Lsn());
        log::info("snapshot: fresh snapshot at ", position_.str(),
                  slot_exists ? "; the stream from slot \"" + target_.slot_name +
                                    "\" may repeat changes the snapshot holds (reconciled by version)"
                              : std::string());
    }
    // Below every change the stream may still deliver (none sits at restart_lsn itself; -1 keeps it so).
    version_ = Lsn(restart.value > 0 ? restart.value - 1 : 0).str();
}

void Snapshotter::load_or_create_ranges(PGconn* control) {
    std::string slot = target_.slot_name;
    std::optional<std::string> slot_param =
        slot.empty() || one_off_ ? std::nullopt : std::optional<std::string>(slot);
    std::string patterns = text_array(settings_.tables);
    auto previous = pg::exec(control,
                             "SELECT id FROM pgstream.snapshots WHERE slot_name IS NOT DISTINCT FROM $1 "
                             "AND tables = $2::text[] AND status <> 'done' ORDER BY id DESC LIMIT 1",
                             {slot_param, patterns});
    std::map<std::pair<std::string, std::string>, size_t> by_name;
    for (size_t i = 0; i < tables_.size(); ++i) by_name[{tables_[i].schema, tables_[i].name}] = i;

    if (PQntuples(previous.get()) > 0) {
        snapshot_id_ = std::stoll(pg::value(previous.get(), 0, 0).value_or("0"));
        auto rows =
            pg::exec(control,
                     "UPDATE pgstream.snapshot_ranges SET read_count = read_count + 1, rows_done = 0 "
                     "WHERE snapshot_id = $1 AND done_at IS NULL "
                     "RETURNING table_schema, table_name, first_page, end_page, estimated_rows, read_count",
                     {std::to_string(snapshot_id_)});
        pg::exec(control, "UPDATE pgstream.snapshots SET status = 'running', error = NULL WHERE id = $1",
                 {std::to_string(snapshot_id_)});
        for (int row = 0; row < PQntuples(rows.get()); ++row) {
            std::string schema = pg::value(rows.get(), row, 0).value_or("");
            std::string name = pg::value(rows.get(), row, 1).value_or("");
            Range range;
            range.first_page = std::stoll(pg::value(rows.get(), row, 2).value_or("0"));
            range.end_page = std::stoll(pg::value(rows.get(), row, 3).value_or("-1"));
            range.estimated_rows = std::stoll(pg::value(rows.get(), row, 4).value_or("-1"));
            range.read_count = std::stoi(pg::value(rows.get(), row, 5).value_or("1"));
            auto table = by_name.find({schema, name});
            std::string pages = "[" + std::to_string(range.first_page) + ", " +
                                (range.end_page < 0 ? std::string("end") : std::to_string(range.end_page)) +
                                ")";
            if (table == by_name.end()) {
                log::warn("snapshot ", snapshot_id_, ": table ", schema, ".", name,
                          " no longer exists; its range ", pages, " is marked done");
                pg::exec(
                    control,
                    "UPDATE pgstream.snapshot_ranges SET done_at = pg_catalog.now() WHERE snapshot_id = $1 "
                    "AND table_schema = $2 AND table_name = $3 AND first_page = $4",
                    {std::to_string(snapshot_id_), schema, name, std::to_string(range.first_page)});
                continue;
            }
            range.table = table->second;
            if (range.read_count > 1) {
                ++stats_.ranges_reread;
                log::info("snapshot ", snapshot_id_, ": re-reading ", tables_[range.table].qualified,
                          " pages ", pages, " (read ", range.read_count - 1,
                          " time(s) before, not all delivered)");
            }
            ranges_.push_back(range);
        }
        log::info("snapshot ", snapshot_id_, ": resuming, ", ranges_.size(), " range(s) not done");
        return;
    }

    // The snapshot and its ranges are recorded together: a kill between the two would leave a snapshot with
    // no range, which the next start would "resume" as complete without reading a row.
    pg::exec(control, "BEGIN");
    auto created = pg::exec(control,
                            "INSERT INTO pgstream.snapshots (slot_name, tables, snapshot_lsn) "
                            "VALUES ($1, $2::text[], $3::pg_lsn) RETURNING id",
                            {slot_param, patterns, position_.str()});
    snapshot_id_ = std::stoll(pg::value(created.get(), 0, 0).value_or("0"));
    std::string values;
    for (size_t t = 0; t < tables_.size(); ++t) {
        const Table& table = tables_[t];
        int64_t count =
            std::max<int64_t>(1, (table.pages + settings_.batch_page_size - 1) / settings_.batch_page_size);
        for (int64_t k = 0; k < count; ++k) {
            Range range;
            range.table = t;
            range.first_page = k * settings_.batch_page_size;
            // The last range reads to the table's end, wherever that is by the time it is read.
            range.end_page = k + 1 == count ? -1 : (k + 1) * settings_.batch_page_size;
            if (table.estimated_rows >= 0)
                range.estimated_rows = table.pages > 0 ? table.estimated_rows *
                                                             std::min(settings_.batch_page_size,
                                                                      table.pages - range.first_page) /
                                                             table.pages
                                                       : table.estimated_rows;
            range.read_count = 1;
            ranges_.push_back(range);
            PGconn* conn = control;
            values +=
                std::string(values.empty() ? "" : ",") + "(" + std::to_string(snapshot_id_) + "," +
                pg::quote_literal(conn, table.schema) + "," + pg::quote_literal(conn, table.name) + "," +
                std::to_string(range.first_page) + "," +
                (range.end_page < 0 ? std::string("NULL") : std::to_string(range.end_page)) + "," +
                (range.estimated_rows < 0 ? std::string("NULL") : std::to_string(range.estimated_rows)) +
                ",1)";
        }
    }
    if (!values.empty())
        pg::exec(control,
                 "INSERT INTO pgstream.snapshot_ranges (snapshot_id, table_schema, table_name, first_page, "
                 "end_page, estimated_rows, read_count) VALUES " +
                     values);
    pg::exec(control, "COMMIT");
    log::info("snapshot ", snapshot_id_, ": ", tables_.size(), " table(s) in ", ranges_.size(),
              " range(s) at ", position_.str());
}

// Each schema's newest schema_log version visible in the snapshot, first: outputs learn the schema of the
// rows that follow (the translator gives them their ids from it).
void Snapshotter::add_schema_log_range(PGconn* conn) {
    std::set<std::string> schemas;
    for (const Table& table : tables_) schemas.insert(table.schema);
    auto exists = pg::exec(conn, "SELECT pg_catalog.to_regclass('pgstream.schema_log') IS NOT NULL");
    if (schemas.empty() || pg::value(exists.get(), 0, 0).value_or("f") != "t") return;
    Table log_table;
    log_table.schema = "pgstream";
    log_table.name = "schema_log";
    log_table.qualified = "pgstream.schema_log";
    read_columns(conn, "'pgstream.schema_log'::regclass", log_table);
    std::vector<std::string> names(schemas.begin(), schemas.end());
    std::string sql = "COPY (SELECT " + log_table.select_list +
                      " FROM pgstream.schema_log WHERE id IN (SELECT DISTINCT ON (schema_name) id "
                      "FROM pgstream.schema_log WHERE schema_name = ANY (" +
                      pg::quote_literal(conn, text_array(names)) +
                      "::text[]) ORDER BY schema_name, version DESC)) TO STDOUT";
    Range range;
    range.persisted = false;
    range.table = tables_.size();
    range.custom_sql = sql;
    tables_.push_back(std::move(log_table));
    schema_log_range_ = ranges_.size();
    ranges_.push_back(range);
}

// ---------------------------------------------------------------------------------------------------------
// reading

bool Snapshotter::next_range(size_t& taken) {
    std::unique_lock<std::mutex> lock(mutex_);
    auto pick = [&]() -> bool {
        std::set<std::string> schemas(active_schemas_.begin(), active_schemas_.end());
        for (auto it = pending_ranges_.begin(); it != pending_ranges_.end(); ++it) {
            const Table& table = tables_[ranges_[*it].table];
            if (active_per_table_[ranges_[*it].table] >= settings_.table_workers) continue;
            if (!schemas.count(table.schema) && int(schemas.size()) >= settings_.schema_workers) continue;
            taken = *it;
            pending_ranges_.erase(it);
            ++active_per_table_[ranges_[taken].table];
            active_schemas_.push_back(table.schema);
            return true;
        }
        return false;
    };
    bool found = false;
    stop_.wait(lock, ranges_changed_,
               [&] { return !error_.empty() || pending_ranges_.empty() || (found = pick()); });
    return found;
}

void Snapshotter::finish_range(size_t range) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        --active_per_table_[ranges_[range].table];
        auto schema =
            std::find(active_schemas_.begin(), active_schemas_.end(), tables_[ranges_[range].table].schema);
        if (schema != active_schemas_.end()) active_schemas_.erase(schema);
    }
    ranges_changed_.notify_all();
}

bool Snapshotter::read_range(PGconn* conn, size_t index, const std::function<bool(Chunk&&)>& sink) {
    Range& range = ranges_[index];
    const Table& table = tables_[range.table];
    std::string sql = range.custom_sql;
    if (sql.empty()) {
        sql = "COPY (SELECT " + table.select_list + " FROM ONLY " + table.qualified + " WHERE ctid >= '(" +
              std::to_string(range.first_page) + ",0)'::tid";
        if (range.end_page >= 0) sql += " AND ctid < '(" + std::to_string(range.end_page) + ",0)'::tid";
        sql += ") TO STDOUT";
    }
    // A table dropped since the snapshot's start fails its COPY; the savepoint keeps the reader's snapshot
    // transaction usable for the other tables.
    pg::exec(conn, "SAVEPOINT snapshot_range");
    pg::ResultPtr started(PQexec(conn, sql.c_str()));
    if (PQresultStatus(started.get()) != PGRES_COPY_OUT) {
        const char* state = PQresultErrorField(started.get(), PG_DIAG_SQLSTATE);
        std::string message = pg::last_error(conn);
        if (state && std::string(state) == "42P01") {
            pg::exec(conn, "ROLLBACK TO SAVEPOINT snapshot_range");
            log::warn("snapshot ", snapshot_id_, ": table ", table.qualified,
                      " was dropped during the snapshot; its range is done with the rows read so far");
            range.dropped = true;
            Chunk end;
            end.range = index;
            end.range_end = true;
            return sink(std::move(end));
        }
        fail("snapshot of table " + table.qualified + " failed: " + message);
        return false;
    }
    Chunk chunk;
    chunk.range = index;
    chunk.events.reserve(kChunkRows);
    EventSupply events;
    // Added to the shared statistics once per chunk: the readers do not contend for its cache line per row.
    uint64_t chunk_copy_bytes = 0;
    auto count_copy_bytes = [&] {
        stats_.bytes.fetch_add(chunk_copy_bytes, std::memory_order_relaxed);
        chunk_copy_bytes = 0;
    };
    auto lsn = position_;
    while (true) {
        char* buffer = nullptr;
        int length = PQgetCopyData(conn, &buffer, 0);
        if (length < 0) break;
        std::string_view line(buffer, size_t(length));
        MutableEventPtr event = events.next();
        event->action = Action::Insert;
        event->lsn = lsn;
        event->commit_lsn = lsn;
        // A recycled event mostly held a row of the same table: comparing costs less than copying again.
        if (event->schema != table.schema) event->schema = table.schema;
        if (event->table != table.name) event->table = table.name;
        try {
            decode_copy_row(line, table.columns, event->columns);
        } catch (const CopyRowError& e) {
            PQfreemem(buffer);
            fail("snapshot of table " + table.qualified + " failed: " + e.what());
            return false;
        }
        PQfreemem(buffer);
        event->metadata.version = version_;
        event->metadata.snapshot_id = uint64_t(snapshot_id_);
        event->metadata.snapshot_lsn = lsn;
        event->checkpoint_token = kSnapshotToken | range.progress_index;
        chunk.bytes += size_t(length) * 2 + 256;
        chunk_copy_bytes += uint64_t(length);
        chunk.events.push_back(std::move(event));
        if (chunk.events.size() >= kChunkRows || chunk.bytes >= kChunkBytes) {
            count_copy_bytes();
            if (!sink(std::move(chunk))) return false;
            chunk = Chunk();
            chunk.range = index;
            chunk.events.reserve(kChunkRows);
        }
    }
    count_copy_bytes();
    pg::ResultPtr finished(PQgetResult(conn));
    while (pg::ResultPtr extra{PQgetResult(conn)}) {
    }
    if (PQresultStatus(finished.get()) != PGRES_COMMAND_OK) {
        fail("snapshot of table " + table.qualified + " failed: " + pg::last_error(conn));
        return false;
    }
    pg::exec(conn, "RELEASE SAVEPOINT snapshot_range");
    if (!chunk.events.empty() && !sink(std::move(chunk))) return false;
    Chunk end;
    end.range = index;
    end.range_end = true;
    return sink(std::move(end));
}

// One reader connection: imports the snapshot, then reads ranges until none is left.
void Snapshotter::reader_loop(int worker) {
    pg::ConnPtr conn;
    try {
        conn = pg::connect(target_.url, false, "pgstream snapshot reader");
        // The plugin writes bytea as its hex digits whatever bytea_output says.
        pg::exec(conn.get(), "SET bytea_output = 'hex'");
        pg::exec(conn.get(), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        pg::exec(conn.get(), "SET TRANSACTION SNAPSHOT " + pg::quote_literal(conn.get(), snapshot_name_));
    } catch (const pg::Error& e) {
        fail("snapshot: reader " + std::to_string(worker) + " cannot share the snapshot: " + e.what());
        queue_->producer_done();
        return;
    }
    size_t range;
    try {
        while (!stop_.stop_requested() && next_range(range)) {
            bool ok = read_range(conn.get(), range,
                                 [this](Chunk&& chunk) { return queue_->push(std::move(chunk)); });
            finish_range(range);
            if (!ok) break;
        }
    } catch (const std::exception& e) {
        fail("snapshot of table " + tables_[ranges_[range].table].qualified + " failed: " + e.what());
    }
    queue_->producer_done();
}

bool Snapshotter::deliver(Chunk& chunk) {
    const Range& range = ranges_[chunk.range];
    if (chunk.range_end) {
        progress_.read_complete(range.progress_index);
        return true;
    }
    progress_.emitted(range.progress_index, int64_t(chunk.events.size()));
    for (size_t i = 0; i < chunk.events.size(); ++i) {
        try {
            head_.process(std::move(chunk.events[i]));
        } catch (const Stopped&) {
            progress_.withdrawn(range.progress_index, int64_t(chunk.events.size() - i));
            return false;
        }
        stats_.rows.fetch_add(1, std::memory_order_relaxed);
    }
    return true;
}

// ---------------------------------------------------------------------------------------------------------
// bookkeeping: ranges done, progress

void Snapshotter::persist(PGconn* control, bool final) {
    std::map<size_t, std::pair<uint64_t, uint64_t>> per_table;  // done ranges, ranges
    for (Range& range : ranges_) {
        if (!range.persisted) continue;
        bool done = progress_.done(range.progress_index);
        auto& table = per_table[range.table];
        ++table.second;
        if (range.reported_done) {
            ++table.first;
            continue;
        }
        int64_t rows = int64_t(progress_.rows_delivered(range.progress_index));
        if (!done && rows == range.rows_reported) continue;
        pg::exec(control,
                 std::string("UPDATE pgstream.snapshot_ranges SET rows_done = $5") +
                     (done ? ", done_at = pg_catalog.now()" : "") +
                     " WHERE snapshot_id = $1 AND table_schema = $2 AND table_name = $3 AND first_page = $4",
                 {std::to_string(snapshot_id_), tables_[range.table].schema, tables_[range.table].name,
                  std::to_string(range.first_page), std::to_string(rows)});
        range.rows_reported = rows;
        if (done) {
            range.reported_done = true;
            ++table.first;
        }
    }
    uint64_t tables_done = 0;
    for (const auto& [table, counts] : per_table)
        if (counts.first == counts.second) ++tables_done;
    stats_.tables_done = tables_done;
    (void) final;
}

void Snapshotter::report_progress(bool final) {
    struct TableProgress {
        uint64_t rows = 0;
        int64_t estimate = 0;
        bool estimated = true;
        bool done = true;
    };
    std::map<size_t, TableProgress> tables;
    for (const Range& range : ranges_) {
        if (!range.persisted) continue;
        auto& table = tables[range.table];
        table.rows += progress_.rows_emitted(range.progress_index);
        if (range.estimated_rows < 0) table.estimated = false;
        table.estimate += std::max<int64_t>(range.estimated_rows, 0);
        table.done = table.done && progress_.done(range.progress_index);
    }
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    uint64_t rows = stats_.rows.load();
    double rate = elapsed > 0 ? double(rows) / elapsed : 0;
    bool terminal = isatty(STDERR_FILENO) == 1;
    std::string lines;
    int active = 0;
    for (const auto& [index, table] : tables) {
        if (table.done && !final) continue;
        std::string line = "  " + tables_[index].qualified + "  " + std::to_string(table.rows);
        if (table.estimated)
            line += " / ~" + std::to_string(std::max<int64_t>(table.estimate, int64_t(table.rows)));
        line += " rows";
        if (table.done) {
            line += "  done";
        } else if (table.estimated && rate > 0 && table.estimate > int64_t(table.rows)) {
            line += "  ETA " + format_duration(double(table.estimate - int64_t(table.rows)) / rate);
        }
        lines += line + "\n";
        ++active;
    }
    std::string summary = "snapshot " + std::to_string(snapshot_id_) + ": " +
                          std::to_string(stats_.tables_done.load()) + "/" +
                          std::to_string(stats_.tables_total.load()) + " tables done, " +
                          std::to_string(rows) + " rows, " + format_rate(rate) + " rows/s";
    if (terminal) {
        // Redraws the block written last time: per table rows done / estimated and ETA (the rate is the
        // snapshot's, tables share the readers).
        static thread_local int previous_lines = 0;
        std::string out;
        for (int i = 0; i < previous_lines; ++i) out += "\033[1A\033[2K";
        out += summary + "\n" + lines;
        fputs(out.c_str(), stderr);
        fflush(stderr);
        previous_lines = final ? 0 : active + 1;
    } else {
        log::info(summary, final ? " (finished)" : "");
    }
}

void Snapshotter::bookkeeping_loop(PGconn* control) {
    auto interval =
        isatty(STDERR_FILENO) == 1 ? std::chrono::milliseconds(1000) : settings_.progress_interval;
    auto next_report = std::chrono::steady_clock::now() + interval;
    std::unique_lock<std::mutex> lock(mutex_);
    while (!finished_) {
        // Done ranges are recorded within a second; progress is shown at its own interval.
        ranges_changed_.wait_for(lock, std::chrono::milliseconds(1000), [this] { return finished_; });
        if (finished_) break;
        lock.unlock();
        try {
            persist(control, false);
        } catch (const std::exception& e) {
            log::warn("snapshot ", snapshot_id_, ": recording progress failed: ", e.what());
        }
        if (std::chrono::steady_clock::now() >= next_report) {
            report_progress(false);
            next_report = std::chrono::steady_clock::now() + interval;
        }
        lock.lock();
    }
}

// ---------------------------------------------------------------------------------------------------------

std::string Snapshotter::run(bool one_off) {
    RecycledEventsInUse recycled_events;
    one_off_ = one_off;
    started_ = std::chrono::steady_clock::now();
    pg::ConnPtr control;
    try {
        control = pg::connect(target_.url, false, "pgstream snapshot");
        auto tracked =
            pg::exec(control.get(), "SELECT pg_catalog.to_regclass('pgstream.snapshot_ranges') IS NOT NULL");
        if (pg::value(tracked.get(), 0, 0).value_or("f") != "t")
            return "snapshot: pgstream.snapshots is missing: run `pgstream init` (schema tracking 0.4.0, "
                   "migration 8)";
        if (!one_off_ && !target_.slot_name.empty()) {
            // `run` snapshots once per slot and table patterns: a restart after a finished snapshot streams
            // on.
            auto finished =
                pg::exec(control.get(),
                         "SELECT id FROM pgstream.snapshots WHERE slot_name = $1 AND tables = $2::text[] "
                         "AND status = 'done' AND EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots "
                         "WHERE slot_name = $1) ORDER BY id DESC LIMIT 1",
                         {target_.slot_name, text_array(settings_.tables)});
            if (PQntuples(finished.get()) > 0) {
                snapshot_id_ = std::stoll(pg::value(finished.get(), 0, 0).value_or("0"));
                log::info("snapshot ", snapshot_id_, " of these tables for slot \"", target_.slot_name,
                          "\" is done; streaming (pgstream snapshot takes another on request)");
                phase_ = 3;
                return {};
            }
        }
        resolve_tables(control.get(), true);  // throws ConfigError before anything is created
        open_snapshot(control.get());
        // The tables as the snapshot sees them (one created or dropped since the check above counts as it is
        // in the snapshot).
        pg::ConnPtr catalog = pg::connect(target_.url, false, "pgstream snapshot");
        pg::exec(catalog.get(), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        pg::exec(catalog.get(),
                 "SET TRANSACTION SNAPSHOT " + pg::quote_literal(catalog.get(), snapshot_name_));
        resolve_tables(catalog.get(), false);
        load_or_create_ranges(control.get());
        add_schema_log_range(catalog.get());
        std::set<size_t> tables;
        for (Range& range : ranges_) {
            range.progress_index = progress_.add_range();
            if (range.persisted) tables.insert(range.table);
        }
        stats_.tables_total = tables.size();
        router_.attach(&progress_);
        phase_ = 1;
        // The schema versions first, from this thread: before any row reaches the pipeline.
        if (schema_log_range_ != SIZE_MAX) {
            pg::exec(catalog.get(), "SET bytea_output = 'hex'");
            if (!read_range(catalog.get(), schema_log_range_,
                            [this](Chunk&& chunk) { return deliver(chunk); }))
                return error().empty() ? "snapshot: stopped" : error();
        }
    } catch (const ConfigError&) {
        throw;
    } catch (const std::exception& e) {
        std::string message = e.what();
        if (snapshot_id_ != 0 && control) {
            try {
                pg::exec(control.get(),
                         "UPDATE pgstream.snapshots SET status = 'failed', error = $2 WHERE id = $1",
                         {std::to_string(snapshot_id_), message});
            } catch (const pg::Error&) {
            }
        }
        return message.rfind("snapshot", 0) == 0 ? message : "snapshot: " + message;
    }

    for (size_t i = 0; i < ranges_.size(); ++i)
        if (ranges_[i].persisted) pending_ranges_.push_back(i);
    active_per_table_.assign(tables_.size(), 0);
    int readers =
        int(std::min<size_t>(size_t(settings_.workers), std::max<size_t>(pending_ranges_.size(), 1)));
    queue_ = std::make_unique<ChunkQueue>(settings_.handoff_bytes, stop_, readers);
    std::vector<std::thread> threads;
    for (int i = 0; i < readers; ++i) threads.emplace_back([this, i] { reader_loop(i); });
    std::thread bookkeeper([this, conn = control.get()] { bookkeeping_loop(conn); });

    Chunk chunk;
    bool stopped = false;
    while (queue_->pop(chunk)) {
        if (!deliver(chunk)) {
            stopped = true;
            break;
        }
    }
    if (stopped || stop_.stop_requested()) queue_->abort();
    for (auto& thread : threads) thread.join();

    // Everything read is in the pipeline: wait for the outputs to deliver it.
    phase_ = 2;
    std::string failure = error();
    if (failure.empty() && !stop_.stop_requested()) {
        try {
            head_.flush();
        } catch (const std::exception& e) {
            failure = std::string("snapshot: flushing outputs: ") + e.what();
        }
    }
    bool delivered = failure.empty() && progress_.wait_all_done(stop_);
    if (failure.empty()) failure = router_.fatal_error();
    if (failure.empty()) failure = head_.fatal_error();
    {
        std::lock_guard<std::mutex> lock(mutex_);
        finished_ = true;
    }
    ranges_changed_.notify_all();
    bookkeeper.join();
    try {
        persist(control.get(), true);
        if (delivered && failure.empty()) {
            pg::exec(
                control.get(),
                "UPDATE pgstream.snapshots SET status = 'done', finished_at = pg_catalog.now() WHERE id = $1",
                {std::to_string(snapshot_id_)});
        } else if (!failure.empty()) {
            pg::exec(control.get(),
                     "UPDATE pgstream.snapshots SET status = 'failed', error = $2 WHERE id = $1",
                     {std::to_string(snapshot_id_), failure});
        }
    } catch (const std::exception& e) {
        if (failure.empty()) failure = std::string("snapshot: recording progress failed: ") + e.what();
    }
    report_progress(true);
    router_.attach(nullptr);
    exporter_.reset();
    if (!failure.empty()) {
        phase_ = 4;
        return failure;
    }
    if (!delivered) {
        phase_ = 4;
        return "snapshot " + std::to_string(snapshot_id_) +
               ": stopped before every row was delivered; the ranges not done are read again on the next "
               "start";
    }
    phase_ = 3;
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    log::info("snapshot ", snapshot_id_, ": done, ", stats_.rows.load(), " rows of ",
              stats_.tables_total.load(), " table(s) in ", format_duration(elapsed), " (",
              format_rate(elapsed > 0 ? stats_.rows.load() / elapsed : 0), " rows/s)");
    return {};
}

void Snapshotter::observe(Metrics& metrics) {
    metrics.observe_counter("pgstream.snapshot.rows", "{row}", "Snapshot rows handed to the outputs", {},
                            [this] { return double(stats_.rows.load()); });
    metrics.observe_counter("pgstream.snapshot.bytes", "By", "Bytes of table data the snapshot read", {},
                            [this] { return double(stats_.bytes.load()); });
    metrics.observe_gauge("pgstream.snapshot.tables.done", "{table}",
                          "Tables of the snapshot whose rows were all delivered", {},
                          [this] { return double(stats_.tables_done.load()); });
    metrics.observe_gauge("pgstream.snapshot.tables", "{table}", "Tables of the snapshot", {},
                          [this] { return double(stats_.tables_total.load()); });
}

std::string Snapshotter::status_json() const {
    static const char* phases[] = {"preparing", "reading", "delivering", "done", "failed"};
    return "{\"id\":" + std::to_string(snapshot_id_) + ",\"state\":\"" + phases[phase_.load()] +
           "\",\"lsn\":" + json_quote(position_.str()) + ",\"rows\":" + std::to_string(stats_.rows.load()) +
           ",\"bytes\":" + std::to_string(stats_.bytes.load()) +
           ",\"tables_done\":" + std::to_string(stats_.tables_done.load()) +
           ",\"tables_total\":" + std::to_string(stats_.tables_total.load()) +
           ",\"ranges_reread\":" + std::to_string(stats_.ranges_reread.load()) + "}";
}

}  // namespace pgstream
