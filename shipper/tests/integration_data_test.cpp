// Data that used to stop or corrupt the stream, end to end through the real binary: numbers beyond a double's
// range, databases whose encoding is not UTF-8, and tables whose UPDATE/DELETE PostgreSQL cannot decode.
#include <gtest/gtest.h>

#include <functional>
#include <memory>

#include <rapidjson/document.h>

#include "config/config.h"
#include "pipeline/pipeline.h"
#include "support/stream_fixture.h"
#include "wal/json.h"

namespace pgstream_it {
namespace {

// Starts `pgstream run` on `settings` and waits until it streams from the slot.
std::unique_ptr<ShipperProcess> start_streaming(const TempDir& work, const PgCluster& cluster,
                                                const std::string& database, Settings settings,
                                                const std::string& slot = kSlot) {
    auto shipper = std::make_unique<ShipperProcess>(work.path(), std::move(settings));
    shipper->start();
    PgConnection db(cluster.url_for_database(database));
    EXPECT_TRUE(wait_until([&] { return slot_state(db, slot).active; }, std::chrono::seconds(30)))
        << "the shipper never started replication\n"
        << shipper_diagnostics(*shipper);
    return shipper;
}

// The output lines once `done` holds for them; a test failure when the shipper exits or time runs out first.
std::vector<std::string> lines_once(ShipperProcess& shipper,
                                    const std::function<bool(const std::vector<std::string>&)>& done) {
    std::vector<std::string> lines;
    bool ok = false;
    wait_until(
        [&] {
            lines = shipper.output_lines();
            ok = done(lines);
            return ok || !shipper.running();
        },
        std::chrono::seconds(60), std::chrono::milliseconds(50));
    if (!ok) ADD_FAILURE() << "the expected output never came\n" << shipper_diagnostics(shipper);
    return lines;
}

bool mentions(const std::string& line, const std::string& text) {
    return line.find(text) != std::string::npos;
}

// A numeric of 310 integer digits made RapidJSON stop with "Number too big to be stored in double" on every
// start: the slot never moved again. It must leave the shipper digit for digit, as valid JSON.
TEST(IntegrationData, NumbersBeyondADoublesRangeFlowThroughExactly) {
    PgCluster cluster;
    init_stream(cluster);
    PgConnection db(cluster.url());
    db.exec("CREATE TABLE big_numbers (id int PRIMARY KEY, n numeric)");
    TempDir work;
    auto shipper = start_streaming(work, cluster, "postgres", shipper_settings(cluster));
    db.exec(
        "INSERT INTO big_numbers VALUES (1, ('1'||repeat('0',309))::numeric), "
        "(2, ('-'||repeat('9',400)||'.'||repeat('1',40))::numeric), (3, 7)");
    const std::string huge = "1" + std::string(309, '0');
    const std::string negative = "-" + std::string(400, '9') + "." + std::string(40, '1');
    auto lines = lines_once(*shipper, [](const std::vector<std::string>& lines) {
        for (const auto& line : lines)
            if (mentions(line, "\"big_numbers\"") && mentions(line, "\"value\":3}")) return true;
        return false;
    });
    int rows = 0;
    for (const auto& line : lines) {
        if (!mentions(line, "\"big_numbers\"")) continue;
        ++rows;
        EXPECT_NO_THROW(pgstream::parse_json(line)) << line;
    }
    EXPECT_EQ(rows, 3);
    auto has = [&](const std::string& text) {
        for (const auto& line : lines)
            if (mentions(line, text)) return true;
        return false;
    };
    EXPECT_TRUE(has("\"value\":" + huge + "}")) << "the 310-digit numeric did not arrive exactly";
    EXPECT_TRUE(has("\"value\":" + negative + "}")) << "the 401-digit numeric did not arrive exactly";
    EXPECT_TRUE(shipper->running()) << shipper_diagnostics(*shipper);
    EXPECT_EQ(shipper->stop(), 0) << shipper->stderr_tail();
}

// True when `line` is one JSON value in valid UTF-8.
bool valid_utf8_json(const std::string& line) {
    rapidjson::Document document;
    document.Parse<rapidjson::kParseValidateEncodingFlag>(line.c_str(), line.size());
    return !document.HasParseError();
}

// The plugin writes text in the database's encoding; the output must be UTF-8 JSON whatever it is.
TEST(IntegrationData, NonUtf8DatabasesStreamValidUtf8) {
    PgCluster cluster;
    cluster.exec("CREATE DATABASE latin ENCODING 'LATIN1' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'");
    cluster.exec("CREATE DATABASE ascii ENCODING 'SQL_ASCII' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'");
    for (const std::string database : {"latin", "ascii"}) {
        SCOPED_TRACE(database);
        const std::string url = cluster.url_for_database(database);
        const std::string slot = "pgstream_" + database + "_slot";
        auto init = run_pgstream({"init", "--pgurl", url, "--slot", slot, "--plugin", stream_plugin()}, {},
                                 std::chrono::seconds(90));
        ASSERT_EQ(init.exit_code, 0) << init.describe();
        PgConnection db(url);
        db.exec("SET client_encoding = 'UTF8'");
        db.exec("CREATE TABLE words (id int PRIMARY KEY, word text)");
        Settings settings = shipper_settings(cluster, slot);
        settings["PGSTREAM_POSTGRES_LISTENER_URL"] = url;
        settings["PGSTREAM_TRANSLATOR_STORE_POSTGRES_URL"] = url;
        TempDir work;
        auto shipper = start_streaming(work, cluster, database, settings, slot);
        // 'café' from a UTF-8 client: stored as 0xE9 in LATIN1, as the UTF-8 bytes in SQL_ASCII.
        db.exec("INSERT INTO words VALUES (1, 'café')");
        // SQL_ASCII also holds bytes that are not UTF-8 (a LATIN1 client's é): they are read as LATIN1.
        if (database == "ascii") db.exec("INSERT INTO words VALUES (2, E'caf\\xe9!')");
        const std::string last = database == "ascii" ? "2" : "1";
        auto lines = lines_once(*shipper, [&](const std::vector<std::string>& lines) {
            for (const auto& line : lines)
                if (mentions(line, "\"words\"") && mentions(line, "\"value\":" + last + "}")) return true;
            return false;
        });
        int words = 0;
        for (const auto& line : lines) {
            EXPECT_TRUE(valid_utf8_json(line)) << "not UTF-8 JSON: " << line;
            if (!mentions(line, "\"words\"")) continue;
            ++words;
            EXPECT_TRUE(mentions(line, "\"value\":\"caf\xC3\xA9\"") ||
                        mentions(line, "\"value\":\"caf\xC3\xA9!\""))
                << line;
        }
        EXPECT_EQ(words, database == "ascii" ? 2 : 1);
        EXPECT_EQ(shipper->stop(), 0) << shipper->stderr_tail();
        if (database == "ascii") {
            EXPECT_TRUE(mentions(shipper->stderr_text(), "read as LATIN1")) << shipper->stderr_tail();
        }
    }
}

// Without a primary key (even with a unique NOT NULL column, which the translator takes as the identity),
// PostgreSQL does not decode UPDATE/DELETE and says so only in its own log. init, status and run name such
// tables; init --replica-identity fixes them, and their changes then arrive.
TEST(IntegrationData, TablesWithoutReplicaIdentityAreNamedAndFixedByInit) {
    PgCluster cluster;
    PgConnection db(cluster.url());
    db.exec(
        "CREATE TABLE no_key (a int, b text); CREATE TABLE unique_only (code int NOT NULL UNIQUE, v text); "
        "CREATE TABLE keyed (id int PRIMARY KEY); CREATE TABLE full_row (a int); "
        "ALTER TABLE full_row REPLICA IDENTITY FULL");
    auto init = run_pgstream({"init", "--pgurl", cluster.url(), "--slot", kSlot, "--plugin", stream_plugin()},
                             {}, std::chrono::seconds(90));
    ASSERT_EQ(init.exit_code, 0) << init.describe();
    EXPECT_TRUE(mentions(init.err, "table public.no_key has no primary key") &&
                mentions(init.err, "ALTER TABLE public.no_key REPLICA IDENTITY FULL"))
        << init.describe();
    EXPECT_TRUE(mentions(init.err, "table public.unique_only has no primary key") &&
                mentions(init.err, "REPLICA IDENTITY USING INDEX unique_only_code_key"))
        << init.describe();
    EXPECT_FALSE(mentions(init.err, "keyed") || mentions(init.err, "full_row")) << init.describe();
    auto status = run_pgstream({"status", "--pgurl", cluster.url(), "--slot", kSlot});
    EXPECT_TRUE(mentions(status.out, "tables_without_replica_identity: 2")) << status.describe();

    TempDir work;
    auto shipper = start_streaming(work, cluster, "postgres", shipper_settings(cluster));
    EXPECT_TRUE(mentions(shipper->stderr_text(), "postgres listener: table public.no_key has no primary key"))
        << shipper->stderr_tail();
    EXPECT_TRUE(
        mentions(shipper->stderr_text(), "postgres listener: table public.unique_only has no primary key"))
        << shipper->stderr_tail();
    // A schema change that adds such a table is named when the stream reaches it.
    db.exec("CREATE TABLE added_later (a int)");
    EXPECT_TRUE(wait_until(
        [&] {
            return mentions(shipper->stderr_text(),
                            "translator: table public.added_later has no primary key");
        },
        std::chrono::seconds(30)))
        << shipper->stderr_tail();

    auto by_index =
        run_pgstream({"init", "--pgurl", cluster.url(), "--slot", kSlot, "--replica-identity=index"});
    ASSERT_EQ(by_index.exit_code, 0) << by_index.describe();
    EXPECT_TRUE(mentions(by_index.out,
                         "ALTER TABLE public.unique_only REPLICA IDENTITY USING INDEX unique_only_code_key"))
        << by_index.describe();
    EXPECT_TRUE(mentions(by_index.err, "public.no_key")) << "no index to use: still named\n"
                                                         << by_index.describe();
    auto full =
        run_pgstream({"init", "--pgurl", cluster.url(), "--slot", kSlot, "--replica-identity", "full"});
    ASSERT_EQ(full.exit_code, 0) << full.describe();
    EXPECT_TRUE(mentions(full.out, "ALTER TABLE public.no_key REPLICA IDENTITY FULL")) << full.describe();
    status = run_pgstream({"status", "--pgurl", cluster.url(), "--slot", kSlot});
    EXPECT_TRUE(mentions(status.out, "tables_without_replica_identity: 0")) << status.describe();

    db.exec("INSERT INTO no_key VALUES (1, 'x'); INSERT INTO unique_only VALUES (7, 'x')");
    db.exec("UPDATE no_key SET b = 'y'; UPDATE unique_only SET v = 'y'");
    db.exec("DELETE FROM no_key; DELETE FROM unique_only");
    auto lines = lines_once(*shipper, [](const std::vector<std::string>& lines) {
        int deletes = 0;
        for (const auto& line : lines) deletes += mentions(line, "\"action\":\"D\"");
        return deletes == 2;
    });
    std::vector<std::string> changes;
    for (const auto& line : lines) {
        auto event = parse_event(line);
        if (!event || (event->table != "no_key" && event->table != "unique_only")) continue;
        std::string key = event->table == "no_key" ? "a" : "code";
        changes.push_back(
            event->action + ":" + event->table + ":" +
            (event->action == "I" ? event->value(key) : event->identity_value(key)).value_or("?"));
    }
    EXPECT_EQ(changes, (std::vector<std::string>{"I:no_key:1", "I:unique_only:7", "U:no_key:1",
                                                 "U:unique_only:7", "D:no_key:1", "D:unique_only:7"}));
    EXPECT_EQ(shipper->stop(), 0) << shipper->stderr_tail();
}

// The rule for unreadable records is checked before anything runs: one line naming the setting.
TEST(IntegrationData, TheUnreadableRecordRuleIsValidated) {
    auto settings_error = [](std::map<std::string, std::string> values) -> std::string {
        values["PGSTREAM_POSTGRES_LISTENER_URL"] = "postgres://localhost/app";
        try {
            pgstream::PostgresSource::settings_from(pgstream::Config(values));
        } catch (const pgstream::ConfigError& e) {
            return e.what();
        }
        return "";
    };
    EXPECT_NE(
        settings_error({{"PGSTREAM_POSTGRES_LISTENER_ON_UNREADABLE_RECORD", "skip"}})
            .find(
                "PGSTREAM_POSTGRES_LISTENER_ON_UNREADABLE_RECORD: \"skip\" is not one of stop, dead-letter"),
        std::string::npos);
    EXPECT_NE(settings_error({{"PGSTREAM_POSTGRES_LISTENER_ON_UNREADABLE_RECORD", "dead-letter"}})
                  .find("PGSTREAM_POSTGRES_LISTENER_DEAD_LETTER_FILE: must name a file"),
              std::string::npos);
    EXPECT_NE(
        settings_error({{"PGSTREAM_POSTGRES_LISTENER_ON_UNREADABLE_RECORD", "dead-letter"},
                        {"PGSTREAM_POSTGRES_LISTENER_DEAD_LETTER_FILE", "/nonexistent/dir/dead.jsonl"}})
            .find("PGSTREAM_POSTGRES_LISTENER_DEAD_LETTER_FILE: cannot open /nonexistent/dir/dead.jsonl"),
        std::string::npos);
    EXPECT_EQ(settings_error({{"PGSTREAM_POSTGRES_LISTENER_ON_UNREADABLE_RECORD", "stop"}}), "");
    // Known through the postgres source module's settings (as the CLI registers it).
    pgstream::register_builtin_modules();
    EXPECT_TRUE(pgstream::is_known_config_key("PGSTREAM_POSTGRES_LISTENER_DEAD_LETTER_FILE"));
}

}  // namespace
}  // namespace pgstream_it
