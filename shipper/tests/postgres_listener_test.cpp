// The PostgreSQL source (listener + watermark checkpointer) through the library API, against a real cluster:
// the slot's confirmed position follows acknowledgements, never runs ahead of them, advances while idle,
// and a terminated walsender is replaced without duplicating delivered transactions.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <thread>

#include "pipeline/pipeline.h"
#include "processor/stdout/stdout_writer.h"
#include "support/pg_cluster.h"
#include "support/process.h"

namespace pgstream {
namespace {

using namespace std::chrono_literals;
using pgstream_it::PgCluster;

// An output that holds events until the test acknowledges them.
class HoldingOutput : public Processor {
  public:
    explicit HoldingOutput(Acknowledger& acknowledger) : acknowledger_(acknowledger) {}
    std::string name() const override { return "holding output"; }
    void process(EventPtr event) override {
        std::lock_guard<std::mutex> lock(mutex_);
        events_.push_back(event);
        if (auto_ack_) acknowledger_.acknowledge(*event);
        else held_.push_back(event);
        changed_.notify_all();
    }
    bool wait_for(size_t count, std::chrono::seconds timeout = 30s) {
        std::unique_lock<std::mutex> lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return events_.size() >= count; });
    }
    std::vector<EventPtr> events() {
        std::lock_guard<std::mutex> lock(mutex_);
        return events_;
    }
    void ack(size_t index) {
        std::lock_guard<std::mutex> lock(mutex_);
        EventPtr event = events_.at(index);
        held_.erase(std::remove(held_.begin(), held_.end(), event), held_.end());
        acknowledger_.acknowledge(*event);
    }
    void ack_everything_from_now_on() {
        std::lock_guard<std::mutex> lock(mutex_);
        auto_ack_ = true;
        for (auto& event : held_) acknowledger_.acknowledge(*event);
        held_.clear();
    }

  private:
    Acknowledger& acknowledger_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<EventPtr> events_;
    std::vector<EventPtr> held_;
    bool auto_ack_ = false;
};

Lsn confirmed_flush(PgCluster& cluster, const std::string& slot) {
    return *Lsn::parse(
        cluster.scalar_text("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '" + slot + "'"));
}

template <typename Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout = 15s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (predicate()) return true;
        std::this_thread::sleep_for(50ms);
    }
    return predicate();
}

class PostgresSourceTest : public ::testing::Test {
  protected:
    void SetUp() override {
        cluster_.exec("CREATE TABLE items (id int PRIMARY KEY, note text)");
        cluster_.exec("SELECT pg_create_logical_replication_slot('lib_slot', '" + pgstream_it::stream_plugin() + "')");
        PostgresListenerSettings settings;
        settings.url = cluster_.url();
        settings.slot_name = "lib_slot";
        settings.status_interval = 100ms;
        settings.reconnect_initial = 100ms;
        source_ = std::make_unique<PostgresSource>(settings);
        output_ = std::make_unique<HoldingOutput>(source_->acknowledger());
        runner_ = std::thread([this] { error_ = source_->run(*output_); });
        ASSERT_TRUE(eventually([&] {
            return cluster_.scalar_text("SELECT active FROM pg_replication_slots WHERE slot_name = 'lib_slot'") == "t";
        }));
    }
    void TearDown() override {
        if (output_) output_->ack_everything_from_now_on();
        source_->stop();
        if (runner_.joinable()) runner_.join();
        EXPECT_EQ(error_, "");
    }

    PgCluster cluster_;
    std::unique_ptr<PostgresSource> source_;
    std::unique_ptr<HoldingOutput> output_;
    std::thread runner_;
    std::string error_;
};

TEST_F(PostgresSourceTest, ConfirmedPositionNeverPassesAnUnacknowledgedTransaction) {
    Lsn start = confirmed_flush(cluster_, "lib_slot");
    cluster_.exec("INSERT INTO items VALUES (1, 'first')");
    cluster_.exec("INSERT INTO items VALUES (2, 'second'), (3, 'third')");
    ASSERT_TRUE(output_->wait_for(3));
    auto events = output_->events();
    Lsn first_end = events[0]->commit_lsn;
    Lsn second_end = events[1]->commit_lsn;
    ASSERT_EQ(events[2]->commit_lsn, second_end) << "one transaction, one end position";
    ASSERT_LT(first_end, second_end);

    // The later transaction is delivered first: nothing may be confirmed past the first one.
    output_->ack(1);
    output_->ack(2);
    std::this_thread::sleep_for(600ms);  // several status intervals
    EXPECT_LT(confirmed_flush(cluster_, "lib_slot"), first_end);
    EXPECT_GE(confirmed_flush(cluster_, "lib_slot"), start);

    output_->ack(0);
    EXPECT_TRUE(eventually([&] { return confirmed_flush(cluster_, "lib_slot") >= second_end; }))
        << "confirmed " << confirmed_flush(cluster_, "lib_slot").str() << ", expected " << second_end.str();
}

