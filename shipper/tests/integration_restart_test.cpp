// PostgreSQL restarts under a running shipper (fast shutdown: the walsender goes away, nothing is SIGKILLed).
// The shipper must reconnect by itself and deliver every row committed before, during and after the restart.
#include <gtest/gtest.h>

#include <atomic>
#include <iostream>
#include <thread>
#include <unordered_set>

#include "support/stream_fixture.h"

namespace pgstream_it {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kRows = 20000;
constexpr int kBatch = 50;
constexpr auto kWriteDuration = std::chrono::seconds(12);

TEST(IntegrationRestart, ShipperReconnectsAfterPostgresRestartWithoutLoss) {
    PgCluster cluster;
    init_stream(cluster);
    cluster.exec("CREATE TABLE restart_rows (id int PRIMARY KEY, payload text)");

    TempDir work;
    ShipperProcess shipper(work.path(), shipper_settings(cluster));
    shipper.start();
    {
        PgConnection db(cluster.url());
        ASSERT_TRUE(wait_until([&] { return slot_state(db).active; }, std::chrono::seconds(30)))
            << shipper_diagnostics(shipper);
    }

    // The writer survives the restart the way an application would: on a broken connection it reconnects and
    // retries the batch; ON CONFLICT makes a retry of a batch that did commit harmless.
    std::atomic<int> committed{0};
    std::atomic<int> retries{0};
    std::atomic<bool> stop_writing{false};
    std::string writer_error;
    const auto write_start = Clock::now();
    std::thread writer([&] {
        std::unique_ptr<PgConnection> conn;
        int next = 1;
        auto deadline = write_start + kWriteDuration + std::chrono::seconds(60);
        while (next <= kRows && !stop_writing) {
            std::this_thread::sleep_until(write_start +
                                          std::chrono::milliseconds(kWriteDuration) * (next - 1) / kRows);
            std::string sql = "INSERT INTO restart_rows SELECT g, md5(g::text) FROM generate_series(" +
                              std::to_string(next) + ", " + std::to_string(next + kBatch - 1) +
                              ") g ON CONFLICT DO NOTHING";
            try {
                if (!conn || !conn->healthy()) conn = std::make_unique<PgConnection>(cluster.url());
                conn->exec(sql);
                next += kBatch;
                committed = next - 1;
            } catch (const std::exception& e) {
                conn.reset();
                ++retries;
                if (Clock::now() > deadline) {
                    writer_error = e.what();
                    return;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(200));
            }
        }
    });
    ScopeExit stop_writer([&] {
        stop_writing = true;
        if (writer.joinable()) writer.join();
    });

    // Restart while roughly a third of the rows are written, then again near the end.
    ASSERT_TRUE(wait_until([&] { return committed >= kRows / 3; }, std::chrono::seconds(60)));
    cluster.restart();
    ASSERT_TRUE(wait_until([&] { return committed >= kRows * 4 / 5; }, std::chrono::seconds(60)));
    cluster.restart();
    writer.join();
    ASSERT_TRUE(writer_error.empty()) << writer_error;
    ASSERT_EQ(committed.load(), kRows);
    std::cout << "writer retries across restarts: " << retries << std::endl;

    std::unordered_set<int> seen;
    size_t duplicates = 0;
    bool complete = wait_until(
        [&] {
            seen.clear();
            duplicates = 0;
            for (const auto& line : shipper.output_lines()) {
                if (line.find("\"restart_rows\"") == std::string::npos) continue;
                if (auto id = int_column(line, "id"))
                    duplicates += seen.insert(static_cast<int>(*id)).second ? 0 : 1;
            }
            return seen.size() >= static_cast<size_t>(kRows);
        },
        std::chrono::seconds(90), std::chrono::milliseconds(250));
    EXPECT_TRUE(complete) << "only " << seen.size() << " of " << kRows << " rows arrived after the restarts\n"
                          << shipper_diagnostics(shipper) << "\nserver log:\n"
                          << cluster.server_log_tail();
    EXPECT_TRUE(shipper.running()) << "the shipper must reconnect, not exit\n" << shipper.stderr_tail();
    std::cout << "rows " << seen.size() << ", duplicates (unconfirmed tail replayed) " << duplicates
              << std::endl;
    EXPECT_EQ(shipper.stop(), 0) << shipper.stderr_tail();
}

}  // namespace
}  // namespace pgstream_it
