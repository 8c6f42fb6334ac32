// Rows are translated with the schema version in force where they were written, wherever the stream starts: a
// second slot created before a DDL, and a shipper SIGKILLed and restarted while DDL runs, replay rows written
// before a DDL after the translator could already know (and the store has acknowledged) the version after it.
//
// Truth without the shipper: each row stores, in its column `tracked`, the attnum that column had when the
// row was written (read from pg_attribute in the row's own statement, under the table lock). A column id is
// "<table id>-<attnum>", so every output row carries its own expected id. Other columns keep their attnum for
// good (a rename does not change it) and are checked against the catalog at the end.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <atomic>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "support/stream_fixture.h"

namespace pgstream_it {
namespace {

constexpr const char* kTable = "versioned";

// Inserts rows [first, last] with `tracked` = the current attnum of column tracked.
std::string insert_rows(int first, int last) {
    return std::string("INSERT INTO ") + kTable +
           " (id, tracked) SELECT g, (SELECT attnum FROM pg_attribute " + "WHERE attrelid = '" + kTable +
           "'::regclass AND attname = 'tracked' AND NOT attisdropped)::text " + "FROM generate_series(" +
           std::to_string(first) + ", " + std::to_string(last) + ") g";
}

// `tracked` becomes `tracked_<round>` (same attnum) and a new `tracked` column is added (a new attnum): rows
// written before and after the DDL have a column of the same name with different ids.
std::string rename_and_readd(int round) {
    return std::string("BEGIN; ALTER TABLE ") + kTable + " RENAME COLUMN tracked TO tracked_" +
           std::to_string(round) + "; ALTER TABLE " + kTable + " ADD COLUMN tracked text; COMMIT";
}

struct IdCheck {
    std::set<int> rows;  // distinct ids seen
    size_t checked_columns = 0;
    std::vector<std::string> errors;
};

// Checks every output row of kTable: `tracked` against its value, every other column against the catalog.
IdCheck check_column_ids(PgConnection& db, const std::vector<std::string>& lines) {
    std::string table_id = db.scalar_text(std::string("SELECT id FROM pgstream.table_ids WHERE oid = '") +
                                          kTable + "'::regclass");
    std::map<std::string, std::string> attnums;
    for (const auto& row :
         db.query(std::string("SELECT attname, attnum FROM pg_attribute WHERE attrelid = '") + kTable +
                  "'::regclass AND attnum > 0 AND NOT attisdropped"))
        attnums[row[0].value_or("")] = row[1].value_or("");
    IdCheck check;
    std::vector<std::string> parse_errors;
    for (const auto& event : parse_events(lines, &parse_errors)) {
        if (event.table != kTable || event.action != "I") continue;
        auto id = event.value("id");
        if (!id) continue;
        check.rows.insert(std::stoi(*id));
        for (const auto& column : event.columns) {
            std::string attnum = column.name == "tracked" ? column.value_text() : attnums[column.name];
            std::string expected = table_id + "-" + attnum;
            ++check.checked_columns;
            if (column.id != expected && check.errors.size() < 10)
                check.errors.push_back("row " + *id + " at " + event.lsn + ": column " + column.name +
                                       " has id \"" + column.id + "\", the version in force there says \"" +
                                       expected + "\"");
        }
    }
    for (const auto& error : parse_errors) check.errors.push_back("unparsable line: " + error);
    return check;
}

// Every schema version the shipper forwarded carries the whole document, byte for byte what
// pgstream.schema_log shows for its id (extension 0.5.0 streams deltas; the translator composes them).
// Returns how many it checked.
size_t expect_whole_documents(PgConnection& db, const std::vector<std::string>& lines) {
    size_t checked = 0;
    for (const auto& event : parse_events(lines, nullptr)) {
        if (event.table != "schema_log") continue;
        auto id = event.value("id");
        auto schema = event.value("schema");
        if (!id || !schema) {
            ADD_FAILURE() << "a schema_log event without id or schema at " << event.lsn;
            continue;
        }
        EXPECT_EQ(*schema,
                  db.scalar_text("SELECT schema::text FROM pgstream.schema_log WHERE id = '" + *id + "'"))
            << "version " << *id;
        ++checked;
    }
    return checked;
}

bool has_rows(const ShipperProcess& shipper, PgConnection& db, size_t count) {
    return check_column_ids(db, shipper.output_lines()).rows.size() >= count;
}

// `versions_mode`: pgstream.schema_versions for the session running the DDL ("full" or "delta").
void replay_from_a_slot_created_before_a_ddl(const std::string& versions_mode) {
    PgCluster cluster;
    init_stream(cluster);
    PgConnection db(cluster.url());
    db.exec("SET pgstream.schema_versions = " + versions_mode);
    db.exec(std::string("CREATE TABLE ") + kTable + " (id int PRIMARY KEY, tracked text)");
    db.exec("SELECT pg_create_logical_replication_slot('second_slot', '" + stream_plugin() + "')");
    db.exec(insert_rows(1, 3));
    db.exec(rename_and_readd(1));
    db.exec(insert_rows(4, 6));

    // The first shipper consumes past the DDL: the store acknowledges the new version.
    TempDir work;
    {
        ShipperProcess first(work.path(), shipper_settings(cluster), "first");
        first.start();
        ASSERT_TRUE(wait_until([&] { return has_rows(first, db, 6); }, std::chrono::seconds(30)))
            << shipper_diagnostics(first);
        EXPECT_EQ(first.stop(), 0) << first.stderr_tail();
        IdCheck check = check_column_ids(db, first.output_lines());
        EXPECT_TRUE(check.errors.empty()) << testing::PrintToString(check.errors);
        EXPECT_GE(expect_whole_documents(db, first.output_lines()), 2u) << "the DDL's versions";
    }
    ASSERT_EQ(
        db.scalar_text("SELECT count(*) FROM pgstream.schema_log WHERE schema_name = 'public' AND NOT acked"),
        "0");

    // The second slot starts before the DDL: its first rows were written under the old version.
    ShipperProcess second(work.path(), shipper_settings(cluster, "second_slot"), "second");
    second.start();
    ASSERT_TRUE(wait_until([&] { return has_rows(second, db, 6); }, std::chrono::seconds(30)))
        << shipper_diagnostics(second);
    EXPECT_EQ(second.stop(), 0) << second.stderr_tail();
    IdCheck check = check_column_ids(db, second.output_lines());
    EXPECT_EQ(check.rows.size(), 6u);
    EXPECT_GE(check.checked_columns, 6u * 2);
    EXPECT_TRUE(check.errors.empty()) << testing::PrintToString(check.errors);
    EXPECT_GE(expect_whole_documents(db, second.output_lines()), 2u) << "the DDL's versions";
    // What was written: pgstream.schema_log_entries since 0.5.0 (pgstream.schema_log shows whole documents).
    std::string stored = db.scalar_text(
        "SELECT CASE WHEN to_regclass('pgstream.schema_log_entries') IS NULL THEN 'pgstream.schema_log' "
        "ELSE 'pgstream.schema_log_entries' END");
    EXPECT_EQ(db.scalar_text("SELECT count(*) > 0 FROM " + stored + " WHERE schema ? 'delta'"),
              versions_mode == "delta" ? "t" : "f")
        << "pgstream.schema_versions = " << versions_mode;
}

TEST(IntegrationSchemaVersions, ASlotCreatedBeforeADdlReplaysOldRowsWithTheOldColumnIds) {
    replay_from_a_slot_created_before_a_ddl("full");
}

// The same with delta versions (the default since 0.5.0): the first shipper composes them from the stream,
// the second one reads them from the store (the view pgstream.schema_log composes them) when its replay
// starts before the DDL.
TEST(IntegrationSchemaVersions, DeltaVersionsGiveEveryRowTheColumnIdsOfItsVersion) {
    if (!pgstream_plugin_installed()) GTEST_SKIP() << "needs the pgstream extension installed";
    replay_from_a_slot_created_before_a_ddl("delta");
}

TEST(IntegrationSchemaVersions, KillNineDuringDdlKeepsEveryRowsColumnIds) {
    std::mt19937 rng = seeded_rng();

    PgCluster cluster;
    init_stream(cluster);
    PgConnection db(cluster.url());
    db.exec(std::string("CREATE TABLE ") + kTable + " (id int PRIMARY KEY, tracked text)");

    TempDir work;
    ShipperProcess shipper(work.path(), shipper_settings(cluster));
    shipper.start();
    ASSERT_TRUE(wait_until([&] { return slot_state(db).active; }, std::chrono::seconds(30)))
        << shipper_diagnostics(shipper);

    // Rows from one session, DDL from another, both running while the shipper is killed.
    constexpr int kRounds = 60;  // DDL rounds, about one every 100 ms
    std::atomic<bool> stop{false};
    std::atomic<int> rows_written{0};
    std::atomic<int> rounds_done{0};
    std::string writer_error, ddl_error;
    std::thread writer([&] {
        try {
            PgConnection conn(cluster.url());
            for (int next = 1; !stop; next += 5) {
                conn.exec(insert_rows(next, next + 4));
                rows_written = next + 4;
                if (rounds_done >= kRounds) break;
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
        } catch (const std::exception& e) {
            writer_error = e.what();
        }
    });
    std::thread ddl([&] {
        try {
            PgConnection conn(cluster.url());
            for (int round = 1; round <= kRounds && !stop; ++round) {
                conn.exec(rename_and_readd(round));
                rounds_done = round;
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
        } catch (const std::exception& e) {
            ddl_error = e.what();
        }
    });
    ScopeExit join_threads([&] {
        stop = true;
        if (writer.joinable()) writer.join();
        if (ddl.joinable()) ddl.join();
    });

    for (int kill = 1; kill <= 3; ++kill) {
        int target = kRounds * kill / 4;
        ASSERT_TRUE(wait_until([&] { return rounds_done >= target; }, std::chrono::seconds(60)));
        std::this_thread::sleep_for(
            std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 150)(rng)));
        shipper.kill_hard();
        ASSERT_TRUE(wait_until([&] { return !slot_state(db).active; }, std::chrono::seconds(15)))
            << "slot still active 15 s after SIGKILL";
        std::string content = read_file(shipper.output_path());
        if (!content.empty() && content.back() != '\n') append_file(shipper.output_path(), "\n");
        shipper.start();
    }
    ddl.join();
    writer.join();
    ASSERT_TRUE(writer_error.empty()) << writer_error;
    ASSERT_TRUE(ddl_error.empty()) << ddl_error;

    const size_t rows = static_cast<size_t>(rows_written.load());
    ASSERT_TRUE(wait_until([&] { return has_rows(shipper, db, rows); }, std::chrono::seconds(60),
                           std::chrono::milliseconds(250)))
        << shipper_diagnostics(shipper);
    EXPECT_EQ(shipper.stop(), 0) << shipper.stderr_tail();
    IdCheck check = check_column_ids(db, shipper.output_lines());
    std::cout << "rows " << rows << ", DDL rounds " << kRounds << ", columns checked "
              << check.checked_columns << std::endl;
    EXPECT_EQ(check.rows.size(), rows);
    EXPECT_TRUE(check.errors.empty()) << testing::PrintToString(check.errors);
}

TEST(IntegrationSchemaTracking, DropExtensionWhileRunningStopsWithOneClearError) {
    if (!pgstream_plugin_installed()) GTEST_SKIP() << "needs the pgstream extension installed";
    PgCluster cluster;
    init_stream(cluster);
    PgConnection db(cluster.url());
    db.exec(std::string("CREATE TABLE ") + kTable + " (id int PRIMARY KEY, tracked text)");
    db.exec(insert_rows(1, 3));
    TempDir work;
    ShipperProcess shipper(work.path(), shipper_settings(cluster));
    shipper.start();
    ASSERT_TRUE(wait_until([&] { return has_rows(shipper, db, 3); }, std::chrono::seconds(30)))
        << shipper_diagnostics(shipper);

    db.exec("DROP EXTENSION pgstream");
    db.exec(insert_rows(4, 6));
    auto dropped_at = std::chrono::steady_clock::now();
    auto status = shipper.wait_exit(std::chrono::seconds(20));
    ASSERT_TRUE(status.has_value()) << "still running 20 s after DROP EXTENSION\n" << shipper.stderr_tail();
    auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - dropped_at).count();
    std::cout << "stopped " << seconds << " s after DROP EXTENSION" << std::endl;
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << shipper.stderr_tail();
    EXPECT_LT(seconds, 10.0) << "a prompt stop, not a retry loop or a drain timeout";
    std::string errors = shipper.stderr_text();
    EXPECT_NE(errors.find("pgstream.schema_log no longer exists"), std::string::npos) << errors;
    EXPECT_NE(errors.find("DROP EXTENSION pgstream"), std::string::npos) << errors;
    EXPECT_NE(errors.find("pgstream init"), std::string::npos) << "says what to do: " << errors;
    EXPECT_EQ(errors.find("does not exist"), std::string::npos) << "no raw relation error: " << errors;
}

}  // namespace
}  // namespace pgstream_it