TEST_F(PostgresSourceTest, IdleSlotAdvancesWithTheServerPosition) {
    output_->ack_everything_from_now_on();
    cluster_.exec("INSERT INTO items VALUES (1, 'x')");
    ASSERT_TRUE(output_->wait_for(1));
    // WAL that decodes to nothing for this slot (another database) must not leave the slot behind.
    cluster_.exec("CREATE DATABASE other");
    pgstream_it::PgConnection other(cluster_.url_for_database("other"));
    other.exec("CREATE TABLE filler AS SELECT g FROM generate_series(1, 20000) g");
    Lsn target = *Lsn::parse(cluster_.scalar_text("SELECT pg_current_wal_lsn()"));
    EXPECT_TRUE(eventually([&] { return confirmed_flush(cluster_, "lib_slot") >= target; }, 30s))
        << "confirmed " << confirmed_flush(cluster_, "lib_slot").str() << ", server at " << target.str();
}

TEST_F(PostgresSourceTest, ReconnectsAfterTheWalsenderIsTerminatedWithoutDuplicates) {
    for (int i = 1; i <= 5; ++i) cluster_.exec("INSERT INTO items VALUES (" + std::to_string(i) + ", 'before')");
    ASSERT_TRUE(output_->wait_for(5));
    // Nothing is acknowledged yet, so the slot is behind and the server sends rows 1-5 again after the
    // reconnect; they are still in flight here and must not be delivered twice.
    Lsn before = confirmed_flush(cluster_, "lib_slot");
    ASSERT_LT(before, output_->events()[0]->commit_lsn);
    cluster_.exec("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'lib_slot'");
    for (int i = 6; i <= 10; ++i) cluster_.exec("INSERT INTO items VALUES (" + std::to_string(i) + ", 'after')");
    ASSERT_TRUE(output_->wait_for(10)) << "events after the reconnect never arrived";
    output_->ack_everything_from_now_on();
    Lsn last_end = output_->events().back()->commit_lsn;
    EXPECT_TRUE(eventually([&] { return confirmed_flush(cluster_, "lib_slot") >= last_end; }));
    std::map<std::string, int> seen;
    for (const auto& event : output_->events())
        if (event->table == "items") ++seen[event->columns.at(0).value.text];
    for (int i = 1; i <= 10; ++i) EXPECT_EQ(seen[std::to_string(i)], 1) << "row " << i;
}

// Forwards every acknowledgement twice: a broken output, acknowledging on its own thread.
class TwiceAcknowledger : public Acknowledger {
  public:
    explicit TwiceAcknowledger(Acknowledger& checkpointer) : checkpointer_(checkpointer) {}
    void acknowledge(const Event& event) override {
        checkpointer_.acknowledge(event);
        checkpointer_.acknowledge(event);
    }
    void retain(const Event& event, int additional) override { checkpointer_.retain(event, additional); }

  private:
    Acknowledger& checkpointer_;
};

TEST(PostgresSourceErrors, AnAcknowledgementViolationOnAnOutputThreadEndsTheRunWithAnError) {
    PgCluster cluster;
    cluster.exec("CREATE TABLE items (id int PRIMARY KEY, note text)");
    cluster.exec("SELECT pg_create_logical_replication_slot('lib_slot', '" + pgstream_it::stream_plugin() +
                 "')");
    PostgresListenerSettings settings;
    settings.url = cluster.url();
    settings.slot_name = "lib_slot";
    settings.status_interval = 100ms;
    PostgresSource source(settings);
    TwiceAcknowledger twice(source.acknowledger());
    pgstream_it::TempDir work;
    StdoutWriterSettings output;
    output.file = work.file("out.jsonl");
    StdoutWriter writer(output, twice);
    std::mutex mutex;
    std::condition_variable finished;
    bool done = false;
    std::string error;
    std::thread runner([&] {
        std::string result = source.run(writer);
        {
            std::lock_guard<std::mutex> lock(mutex);
            error = result;
            done = true;
        }
        finished.notify_all();
    });
    pgstream_it::ScopeExit stop_runner([&] {
        source.stop();
        runner.join();
    });
    ASSERT_TRUE(eventually([&] {
        return cluster.scalar_text("SELECT active FROM pg_replication_slots WHERE slot_name = 'lib_slot'") ==
               "t";
    }));
    cluster.exec("INSERT INTO items VALUES (1, 'acknowledged twice')");
    // The run ends by itself: nobody stops it.
    std::unique_lock<std::mutex> lock(mutex);
    ASSERT_TRUE(finished.wait_for(lock, 15s, [&] { return done; })) << "the violation did not end the run";
    EXPECT_NE(error.find("more acknowledgements than pending events"), std::string::npos) << error;
}

}  // namespace
}  // namespace pgstream
