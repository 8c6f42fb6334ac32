// Runs the library example (shipper/examples/table_counter.cpp: a custom output module run by the stock
// pipeline) against a real cluster.
#include <gtest/gtest.h>

#include "support/pg_cluster.h"
#include "support/process.h"

namespace pgstream_it {
namespace {

TEST(LibraryExample, TableCounterModuleCountsTranslatedChangesDeadLettersRefusedRowsAndAdvancesTheSlot) {
    PgCluster cluster;
    auto init = run_pgstream(
        {"init", "--pgurl", cluster.url(), "--slot", "example_slot", "--plugin", stream_plugin()});
    ASSERT_EQ(init.exit_code, 0) << init.describe();
    cluster.exec("CREATE TABLE public.items (id int PRIMARY KEY, note text)");
    cluster.exec("CREATE SCHEMA audit");
    cluster.exec("CREATE TABLE audit.trail (id int)");
    cluster.exec("INSERT INTO items SELECT g, 'n' FROM generate_series(1, 5) g");
    cluster.exec("INSERT INTO audit.trail VALUES (1)");  // filtered out by the example
    cluster.exec("CREATE TABLE public.refused (id int PRIMARY KEY)");
    cluster.exec("INSERT INTO refused VALUES (1), (2)");  // given up on: to the dead-letter file
    cluster.exec("UPDATE items SET note = 'm' WHERE id <= 2");
    cluster.exec("DELETE FROM items WHERE id = 5");
    std::string before = cluster.scalar_text(
        "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'example_slot'");

    std::string binary = std::string(PGSTREAM_BINARY_DIR) + "/pgstream-example-table_counter";
    TempDir dir;
    std::string dead_letters = dir.file("dead-letters.jsonl");
    std::string command = binary + " '" + cluster.url() + "' example_slot 8 " + dead_letters + " 2>&1";
    FILE* pipe = popen(command.c_str(), "r");
    ASSERT_NE(pipe, nullptr);
    std::string output;
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
    int status = pclose(pipe);
    ASSERT_EQ(WEXITSTATUS(status), 0) << output;
    EXPECT_NE(output.find("public.items I 5\n"), std::string::npos) << output;
    EXPECT_NE(output.find("public.items U 2\n"), std::string::npos) << output;
    EXPECT_NE(output.find("public.items D 1\n"), std::string::npos) << output;
    // No count line for the filtered-out schema (log lines may name its tables).
    EXPECT_EQ(("\n" + output).find("\naudit."), std::string::npos) << output;
    EXPECT_NE(output.find("with identity 8\n"), std::string::npos) << "the translator found the primary key\n"
                                                                   << output;
    std::vector<std::string> refused = read_complete_lines(dead_letters);
    ASSERT_EQ(refused.size(), 2u) << output;
    for (const auto& line : refused) {
        EXPECT_NE(line.find("\"output\":\"table counter\""), std::string::npos) << line;
        EXPECT_NE(line.find("\"reason\":\"the counter refuses this table\""), std::string::npos) << line;
        EXPECT_NE(line.find("\"table\":\"refused\""), std::string::npos) << line;
    }
    EXPECT_EQ(("\n" + output).find("\npublic.refused "), std::string::npos)
        << "refused rows are not counted\n"
        << output;
    std::string after = cluster.scalar_text(
        "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'example_slot'");
    EXPECT_GT(parse_lsn(after), parse_lsn(before)) << "acknowledged events must advance the slot";
}

}  // namespace
}  // namespace pgstream_it
