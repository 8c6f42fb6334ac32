// The initial snapshot (docs/snapshot.md) end to end through the real binary: value rendering equal to the
// plugin's decoded inserts, the hand-over to the stream under concurrent writes, resumption after SIGKILL and
// bad input.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "support/stream_fixture.h"
#include "wal/json.h"

namespace pgstream_it {
namespace {

// A row as the events show it: column name → value as JSON.
using RowValues = std::map<std::string, std::string>;

// "schema.table" and the columns (name, type, value as JSON) of a record or event line, read with the
// shipper's own JSON model, which keeps numbers digit for digit (the corpus has numbers beyond a double).
std::pair<std::string, std::string> table_and_columns(const std::string& line) {
    pgstream::JsonValue root = pgstream::parse_json(line);
    auto text = [&](const char* key) {
        const pgstream::JsonValue* value = root.find(key);
        return value ? value->text : std::string();
    };
    std::string key;
    if (const pgstream::JsonValue* columns = root.find("columns"))
        for (const auto& column : columns->items)
            key += column.find("name")->text + "\x1f" + column.find("type")->text + "\x1f" +
                   column.find("value")->to_json() + "\x1e";
    return {text("schema") + "." + text("table"), key};
}

std::vector<OutputEvent> parse_all(const std::vector<std::string>& lines) {
    std::vector<std::string> errors;
    auto events = parse_events(lines, &errors);
    EXPECT_TRUE(errors.empty()) << errors.front();
    return events;
}

// The "pgstream: ..." lines of stderr (the error as the CLI prints it; log lines are apart).
std::vector<std::string> cli_error_lines(const std::string& stderr_text) {
    std::vector<std::string> errors;
    std::istringstream lines(stderr_text);
    for (std::string line; std::getline(lines, line);)
        if (line.rfind("pgstream: ", 0) == 0) errors.push_back(line);
    return errors;
}

std::vector<std::string> cli_errors(const CommandResult& result) {
    return cli_error_lines(result.err);
}

Settings snapshot_settings(const PgCluster& cluster, const std::string& tables) {
    Settings settings = shipper_settings(cluster);
    settings["PGSTREAM_POSTGRES_INITIAL_SNAPSHOT_TABLES"] = tables;
    return settings;
}

// For every type of the differential corpus, a snapshot row equals the plugin's decoded INSERT of the same
// row (name, type and value of every column), apart from the snapshot marking.
TEST(IntegrationSnapshot, RowsEqualThePluginsDecodedInsertsForEveryCorpusType) {
    PgCluster cluster;
    init_stream(cluster);
    const std::string plugin = stream_plugin();
    std::vector<std::string> files = {"01_scalar_types",
                                      "02_special_values",
                                      "03_composite_types",
                                      "04_domains",
                                      "06_identifiers",
                                      "08_toast",
                                      "12_partitions_unlogged_temp",
                                      "15_defaults_generated_identity",
                                      "16_bytea"};
    // wal2json writes schema-qualified quoted type names as invalid JSON (a difference the corpus expects).
    if (plugin == "pgstream") files.push_back("05_quoted_types");
    for (const auto& file : files) {
        PgConnection db(cluster.url());
        std::string schema = "corpus_" + file.substr(0, 2);
        db.exec("CREATE SCHEMA " + schema + "; SET search_path = " + schema + ", public");
        // VACUUM cannot run inside the one transaction that a multi-statement exec is.
        std::string sql, text = read_file(source_dir() + "/regress/differential/corpus/" + file + ".sql");
        size_t start = 0;
        while (start < text.size()) {
            size_t end = text.find('\n', start);
            if (end == std::string::npos) end = text.size();
            std::string line = text.substr(start, end - start);
            if (line.rfind("vacuum", 0) != 0) sql += line + "\n";
            start = end + 1;
        }
        db.exec(sql);
    }
    PgConnection db(cluster.url());
    db.exec("SELECT pg_create_logical_replication_slot('corpus_inserts', '" + plugin + "')");
    // Each row deleted and inserted again as it is: the decoded inserts show exactly the rows the snapshot
    // reads.
    db.exec(R"SQL(
DO $$ DECLARE r record; cols text; BEGIN
FOR r IN SELECT c.oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS q
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'r' AND c.relpersistence = 'p'
           AND n.nspname NOT IN ('pgstream', 'pg_catalog', 'information_schema') AND n.nspname !~ '^pg_' LOOP
  SELECT string_agg(quote_ident(attname), ',' ORDER BY attnum) INTO cols FROM pg_attribute
   WHERE attrelid = r.oid AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
  CONTINUE WHEN cols IS NULL;
  EXECUTE format('WITH d AS (DELETE FROM ONLY %s RETURNING *) INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM d',
                 r.q, r.q, cols, cols);
END LOOP; END $$)SQL");
    std::vector<std::string> decoded_lines;
    for (const auto& row :
         db.query("SELECT data FROM pg_logical_slot_get_changes('corpus_inserts', NULL, NULL, "
                  "'format-version', '2', 'include-lsn', '1')"))
        if (row[0] && row[0]->find("\"action\":\"I\"") != std::string::npos) decoded_lines.push_back(*row[0]);
    std::map<std::string, std::multiset<std::string>> decoded, snapshot;
    for (const auto& line : decoded_lines) {
        auto [table, columns] = table_and_columns(line);
        decoded[table].insert(columns);
    }
    ASSERT_GE(decoded.size(), 10u);

    std::string patterns;
    for (const auto& row :
         db.query("SELECT DISTINCT quote_ident(n.nspname) FROM pg_class c JOIN pg_namespace n ON "
                  "n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN "
                  "('pgstream', 'pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'"))
        patterns += (patterns.empty() ? "" : ",") + *row[0] + ".*";
    auto result = run_pgstream({"snapshot", "--tables", patterns}, shipper_settings(cluster),
                               std::chrono::seconds(120));
    ASSERT_EQ(result.exit_code, 0) << result.describe();
    std::vector<std::string> lines;
    size_t start = 0;
    while (start < result.out.size()) {
        size_t end = result.out.find('\n', start);
        if (end == std::string::npos) break;
        lines.push_back(result.out.substr(start, end - start));
        start = end + 1;
    }
    for (const auto& line : lines) {
        auto [table, columns] = table_and_columns(line);
        if (table == "pgstream.schema_log") continue;
        EXPECT_NE(line.find("\"action\":\"I\""), std::string::npos) << line;
        EXPECT_NE(line.find("\"snapshot\":{\"id\":"), std::string::npos) << line;
        snapshot[table].insert(columns);
    }
    EXPECT_EQ(snapshot.size(), decoded.size());
    for (const auto& [table, rows] : decoded) {
        auto found = snapshot.find(table);
        ASSERT_NE(found, snapshot.end()) << table << " is missing from the snapshot";
        if (found->second == rows) continue;
        std::vector<std::string> only_decoded, only_snapshot;
        std::set_difference(rows.begin(), rows.end(), found->second.begin(), found->second.end(),
                            std::back_inserter(only_decoded));
        std::set_difference(found->second.begin(), found->second.end(), rows.begin(), rows.end(),
                            std::back_inserter(only_snapshot));
        ADD_FAILURE() << table << ": decoded insert\n  "
                      << (only_decoded.empty() ? "-" : only_decoded.front()) << "\nsnapshot row\n  "
                      << (only_snapshot.empty() ? "-" : only_snapshot.front());
    }
}

// Applies events strictly: an insert of a present key, or an update / delete of an absent one, is an error
// (an overlap or a gap between the snapshot and the stream).
struct StrictTables {
    std::map<std::string, std::map<std::string, RowValues>> tables;
    std::vector<std::string> errors;

