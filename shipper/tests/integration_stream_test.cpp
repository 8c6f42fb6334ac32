// End to end through the real binary: DML, DDL, TRUNCATE and transactional messages leave `pgstream run` as
// JSON lines in commit order, with pgstream metadata (table id, stable column ids, identity, version) and
// schema_log events ahead of the rows that depend on them.
#include <gtest/gtest.h>

#include <rapidjson/document.h>

#include <csignal>
#include <map>
#include <memory>

#include "support/stream_fixture.h"
#include "wal/json.h"

namespace pgstream_it {
namespace {

bool is_items_or_message(const OutputEvent& event) {
    return event.table == "items" || event.action == "M";
}

std::string describe_events(const std::vector<OutputEvent>& events) {
    std::string text;
    for (const auto& event : events) text += event.raw.substr(0, 400) + "\n";
    return text;
}

// The sequence key the test compares: action plus the row's id (identity id for deletes).
std::string step_of(const OutputEvent& event) {
    if (event.action == "M") return "M:" + event.content;
    if (event.action == "T") return "T";
    auto id = event.action == "D" ? event.identity_value("id") : event.value("id");
    return event.action + ":" + id.value_or("?");
}

// metadata.version compared as a number or as an LSN string; nullopt when it is neither.
std::optional<uint64_t> version_number(const std::string& json) {
    rapidjson::Document doc;
    doc.Parse(json.c_str());
    if (doc.HasParseError()) return std::nullopt;
    if (doc.IsUint64()) return doc.GetUint64();
    if (doc.IsString()) {
        try {
            return parse_lsn(doc.GetString());
        } catch (...) {
            try {
                return std::stoull(doc.GetString());
            } catch (...) {
                return std::nullopt;
            }
        }
    }
    return std::nullopt;
}

// Runs with both output plugins the shipper supports: pgstream (ours) and wal2json (what existing deployments
// use).
class IntegrationStream : public ::testing::TestWithParam<std::string> {
  protected:
    void SetUp() override {
        if (GetParam() == "pgstream" && !pgstream_plugin_installed()) {
            GTEST_SKIP() << "pgstream.so is not installed in $(pg_config --pkglibdir): run make install";
        }
        init_stream(cluster_, kSlot, GetParam());
        PgConnection conn(cluster_.url());
        ASSERT_EQ(slot_state(conn).plugin, GetParam());
        shipper_ = std::make_unique<ShipperProcess>(work_.path(), shipper_settings(cluster_));
        shipper_->start();
        PgConnection db(cluster_.url());
        ASSERT_TRUE(wait_until([&] { return slot_state(db).active; }, std::chrono::seconds(30)))
            << "the shipper never started replication\n"
            << shipper_diagnostics(*shipper_);
    }

    // Output events once an insert into `table` with id `sentinel` has arrived.
    std::vector<OutputEvent> events_through(const std::string& table, const std::string& sentinel) {
        std::vector<OutputEvent> events;
        std::vector<std::string> errors;
        bool arrived = wait_until(
            [&] {
                errors.clear();
                events = parse_events(shipper_->output_lines(), &errors);
                for (const auto& event : events) {
                    if (event.table == table && event.action == "I" && event.value("id") == sentinel)
                        return true;
                }
                return false;
            },
            std::chrono::seconds(60), std::chrono::milliseconds(100));
        EXPECT_TRUE(arrived) << "sentinel " << table << "/" << sentinel << " never arrived\n"
                             << shipper_diagnostics(*shipper_) << "\noutput so far:\n"
                             << describe_events(events);
        EXPECT_TRUE(errors.empty()) << "unparseable output line: " << (errors.empty() ? "" : errors[0]);
        return events;
    }

