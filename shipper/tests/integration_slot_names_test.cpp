// Slot ownership: default slot names stay within PostgreSQL's 63 bytes and unique per database (the SQL
// function and the shipper compute the same name), and a slot of another database is never used or dropped.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include "listener/postgres/postgres_listener.h"
#include "support/stream_fixture.h"

namespace pgstream_it {
namespace {

TEST(IntegrationSlotNames, SqlAndShipperAgreeOnDefaultSlotNames) {
    if (!pgstream_plugin_installed()) GTEST_SKIP() << "needs the pgstream extension installed";
    PgCluster cluster;
    PgConnection db(cluster.url());
    db.exec("CREATE EXTENSION pgstream");
    const std::string long_prefix(60, 'd');
    const std::vector<std::string> names{
        "postgres",           "Shop-DB",
        "db.with spaces",     long_prefix + "_one",
        long_prefix + "_two", std::string(63, 'x'),
        "caf\xc3\xa9",        std::string(30, 'z') + "\xc3\xa9\xc3\xa9" + std::string(30, 'z')};
    for (const std::string& name : names) {
        std::string hex;
        char buffer[3];
        for (unsigned char c : name) {
            snprintf(buffer, sizeof buffer, "%02x", c);
            hex += buffer;
        }
        std::string sql_name = db.scalar_text("SELECT pgstream.default_slot_name_for(convert_from('\\x" +
                                              hex + "'::bytea, 'UTF8'))");
        std::string shipper_name = pgstream::default_slot_name_for_database(name);
        EXPECT_EQ(sql_name, shipper_name) << "database " << name;
        EXPECT_LE(shipper_name.size(), 63u) << name;
    }
    EXPECT_NE(pgstream::default_slot_name_for_database(long_prefix + "_one"),
              pgstream::default_slot_name_for_database(long_prefix + "_two"));
}

TEST(IntegrationSlotNames, TwoLongDatabaseNamesGetTheirOwnSlotsAndNeverTouchTheOther) {
    PgCluster cluster;
    // Database names stop at 63 bytes too: these two share the 54 bytes that "pgstream_<database>_slot" cut
    // to 63 bytes would keep.
    const std::string shared(55, 'l');
    const std::string first = shared + "_a", second = shared + "_b";
    cluster.exec("CREATE DATABASE " + first);
    cluster.exec("CREATE DATABASE " + second);
    auto init = [&](const std::string& db, std::vector<std::string> extra = {}) {
        std::vector<std::string> args{"init", "--pgurl", cluster.url_for_database(db)};
        args.insert(args.end(), extra.begin(), extra.end());
        return run_pgstream(args, {}, std::chrono::seconds(90));
    };
    auto first_init = init(first);
    ASSERT_EQ(first_init.exit_code, 0) << first_init.describe();
    auto second_init = init(second);
    ASSERT_EQ(second_init.exit_code, 0) << second_init.describe();
    EXPECT_NE(second_init.out.find(" created"), std::string::npos)
        << "the second database gets a slot of its own, not the first one's: " << second_init.out;
    std::string first_slot = pgstream::default_slot_name_for_database(first);
    std::string second_slot = pgstream::default_slot_name_for_database(second);
    EXPECT_EQ(
        cluster.scalar_text("SELECT string_agg(slot_name || ':' || database, ',' ORDER BY database) FROM "
                            "pg_replication_slots"),
        first_slot + ":" + first + "," + second_slot + ":" + second);

    // The other database's slot, named explicitly: init, status, tear-down and run refuse it.
    for (const char* command : {"init", "status", "tear-down"}) {
        auto refused =
            run_pgstream({command, "--pgurl", cluster.url_for_database(second), "--slot", first_slot});
        EXPECT_EQ(refused.exit_code, 2) << command << ": " << refused.describe();
        ASSERT_EQ(refused.err_lines().size(), 1u) << refused.describe();
        EXPECT_NE(refused.err_lines()[0].find("belongs to database " + first), std::string::npos)
            << refused.err_lines()[0];
    }
    TempDir work;
    Settings settings{{"PGSTREAM_POSTGRES_LISTENER_URL", cluster.url_for_database(second)},
                      {"PGSTREAM_POSTGRES_LISTENER_SLOT_NAME", first_slot},
                      {"PGSTREAM_STDOUT_WRITER_ENABLED", "true"}};
    ShipperProcess run(work.path(), settings);
    run.start();
    auto status = run.wait_exit(std::chrono::seconds(30));
    ASSERT_TRUE(status.has_value()) << run.stderr_tail();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << run.stderr_tail();
    EXPECT_NE(run.stderr_text().find("belongs to database " + first), std::string::npos) << run.stderr_tail();

    auto torn_down = run_pgstream({"tear-down", "--pgurl", cluster.url_for_database(second)});
    EXPECT_EQ(torn_down.exit_code, 0) << torn_down.describe();
    EXPECT_EQ(cluster.scalar_text("SELECT string_agg(slot_name, ',') FROM pg_replication_slots"), first_slot)
        << "tear-down of the second database leaves the first one's slot";
}

}  // namespace
}  // namespace pgstream_it
