// `pgstream run` end to end with Kafka: PostgreSQL → Kafka writer (three schemas, a schema change) on a
// 3-broker mock cluster, then Kafka listener → stdout in a consumer group, through the real binary and
// configuration.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <atomic>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "kafka/record_key.h"
#include "wal/event_codec.h"
#include "kafka_mock_fixture.h"
#include "support/stream_fixture.h"
#include "wal/record_parser.h"

namespace pgstream::kafka {
namespace {

using namespace std::chrono_literals;
using pgstream_it::PgConnection;
using pgstream_it::ShipperProcess;
using pgstream_it::wait_until;

class KafkaCli : public testing::KafkaMockTest {
  protected:
    // Creates `topic`, runs `pgstream init`, creates a table `t` (`columns`) in each of `schemas`, and
    // returns the settings of a PostgreSQL → Kafka shipper writing to `topic`.
    pgstream_it::Settings prepareKafkaStream(const std::string& topic, int partitions,
                                             const std::vector<std::string>& schemas,
                                             const std::string& columns) {
        cluster().createTopic(topic, partitions);
        pgstream_it::init_stream(cluster_);
        PgConnection db(cluster_.url());
        for (const auto& schema : schemas)
            db.exec("CREATE SCHEMA " + schema + "; CREATE TABLE " + schema + ".t (" + columns + ")");
        auto settings = pgstream_it::shipper_settings(cluster_);
        settings.erase("PGSTREAM_STDOUT_WRITER_ENABLED");
        settings["PGSTREAM_KAFKA_SERVERS"] = servers();
        settings["PGSTREAM_KAFKA_TOPIC_NAME"] = topic;
        return settings;
    }

