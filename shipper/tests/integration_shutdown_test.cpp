// Shutdown of `pgstream run` when something it waits for does not come back: stdout piped into a process that
// stopped reading, an output that fails for good (a consumer that went away, a full disk), a schema log store
// that is down. Every wait is bounded by PGSTREAM_SHUTDOWN_DRAIN_TIMEOUT (or ends at the stop), the exit code
// says whether everything the outputs accepted was delivered, and the slot never confirms a row that was not.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>

#include "support/stream_fixture.h"

namespace pgstream_it {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// One cluster for the whole suite: each test streams its own table through its own slot.
class IntegrationShutdown : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { cluster_ = new PgCluster(); }
    static void TearDownTestSuite() {
        delete cluster_;
        cluster_ = nullptr;
    }

    // A slot and a table of (id, payload) for this test.
    Settings prepare(const std::string& name) {
        init_stream(*cluster_, name + "_slot");
        cluster_->exec("CREATE TABLE " + name + " (id int PRIMARY KEY, payload text NOT NULL)");
        return shipper_settings(*cluster_, name + "_slot");
    }

    void wait_until_streaming(ShipperProcess& shipper, const std::string& slot) {
        PgConnection db(cluster_->url());
        ASSERT_TRUE(wait_until([&] { return slot_state(db, slot).active; }, 30s))
            << shipper_diagnostics(shipper);
    }

    // Ids of `table` that the slot still holds (not confirmed): the server sends them again on the next
    // start.
    std::set<int64_t> unconfirmed_ids(const std::string& slot, const std::string& table) {
        std::set<int64_t> ids;
        for (const auto& row : cluster_->query("SELECT data FROM pg_logical_slot_peek_changes('" + slot +
                                               "', NULL, NULL, 'format-version', '2')")) {
            const std::string data = row[0].value_or("");
            if (data.find("\"table\":\"" + table + "\"") == std::string::npos) continue;
            if (auto id = int_column(data, "id")) ids.insert(*id);
        }
        return ids;
    }

    static PgCluster* cluster_;
};

PgCluster* IntegrationShutdown::cluster_ = nullptr;

// Ids of `table` in complete JSON lines.
std::set<int64_t> delivered_ids(const std::string& output, const std::string& table) {
    std::set<int64_t> ids;
    size_t start = 0;
    for (size_t end; (end = output.find('\n', start)) != std::string::npos; start = end + 1) {
        std::string line = output.substr(start, end - start);
        if (line.find("\"" + table + "\"") == std::string::npos) continue;
        if (auto id = int_column(line, "id")) ids.insert(*id);
    }
    return ids;
}

// Everything left in a pipe whose writer has exited.
std::string read_to_end(int fd) {
    std::string text;
    char buffer[1 << 16];
    for (ssize_t n; (n = read(fd, buffer, sizeof buffer)) > 0;) text.append(buffer, size_t(n));
    return text;
}

// The line `pgstream run` prints for a fatal error ("pgstream: ..."), "" if there is none.
std::string error_line(const ShipperProcess& shipper) {
    std::string error;
    std::string text = shipper.stderr_text();
    size_t start = 0;
    for (size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
        if (text.compare(start, 10, "pgstream: ") == 0) error = text.substr(start, end - start);
    return error;
}

double seconds(Clock::duration duration) {
    return std::chrono::duration<double>(duration).count();
}

// Waits for the exit (SIGKILL on timeout); the exit code (-1 when killed by a signal), or nullopt on timeout.
std::optional<int> exit_within(ShipperProcess& shipper, Clock::time_point since,
                               std::chrono::milliseconds timeout, const std::string& since_what) {
    auto status = shipper.wait_exit(
        timeout - std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since));
    if (!status) {
        shipper.kill_hard();
        return std::nullopt;
    }
    std::cout << "exited " << seconds(Clock::now() - since) << " s after " << since_what << std::endl;
    return WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
}

TEST_F(IntegrationShutdown,
       SigtermWhileStdoutIsBlockedExitsWithinTheDrainTimeoutConfirmingOnlyWhatWasDelivered) {
    constexpr auto kDrainTimeout = 3s;
    constexpr int kTransactions = 20;
    constexpr int kRowsPerTransaction = 500;
    Settings settings = prepare("blocked_rows");
    settings["PGSTREAM_SHUTDOWN_DRAIN_TIMEOUT"] = "3s";
    // The listener blocks on the writer's memory guard too, not only the writer on the pipe.
    settings["PGSTREAM_STDOUT_WRITER_MAX_QUEUE_BYTES"] = "1MiB";
    settings["PGSTREAM_STDOUT_WRITER_BATCH_BYTES"] = "256KiB";
    TempDir work;
    ShipperProcess shipper(work.path(), settings);
    shipper.set_output(ShipperProcess::Output::kPipe);
    shipper.start();
    wait_until_streaming(shipper, "blocked_rows_slot");

    PgConnection db(cluster_->url());
    for (int t = 0; t < kTransactions; ++t) {
        int first = t * kRowsPerTransaction + 1;
        db.exec("INSERT INTO blocked_rows SELECT g, repeat('b', 200) FROM generate_series(" +
                std::to_string(first) + ", " + std::to_string(first + kRowsPerTransaction - 1) + ") g");
    }
    // Nobody reads: the pipe fills up and the writer waits for room.
    const int capacity = fcntl(shipper.pipe_fd(), F_GETPIPE_SZ);
    ASSERT_GT(capacity, 0);
    auto buffered = [&] {
        int bytes = 0;
        return ioctl(shipper.pipe_fd(), FIONREAD, &bytes) == 0 ? bytes : -1;
    };
    ASSERT_TRUE(wait_until([&] { return buffered() >= capacity - 4096 || !shipper.running(); }, 30s) &&
                shipper.running())
        << buffered() << " of " << capacity << " bytes in the pipe\n"
        << shipper.stderr_tail();

    const auto signalled = Clock::now();
    shipper.signal(SIGTERM);
    auto exit_code = exit_within(shipper, signalled, kDrainTimeout + 1s, "SIGTERM");
    ASSERT_TRUE(exit_code) << "still running " << seconds(kDrainTimeout + 1s)
                           << " s after SIGTERM with PGSTREAM_SHUTDOWN_DRAIN_TIMEOUT=3s\n"
                           << shipper.stderr_tail();
    EXPECT_EQ(*exit_code, 1) << "undelivered changes must fail the run\n" << shipper.stderr_tail();
    EXPECT_NE(error_line(shipper).find("PGSTREAM_SHUTDOWN_DRAIN_TIMEOUT"), std::string::npos)
        << shipper.stderr_tail();

    // What reached the pipe is delivered; everything else must still be in the slot.
    const std::set<int64_t> delivered = delivered_ids(read_to_end(shipper.pipe_fd()), "blocked_rows");
    const std::set<int64_t> unconfirmed = unconfirmed_ids("blocked_rows_slot", "blocked_rows");
    const int rows = kTransactions * kRowsPerTransaction;
    EXPECT_LT(delivered.size(), size_t(rows)) << "the stall was not real";
    int lost = 0;
    for (int64_t id = 1; id <= rows; ++id)
        if (delivered.count(id) == 0 && unconfirmed.count(id) == 0) ++lost;
    EXPECT_EQ(lost, 0) << "rows neither delivered nor left in the slot (" << delivered.size()
                       << " delivered, " << unconfirmed.size() << " unconfirmed)";
}

