// `pgstream init`, `status` and `tear-down` against a real PostgreSQL 15 cluster.
#include <gtest/gtest.h>

#include <regex>

#include "support/stream_fixture.h"

namespace pgstream_it {
namespace {

constexpr const char* kDefaultSlot = "pgstream_postgres_slot";  // pgstream_<dbname>_slot

int count_slots(PgCluster& cluster, const std::string& slot) {
    return std::stoi(
        cluster.scalar_text("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + slot + "'"));
}

bool schema_log_exists(PgCluster& cluster) {
    return cluster.scalar_text("SELECT to_regclass('pgstream.schema_log') IS NOT NULL") == "t";
}

TEST(IntegrationCli, InitCreatesSlotAndSchemaTrackingAndIsIdempotent) {
    PgCluster cluster;
    const std::string plugin = stream_plugin();
    auto first = run_pgstream({"init", "--pgurl", cluster.url(), "--slot", "it_slot", "--plugin", plugin});
    ASSERT_EQ(first.exit_code, 0) << first.describe();

    EXPECT_EQ(count_slots(cluster, "it_slot"), 1);
    EXPECT_EQ(cluster.scalar_text("SELECT plugin FROM pg_replication_slots WHERE slot_name = 'it_slot'"),
              plugin);
    EXPECT_EQ(cluster.scalar_text("SELECT slot_type FROM pg_replication_slots WHERE slot_name = 'it_slot'"),
              "logical");
    EXPECT_TRUE(schema_log_exists(cluster));
    EXPECT_NE(cluster.scalar_text("SELECT count(*) FROM pg_event_trigger WHERE evtenabled <> 'D'"), "0")
        << "schema tracking needs enabled event triggers";

    // Schema tracking works right after init: DDL writes a schema_log row in its own transaction.
    cluster.exec("CREATE TABLE tracked (id int PRIMARY KEY, note text)");
    EXPECT_NE(cluster.scalar_text("SELECT count(*) FROM pgstream.schema_log WHERE schema_name = 'public'"),
              "0");

    auto second = run_pgstream({"init", "--pgurl", cluster.url(), "--slot", "it_slot", "--plugin", plugin});
    EXPECT_EQ(second.exit_code, 0) << "a second init must succeed\n" << second.describe();
    EXPECT_EQ(count_slots(cluster, "it_slot"), 1);
    EXPECT_EQ(cluster.scalar_text("SELECT count(*) FROM pg_replication_slots"), "1");
    EXPECT_TRUE(schema_log_exists(cluster));
    EXPECT_NE(cluster.scalar_text("SELECT count(*) FROM pgstream.schema_log WHERE schema_name = 'public'"),
              "0")
        << "a second init must keep the recorded schema history";
}

TEST(IntegrationCli, InitUsesDefaultSlotNameAndStatusReportsIt) {
    PgCluster cluster;
    auto init = run_pgstream({"init", "--pgurl", cluster.url(), "--plugin", stream_plugin()});
    ASSERT_EQ(init.exit_code, 0) << init.describe();
    EXPECT_EQ(count_slots(cluster, kDefaultSlot), 1) << "default slot name is pgstream_<dbname>_slot";

    cluster.exec("CREATE TABLE status_rows (id int PRIMARY KEY)");
    cluster.exec("INSERT INTO status_rows SELECT generate_series(1, 1000)");

    auto status = run_pgstream({"status", "--pgurl", cluster.url()});
    ASSERT_EQ(status.exit_code, 0) << status.describe();
    std::string text = status.out + status.err;
    EXPECT_NE(text.find(kDefaultSlot), std::string::npos) << status.describe();
    EXPECT_TRUE(std::regex_search(text, std::regex("[0-9A-F]+/[0-9A-F]+"))) << "status should print an LSN\n"
                                                                            << status.describe();
    EXPECT_TRUE(std::regex_search(text, std::regex("lag", std::regex::icase)))
        << "status should print the lag\n"
        << status.describe();
    // Nothing consumed the slot, so its confirmed position is what status must show.
    std::string confirmed =
        cluster.scalar_text("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '" +
                            std::string(kDefaultSlot) + "'");
    EXPECT_NE(text.find(confirmed), std::string::npos)
        << "status should show confirmed_flush_lsn " << confirmed << "\n"
        << status.describe();
}

TEST(IntegrationCli, TearDownRemovesSlotAndSchemaTracking) {
    PgCluster cluster;
    auto init = run_pgstream({"init", "--pgurl", cluster.url(), "--plugin", stream_plugin()});
    ASSERT_EQ(init.exit_code, 0) << init.describe();
    ASSERT_EQ(count_slots(cluster, kDefaultSlot), 1);

    auto tear_down = run_pgstream({"tear-down", "--pgurl", cluster.url()});
    ASSERT_EQ(tear_down.exit_code, 0) << tear_down.describe();
    EXPECT_EQ(count_slots(cluster, kDefaultSlot), 0);
    EXPECT_FALSE(schema_log_exists(cluster));
    // DDL keeps working once the event triggers are gone with the schema.
    EXPECT_NO_THROW(cluster.exec("CREATE TABLE after_tear_down (id int)"));

    auto again = run_pgstream({"init", "--pgurl", cluster.url(), "--plugin", stream_plugin()});
    EXPECT_EQ(again.exit_code, 0) << "init after tear-down must work\n" << again.describe();
    EXPECT_EQ(count_slots(cluster, kDefaultSlot), 1);
}

TEST(IntegrationCli, InitPreflightNamesOutputPluginLibraries) {
    PgCluster cluster;
    cluster.set_system("output_plugin_libraries", "pgoutput");
    auto init = run_pgstream({"init", "--pgurl", cluster.url(), "--plugin", stream_plugin()});
    SCOPED_TRACE(init.describe());
    EXPECT_EQ(init.exit_code, 2);
    auto lines = init.err_lines();
    ASSERT_EQ(lines.size(), 1u) << "expected exactly one stderr line";
    EXPECT_EQ(lines[0].rfind("pgstream: ", 0), 0u);
    EXPECT_NE(lines[0].find("output_plugin_libraries"), std::string::npos);
    EXPECT_EQ(cluster.scalar_text("SELECT count(*) FROM pg_replication_slots"), "0")
        << "a failed preflight creates no slot";
}

// The statements (ALTER ROLE ..., GRANT ...) that init's lines tell the administrator to run.
std::vector<std::string> suggested_statements(const std::vector<std::string>& lines) {
    std::vector<std::string> statements;
    const std::regex statement("(ALTER ROLE [^;]+ WITH REPLICATION;|GRANT [^;]+;)");
    for (const auto& line : lines)
        for (std::sregex_iterator it(line.begin(), line.end(), statement), end; it != end; ++it)
            statements.push_back(it->str());
    return statements;
}

bool any_line_has(const std::vector<std::string>& lines, const std::vector<std::string>& needles) {
    for (const auto& line : lines) {
        bool all = true;
        for (const auto& needle : needles) all = all && line.find(needle) != std::string::npos;
        if (all) return true;
    }
    return false;
}

// A role that is not a superuser learns, before anything is created, each privilege init lacks and the
// statement that grants it; after a superuser's first init, running those statements is all it takes.
TEST(IntegrationCli, InitByANonSuperuserNamesEachMissingPrivilegeAndTheFix) {
    PgCluster cluster;
    cluster.exec("CREATE ROLE shipper LOGIN");
    const std::string shipper_url =
        "postgres://shipper@127.0.0.1:" + std::to_string(cluster.port()) + "/postgres";
    const std::vector<std::string> args{"init",         "--pgurl",  shipper_url,    "--slot",
                                        "shipper_slot", "--plugin", stream_plugin()};

    auto refused = run_pgstream(args);
    SCOPED_TRACE(refused.describe());
    EXPECT_EQ(refused.exit_code, 2);
    auto lines = refused.err_lines();
    for (const auto& line : lines) EXPECT_EQ(line.rfind("pgstream: ", 0), 0u) << line;
    EXPECT_TRUE(any_line_has(lines, {"REPLICATION", "ALTER ROLE \"shipper\" WITH REPLICATION;"}));
    EXPECT_TRUE(
        any_line_has(lines, {"superuser", "event triggers", "ALTER ROLE \"shipper\" WITH SUPERUSER;"}));
    EXPECT_TRUE(
        any_line_has(lines, {"CREATE on database", "GRANT CREATE ON DATABASE \"postgres\" TO \"shipper\";"}));
    EXPECT_EQ(cluster.scalar_text("SELECT count(*) FROM pg_replication_slots"), "0") << "nothing is created";
    EXPECT_EQ(cluster.scalar_text("SELECT count(*) FROM pg_namespace WHERE nspname = 'pgstream'"), "0");

    // A superuser installs schema tracking once (its slot is not the shipper's).
    init_stream(cluster, "admin_slot");
    cluster.exec("SELECT pg_drop_replication_slot('admin_slot')");
    auto still_refused = run_pgstream(args);
    SCOPED_TRACE(still_refused.describe());
    EXPECT_EQ(still_refused.exit_code, 2);
    auto remaining = still_refused.err_lines();
    EXPECT_FALSE(any_line_has(remaining, {"SUPERUSER"})) << "schema tracking is installed now";
    EXPECT_TRUE(
        any_line_has(remaining, {"schema pgstream", "GRANT USAGE ON SCHEMA pgstream TO \"shipper\";"}));

    auto statements = suggested_statements(remaining);
    ASSERT_FALSE(statements.empty());
    for (const auto& statement : statements) cluster.exec(statement);
    auto accepted = run_pgstream(args);
    ASSERT_EQ(accepted.exit_code, 0) << "the suggested statements should be enough\n" << accepted.describe();
    EXPECT_EQ(count_slots(cluster, "shipper_slot"), 1);
}

TEST(IntegrationCli, InitRejectsUnreachableServer) {
    auto init =
        run_pgstream({"init", "--pgurl", "postgres://postgres@127.0.0.1:1/postgres", "--plugin", "wal2json"},
                     {}, std::chrono::seconds(60));
    SCOPED_TRACE(init.describe());
    EXPECT_NE(init.exit_code, 0);
    EXPECT_FALSE(init.timed_out);
    auto lines = init.err_lines();
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back().rfind("pgstream: ", 0), 0u);
}

}  // namespace
}  // namespace pgstream_it