    pgstream_it::PgCluster cluster_;
    pgstream_it::TempDir work_;
};

TEST_F(KafkaCli, PostgresToKafkaAndKafkaToStdout) {
    cluster().createTopic("pgstream", 3);
    pgstream_it::init_stream(cluster_);
    PgConnection db(cluster_.url());
    db.exec("CREATE SCHEMA s1; CREATE SCHEMA s2; CREATE SCHEMA s3");
    for (const char* schema : {"s1", "s2", "s3"}) {
        db.exec(std::string("CREATE TABLE ") + schema + ".items (id int PRIMARY KEY, note text)");
    }

    auto settings = pgstream_it::shipper_settings(cluster_);
    settings.erase("PGSTREAM_STDOUT_WRITER_ENABLED");
    settings["PGSTREAM_KAFKA_SERVERS"] = servers();
    settings["PGSTREAM_KAFKA_TOPIC_NAME"] = "pgstream";
    settings["PGSTREAM_KAFKA_WRITER_BATCH_TIMEOUT"] = "50ms";
    ShipperProcess writer(work_.path(), settings, "writer");
    writer.start();
    ASSERT_TRUE(wait_until([&] { return pgstream_it::slot_state(db).active; }, 30s))
        << pgstream_it::shipper_diagnostics(writer);

    for (int round = 0; round < 10; ++round) {
        // Interleaved schemas in one transaction, and one transaction per schema.
        db.exec("BEGIN; INSERT INTO s1.items VALUES (" + std::to_string(round) +
                ", 'a'); INSERT INTO s2.items VALUES (" + std::to_string(round) + ", 'b'); COMMIT");
        db.exec("INSERT INTO s3.items VALUES (" + std::to_string(round) + ", 'c')");
        db.exec("UPDATE s1.items SET note = 'a" + std::to_string(round) +
                "' WHERE id = " + std::to_string(round));
        if (round == 4) db.exec("ALTER TABLE s2.items ADD COLUMN price numeric");
    }
    db.exec("DELETE FROM s3.items WHERE id = 0");
    const uint64_t end_lsn = pgstream_it::parse_lsn(db.scalar_text("SELECT pg_current_wal_lsn()"));
    // The slot moves only past what Kafka confirmed: once it passes the end, every change must be in the
    // topic.
    ASSERT_TRUE(wait_until([&] { return pgstream_it::slot_state(db).confirmed_flush_lsn >= end_lsn; }, 60s))
        << pgstream_it::shipper_diagnostics(writer);
    EXPECT_EQ(writer.stop(), 0) << writer.stderr_tail();

    auto records = readTopic("pgstream", 3, SIZE_MAX, 8s, 0ms);
    std::map<std::string, std::vector<EventPtr>> by_key;
    std::map<std::string, int32_t> partition_of_key;
    int schema_changes_of_s2 = 0;
    for (const auto& record : records) {
        EventPtr event = event_from_json(record.value);
        EXPECT_EQ(record.key, kafkaKey(*event));
        auto [it, inserted] = partition_of_key.emplace(record.key, record.partition);
        EXPECT_EQ(it->second, record.partition) << record.key;
        if (event->is_schema_log() && record.key == "s2") ++schema_changes_of_s2;
        by_key[record.key].push_back(event);
    }
    for (const char* schema : {"s1", "s2", "s3"}) {
        const auto& events = by_key[schema];
        int inserts = 0;
        uint64_t last_commit = 0;
        for (const auto& event : events) {
            EXPECT_GE(event->commit_lsn.value, last_commit) << schema << ": commit order broken";
            last_commit = event->commit_lsn.value;
            if (event->action == Action::Insert && event->schema == schema) {
                ++inserts;
                EXPECT_FALSE(event->metadata.table_pgstream_id.empty())
                    << "translator metadata: " << event_to_json(*event);
                EXPECT_EQ(event->metadata.id_col_pgstream_ids.size(), 1u);
            }
        }
        EXPECT_EQ(inserts, 10) << schema;
    }
    size_t s1_rows = 0, s1_schema_changes = 0;
    for (const auto& event : by_key["s1"]) (event->is_schema_log() ? s1_schema_changes : s1_rows)++;
    EXPECT_EQ(s1_rows, 20u) << "10 inserts + 10 updates";
    EXPECT_GE(s1_schema_changes, 1u) << "CREATE SCHEMA/TABLE s1 are logged under key s1";
    EXPECT_GE(schema_changes_of_s2, 1)
        << "the ALTER TABLE's schema_log event is keyed by the schema it changes";
    EXPECT_EQ(by_key["s3"].back()->action, Action::Delete);

    // Kafka → stdout in a consumer group; a restart resumes after the committed offsets.
    pgstream_it::Settings reader_settings = {
        {"PGSTREAM_KAFKA_SERVERS", servers()},
        {"PGSTREAM_KAFKA_TOPIC_NAME", "pgstream"},
        {"PGSTREAM_KAFKA_READER_CONSUMER_GROUP_ID", "relay"},
        {"PGSTREAM_KAFKA_READER_COMMIT_INTERVAL", "100ms"},
        {"PGSTREAM_STDOUT_WRITER_ENABLED", "true"},
    };
    ShipperProcess reader(work_.path(), reader_settings, "reader");
    reader.start();
    ASSERT_TRUE(wait_until([&] { return reader.output_lines().size() >= records.size(); }, 60s))
        << reader.output_lines().size() << " of " << records.size() << "\n"
        << reader.stderr_tail();
    std::this_thread::sleep_for(500ms);
    EXPECT_EQ(reader.stop(), 0) << reader.stderr_tail();
    std::multiset<std::string> expected, actual;
    for (const auto& record : records) expected.insert(record.value);
    for (const auto& line : reader.output_lines()) actual.insert(line);
    EXPECT_EQ(actual, expected) << "stdout carries exactly the topic's records";

    reader.start();
    std::this_thread::sleep_for(6s);
    EXPECT_EQ(reader.output_lines().size(), records.size()) << "a restarted reader re-read committed records";
    EXPECT_EQ(reader.stop(), 0) << reader.stderr_tail();
}

// The outage proof end to end: rows keep being committed in eight schemas while every broker is down for 30
// s. During the outage nothing written after it began may be confirmed on the slot, and the shipper's memory
// stays bounded by its budget (the listener stops reading instead of buffering); afterwards every row is in
// Kafka exactly once, in commit order per schema. Each schema's key maps to its own partition (CRC32 % 8),
// keeping every partition below the mock broker's 5 MB log limit while 24 MB of rows wait out the outage.
TEST_F(KafkaCli, ThirtySecondBrokerOutageMidStreamFreezesTheSlotAndLosesNothing) {
    const std::vector<std::string> schemas = {"o_s0", "o_s1", "o_s2", "o_s3", "o_s4", "o_s5", "o_s6", "o_s7"};
    constexpr int kRowsBefore = 200, kTxnsDuring = 300, kRowsPerTxn = 20;
    // The budget (the writer's memory guard plus librdkafka's buffer), the listener's 8 MiB hand-off queue of
    // received messages, and slack for the allocator.
    constexpr long kBudgetMiB = 4, kHandoffMiB = 8, kAllowanceMiB = 12;
    auto settings = prepareKafkaStream("outage", 8, schemas, "id bigint PRIMARY KEY, payload text");
    PgConnection db(cluster_.url());
    settings["PGSTREAM_KAFKA_WRITER_MAX_QUEUE_BYTES"] = std::to_string(kBudgetMiB) + "MiB";
    settings["PGSTREAM_KAFKA_WRITER_BATCH_BYTES"] = "512KiB";
    ShipperProcess writer(work_.path(), settings, "writer");
    writer.start();
    ASSERT_TRUE(wait_until([&] { return pgstream_it::slot_state(db).active; }, 30s))
        << pgstream_it::shipper_diagnostics(writer);

    long next_id = 1;
    size_t next_schema = 0;
    auto insert_rows = [&](int rows) {  // 4 KB rows, one schema per transaction in turn
        const std::string& schema = schemas[next_schema++ % schemas.size()];
        db.exec("INSERT INTO " + schema + ".t SELECT g, repeat(md5(g::text), 128) FROM generate_series(" +
                std::to_string(next_id) + ", " + std::to_string(next_id + rows - 1) + ") g");
        next_id += rows;
    };
    for (int i = 0; i < kRowsBefore / kRowsPerTxn; ++i) insert_rows(kRowsPerTxn);
    const uint64_t before_outage = pgstream_it::parse_lsn(db.scalar_text("SELECT pg_current_wal_lsn()"));
    ASSERT_TRUE(
        wait_until([&] { return pgstream_it::slot_state(db).confirmed_flush_lsn >= before_outage; }, 60s))
        << pgstream_it::shipper_diagnostics(writer);
    const long rss_before_kib = writer.vm_rss_kib();

    cluster().setAllBrokersDown();
    const uint64_t outage_rows_start =
        pgstream_it::parse_lsn(db.scalar_text("SELECT pg_current_wal_insert_lsn()"));
    long max_rss_kib = rss_before_kib;
    uint64_t max_confirmed = 0;
    const auto outage_start = std::chrono::steady_clock::now();
    for (int txn = 0; txn < kTxnsDuring; ++txn) {
        insert_rows(kRowsPerTxn);
        max_confirmed = std::max(max_confirmed, pgstream_it::slot_state(db).confirmed_flush_lsn);
        max_rss_kib = std::max(max_rss_kib, writer.vm_rss_kib());
        std::this_thread::sleep_until(outage_start + (txn + 1) * 100ms);
    }
    ASSERT_TRUE(writer.running()) << "the shipper died during the outage\n" << writer.stderr_tail();
    EXPECT_LE(max_confirmed, outage_rows_start)
        << "the slot confirmed " << pgstream_it::format_lsn(max_confirmed)
        << ", past rows committed after the brokers went down at "
        << pgstream_it::format_lsn(outage_rows_start);
    const uint64_t written_to = pgstream_it::parse_lsn(db.scalar_text("SELECT pg_current_wal_lsn()"));
    EXPECT_LT((max_rss_kib - rss_before_kib) / 1024, kBudgetMiB + kHandoffMiB + kAllowanceMiB)
        << "RSS grew from " << rss_before_kib / 1024 << " to " << max_rss_kib / 1024 << " MiB while "
        << kTxnsDuring * kRowsPerTxn * 4 / 1024 << " MiB of rows waited for the brokers";

    cluster().setAllBrokersUp();
    ASSERT_TRUE(
        wait_until([&] { return pgstream_it::slot_state(db).confirmed_flush_lsn >= written_to; }, 120s))
        << "not delivered after the outage\n"
        << pgstream_it::shipper_diagnostics(writer);
    EXPECT_EQ(writer.stop(), 0) << writer.stderr_tail();

    const long rows = next_id - 1;
    auto records = readTopic("outage", 8, size_t(rows), 60s);
    std::map<std::string, int32_t> partition_of_key;
    std::map<std::string, long> last_id_of_key;
    std::set<long> ids;
    long duplicates = 0;
    for (const auto& record : records) {
        EventPtr event = event_from_json(record.value);
        if (event->is_schema_log()) continue;
        auto [it, inserted] = partition_of_key.emplace(record.key, record.partition);
        EXPECT_EQ(it->second, record.partition) << record.key;
        const Column* id = event->find_column("id");
        ASSERT_NE(id, nullptr) << record.value.substr(0, 300);
        const long value = std::stol(id->value.text);
        if (!ids.insert(value).second) ++duplicates;
        EXPECT_GT(value, last_id_of_key[record.key]) << "reordered within " << record.key;
        last_id_of_key[record.key] = value;
    }
    EXPECT_EQ(partition_of_key.size(), schemas.size()) << "one partition per schema";
    EXPECT_EQ(duplicates, 0);
    EXPECT_EQ(long(ids.size()), rows) << "rows lost";
    std::cout << "outage: " << rows << " rows, " << (written_to - outage_rows_start) / (1024 * 1024)
              << " MiB of WAL during 30 s; RSS " << rss_before_kib / 1024 << " -> max " << max_rss_kib / 1024
              << " MiB (budget " << kBudgetMiB << " MiB)" << std::endl;
}

// At-least-once through kill -9: rows are committed in four schemas while the PostgreSQL → Kafka shipper is
// SIGKILLed at random moments and restarted. At each kill, every transaction that committed before the slot's
// confirmed position must already be in Kafka (the slot never passes an undelivered row); at the end every
// row is there, first appearances in commit order, and replays come only from the unconfirmed tail.
TEST_F(KafkaCli, KillNineOfTheWriterLosesNothing) {
    const std::vector<std::string> schemas = {"o_s0", "o_s1", "o_s2", "o_s3"};  // distinct partitions of 8
    constexpr int kTxns = 240, kRowsPerTxn = 50, kKills = 3;
    auto settings = prepareKafkaStream("crash", 8, schemas, "id int PRIMARY KEY, note text");
    PgConnection db(cluster_.url());
    ShipperProcess writer(work_.path(), settings, "writer");
    writer.start();
    ASSERT_TRUE(wait_until([&] { return pgstream_it::slot_state(db).active; }, 30s))
        << pgstream_it::shipper_diagnostics(writer);

    // Committed transactions: the last id of each and an LSN at or past its commit record's end.
    std::mutex committed_mutex;
    std::vector<std::pair<int, uint64_t>> committed;
    std::atomic<bool> writing{true};
    std::string writer_error;
    std::thread rows([&] {
        try {
            PgConnection conn(cluster_.url());
            for (int txn = 0; txn < kTxns; ++txn) {
                const int first = txn * kRowsPerTxn + 1, last = first + kRowsPerTxn - 1;
                conn.exec("INSERT INTO " + schemas[txn % schemas.size()] +
                          ".t SELECT g, 'row ' || g FROM generate_series(" + std::to_string(first) + ", " +
                          std::to_string(last) + ") g");
                const uint64_t after =
                    pgstream_it::parse_lsn(conn.scalar_text("SELECT pg_current_wal_insert_lsn()"));
                {
                    std::lock_guard lock(committed_mutex);
                    committed.emplace_back(last, after);
                }
                std::this_thread::sleep_for(40ms);
            }
        } catch (const std::exception& e) {
            writer_error = e.what();
        }
        writing = false;
    });

    auto ids_in_kafka = [&] {
        std::vector<int> ids;
        for (const auto& record : readTopic("crash", 8, SIZE_MAX, 3s, 0ms)) {
            EventPtr event = event_from_json(record.value);
            if (event->is_schema_log() || event->action != Action::Insert) continue;
            ids.push_back(std::stoi(event->find_column("id")->value.text));
        }
        return ids;
    };
    std::mt19937 random(std::random_device{}());
    for (int kill = 0; kill < kKills && writing; ++kill) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1000 + random() % 1500));
        const auto walsender_before = pgstream_it::slot_state(db).active_pid;
        writer.kill_hard();
        const uint64_t confirmed = pgstream_it::slot_state(db).confirmed_flush_lsn;
        int must_be_delivered = 0;
        {
            std::lock_guard lock(committed_mutex);
            for (const auto& [last_id, lsn] : committed)
                if (lsn <= confirmed) must_be_delivered = last_id;
        }
        std::vector<int> ids = ids_in_kafka();
        std::set<int> present(ids.begin(), ids.end());
        for (int id = 1; id <= must_be_delivered; ++id)
            ASSERT_TRUE(present.count(id))
                << "kill " << kill << ": row " << id << " is not in Kafka although the slot "
                << "confirmed " << pgstream_it::format_lsn(confirmed);
        writer.start();
        // Streaming again (a new walsender) before the next kill or the final stop.
        ASSERT_TRUE(wait_until(
            [&] {
                auto state = pgstream_it::slot_state(db);
                return state.active && state.active_pid != walsender_before;
            },
            30s))
            << pgstream_it::shipper_diagnostics(writer);
    }
    rows.join();
    ASSERT_EQ(writer_error, "");
    const uint64_t end = pgstream_it::parse_lsn(db.scalar_text("SELECT pg_current_wal_lsn()"));
    ASSERT_TRUE(wait_until([&] { return pgstream_it::slot_state(db).confirmed_flush_lsn >= end; }, 60s))
        << pgstream_it::shipper_diagnostics(writer);
    EXPECT_EQ(writer.stop(), 0) << writer.stderr_tail();

    std::vector<int> ids = ids_in_kafka();
    std::set<int> present(ids.begin(), ids.end());
    EXPECT_EQ(present.size(), size_t(kTxns * kRowsPerTxn)) << "rows lost";
    EXPECT_EQ(*present.rbegin(), kTxns * kRowsPerTxn);
    // Rows are committed in id order, one transaction per schema in turn: within a schema, first appearances
    // must come in increasing id order (a replay repeats rows, it never brings an unseen row early).
    std::map<int, int> last_first_seen;  // schema index -> last id seen for the first time
    std::set<int> seen;
    for (int id : ids) {
        if (!seen.insert(id).second) continue;
        const int schema = ((id - 1) / kRowsPerTxn) % int(schemas.size());
        EXPECT_GT(id, last_first_seen[schema])
            << "row " << id << " arrived before an earlier row of its schema";
        last_first_seen[schema] = id;
    }
    std::cout << "kill -9 x" << kKills << ": " << present.size() << " rows, " << ids.size() - present.size()
              << " replayed records" << std::endl;
}