// An output that fails for good ends the run at once (not after the drain timeout) with an error that names
// it.
void expect_prompt_failure_naming_the_stdout_writer(ShipperProcess& shipper, PgCluster& cluster,
                                                    const std::string& table) {
    const auto inserted = Clock::now();
    cluster.exec("INSERT INTO " + table + " VALUES (1, 'lost?')");
    auto exit_code = exit_within(shipper, inserted, 10s, "the insert");
    ASSERT_TRUE(exit_code) << "still running 10 s after the output failed (drain timeout 30 s)\n"
                           << shipper.stderr_tail();
    EXPECT_EQ(*exit_code, 1) << shipper.stderr_tail();
    const std::string error = error_line(shipper);
    EXPECT_EQ(error.rfind("pgstream: stdout writer: ", 0), 0u) << error << "\n" << shipper.stderr_tail();
    EXPECT_EQ(error.find("translator:"), std::string::npos) << error;
}

TEST_F(IntegrationShutdown, StdoutOnAFullDeviceEndsTheRunPromptlyNamingTheOutput) {
    Settings settings = prepare("full_rows");
    settings["PGSTREAM_STDOUT_WRITER_FILE"] = "/dev/full";
    TempDir work;
    ShipperProcess shipper(work.path(), settings);
    shipper.start();
    wait_until_streaming(shipper, "full_rows_slot");
    expect_prompt_failure_naming_the_stdout_writer(shipper, *cluster_, "full_rows");
    EXPECT_EQ(unconfirmed_ids("full_rows_slot", "full_rows"), std::set<int64_t>{1})
        << "the undelivered row must stay in the slot";
}

TEST_F(IntegrationShutdown, StdoutIntoAClosedPipeEndsTheRunPromptlyNamingTheOutput) {
    Settings settings = prepare("epipe_rows");
    TempDir work;
    ShipperProcess shipper(work.path(), settings);
    shipper.set_output(ShipperProcess::Output::kPipe);
    shipper.start();
    wait_until_streaming(shipper, "epipe_rows_slot");
    shipper.close_pipe();  // the consumer went away
    expect_prompt_failure_naming_the_stdout_writer(shipper, *cluster_, "epipe_rows");
    EXPECT_EQ(unconfirmed_ids("epipe_rows_slot", "epipe_rows"), std::set<int64_t>{1})
        << "the undelivered row must stay in the slot";
}

TEST_F(IntegrationShutdown, SigtermWhileTheSchemaLogStoreIsUnreachableExitsPromptly) {
    Settings settings = prepare("storeless_rows");
    settings["PGSTREAM_TRANSLATOR_STORE_POSTGRES_URL"] =
        "postgres://postgres@127.0.0.1:" + std::to_string(refused_port()) + "/postgres";
    TempDir work;
    ShipperProcess shipper(work.path(), settings);
    shipper.start();
    wait_until_streaming(shipper, "storeless_rows_slot");
    cluster_->exec("INSERT INTO storeless_rows VALUES (1, 'waits for its schema')");
    // The translator retries the store for about two minutes before it gives up.
    ASSERT_TRUE(wait_until(
        [&] { return shipper.stderr_text().find("schema log store unavailable") != std::string::npos; }, 30s))
        << shipper.stderr_tail();

    const auto signalled = Clock::now();
    shipper.signal(SIGTERM);
    auto exit_code = exit_within(shipper, signalled, 3s, "SIGTERM");
    ASSERT_TRUE(exit_code) << "still running 3 s after SIGTERM while retrying the schema log store\n"
                           << shipper.stderr_tail();
    // A clean stop: the outputs accepted nothing they did not deliver; the row is sent again next time.
    EXPECT_EQ(*exit_code, 0) << shipper.stderr_tail();
    EXPECT_EQ(unconfirmed_ids("storeless_rows_slot", "storeless_rows"), std::set<int64_t>{1});
}

}  // namespace
}  // namespace pgstream_it