    PgCluster cluster_;
    TempDir work_;
    std::unique_ptr<ShipperProcess> shipper_;
};

// Message content is bytes: with the pgstream plugin every byte arrives (base64 where the content is not
// UTF-8 text); with wal2json the content is cut at the first NUL (a documented limitation). Either way every
// output line is valid UTF-8.
TEST_P(IntegrationStream, BinaryMessageContentArrivesWholeAsValidUtf8) {
    PgConnection db(cluster_.url());
    db.exec("CREATE TABLE public.items (id int PRIMARY KEY)");
    db.exec("SELECT pg_logical_emit_message(true, 'bin', '\\x410042'::bytea)");
    db.exec("SELECT pg_logical_emit_message(false, 'bin', '\\x41ff42'::bytea)");
    db.exec("SELECT pg_logical_emit_message(true, 'bin', convert_to('plain ü', 'UTF8'))");
    db.exec("INSERT INTO items VALUES (999)");
    auto events = events_through("items", "999");
    ASSERT_FALSE(HasFailure());

    for (const auto& line : shipper_->output_lines())
        EXPECT_TRUE(pgstream::is_json_text(line)) << "not valid UTF-8: " << line;
    std::vector<std::string> contents;
    for (const auto& event : events) {
        if (event.action != "M" || event.prefix != "bin") continue;
        contents.push_back(event.content_encoding == "base64" ? pgstream::base64_decode(event.content)
                                                              : event.content);
        if (event.content_encoding.empty()) {
            EXPECT_TRUE(pgstream::is_json_text(event.content));
        }
    }
    std::string nul_message = GetParam() == "pgstream" ? std::string("A\0B", 3) : std::string("A");
    EXPECT_EQ(contents, (std::vector<std::string>{nul_message,
                                                  "A\xff"
                                                  "B",
                                                  "plain \xc3\xbc"}))
        << describe_events(events);
}

TEST_P(IntegrationStream, ChangesSchemaEventsAndMessagesInCommitOrder) {
    PgConnection db(cluster_.url());
    db.exec("CREATE TABLE public.items (id int PRIMARY KEY, name text)");
    db.exec("INSERT INTO items VALUES (1, 'a'), (2, 'b')");
    db.exec("UPDATE items SET name = 'b2' WHERE id = 2");
    db.exec("UPDATE items SET id = 20 WHERE id = 2");  // primary key change: identity carries the old key
    db.exec("DELETE FROM items WHERE id = 1");
    db.exec("ALTER TABLE items ADD COLUMN price numeric");
    db.exec("INSERT INTO items VALUES (3, 'c', 9.5)");
    db.exec("ALTER TABLE items RENAME COLUMN name TO title");
    db.exec("INSERT INTO items VALUES (4, 'd', 1)");
    db.exec("UPDATE items SET title = 'd2' WHERE id = 4");
    db.exec("TRUNCATE items");
    db.exec(
        "BEGIN; SELECT pg_logical_emit_message(true, 'it.prefix', 'hello'); INSERT INTO items VALUES (5, "
        "'e', 2); "
        "COMMIT");
    // Interleaved transactions: B commits first, so all of B precedes all of A although A started first.
    PgConnection a(cluster_.url());
    PgConnection b(cluster_.url());
    a.exec("BEGIN");
    a.exec("INSERT INTO items VALUES (100, 'a1', 0)");
    b.exec("BEGIN");
    b.exec("INSERT INTO items VALUES (200, 'b1', 0)");
    a.exec("INSERT INTO items VALUES (101, 'a2', 0)");
    b.exec("COMMIT");
    a.exec("COMMIT");
    db.exec("INSERT INTO items VALUES (999, 'end', 0)");

    auto events = events_through("items", "999");
    ASSERT_FALSE(HasFailure());
    SCOPED_TRACE("output:\n" + describe_events(events));

    std::vector<OutputEvent> rows;
    for (const auto& event : events) {
        if (is_items_or_message(event)) rows.push_back(event);
    }
    std::vector<std::string> steps;
    for (const auto& event : rows) steps.push_back(step_of(event));
    const std::vector<std::string> expected_steps{"I:1", "I:2",   "U:2",   "U:20",  "D:1",
                                                  "I:3", "I:4",   "U:4",   "T",     "M:hello",
                                                  "I:5", "I:200", "I:100", "I:101", "I:999"};
    ASSERT_EQ(steps, expected_steps);
    const OutputEvent &i1 = rows[0], &i2 = rows[1], &u2 = rows[2], &u20 = rows[3], &d1 = rows[4],
                      &i3 = rows[5], &i4 = rows[6], &u4 = rows[7], &t = rows[8], &m = rows[9], &i5 = rows[10],
                      &i200 = rows[11], &i100 = rows[12], &i101 = rows[13], &i999 = rows[14];

    // Transactions: rows of one transaction share an xid, different transactions do not.
    ASSERT_TRUE(i1.xid && i2.xid && u2.xid && i100.xid && i101.xid && i200.xid) << "data events carry xid";
    EXPECT_EQ(*i1.xid, *i2.xid);
    EXPECT_EQ(*i100.xid, *i101.xid);
    EXPECT_NE(*i100.xid, *i200.xid);
    EXPECT_NE(*i2.xid, *u2.xid);

    // Commit order over the whole output, schema events included.
    for (size_t i = 1; i < events.size(); ++i) {
        ASSERT_FALSE(events[i].commit_lsn.empty()) << events[i].raw;
        EXPECT_LE(parse_lsn(events[i - 1].commit_lsn), parse_lsn(events[i].commit_lsn))
            << "commit_lsn went backwards at line " << i << ": " << events[i].raw;
        EXPECT_FALSE(events[i].lsn.empty()) << events[i].raw;
        EXPECT_FALSE(events[i].timestamp.empty()) << events[i].raw;
    }
    EXPECT_EQ(i100.commit_lsn, i101.commit_lsn);
    EXPECT_LT(parse_lsn(i200.commit_lsn), parse_lsn(i100.commit_lsn));

    // Identity: the old key for a key change and a delete.
    EXPECT_EQ(u20.identity_value("id"), "2");
    EXPECT_EQ(u20.value("id"), "20");
    EXPECT_EQ(u20.value("name"), "b2");
    EXPECT_EQ(d1.identity_value("id"), "1");
    EXPECT_EQ(u2.value("name"), "b2");
    EXPECT_EQ(i3.value("price"), "9.5");
    EXPECT_EQ(i4.value("title"), "d");
    EXPECT_FALSE(i4.column("name")) << "the renamed column keeps its new name only";
    EXPECT_EQ(t.schema, "public");
    EXPECT_EQ(m.prefix, "it.prefix");
    EXPECT_EQ(i1.column("id") ? i1.column("id")->type : "", "integer");
    EXPECT_EQ(i1.column("name") ? i1.column("name")->type : "", "text");

    // Schema changes reach the stream as schema_log inserts before the first row that depends on them.
    auto index_of = [&](const OutputEvent& event) {
        for (size_t i = 0; i < events.size(); ++i) {
            if (events[i].raw == event.raw) return i;
        }
        return events.size();
    };
    auto first_schema_event_with = [&](const std::string& needle) {
        for (size_t i = 0; i < events.size(); ++i) {
            if (!events[i].is_schema_log() || events[i].action != "I") continue;
            auto schema = events[i].value("schema");
            if (events[i].value("schema_name") == "public" && schema &&
                schema->find(needle) != std::string::npos)
                return i;
        }
        return events.size();
    };
    size_t created = first_schema_event_with("\"items\"");
    size_t added = first_schema_event_with("\"price\"");
    size_t renamed = first_schema_event_with("\"title\"");
    ASSERT_LT(created, events.size()) << "no schema_log event for CREATE TABLE items";
    ASSERT_LT(added, events.size()) << "no schema_log event for ADD COLUMN price";
    ASSERT_LT(renamed, events.size()) << "no schema_log event for RENAME COLUMN";
    EXPECT_LT(created, index_of(i1));
    EXPECT_GT(added, index_of(d1));
    EXPECT_LT(added, index_of(i3));
    EXPECT_GT(renamed, index_of(i3));
    EXPECT_LT(renamed, index_of(i4));
    auto version_of = [&](size_t i) { return std::stoll(events[i].value("version").value_or("-1")); };
    EXPECT_LT(version_of(created), version_of(added));
    EXPECT_LT(version_of(added), version_of(renamed));

    // pgstream metadata: one stable table id, column ids <table id>-<attnum> that survive a rename.
    const std::string table_id = i1.table_pgstream_id;
    ASSERT_FALSE(table_id.empty()) << "metadata.table_pgstream_id missing: " << i1.raw;
    for (const OutputEvent* event :
         {&i1, &i2, &u2, &u20, &d1, &i3, &i4, &u4, &i5, &i200, &i100, &i101, &i999}) {
        SCOPED_TRACE(event->raw);
        EXPECT_TRUE(event->has_metadata);
        EXPECT_EQ(event->table_pgstream_id, table_id);
        EXPECT_EQ(event->id_col_pgstream_ids, std::vector<std::string>{table_id + "-1"});
        EXPECT_FALSE(event->version_json.empty()) << "metadata.version missing";
        for (const auto& column : event->columns)
            EXPECT_FALSE(column.id.empty()) << column.name << " has no id";
        if (const auto* id = event->column("id")) {
            EXPECT_EQ(id->id, table_id + "-1");
        }
        if (const auto* id = event->identity_column("id")) {
            EXPECT_EQ(id->id, table_id + "-1");
        }
    }
    ASSERT_TRUE(i1.column("name") && i4.column("title") && i3.column("price"));
    EXPECT_EQ(i1.column("name")->id, table_id + "-2");
    EXPECT_EQ(i4.column("title")->id, i1.column("name")->id) << "a rename keeps the column id";
    EXPECT_EQ(i3.column("price")->id, table_id + "-3");

    // Versions grow along one row's history.
    auto v_i4 = version_number(i4.version_json);
    auto v_u4 = version_number(u4.version_json);
    ASSERT_TRUE(v_i4 && v_u4) << "version is neither a number nor an LSN: " << i4.version_json;
    EXPECT_LT(*v_i4, *v_u4);

    // SIGTERM drains and checkpoints: the slot has confirmed everything that was delivered.
    EXPECT_EQ(shipper_->stop(), 0) << shipper_->stderr_tail();
    PgConnection check(cluster_.url());
    EXPECT_GE(slot_state(check).confirmed_flush_lsn, parse_lsn(events.back().commit_lsn));
}

TEST_P(IntegrationStream, CleanRestartResendsNothingAndContinues) {
    PgConnection db(cluster_.url());
    db.exec("CREATE TABLE restart_rows (id int PRIMARY KEY)");
    db.exec("INSERT INTO restart_rows SELECT generate_series(1, 500)");
    db.exec("INSERT INTO restart_rows VALUES (1000)");
    auto before = events_through("restart_rows", "1000");
    ASSERT_FALSE(HasFailure());
    // SIGINT (Ctrl-C) stops as cleanly as SIGTERM.
    ASSERT_EQ(shipper_->stop(std::chrono::seconds(30), SIGINT), 0) << shipper_->stderr_tail();
    size_t lines_before = shipper_->output_lines().size();

    db.exec("INSERT INTO restart_rows SELECT generate_series(1001, 1500)");
    db.exec("INSERT INTO restart_rows VALUES (2000)");
    shipper_->start();
    auto after = events_through("restart_rows", "2000");
    ASSERT_FALSE(HasFailure());

    std::map<std::string, int> seen;
    for (const auto& event : after) {
        if (event.table == "restart_rows") ++seen[event.value("id").value_or("?")];
    }
    EXPECT_EQ(seen.size(), 1002u);
    for (const auto& [id, count] : seen)
        EXPECT_EQ(count, 1) << "row " << id << " delivered " << count << " times";
    for (size_t i = lines_before; i < after.size(); ++i) {
        if (after[i].table != "restart_rows") continue;
        EXPECT_GT(std::stoi(after[i].value("id").value_or("0")), 1000)
            << "resent after a clean stop: " << after[i].raw;
    }
    EXPECT_EQ(shipper_->stop(), 0) << shipper_->stderr_tail();
}

INSTANTIATE_TEST_SUITE_P(Plugins, IntegrationStream, ::testing::Values("pgstream", "wal2json"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// Table filters: only matching tables reach the output, and filtered transactions still move the slot forward
// (they count as delivered), so a busy excluded table cannot hold WAL back.
// Tables that exist before `pgstream init` (the usual case: CDC is added to a live database) are described by
// the first schema version init logs after creating the slot, so their rows carry metadata from the first
// one.
TEST(IntegrationStreamPreexisting, TablesCreatedBeforeInitGetMetadataFromTheFirstRow) {
    PgCluster cluster;
    PgConnection db(cluster.url());
    db.exec("CREATE SCHEMA app; CREATE TABLE app.accounts (id bigint PRIMARY KEY, owner text)");
    db.exec("INSERT INTO app.accounts VALUES (1, 'before init')");
    init_stream(cluster);
    EXPECT_EQ(db.scalar_text("SELECT count(*) FROM pgstream.schema_log WHERE schema_name = 'app'"), "1");
    TempDir work;
    ShipperProcess shipper(work.path(), shipper_settings(cluster));
    shipper.start();
    ASSERT_TRUE(wait_until([&] { return slot_state(db).active; }, std::chrono::seconds(30)))
        << shipper_diagnostics(shipper);
    db.exec("INSERT INTO app.accounts VALUES (2, 'after init')");

    std::optional<OutputEvent> row;
    ASSERT_TRUE(wait_until(
        [&] {
            for (const auto& line : shipper.output_lines()) {
                auto event = parse_event(line);
                if (event && event->table == "accounts" && event->value("id") == "2") row = event;
            }
            return row.has_value();
        },
        std::chrono::seconds(60), std::chrono::milliseconds(100)))
        << shipper_diagnostics(shipper);
    SCOPED_TRACE(row->raw);
    EXPECT_TRUE(row->has_metadata);
    ASSERT_FALSE(row->table_pgstream_id.empty()) << "the pre-existing table was never described";
    EXPECT_EQ(row->id_col_pgstream_ids, std::vector<std::string>{row->table_pgstream_id + "-1"});
    ASSERT_TRUE(row->column("owner"));
    EXPECT_EQ(row->column("owner")->id, row->table_pgstream_id + "-2");
    EXPECT_EQ(db.scalar_text("SELECT bool_and(acked) FROM pgstream.schema_log WHERE schema_name = 'app'"),
              "t")
        << "the shipper acknowledges the version init logged";
    EXPECT_EQ(shipper.stop(), 0) << shipper.stderr_tail();
}

// A quiet stream is not held back by batching: once the listener has handed over everything it received, the
// stdout writer writes its partial batch instead of waiting for the (here absurdly long) batch timeout.
TEST(IntegrationStreamLatency, AQuietStreamIsWrittenWithoutWaitingForTheBatchTimeout) {
    PgCluster cluster;
    init_stream(cluster);
    PgConnection db(cluster.url());
    db.exec("CREATE TABLE quiet (id int PRIMARY KEY)");
    TempDir work;
    Settings settings = shipper_settings(cluster);
    settings["PGSTREAM_STDOUT_WRITER_BATCH_TIMEOUT"] = "10m";
    ShipperProcess shipper(work.path(), settings);
    shipper.start();
    ASSERT_TRUE(wait_until([&] { return slot_state(db).active; }, std::chrono::seconds(30)))
        << shipper_diagnostics(shipper);
    for (int id = 1; id <= 3; ++id) {
        db.exec("INSERT INTO quiet VALUES (" + std::to_string(id) + ")");
        bool written = wait_until(
            [&] {
                for (const auto& line : shipper.output_lines()) {
                    auto event = parse_event(line);
                    if (event && event->table == "quiet" && event->value("id") == std::to_string(id))
                        return true;
                }
                return false;
            },
            std::chrono::seconds(10), std::chrono::milliseconds(20));
        ASSERT_TRUE(written) << "row " << id << " was held back\n" << shipper_diagnostics(shipper);
    }
    EXPECT_EQ(shipper.stop(), 0) << shipper.stderr_tail();
}

TEST(IntegrationStreamFilter, FilteredTablesAreLeftOutButConfirmed) {
    PgCluster cluster;
    init_stream(cluster);
    PgConnection db(cluster.url());
    db.exec(
        "CREATE TABLE kept_a (id int PRIMARY KEY); CREATE TABLE kept_secret (id int PRIMARY KEY); "
        "CREATE TABLE dropped_b (id int PRIMARY KEY)");
    TempDir work;
    Settings settings = shipper_settings(cluster);
    settings["PGSTREAM_FILTER_INCLUDE_TABLES"] = "public.kept_*";
    settings["PGSTREAM_FILTER_EXCLUDE_TABLES"] = "kept_secret";
    ShipperProcess shipper(work.path(), settings);
    shipper.start();
    ASSERT_TRUE(wait_until([&] { return slot_state(db).active; }, std::chrono::seconds(30)))
        << shipper_diagnostics(shipper);

    db.exec("INSERT INTO kept_a VALUES (1)");
    db.exec("INSERT INTO kept_secret VALUES (2)");
    db.exec("INSERT INTO dropped_b VALUES (3)");
    db.exec("INSERT INTO kept_a VALUES (4)");
    ASSERT_TRUE(wait_until(
        [&] {
            for (const auto& line : shipper.output_lines()) {
                auto event = parse_event(line);
                if (event && event->table == "kept_a" && event->value("id") == "4") return true;
            }
            return false;
        },
        std::chrono::seconds(60), std::chrono::milliseconds(100)))
        << shipper_diagnostics(shipper);

    // Only filtered work from here on: the slot must still pass it.
    uint64_t before = parse_lsn(db.scalar_text("SELECT pg_current_wal_insert_lsn()"));
    db.exec("INSERT INTO dropped_b SELECT generate_series(10, 2000)");
    bool advanced = wait_until([&] { return slot_state(db).confirmed_flush_lsn > before; },
                               std::chrono::seconds(30), std::chrono::milliseconds(100));
    EXPECT_TRUE(advanced) << "confirmed_flush_lsn stayed at "
                          << format_lsn(slot_state(db).confirmed_flush_lsn)
                          << ", below the filtered transaction's commit";
    EXPECT_EQ(shipper.stop(), 0) << shipper.stderr_tail();

    std::vector<std::string> tables;
    for (const auto& line : shipper.output_lines()) {
        auto event = parse_event(line);
        ASSERT_TRUE(event) << line;
        if (!event->is_schema_log()) tables.push_back(event->table + ":" + event->value("id").value_or("?"));
    }
    EXPECT_EQ(tables, (std::vector<std::string>{"kept_a:1", "kept_a:4"}));
}

}  // namespace
}  // namespace pgstream_it