TEST_F(KafkaCli, OversizedRowStopsTheShipperAndIsDeliveredAfterRaisingTheLimit) {
    cluster().createTopic("big", 1);
    pgstream_it::init_stream(cluster_);
    PgConnection db(cluster_.url());
    db.exec("CREATE TABLE public.docs (id int PRIMARY KEY, body text)");
    auto settings = pgstream_it::shipper_settings(cluster_);
    settings.erase("PGSTREAM_STDOUT_WRITER_ENABLED");
    settings["PGSTREAM_KAFKA_SERVERS"] = servers();
    settings["PGSTREAM_KAFKA_TOPIC_NAME"] = "big";
    settings["PGSTREAM_KAFKA_WRITER_BATCH_TIMEOUT"] = "50ms";
    settings["PGSTREAM_KAFKA_WRITER_MAX_MESSAGE_BYTES"] = "4000";
    // After the failure the shipper waits this long for in-flight events that can no longer be delivered.
    settings["PGSTREAM_SHUTDOWN_DRAIN_TIMEOUT"] = "2s";
    ShipperProcess writer(work_.path(), settings, "writer");
    writer.start();
    ASSERT_TRUE(wait_until([&] { return pgstream_it::slot_state(db).active; }, 30s))
        << pgstream_it::shipper_diagnostics(writer);
    db.exec("INSERT INTO docs VALUES (1, 'small')");
    const uint64_t before_big = pgstream_it::parse_lsn(db.scalar_text("SELECT pg_current_wal_lsn()"));
    db.exec("INSERT INTO docs VALUES (2, repeat('x', 10000))");
    db.exec("INSERT INTO docs VALUES (3, 'after')");
    // The shipper must stop on its own, loudly, without confirming the oversized row.
    auto status = writer.wait_exit(30s);
    ASSERT_TRUE(status.has_value()) << "the shipper kept running past an oversized record\n"
                                    << writer.stderr_tail();
    EXPECT_FALSE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << writer.stderr_tail();
    EXPECT_NE(writer.stderr_text().find("PGSTREAM_KAFKA_WRITER_MAX_MESSAGE_BYTES"), std::string::npos)
        << writer.stderr_tail();
    EXPECT_NE(writer.stderr_text().find("public.docs"), std::string::npos) << writer.stderr_tail();
    EXPECT_LE(pgstream_it::slot_state(db).confirmed_flush_lsn, before_big)
        << "the slot moved past the oversized row";
    auto records = readTopic("big", 1, SIZE_MAX, 3s, 0ms);
    for (const auto& record : records) {
        EXPECT_EQ(record.value.find("xxxxxxxxxx"), std::string::npos) << "the oversized row reached Kafka";
    }

    // Raised limit: the same slot delivers the oversized row and the one after it, in order.
    writer.settings()["PGSTREAM_KAFKA_WRITER_MAX_MESSAGE_BYTES"] = "100000";
    writer.start();
    const uint64_t end_lsn = pgstream_it::parse_lsn(db.scalar_text("SELECT pg_current_wal_lsn()"));
    ASSERT_TRUE(wait_until([&] { return pgstream_it::slot_state(db).confirmed_flush_lsn >= end_lsn; }, 60s))
        << writer.stderr_tail();
    EXPECT_EQ(writer.stop(), 0) << writer.stderr_tail();
    std::vector<std::string> ids;
    for (const auto& record : readTopic("big", 1, SIZE_MAX, 3s, 0ms)) {
        EventPtr event = event_from_json(record.value);
        if (event->table == "docs" && event->action == Action::Insert)
            ids.push_back(event->columns[0].value.text);
    }
    ASSERT_GE(ids.size(), 3u);
    EXPECT_EQ(std::vector<std::string>(ids.end() - 2, ids.end()), (std::vector<std::string>{"2", "3"}));
}