    static RowValues values(const std::vector<OutputColumn>& columns) {
        RowValues row;
        for (const auto& column : columns) row[column.name] = column.value_text();
        return row;
    }
    void apply(const OutputEvent& event) {
        if (event.is_schema_log() || event.schema != "public") return;
        auto& table = tables[event.table];
        RowValues row = values(event.columns);
        RowValues old = event.identity.empty() ? row : values(event.identity);
        std::string key = event.action == "I" || event.action == "U" ? row["id"] : old["id"];
        std::string old_key = old.count("id") ? old["id"] : key;
        if (event.action == "I") {
            if (!table.emplace(key, row).second)
                errors.push_back("insert of a present row " + event.table + " " + key + ": " + event.raw);
        } else if (event.action == "U") {
            if (table.erase(old_key) == 0)
                errors.push_back("update of an absent row " + event.table + " " + old_key);
            table[key] = row;
        } else if (event.action == "D") {
            if (table.erase(old_key) == 0)
                errors.push_back("delete of an absent row " + event.table + " " + old_key);
        }
    }
};

// A new slot is created with an exported snapshot: while a workload writes to the tables being snapshotted,
// the snapshot followed by the stream reproduces every table row by row, with no gap and no overlap.
TEST(IntegrationSnapshot, NewSlotHandsOverToTheStreamWithoutGapOrOverlap) {
    PgCluster cluster;
    auto init = run_pgstream(
        {"init", "--pgurl", cluster.url(), "--slot", kSlot, "--plugin", stream_plugin(), "--no-slot"});
    ASSERT_EQ(init.exit_code, 0) << init.describe();
    PgConnection db(cluster.url());
    ASSERT_FALSE(slot_state(db, kSlot).exists);
    for (const char* table : {"a", "b", "c"}) {
        db.exec(std::string("CREATE TABLE ") + table + " (id int PRIMARY KEY, v text, n bigint)");
        db.exec(std::string("INSERT INTO ") + table +
                " SELECT g, md5(g::text), g FROM generate_series(1, 20000) g");
    }
    std::atomic<bool> writing{true};
    std::atomic<int> statements{0};
    std::thread workload([&] {
        PgConnection writer(cluster.url());
        std::mt19937 rng = seeded_rng();
        int next_id = 100000;
        while (writing) {
            std::string table(1, char('a' + rng() % 3));
            int id = int(rng() % 20000) + 1;
            switch (rng() % 3) {
                case 0:
                    writer.exec("INSERT INTO " + table + " VALUES (" + std::to_string(next_id++) +
                                ", 'new', 0)");
                    break;
                case 1:
                    writer.exec("UPDATE " + table +
                                " SET n = n + 1, v = 'upd' WHERE id = " + std::to_string(id));
                    break;
                default:
                    writer.exec("DELETE FROM " + table + " WHERE id = " + std::to_string(id));
                    break;
            }
            ++statements;
        }
    });
    ScopeExit stop_workload([&] {
        writing = false;
        if (workload.joinable()) workload.join();
    });
    TempDir work;
    Settings settings = snapshot_settings(cluster, "*");
    settings["PGSTREAM_POSTGRES_LISTENER_INITIAL_SNAPSHOT_ENABLED"] = "true";
    settings["PGSTREAM_POSTGRES_SNAPSHOT_BATCH_PAGE_SIZE"] = "20";
    settings["PGSTREAM_POSTGRES_SNAPSHOT_WORKERS"] = "2";
    ShipperProcess shipper(work.path(), settings);
    shipper.start();
    ASSERT_TRUE(wait_until([&] { return slot_state(db, kSlot).active; }, std::chrono::seconds(60)))
        << shipper_diagnostics(shipper);
    int before = statements;
    ASSERT_TRUE(wait_until([&] { return statements > before + 200; }, std::chrono::seconds(30)));
    writing = false;
    workload.join();
    db.exec("CREATE TABLE done_marker (id int PRIMARY KEY)");
    db.exec("INSERT INTO done_marker VALUES (1)");
    ASSERT_TRUE(wait_until(
        [&] {
            auto lines = shipper.output_lines();
            return !lines.empty() && lines.back().find("\"done_marker\"") != std::string::npos;
        },
        std::chrono::seconds(60)))
        << shipper_diagnostics(shipper);
    EXPECT_EQ(shipper.stop(), 0) << shipper.stderr_tail();

    StrictTables applied;
    bool streamed = false, snapshot_after_stream = false;
    for (const auto& event : parse_all(shipper.output_lines())) {
        bool is_snapshot = event.raw.find("\"snapshot\":{\"id\":") != std::string::npos;
        if (!is_snapshot && !event.is_schema_log()) streamed = true;
        if (is_snapshot && streamed) snapshot_after_stream = true;
        applied.apply(event);
    }
    EXPECT_FALSE(snapshot_after_stream) << "snapshot rows after streamed changes";
    EXPECT_TRUE(applied.errors.empty())
        << applied.errors.size() << " errors, first: " << applied.errors.front();
    for (const char* table : {"a", "b", "c"}) {
        auto rows = db.query(std::string("SELECT id::text, v, n::text FROM ") + table);
        const auto& seen = applied.tables[table];
        EXPECT_EQ(seen.size(), rows.size()) << table;
        size_t mismatches = 0;
        for (const auto& row : rows) {
            auto found = seen.find(*row[0]);
            if (found == seen.end() || found->second.at("v") != *row[1] || found->second.at("n") != *row[2])
                ++mismatches;
        }
        EXPECT_EQ(mismatches, 0u) << table;
    }
}

// Ids of table "big" in a snapshot's output file, read line by line (a 1M-row snapshot writes ~400 MB: never
// held whole); `rows` counts its events, repeats included.
void scan_big_ids(const std::string& path, std::vector<bool>& seen, size_t& rows) {
    std::ifstream file(path);
    for (std::string line; std::getline(file, line);) {
        if (line.find("\"table\":\"big\"") == std::string::npos) continue;
        auto id = int_column(line, "id");
        if (!id) continue;
        ++rows;
        if (*id >= 1 && size_t(*id) < seen.size()) seen[size_t(*id)] = true;
    }
}

// Killed with SIGKILL at three moments of a 1M-row snapshot (a quarter, half and three quarters of its ranges
// done), it resumes the ranges not done (and reports each), and in the end every row was delivered.
TEST(IntegrationSnapshot, ResumesUnfinishedRangesAfterSigkill) {
    PgCluster cluster;
    init_stream(cluster);
    PgConnection db(cluster.url());
    constexpr int kRows = 1000000;
    db.exec("CREATE TABLE big (id int PRIMARY KEY, v text)");
    db.exec("INSERT INTO big SELECT g, repeat('x', 40) FROM generate_series(1, " + std::to_string(kRows) +
            ") g");
    db.exec("ANALYZE big");
    TempDir work;
    Settings settings = snapshot_settings(cluster, "big");
    settings["PGSTREAM_POSTGRES_SNAPSHOT_BATCH_PAGE_SIZE"] = "40";
    settings["PGSTREAM_POSTGRES_SNAPSHOT_WORKERS"] = "2";
    auto count = [&](const std::string& sql) { return std::stoul(db.scalar_text(sql)); };
    auto ranges_done = [&] {
        return count("SELECT count(*) FROM pgstream.snapshot_ranges WHERE done_at IS NOT NULL");
    };
    size_t total_ranges = 0;
    std::string stderr_all;
    std::vector<std::string> outputs;  // every run's output file
    size_t rows_not_done = 0;
    for (int kill = 0; kill < 3; ++kill) {
        ShipperProcess shipper(work.path(), settings, "snapshot" + std::to_string(kill));
        shipper.set_command("snapshot");
        shipper.start();
        size_t done_before = ranges_done();
        // Each kill lands once a further quarter of the ranges is done (and at least two more), while the
        // snapshot still runs: by progress, not by time.
        bool progressed = wait_until(
            [&] {
                total_ranges = count("SELECT count(*) FROM pgstream.snapshot_ranges");
                size_t target = std::max(done_before + 2, total_ranges * size_t(kill + 1) / 4);
                return (total_ranges > 0 && ranges_done() >= target) || !shipper.running();
            },
            std::chrono::seconds(120), std::chrono::milliseconds(5));
        ASSERT_TRUE(progressed) << shipper_diagnostics(shipper);
        ASSERT_TRUE(shipper.running())
            << "the snapshot finished before kill " << kill + 1 << "; make it larger\n"
            << shipper.stderr_tail();
        shipper.kill_hard();
        total_ranges = count("SELECT count(*) FROM pgstream.snapshot_ranges");
        // The kill can land after the last range was done, while the process was exiting: the snapshot is
        // then complete, and another start would take a new one (pgstream snapshot on request).
        bool completed = db.scalar_text("SELECT status FROM pgstream.snapshots") == "done";
        // What the next start may read again: the rows of the ranges not done (rows counted per heap page
        // first, then pages matched to ranges: no row-by-range join).
        rows_not_done += count(
            "WITH pages AS (SELECT (ctid::text::point)[0]::bigint AS page, count(*) AS n FROM big GROUP BY "
            "1) "
            "SELECT coalesce(sum(p.n), 0) FROM pages p JOIN pgstream.snapshot_ranges r ON r.done_at IS NULL "
            "AND r.table_name = 'big' AND p.page >= r.first_page AND (r.end_page IS NULL OR p.page < "
            "r.end_page)");
        stderr_all += shipper.stderr_text();
        outputs.push_back(shipper.output_path());
        if (completed) {
            ASSERT_GT(kill, 0) << "the snapshot finished before the first kill; make it larger";
            break;
        }
    }
    if (db.scalar_text("SELECT status FROM pgstream.snapshots") != "done") {
        ShipperProcess last(work.path(), settings, "snapshot-last");
        last.set_command("snapshot");
        last.start();
        auto status = last.wait_exit(std::chrono::seconds(120));
        ASSERT_TRUE(status.has_value()) << shipper_diagnostics(last);
        stderr_all += last.stderr_text();
        outputs.push_back(last.output_path());
    }
    EXPECT_EQ(db.scalar_text("SELECT status FROM pgstream.snapshots"), "done")
        << stderr_all.substr(stderr_all.size() > 3000 ? stderr_all.size() - 3000 : 0);
    EXPECT_EQ(ranges_done(), total_ranges);
    std::vector<bool> seen(kRows + 1, false);
    size_t rows = 0;
    for (const auto& path : outputs) scan_big_ids(path, seen, rows);
    size_t missing = 0;
    for (int id = 1; id <= kRows; ++id) missing += seen[size_t(id)] ? 0 : 1;
    EXPECT_EQ(missing, 0u);
    // Only ranges not done are read again: each start reads at most the rows of the ranges left undone.
    EXPECT_LE(rows, size_t(kRows) + rows_not_done);
    EXPECT_LT(rows_not_done, size_t(kRows) * 3);
    // Every range read more than once was reported each time it was read again.
    auto reread = db.query(
        "SELECT first_page::text, coalesce(end_page::text, 'end'), read_count::text FROM "
        "pgstream.snapshot_ranges WHERE read_count > 1 ORDER BY first_page");
    EXPECT_FALSE(reread.empty()) << "no range was read again";
    for (const auto& range : reread) {
        std::string report = "re-reading public.big pages [" + *range[0] + ", " + *range[1] + ")";
        size_t reports = 0;
        for (size_t at = stderr_all.find(report); at != std::string::npos;
             at = stderr_all.find(report, at + 1))
            ++reports;
        EXPECT_EQ(reports, std::stoul(*range[2]) - 1) << report;
    }
    auto status_text = run_pgstream({"status", "--pgurl", cluster.url(), "--slot", kSlot});
    EXPECT_NE(status_text.out.find("public.big: " + std::to_string(total_ranges) + "/" +
                                   std::to_string(total_ranges) + " ranges done"),
              std::string::npos)
        << status_text.out;
}

// Rows of `table` seen in `lines` (the events of a snapshot), by id.
std::set<long> ids_of_table(const std::vector<std::string>& lines, const std::string& table) {
    std::set<long> ids;
    for (const auto& line : lines)
        if (line.find("\"table\":\"" + table + "\"") != std::string::npos)
            if (auto id = int_column(line, "id")) ids.insert(*id);
    return ids;
}

size_t snapshot_ranges_done(PgConnection& db) {
    return std::stoul(
        db.scalar_text("SELECT count(*) FROM pgstream.snapshot_ranges WHERE done_at IS NOT NULL"));
}

// A `pgstream snapshot` whose stdout is a pipe nobody reads yet: with one reader and small buffers it stalls
// early in its first table (the pipe, the writer's budget and the hand-off are full), holding its snapshot,
// until drain() reads the pipe to its end.
class StalledSnapshot {
  public:
    StalledSnapshot(const std::string& work_dir, Settings settings, const std::string& name)
        : process_(work_dir, with_small_buffers(std::move(settings)), name) {
        process_.set_command("snapshot");
        process_.set_output(ShipperProcess::Output::kPipe);
        process_.start();
    }
    ~StalledSnapshot() {
        if (drainer_.joinable()) drainer_.join();
    }
    ShipperProcess& process() { return process_; }
    // True once the first lines are in the pipe: the reader has started.
    bool started() {
        pollfd ready{process_.pipe_fd(), POLLIN, 0};
        return poll(&ready, 1, 0) == 1;
    }
    void drain() {
        drainer_ = std::thread([this] {
            char buffer[65536];
            for (ssize_t n; (n = read(process_.pipe_fd(), buffer, sizeof buffer)) > 0;)
                output_.append(buffer, size_t(n));
        });
    }
    // The lines read, once the process has exited (the pipe's end).
    std::vector<std::string> lines() {
        if (drainer_.joinable()) drainer_.join();
        std::vector<std::string> out;
        std::istringstream text(output_);
        for (std::string line; std::getline(text, line);) out.push_back(line);
        return out;
    }

