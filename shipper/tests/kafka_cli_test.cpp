// `pgstream run` end to end with Kafka: PostgreSQL → Kafka writer (three schemas, a schema change) on a
// 3-broker mock cluster, then Kafka listener → stdout in a consumer group, through the real binary and
// configuration.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <map>
#include <set>
#include <thread>

#include "kafka/event_codec.h"
#include "kafka_mock_fixture.h"
#include "support/stream_fixture.h"

namespace pgstream::kafka {
namespace {

using namespace std::chrono_literals;
using pgstream_it::PgConnection;
using pgstream_it::ShipperProcess;
using pgstream_it::wait_until;

class KafkaCli : public testing::KafkaMockTest {
  protected:
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
        EventPtr event = eventFromKafkaValue(record.value);
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
                    << "translator metadata: " << event->raw;
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
        EventPtr event = eventFromKafkaValue(record.value);
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