using KafkaCliSettings = testing::KafkaMockTest;

TEST_F(KafkaCliSettings, BadKafkaSettingsExitWithUsageError) {
    auto result = pgstream_it::run_pgstream({"run"},
                                            {{"PGSTREAM_KAFKA_SERVERS", servers()},
                                             {"PGSTREAM_KAFKA_TOPIC_NAME", "t"},
                                             {"PGSTREAM_KAFKA_READER_CONSUMER_GROUP_ID", "g"},
                                             {"PGSTREAM_KAFKA_READER_CONSUMER_GROUP_START_OFFSET", "middle"},
                                             {"PGSTREAM_STDOUT_WRITER_ENABLED", "true"}},
                                            30s);
    EXPECT_EQ(result.exit_code, 2) << result.describe();
    ASSERT_EQ(result.err_lines().size(), 1u) << result.describe();
    EXPECT_NE(result.err_lines()[0].find("PGSTREAM_KAFKA_READER_CONSUMER_GROUP_START_OFFSET"),
              std::string::npos);

    result = pgstream_it::run_pgstream({"run"},
                                       {{"PGSTREAM_POSTGRES_LISTENER_URL", "postgres://127.0.0.1:1/postgres"},
                                        {"PGSTREAM_KAFKA_SERVERS", servers()},
                                        {"PGSTREAM_KAFKA_TOPIC_NAME", "t"},
                                        {"PGSTREAM_KAFKA_TLS_ENABLED", "true"}},
                                       30s);
    EXPECT_EQ(result.exit_code, 2) << result.describe();
    EXPECT_NE(result.err.find("PGSTREAM_KAFKA_TLS_CA_CERT_FILE"), std::string::npos) << result.describe();
}

}  // namespace
}  // namespace pgstream::kafka