  private:
    static Settings with_small_buffers(Settings settings) {
        settings["PGSTREAM_POSTGRES_SNAPSHOT_BATCH_PAGE_SIZE"] = "10";
        settings["PGSTREAM_POSTGRES_SNAPSHOT_WORKERS"] = "1";
        settings["PGSTREAM_POSTGRES_SNAPSHOT_HANDOFF_BYTES"] = "1";
        settings["PGSTREAM_STDOUT_WRITER_BATCH_SIZE"] = "100";
        settings["PGSTREAM_STDOUT_WRITER_BATCH_BYTES"] = "16384";
        settings["PGSTREAM_STDOUT_WRITER_MAX_QUEUE_BYTES"] = "65536";
        return settings;
    }
    ShipperProcess process_;
    std::thread drainer_;
    std::string output_;
};

// A table dropped while the snapshot reads another one (before the reader took its lock on it): each of its
// ranges is logged as dropped and ends with the rows read so far, and the other tables are snapshotted whole.
TEST(IntegrationSnapshot, ATableDroppedBeforeItIsReadIsLoggedAndTheOthersComplete) {
    PgCluster cluster;
    init_stream(cluster);
    PgConnection db(cluster.url());
    constexpr int kRows = 20000;
    const std::vector<std::string> tables = {"t1", "t2", "t3"};
    for (const auto& table : tables)
        db.exec("CREATE TABLE " + table + " (id int PRIMARY KEY, v text); INSERT INTO " + table +
                " SELECT g, md5(g::text) FROM generate_series(1, " + std::to_string(kRows) + ") g");
    TempDir work;
    StalledSnapshot snapshot(work.path(), snapshot_settings(cluster, "t1,t2,t3"), "snapshot");
    ASSERT_TRUE(wait_until([&] { return snapshot.started() || !snapshot.process().running(); },
                           std::chrono::seconds(60)))
        << shipper_diagnostics(snapshot.process());
    // A table the stalled reader holds no lock on (it is still in its first table).
    const std::string dropped = db.scalar_text(
        "SELECT max(c.relname) FROM pg_class c WHERE c.relname IN ('t1', 't2', 't3') AND NOT EXISTS ("
        "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.relation = c.oid "
        "AND a.application_name = 'pgstream snapshot reader')");
    db.exec("SET lock_timeout = '10s'");
    db.exec("DROP TABLE " + dropped);
    snapshot.drain();
    auto status = snapshot.process().wait_exit(std::chrono::seconds(120));
    ASSERT_TRUE(status.has_value()) << shipper_diagnostics(snapshot.process());
    EXPECT_EQ(*status, 0) << snapshot.process().stderr_tail();
    EXPECT_EQ(db.scalar_text("SELECT status FROM pgstream.snapshots"), "done");
    EXPECT_NE(
        snapshot.process().stderr_text().find("table public." + dropped + " was dropped during the snapshot"),
        std::string::npos)
        << snapshot.process().stderr_tail();
    auto lines = snapshot.lines();
    for (const auto& table : tables)
        EXPECT_EQ(ids_of_table(lines, table).size(), table == dropped ? 0u : size_t(kRows)) << table;
    EXPECT_EQ(snapshot_ranges_done(db),
              std::stoul(db.scalar_text("SELECT count(*) FROM pgstream.snapshot_ranges")));
}

// "snapshot too old" (old_snapshot_threshold, a restart-only setting: 0 makes any snapshot older than 5 s too
// old once VACUUM pruned past it): the snapshot stops with one error naming the table, is recorded failed
// with its done ranges kept, and the next start reads only the rest.
TEST(IntegrationSnapshot, ASnapshotTooOldFailsNamingTheTableAndTheNextStartResumes) {
    PgCluster cluster;
    cluster.exec("ALTER SYSTEM SET old_snapshot_threshold = 0");
    cluster.restart();
    init_stream(cluster);
    PgConnection db(cluster.url());
    constexpr int kRows = 50000;
    db.exec(
        "CREATE TABLE aging (id int PRIMARY KEY, v text); INSERT INTO aging SELECT g, md5(g::text) FROM "
        "generate_series(1, " +
        std::to_string(kRows) + ") g");
    TempDir work;
    Settings settings = snapshot_settings(cluster, "aging");
    StalledSnapshot first(work.path(), settings, "snapshot-first");
    ASSERT_TRUE(
        wait_until([&] { return first.started() || !first.process().running(); }, std::chrono::seconds(60)))
        << shipper_diagnostics(first.process());
    // The server counts a snapshot as too old 5 s after it was taken (its rule for a threshold of 0).
    ASSERT_TRUE(wait_until(
        [&] {
            return db.scalar_text(
                       "SELECT clock_timestamp() - started_at > interval '6 s' FROM pgstream.snapshots") ==
                   "t";
        },
        std::chrono::seconds(30), std::chrono::milliseconds(100)));
    // Pages the stalled reader has not read yet change, and VACUUM prunes past its snapshot.
    db.exec("UPDATE aging SET v = 'changed' WHERE id > " + std::to_string(kRows / 2));
    db.exec("VACUUM aging");
    first.drain();
    auto status = first.process().wait_exit(std::chrono::seconds(60));
    ASSERT_TRUE(status.has_value()) << shipper_diagnostics(first.process());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << *status << first.process().stderr_tail();
    auto errors = cli_error_lines(first.process().stderr_text());
    ASSERT_EQ(errors.size(), 1u) << first.process().stderr_tail();
    EXPECT_NE(errors[0].find("snapshot of table public.aging failed: "), std::string::npos) << errors[0];
    EXPECT_NE(errors[0].find("snapshot too old"), std::string::npos) << errors[0];
    EXPECT_EQ(db.scalar_text("SELECT status FROM pgstream.snapshots"), "failed");
    EXPECT_NE(db.scalar_text("SELECT error FROM pgstream.snapshots").find("snapshot too old"),
              std::string::npos);
    EXPECT_GT(snapshot_ranges_done(db), 0u);

    ShipperProcess second(work.path(), settings, "snapshot-second");
    second.set_command("snapshot");
    second.start();
    auto resumed = second.wait_exit(std::chrono::seconds(120));
    ASSERT_TRUE(resumed.has_value()) << shipper_diagnostics(second);
    EXPECT_EQ(*resumed, 0) << second.stderr_tail();
    EXPECT_EQ(db.scalar_text("SELECT status FROM pgstream.snapshots"), "done");
    auto seen = ids_of_table(first.lines(), "aging");
    auto again = ids_of_table(second.output_lines(), "aging");
    EXPECT_LT(again.size(), size_t(kRows)) << "the second start read only the ranges not done";
    seen.insert(again.begin(), again.end());
    EXPECT_EQ(seen.size(), size_t(kRows));
}

TEST(IntegrationSnapshot, BadInputGetsOneClearErrorAndNothingIsEmitted) {
    PgCluster cluster;
    init_stream(cluster);
    PgConnection db(cluster.url());
    db.exec("CREATE TABLE open_rows (id int PRIMARY KEY); INSERT INTO open_rows VALUES (1)");
    db.exec("CREATE TABLE secret (id int PRIMARY KEY); INSERT INTO secret VALUES (1)");
    db.exec(
        "CREATE ROLE reader LOGIN REPLICATION; GRANT USAGE ON SCHEMA pgstream TO reader; "
        "GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA pgstream TO reader; GRANT SELECT ON open_rows "
        "TO reader");

    auto unknown =
        run_pgstream({"snapshot", "--tables", "open_rows,no_such_table"}, shipper_settings(cluster));
    EXPECT_EQ(unknown.exit_code, 2) << unknown.describe();
    ASSERT_EQ(cli_errors(unknown).size(), 1u) << unknown.describe();
    EXPECT_NE(cli_errors(unknown)[0].find("PGSTREAM_POSTGRES_INITIAL_SNAPSHOT_TABLES"), std::string::npos);
    EXPECT_NE(cli_errors(unknown)[0].find("no_such_table"), std::string::npos);
    EXPECT_EQ(unknown.out, "");

    std::string reader_url = cluster.url();
    reader_url.replace(reader_url.find("postgres@"), 9, "reader@");
    Settings settings = shipper_settings(cluster);
    settings["PGSTREAM_POSTGRES_LISTENER_URL"] = reader_url;
    settings["PGSTREAM_TRANSLATOR_STORE_POSTGRES_URL"] = reader_url;
    auto denied = run_pgstream({"snapshot", "--tables", "*"}, settings);
    EXPECT_EQ(denied.exit_code, 1) << denied.describe();
    ASSERT_EQ(cli_errors(denied).size(), 1u) << denied.describe();
    EXPECT_NE(cli_errors(denied)[0].find("no SELECT privilege on table public.secret"), std::string::npos)
        << denied.describe();
    EXPECT_EQ(denied.out, "");
    EXPECT_EQ(db.scalar_text("SELECT count(*) FROM pgstream.snapshots"), "0");
}

}  // namespace
}  // namespace pgstream_it
