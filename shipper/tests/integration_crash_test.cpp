// At-least-once under kill -9: a writer commits 50k rows in small transactions while the shipper is SIGKILLed
// at random moments and restarted. Nothing may be lost, replays may only come from the unconfirmed tail, and
// at every sampled moment the slot's confirmed_flush_lsn must not pass a transaction whose rows are not yet
// in the output file.
//
// The truth about transactions (which rows, which commit end LSN) comes from a second slot decoded with
// test_decoding, independent of the shipper.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "support/stream_fixture.h"

namespace pgstream_it {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kRows = 50000;
constexpr int kKills = 5;
constexpr auto kWriteDuration = std::chrono::seconds(24);
constexpr const char* kOracleSlot = "crash_oracle";

struct OracleTxn {
    int64_t xid = 0;
    uint64_t end_lsn = 0;
    std::vector<int> ids;
};

// Every committed transaction on crash_rows, in commit order, with its commit record's end LSN (what
// test_decoding reports as the lsn of its COMMIT line).
std::vector<OracleTxn> read_oracle(PgConnection& db) {
    auto rows = db.query(std::string("SELECT lsn, xid, data FROM pg_logical_slot_peek_changes('") +
                         kOracleSlot + "', NULL, NULL)");
    std::vector<OracleTxn> txns;
    std::unordered_map<int64_t, OracleTxn> open;
    const std::string insert_prefix = "table public.crash_rows: INSERT: id[integer]:";
    for (const auto& row : rows) {
        int64_t xid = std::stoll(row[1].value_or("0"));
        const std::string& data = row[2].value_or("");
        if (data.rfind(insert_prefix, 0) == 0) {
            open[xid].ids.push_back(std::stoi(data.substr(insert_prefix.size())));
        } else if (data.rfind("COMMIT", 0) == 0) {
            auto it = open.find(xid);
            if (it == open.end()) continue;
            it->second.xid = xid;
            it->second.end_lsn = parse_lsn(row[0].value_or("0/0"));
            txns.push_back(std::move(it->second));
            open.erase(it);
        }
    }
    return txns;
}

struct Sample {
    uint64_t confirmed;
    off_t output_size;  // read after `confirmed`
};

struct Restart {
    off_t output_size;   // where the new process' output begins
    uint64_t confirmed;  // slot position the new process resumes from
};

struct OutputRow {
    int id;
    off_t line_end;  // offset just past the line's '\n'
    size_t segment;  // 0 before the first restart, k after the k-th
    uint64_t lsn;
    uint64_t commit_lsn;
};

TEST(IntegrationCrash, KillNineLosesNothingAndNeverConfirmsAheadOfOutput) {
    std::mt19937 rng = seeded_rng();

    PgCluster cluster;
    init_stream(cluster);
    PgConnection db(cluster.url());
    db.exec("CREATE TABLE crash_rows (id int PRIMARY KEY, payload text NOT NULL)");
    db.exec(std::string("SELECT pg_create_logical_replication_slot('") + kOracleSlot + "', 'test_decoding')");

    TempDir work;
    ShipperProcess shipper(work.path(), shipper_settings(cluster));
    shipper.start();
    ASSERT_TRUE(wait_until([&] { return slot_state(db).active; }, std::chrono::seconds(30)))
        << shipper_diagnostics(shipper);

    std::atomic<bool> stop_sampling{false};
    std::mutex samples_mutex;
    std::vector<Sample> samples;
    std::string sampler_error;
    std::thread sampler([&] {
        try {
            PgConnection conn(cluster.url());
            while (!stop_sampling) {
                uint64_t confirmed = slot_state(conn).confirmed_flush_lsn;
                off_t size = file_size(shipper.output_path());
                {
                    std::lock_guard<std::mutex> lock(samples_mutex);
                    samples.push_back({confirmed, size});
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(40));
            }
        } catch (const std::exception& e) {
            sampler_error = e.what();
        }
    });
    ScopeExit stop_sampler([&] {
        stop_sampling = true;
        if (sampler.joinable()) sampler.join();
    });

    std::string writer_error;
    std::atomic<int> rows_written{0};
    std::atomic<bool> stop_writing{false};
    const auto write_start = Clock::now();
    std::thread writer([&, writer_seed = rng()] {
        try {
            std::mt19937 wrng(writer_seed);
            PgConnection conn(cluster.url());
            int next = 1;
            while (next <= kRows && !stop_writing) {
                std::this_thread::sleep_until(write_start +
                                              std::chrono::milliseconds(kWriteDuration) * (next - 1) / kRows);
                int count = std::min<int>(std::uniform_int_distribution<int>(1, 19)(wrng), kRows - next + 1);
                std::string sql = "INSERT INTO crash_rows VALUES ";
                for (int i = 0; i < count; ++i) {
                    int length = std::uniform_int_distribution<int>(10, 400)(wrng);
                    sql += (i ? ",(" : "(") + std::to_string(next + i) + ", repeat('x', " +
                           std::to_string(length) + "))";
                }
                conn.exec(sql);
                next += count;
                rows_written = next - 1;
            }
        } catch (const std::exception& e) {
            writer_error = e.what();
        }
    });
    ScopeExit stop_writer([&] {
        stop_writing = true;
        if (writer.joinable()) writer.join();
    });

    // Five kill moments spread over the writing period, at least 1.5 s apart.
    std::vector<double> kill_at;
    for (int i = 0; i < kKills; ++i) {
        double lane = 1.5 + i * 4.5;
        kill_at.push_back(lane + std::uniform_real_distribution<double>(0.0, 3.0)(rng));
    }
    std::vector<Restart> restarts;
    int torn_lines = 0;
    for (double at : kill_at) {
        std::this_thread::sleep_until(
            write_start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(at)));
        shipper.kill_hard();
        // The walsender must notice the dead client before a new one can take the slot.
        bool released = wait_until([&] { return !slot_state(db).active; }, std::chrono::seconds(15));
        ASSERT_TRUE(released) << "slot still active 15 s after SIGKILL";
        uint64_t confirmed = slot_state(db).confirmed_flush_lsn;
        // A process killed mid-write may leave a torn last line; terminate it so the next process starts a
        // fresh line.
        std::string content = read_file(shipper.output_path());
        if (!content.empty() && content.back() != '\n') {
            append_file(shipper.output_path(), "\n");
            ++torn_lines;
        }
        restarts.push_back({file_size(shipper.output_path()), confirmed});
        std::this_thread::sleep_for(
            std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 300)(rng)));
        shipper.start();
    }
    writer.join();
    ASSERT_TRUE(writer_error.empty()) << writer_error;
    ASSERT_EQ(rows_written.load(), kRows);

    auto txns = read_oracle(db);
    ASSERT_FALSE(txns.empty());
    const uint64_t last_end = txns.back().end_lsn;
    bool caught_up = wait_until([&] { return slot_state(db).confirmed_flush_lsn >= last_end; },
                                std::chrono::seconds(90), std::chrono::milliseconds(200));
    stop_sampling = true;
    sampler.join();
    ASSERT_TRUE(sampler_error.empty()) << sampler_error;
    EXPECT_TRUE(caught_up) << "confirmed_flush_lsn never reached the last commit " << format_lsn(last_end)
                           << "\n"
                           << shipper_diagnostics(shipper);
    EXPECT_EQ(shipper.stop(), 0) << "SIGTERM should drain and exit 0\n" << shipper.stderr_tail();
    samples.push_back({slot_state(db).confirmed_flush_lsn, file_size(shipper.output_path())});

    // ---- the output, line by line, with byte offsets and restart segments ----
    std::unordered_map<int, size_t> txn_of_id;
    for (size_t t = 0; t < txns.size(); ++t) {
        for (int id : txns[t].ids) txn_of_id[id] = t;
    }
    size_t oracle_rows = txn_of_id.size();
    ASSERT_EQ(oracle_rows, static_cast<size_t>(kRows)) << "the oracle slot should see every committed row";

    std::string content = read_file(shipper.output_path());
    std::vector<OutputRow> out_rows;
    std::vector<std::string> bad_lines;
    size_t start = 0;
    while (start < content.size()) {
        size_t end = content.find('\n', start);
        if (end == std::string::npos) break;
        std::string line = content.substr(start, end - start);
        size_t segment = 0;
        while (segment < restarts.size() && restarts[segment].output_size <= static_cast<off_t>(start))
            ++segment;
        if (!line.empty()) {
            std::string error;
            auto event = parse_event(line, &error);
            if (!event) {
                bad_lines.push_back(error);
            } else if (event->table == "crash_rows") {
                auto id = event->value("id");
                if (event->action != "I" || !id || event->commit_lsn.empty() || event->lsn.empty()) {
                    bad_lines.push_back("unexpected event: " + line.substr(0, 300));
                } else {
                    out_rows.push_back({std::stoi(*id), static_cast<off_t>(end + 1), segment,
                                        parse_lsn(event->lsn), parse_lsn(event->commit_lsn)});
                }
            }
        }
        start = end + 1;
    }
    EXPECT_LE(bad_lines.size(), static_cast<size_t>(torn_lines))
        << "only lines torn by SIGKILL may be unparseable; first: "
        << (bad_lines.empty() ? "" : bad_lines[0]);

    // ---- at least once: every row arrived ----
    std::unordered_map<int, off_t> first_line_end;
    std::unordered_map<int, size_t> first_segment;
    size_t duplicates = 0;
    size_t duplicates_within_segment = 0;
    size_t duplicates_from_confirmed = 0;
    std::map<uint64_t, std::string> commit_lsn_of_txn;
    size_t commit_lsn_problems = 0;
    std::string first_problem;
    size_t order_problems = 0;
    for (size_t i = 0; i < out_rows.size(); ++i) {
        const auto& row = out_rows[i];
        auto txn_it = txn_of_id.find(row.id);
        if (txn_it == txn_of_id.end()) {
            ++commit_lsn_problems;
            if (first_problem.empty())
                first_problem = "row " + std::to_string(row.id) + " was never committed";
            continue;
        }
        const OracleTxn& txn = txns[txn_it->second];
        if (!(row.lsn < row.commit_lsn && row.commit_lsn <= txn.end_lsn)) {
            ++commit_lsn_problems;
            if (first_problem.empty()) {
                first_problem = "row " + std::to_string(row.id) + ": lsn " + format_lsn(row.lsn) +
                                ", commit_lsn " + format_lsn(row.commit_lsn) + ", commit end " +
                                format_lsn(txn.end_lsn);
            }
        }
        if (i > 0 && out_rows[i - 1].segment == row.segment) {
            auto prev = txn_of_id.find(out_rows[i - 1].id);
            if (prev != txn_of_id.end() && txns[prev->second].end_lsn > txn.end_lsn) ++order_problems;
        }
        auto seen = first_line_end.find(row.id);
        if (seen == first_line_end.end()) {
            first_line_end[row.id] = row.line_end;
            first_segment[row.id] = row.segment;
            continue;
        }
        ++duplicates;
        if (first_segment[row.id] == row.segment) ++duplicates_within_segment;
        // A replay after restart k starts from the position confirmed at that restart: only later commits
        // return.
        if (row.segment > 0 && txn.end_lsn <= restarts[row.segment - 1].confirmed)
            ++duplicates_from_confirmed;
    }
    std::vector<int> missing;
    for (int id = 1; id <= kRows; ++id) {
        if (first_line_end.count(id) == 0) missing.push_back(id);
    }
    std::cout << "output rows " << out_rows.size() << ", distinct " << first_line_end.size()
              << ", duplicates " << duplicates << ", torn lines " << torn_lines << ", samples "
              << samples.size() << ", restarts " << restarts.size() << std::endl;
    EXPECT_TRUE(missing.empty()) << missing.size() << " rows lost, first " << missing.front() << "\n"
                                 << shipper_diagnostics(shipper);
    EXPECT_EQ(duplicates_within_segment, 0u) << "a row was delivered twice by one process";
    EXPECT_EQ(duplicates_from_confirmed, 0u)
        << "rows of transactions confirmed before a restart were delivered again";
    EXPECT_EQ(commit_lsn_problems, 0u) << first_problem;
    EXPECT_EQ(order_problems, 0u) << "rows of one process' output are not in commit order";

    // ---- the checkpoint invariant at every sample ----
    // complete_at[t]: output offset by which transaction t (in commit order) and all before it were fully
    // written.
    std::vector<off_t> complete_at(txns.size());
    off_t running = 0;
    for (size_t t = 0; t < txns.size(); ++t) {
        for (int id : txns[t].ids) {
            auto it = first_line_end.find(id);
            running = std::max(running,
                               it == first_line_end.end() ? std::numeric_limits<off_t>::max() : it->second);
        }
        complete_at[t] = running;
    }
    size_t violations = 0;
    std::string first_violation;
    for (const auto& sample : samples) {
        // Transactions whose commit end is at or below the confirmed position.
        auto confirmed_end =
            std::upper_bound(txns.begin(), txns.end(), sample.confirmed,
                             [](uint64_t lsn, const OracleTxn& txn) { return lsn < txn.end_lsn; });
        if (confirmed_end == txns.begin()) continue;
        size_t last = static_cast<size_t>(confirmed_end - txns.begin()) - 1;
        if (complete_at[last] > sample.output_size) {
            if (violations++ == 0) {
                first_violation =
                    "confirmed_flush_lsn " + format_lsn(sample.confirmed) + " covers transaction xid " +
                    std::to_string(txns[last].xid) + " (commit end " + format_lsn(txns[last].end_lsn) +
                    ") but the output held only " + std::to_string(sample.output_size) +
                    " bytes; its rows were complete at byte " + std::to_string(complete_at[last]);
            }
        }
    }
    EXPECT_EQ(violations, 0u) << "the slot confirmed transactions not yet in the output: " << first_violation;
    EXPECT_GT(samples.size(), 100u) << "too few samples to mean anything";
}

}  // namespace
}  // namespace pgstream_it
