// Bounded memory under a stalled output: the shipper's stdout is a pipe nobody reads while 500k rows are
// committed. Resident memory must stay under the writer's byte budget plus a fixed allowance, the replication
// connection must survive a stall longer than wal_sender_timeout (the listener keeps answering the server
// while the pipeline pushes back), and once the pipe is drained every row must arrive.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <iostream>
#include <thread>
#include <vector>

#include "support/stream_fixture.h"

namespace pgstream_it {
namespace {

constexpr int kRows = 500000;
constexpr int kRowsPerTxn = 10000;
constexpr long kBudgetMiB = 16;
// Allowance on top of the queue budget: code, libraries (librdkafka, curl, libpq), allocator slack, one
// record being decoded, buffers of the replication connection.
constexpr long kAllowanceMiB = 64;
constexpr auto kStallAfterWrites = std::chrono::seconds(15);  // three times wal_sender_timeout

TEST(IntegrationBackpressure, StalledOutputBoundsMemoryAndKeepsReplicationAlive) {
    PgCluster cluster;
    cluster.set_system("wal_sender_timeout", "5s");
    init_stream(cluster);
    cluster.exec("CREATE TABLE bp_rows (id int PRIMARY KEY, payload text NOT NULL)");

    TempDir work;
    Settings settings = shipper_settings(cluster);
    settings["PGSTREAM_STDOUT_WRITER_MAX_QUEUE_BYTES"] = std::to_string(kBudgetMiB) + "MiB";
    ShipperProcess shipper(work.path(), settings);
    shipper.set_output(ShipperProcess::Output::kPipe);
    shipper.start();

    PgConnection db(cluster.url());
    ASSERT_TRUE(wait_until([&] { return slot_state(db).active && slot_state(db).active_pid; },
                           std::chrono::seconds(30)))
        << shipper_diagnostics(shipper);
    const long walsender_pid = *slot_state(db).active_pid;

    std::atomic<bool> stop_watching{false};
    std::atomic<long> max_rss_kib{0};
    std::atomic<int> walsender_changes{0};
    std::atomic<int> watch_samples{0};
    std::string watch_error;
    std::thread watcher([&] {
        try {
            PgConnection conn(cluster.url());
            while (!stop_watching) {
                long rss = shipper.vm_rss_kib();
                long previous = max_rss_kib.load();
                while (rss > previous && !max_rss_kib.compare_exchange_weak(previous, rss)) {
                }
                auto state = slot_state(conn);
                if (!state.active || state.active_pid.value_or(-1) != walsender_pid) ++walsender_changes;
                ++watch_samples;
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
        } catch (const std::exception& e) {
            watch_error = e.what();
        }
    });
    ScopeExit stop_watcher([&] {
        stop_watching = true;
        if (watcher.joinable()) watcher.join();
    });

    for (int first = 1; first <= kRows; first += kRowsPerTxn) {
        db.exec("INSERT INTO bp_rows SELECT g, repeat('p', 80) FROM generate_series(" +
                std::to_string(first) + ", " + std::to_string(first + kRowsPerTxn - 1) + ") g");
    }
    const uint64_t written_to = parse_lsn(db.scalar_text("SELECT pg_current_wal_lsn()"));
    std::this_thread::sleep_for(kStallAfterWrites);

    // The stall was real: far more WAL than the budget is still unconfirmed.
    const uint64_t confirmed_in_stall = slot_state(db).confirmed_flush_lsn;
    EXPECT_GT(written_to - std::min(written_to, confirmed_in_stall),
              static_cast<uint64_t>(2 * kBudgetMiB * 1024 * 1024))
        << "the shipper consumed the backlog although nobody read its output";
    EXPECT_TRUE(shipper.running()) << "the shipper died during the stall\n" << shipper.stderr_tail();
    EXPECT_EQ(walsender_changes.load(), 0)
        << "the replication connection was dropped or replaced during the stall (wal_sender_timeout 5s)\n"
        << cluster.server_log_tail();
    long stalled_rss_mib = max_rss_kib.load() / 1024;

    // Drain: read the pipe, count distinct rows.
    std::vector<bool> seen(kRows + 1, false);
    std::atomic<int> distinct{0};
    std::atomic<long> lines{0};
    std::thread reader([&] {
        std::string pending;
        char buffer[1 << 16];
        while (true) {
            ssize_t n = read(shipper.pipe_fd(), buffer, sizeof buffer);
            if (n <= 0) break;
            pending.append(buffer, n);
            size_t start = 0;
            while (true) {
                size_t end = pending.find('\n', start);
                if (end == std::string::npos) break;
                std::string line = pending.substr(start, end - start);
                start = end + 1;
                ++lines;
                if (line.find("\"bp_rows\"") == std::string::npos) continue;
                auto id = int_column(line, "id");
                if (id && *id >= 1 && *id <= kRows && !seen[*id]) {
                    seen[*id] = true;
                    ++distinct;
                }
            }
            pending.erase(0, start);
        }
    });
    ScopeExit stop_reader([&] {
        if (!reader.joinable()) return;
        shipper.kill_hard();  // closes the pipe's write end, so the reader sees EOF
        reader.join();
    });
    bool complete = wait_until([&] { return distinct >= kRows; }, std::chrono::seconds(150),
                               std::chrono::milliseconds(200));
    stop_watching = true;
    watcher.join();
    int stop_code = shipper.stop();
    reader.join();
    ASSERT_TRUE(watch_error.empty()) << watch_error;
    EXPECT_EQ(walsender_changes.load(), 0) << "the replication connection was replaced while draining";

    std::cout << "max RSS " << max_rss_kib.load() / 1024 << " MiB (during stall " << stalled_rss_mib
              << " MiB), budget " << kBudgetMiB << " MiB + " << kAllowanceMiB << " MiB allowance; "
              << lines.load() << " lines, " << distinct.load() << " distinct rows; " << watch_samples.load()
              << " samples" << std::endl;
    EXPECT_TRUE(complete) << "only " << distinct.load() << " of " << kRows << " rows arrived after draining\n"
                          << shipper.stderr_tail();
    EXPECT_LT(max_rss_kib.load(), (kBudgetMiB + kAllowanceMiB) * 1024)
        << "resident memory exceeded the queue budget plus " << kAllowanceMiB << " MiB";
    EXPECT_GT(watch_samples.load(), 100);
    EXPECT_EQ(stop_code, 0) << shipper.stderr_tail();
    std::string log = shipper.stderr_text();
    std::transform(log.begin(), log.end(), log.begin(), [](unsigned char c) { return std::tolower(c); });
    EXPECT_EQ(log.find("reconnect"), std::string::npos) << "the shipper reconnected:\n"
                                                        << shipper.stderr_tail();
}

}  // namespace
}  // namespace pgstream_it
