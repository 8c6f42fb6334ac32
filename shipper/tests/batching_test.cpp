#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <unistd.h>
#include <filesystem>
#include <fstream>

#include "checkpoint/watermark.h"
#include "processor/batching.h"
#include "processor/dead_letter.h"
#include "support/process.h"

namespace pgstream {
namespace {

using namespace std::chrono_literals;

class RecordingAcknowledger : public Acknowledger {
  public:
    void acknowledge(const Event& event) override {
        std::lock_guard<std::mutex> lock(mutex);
        acked.push_back(event.checkpoint_token);
    }
    void retain(const Event&, int) override {}
    std::vector<uint64_t> snapshot() {
        std::lock_guard<std::mutex> lock(mutex);
        return acked;
    }
    std::mutex mutex;
    std::vector<uint64_t> acked;
};

EventPtr make_event(uint64_t token, size_t content_bytes = 10) {
    auto event = std::make_shared<Event>();
    event->checkpoint_token = token;
    event->content.assign(content_bytes, 'x');
    return event;
}

size_t content_weight(const Event& event) {
    return event.content.size();
}

struct SentLog {
    std::mutex mutex;
    std::vector<std::vector<uint64_t>> batches;
    void add(const std::vector<EventPtr>& batch) {
        std::vector<uint64_t> tokens;
        for (const auto& event : batch) tokens.push_back(event->checkpoint_token);
        std::lock_guard<std::mutex> lock(mutex);
        batches.push_back(tokens);
    }
    std::vector<std::vector<uint64_t>> snapshot() {
        std::lock_guard<std::mutex> lock(mutex);
        return batches;
    }
};

TEST(MemoryGuard, BlocksUntilBytesAreReleased) {
    MemoryGuard guard(100);
    EXPECT_TRUE(guard.acquire(60));
    EXPECT_FALSE(guard.try_acquire(50));
    auto waiter = std::async(std::launch::async, [&] { return guard.acquire(50); });
    EXPECT_EQ(waiter.wait_for(50ms), std::future_status::timeout) << "must block while over budget";
    guard.release(60);
    EXPECT_TRUE(waiter.get());
    EXPECT_EQ(guard.in_use(), 50u);
    EXPECT_EQ(guard.peak(), 60u);
}

TEST(MemoryGuard, MeasuresTheTimeCallersSpentBlocked) {
    MemoryGuard guard(100);
    auto test_started = std::chrono::steady_clock::now();
    EXPECT_TRUE(guard.acquire(100));
    EXPECT_TRUE(guard.try_acquire(0));
    EXPECT_EQ(guard.blocked_time().count(), 0) << "acquiring without waiting is not blocked time";
    auto waiter = std::async(std::launch::async, [&] { return guard.acquire(10); });
    ASSERT_TRUE(pgstream_it::wait_until([&] { return guard.waiting() == 1; }, 5s));
    guard.release(100);
    EXPECT_TRUE(waiter.get());
    EXPECT_EQ(guard.waiting(), 0u);
    auto blocked = guard.blocked_time();
    EXPECT_GT(blocked.count(), 0);
    EXPECT_LE(blocked, std::chrono::steady_clock::now() - test_started);
}

TEST(MemoryGuard, AdmitsAnOversizedItemAloneAndWakesWaitersOnClose) {
    MemoryGuard guard(100);
    EXPECT_TRUE(guard.acquire(500)) << "an item larger than the budget must not deadlock";
    auto waiter = std::async(std::launch::async, [&] { return guard.acquire(1); });
    EXPECT_EQ(waiter.wait_for(30ms), std::future_status::timeout);
    guard.close();
    EXPECT_FALSE(waiter.get());
}

TEST(BatchSender, CutsBatchesBySizeAndAcknowledgesAfterSending) {
    RecordingAcknowledger ack;
    SentLog sent;
    BatchSettings settings;
    settings.batch_size = 3;
    settings.batch_timeout = 10s;
    BatchSender sender(
        "test", settings, [&](const std::vector<EventPtr>& b) { sent.add(b); }, ack, content_weight);
    for (uint64_t i = 1; i <= 7; ++i) sender.submit(make_event(i));
    sender.flush();
    auto batches = sent.snapshot();
    ASSERT_GE(batches.size(), 3u);
    EXPECT_EQ(batches[0], (std::vector<uint64_t>{1, 2, 3}));
    EXPECT_EQ(batches[1], (std::vector<uint64_t>{4, 5, 6}));
    EXPECT_EQ(ack.snapshot(), (std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7})) << "in order, each exactly once";
    EXPECT_EQ(sender.events_sent(), 7u);
    EXPECT_EQ(sender.memory().in_use(), 0u);
}

TEST(BatchSender, CutsBatchesByBytes) {
    RecordingAcknowledger ack;
    SentLog sent;
    BatchSettings settings;
    settings.batch_size = 100;
    settings.batch_bytes = 25;
    settings.batch_timeout = 10s;
    BatchSender sender(
        "test", settings, [&](const std::vector<EventPtr>& b) { sent.add(b); }, ack, content_weight);
    for (uint64_t i = 1; i <= 5; ++i) sender.submit(make_event(i, 10));
    sender.submit(make_event(6, 100));  // larger than a batch: sent on its own, not dropped
    sender.flush();
    for (const auto& batch : sent.snapshot()) {
        size_t bytes = batch.size() * 10;
        if (batch == std::vector<uint64_t>{6}) continue;
        EXPECT_LE(bytes, 25u);
    }
    EXPECT_EQ(ack.snapshot().size(), 6u);
}

TEST(BatchSender, SendsAPartialBatchAfterTheTimeout) {
    RecordingAcknowledger ack;
    SentLog sent;
    BatchSettings settings;
    settings.batch_size = 100;
    settings.batch_timeout = 50ms;
    BatchSender sender(
        "test", settings, [&](const std::vector<EventPtr>& b) { sent.add(b); }, ack, content_weight);
    auto start = std::chrono::steady_clock::now();
    sender.submit(make_event(1));
    while (ack.snapshot().empty() && std::chrono::steady_clock::now() - start < 5s)
        std::this_thread::sleep_for(5ms);
    auto waited = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(ack.snapshot(), std::vector<uint64_t>{1});
    EXPECT_GE(waited, 45ms);
    EXPECT_LT(waited, 2s);
}

TEST(BatchSender, SendPendingSendsAPartialBatchWithoutWaitingForTheTimeout) {
    RecordingAcknowledger ack;
    SentLog sent;
    BatchSettings settings;
    settings.batch_size = 100;
    settings.batch_timeout = std::chrono::hours(1);
    BatchSender sender(
        "test", settings, [&](const std::vector<EventPtr>& b) { sent.add(b); }, ack, content_weight);
    sender.submit(make_event(1));
    sender.submit(make_event(2));
    std::this_thread::sleep_for(50ms);
    EXPECT_TRUE(ack.snapshot().empty()) << "a partial batch waits for its timeout";
    sender.send_pending();
    auto start = std::chrono::steady_clock::now();
    while (ack.snapshot().size() < 2 && std::chrono::steady_clock::now() - start < 5s)
        std::this_thread::sleep_for(1ms);
    EXPECT_EQ(ack.snapshot(), (std::vector<uint64_t>{1, 2}));
    EXPECT_EQ(sent.snapshot(), (std::vector<std::vector<uint64_t>>{{1, 2}}));
    // Nothing pending: a no-op, and later events batch (and wait) as usual.
    sender.send_pending();
    sender.submit(make_event(3));
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(ack.snapshot().size(), 2u);
}

TEST(BatchSender, MemoryGuardBlocksTheProducerWhileTheOutputIsStuck) {
    RecordingAcknowledger ack;
    std::mutex gate_mutex;
    std::condition_variable gate_cv;
    bool open = false;
    BatchSettings settings;
    settings.batch_size = 1;
    settings.max_queue_bytes = 30;
    settings.batch_bytes = 10;
    BatchSender sender(
        "test", settings,
        [&](const std::vector<EventPtr>&) {
            std::unique_lock<std::mutex> lock(gate_mutex);
            gate_cv.wait(lock, [&] { return open; });
        },
        ack, content_weight);
    std::atomic<int> submitted{0};
    auto producer = std::async(std::launch::async, [&] {
        for (uint64_t i = 1; i <= 10; ++i) {
            sender.submit(make_event(i, 10));
            ++submitted;
        }
    });
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(submitted.load(), 3) << "30 bytes of budget hold three 10-byte events";
    EXPECT_LE(sender.memory().in_use(), 30u);
    {
        std::lock_guard<std::mutex> lock(gate_mutex);
        open = true;
    }
    gate_cv.notify_all();
    producer.get();
    sender.flush();
    EXPECT_EQ(ack.snapshot().size(), 10u);
    EXPECT_LE(sender.memory().peak(), 30u);
}

TEST(BatchSender, RetriesAFailedBatchThenAcknowledgesItOnce) {
    RecordingAcknowledger ack;
    std::atomic<int> attempts{0};
    BatchSettings settings;
    settings.batch_size = 2;
    settings.retry_initial = 1ms;
    BatchSender sender(
        "test", settings,
        [&](const std::vector<EventPtr>&) {
            if (++attempts < 3) throw std::runtime_error("broker unavailable");
        },
        ack, content_weight);
    sender.submit(make_event(1));
    sender.submit(make_event(2));
    sender.flush();
    EXPECT_EQ(attempts.load(), 3);
    EXPECT_EQ(ack.snapshot(), (std::vector<uint64_t>{1, 2}));
    EXPECT_TRUE(sender.fatal_error().empty());
}

TEST(BatchSender, GivesUpAfterMaxAttemptsWithoutAcknowledging) {
    RecordingAcknowledger ack;
    BatchSettings settings;
    settings.batch_size = 1;
    settings.max_send_attempts = 2;
    settings.retry_initial = 1ms;
    std::vector<Delivery> observed;
    settings.on_result = [&](const Event&, const EventResult& result) {
        observed.push_back(result.delivery);
    };
    BatchSender sender(
        "test", settings, [&](const std::vector<EventPtr>&) { throw std::runtime_error("disk full"); }, ack,
        content_weight);
    sender.submit(make_event(1));
    sender.flush();
    EXPECT_TRUE(ack.snapshot().empty()) << "an undelivered event must never be acknowledged";
    EXPECT_EQ(observed, (std::vector<Delivery>{Delivery::kRetry, Delivery::kRetry, Delivery::kFatal}));
    EXPECT_NE(sender.fatal_error().find("disk full"), std::string::npos);
    EXPECT_THROW(sender.submit(make_event(2)), std::runtime_error);
}

TEST(BatchSender, CloseDeliversWhatWasAccepted) {
    RecordingAcknowledger ack;
    BatchSettings settings;
    settings.batch_timeout = 10s;
    auto sender = std::make_unique<BatchSender>(
        "test", settings, [](const std::vector<EventPtr>&) {}, ack, content_weight);
    for (uint64_t i = 1; i <= 5; ++i) sender->submit(make_event(i));
    sender->close();
    EXPECT_EQ(ack.snapshot().size(), 5u);
    EXPECT_THROW(sender->submit(make_event(6)), std::runtime_error);
}

TEST(BatchSender, AStopEndsATenMinuteRetryBackoffPromptly) {
    RecordingAcknowledger ack;
    BatchSettings settings;
    settings.batch_size = 1;
    settings.retry_initial = std::chrono::minutes(10);
    settings.retry_max = std::chrono::minutes(10);
    StopToken stop;
    std::mutex mutex;
    std::condition_variable attempted;
    int attempts = 0;
    BatchSender sender(
        "test output", settings,
        [&](const std::vector<EventPtr>&) {
            {
                std::lock_guard<std::mutex> lock(mutex);
                ++attempts;
            }
            attempted.notify_all();
            throw std::runtime_error("output unavailable");
        },
        ack, content_weight, stop);
    sender.submit(make_event(1));
    {
        std::unique_lock<std::mutex> lock(mutex);
        ASSERT_TRUE(attempted.wait_for(lock, 10s, [&] { return attempts >= 1; }));
    }
    // The sender now waits ten minutes before its next attempt.
    auto requested = std::chrono::steady_clock::now();
    stop.request_stop();
    auto closing = std::async(std::launch::async, [&] { sender.close(); });
    ASSERT_EQ(closing.wait_for(5s), std::future_status::ready) << "the backoff outlived the stop";
    EXPECT_LT(std::chrono::steady_clock::now() - requested, 2s);
    EXPECT_EQ(attempts, 2) << "one last attempt after the stop, then give up";
    EXPECT_TRUE(ack.snapshot().empty()) << "an undelivered event must never be acknowledged";
    EXPECT_NE(sender.fatal_error().find("test output: "), std::string::npos) << sender.fatal_error();
    EXPECT_TRUE(stop.drain_over()) << "a batch given up ends the pipeline's drain";
}

TEST(BatchSender, AStopEndsTheWaitForMemoryWithoutTakingTheEvent) {
    RecordingAcknowledger ack;
    BatchSettings settings;
    settings.max_queue_bytes = 10;
    settings.batch_bytes = 10;
    settings.batch_size = 1;
    StopToken stop;
    struct Gate {
        std::mutex mutex;
        std::condition_variable cv;
        bool opened = false;
        void wait() {
            std::unique_lock<std::mutex> lock(mutex);
            cv.wait(lock, [&] { return opened; });
        }
        void open() {
            {
                std::lock_guard<std::mutex> lock(mutex);
                opened = true;
            }
            cv.notify_all();
        }
    } gate;  // outlives the sender
    BatchSender sender(
        "test output", settings, [&](const std::vector<EventPtr>&) { gate.wait(); }, ack, content_weight,
        stop);
    // Destroyed before the sender, also when an assertion fails: its send must return for close() to join.
    struct OpenOnExit {
        Gate& gate;
        ~OpenOnExit() { gate.open(); }
    } open_on_exit{gate};
    sender.submit(make_event(1, 10));  // fills the budget; its send is held at the gate
    auto blocked = std::async(std::launch::async, [&] { sender.submit(make_event(2, 10)); });
    stop.request_stop();
    ASSERT_EQ(blocked.wait_for(5s), std::future_status::ready) << "the memory guard outlived the stop";
    EXPECT_THROW(blocked.get(), Stopped);
}

// Acknowledgements arrive on the sender's thread: breaking the checkpointer's rules there must become an
// error the source reports, not an exception that terminates the process without a final checkpoint.
TEST(BatchSender, AnAcknowledgementViolationIsReportedNotThrownOnTheSenderThread) {
    Watermark watermark(Lsn(0));
    uint64_t unit = watermark.open_unit();
    watermark.add_pending(unit);  // one event...
    watermark.close_unit(unit, Lsn(100));
    BatchSettings settings;
    settings.batch_size = 2;
    BatchSender sender(
        "test output", settings, [](const std::vector<EventPtr>&) {}, watermark, content_weight);
    sender.submit(make_event(unit));  // ...acknowledged twice
    sender.submit(make_event(unit));
    sender.flush();
    EXPECT_NE(watermark.fatal_error().find("more acknowledgements than pending events"), std::string::npos)
        << watermark.fatal_error();
    EXPECT_EQ(watermark.confirmed(), Lsn(100));
}

// ---- a result per event ----

// Answers each event by token from a script: token -> results of its successive attempts (the last repeats).
struct ScriptedOutput {
    std::map<uint64_t, std::vector<EventResult>> script;
    std::map<uint64_t, int> attempts;
    SentLog sent;
    std::mutex mutex;
    std::vector<EventResult> operator()(const std::vector<EventPtr>& batch) {
        sent.add(batch);
        std::lock_guard<std::mutex> lock(mutex);
        std::vector<EventResult> results;
        for (const auto& event : batch) {
            auto& steps = script[event->checkpoint_token];
            int attempt = attempts[event->checkpoint_token]++;
            results.push_back(steps.empty() ? EventResult::delivered()
                                            : steps[std::min<size_t>(attempt, steps.size() - 1)]);
        }
        return results;
    }
};

class TempFile {
  public:
    TempFile() {
        path_ = (std::filesystem::temp_directory_path() /
                 ("dead-letters-" + std::to_string(getpid()) + "-" + std::to_string(counter_++) + ".jsonl"))
                    .string();
        std::filesystem::remove(path_);
    }
    ~TempFile() { std::filesystem::remove(path_); }
    const std::string& path() const { return path_; }
    std::vector<std::string> lines() const {
        std::ifstream in(path_);
        std::vector<std::string> result;
        for (std::string line; std::getline(in, line);) result.push_back(line);
        return result;
    }

  private:
    static inline int counter_ = 0;
    std::string path_;
};

TEST(BatchSender, ResendsOnlyTheEventsThatAskedForARetry) {
    RecordingAcknowledger ack;
    ScriptedOutput output;
    output.script[2] = {EventResult::retry(429, "es_rejected_execution_exception"), EventResult::delivered()};
    BatchSettings settings;
    settings.batch_size = 3;
    settings.retry_initial = 1ms;
    BatchSender sender("test", settings, std::ref(output), ack, content_weight);
    for (uint64_t token : {1, 2, 3}) sender.submit(make_event(token));
    sender.flush();
    EXPECT_EQ(output.sent.snapshot(), (std::vector<std::vector<uint64_t>>{{1, 2, 3}, {2}}));
    auto acked = ack.snapshot();
    std::sort(acked.begin(), acked.end());
    EXPECT_EQ(acked, (std::vector<uint64_t>{1, 2, 3})) << "each event acknowledged exactly once";
    EXPECT_EQ(sender.counters().retried, 1u);
    EXPECT_EQ(sender.counters().delivered, 3u);
}

TEST(BatchSender, AnEventGivenUpGoesToTheDeadLetterFileAndTheStreamGoesOn) {
    TempFile file;
    DeadLetterFile dead_letters(file.path(), "test output");
    RecordingAcknowledger ack;
    ScriptedOutput output;
    output.script[2] = {EventResult::give_up(400, "mapper_parsing_exception: failed to parse field [f1]")};
    BatchSettings settings;
    settings.batch_size = 3;
    settings.dead_letters = &dead_letters;
    std::vector<std::string> observed;
    settings.on_result = [&](const Event& event, const EventResult& result) {
        observed.push_back(std::to_string(event.checkpoint_token) + ":" + delivery_name(result.delivery));
    };
    BatchSender sender("test", settings, std::ref(output), ack, content_weight);
    for (uint64_t token : {1, 2, 3}) sender.submit(make_event(token));
    sender.flush();
    sender.submit(make_event(4));
    sender.flush();
    EXPECT_TRUE(sender.fatal_error().empty()) << sender.fatal_error();
    EXPECT_EQ(ack.snapshot().size(), 4u) << "the given-up event is acknowledged once it is in the file";
    EXPECT_EQ(sender.counters().dead_lettered, 1u);
    EXPECT_EQ(observed,
              (std::vector<std::string>{"1:delivered", "2:given_up", "3:delivered", "4:delivered"}));
    auto lines = file.lines();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].rfind("{\"output\":\"test output\",\"failed_at\":\"", 0), 0u) << lines[0];
    EXPECT_NE(
        lines[0].find("\"status\":400,\"reason\":\"mapper_parsing_exception: failed to parse field [f1]\","
                      "\"attempts\":1,\"event\":{"),
        std::string::npos)
        << lines[0];
}

TEST(BatchSender, WithoutADeadLetterSinkGivingUpStopsUnacknowledged) {
    RecordingAcknowledger ack;
    ScriptedOutput output;
    output.script[1] = {EventResult::give_up(400, "mapper_parsing_exception")};
    BatchSettings settings;
    settings.batch_size = 1;
    std::vector<Delivery> observed;
    settings.on_result = [&](const Event&, const EventResult& result) {
        observed.push_back(result.delivery);
    };
    BatchSender sender("test", settings, std::ref(output), ack, content_weight);
    sender.submit(make_event(1));
    sender.flush();
    EXPECT_TRUE(ack.snapshot().empty());
    EXPECT_EQ(observed, std::vector<Delivery>{Delivery::kFatal})
        << "metrics must not count it as dead-lettered";
    EXPECT_NE(sender.fatal_error().find("mapper_parsing_exception"), std::string::npos)
        << sender.fatal_error();
}

TEST(BatchSender, EventsStillFailingAfterTheLastAttemptAreDeadLettered) {
    TempFile file;
    DeadLetterFile dead_letters(file.path(), "test output");
    RecordingAcknowledger ack;
    ScriptedOutput output;
    output.script[1] = {EventResult::retry(503, "cluster_block_exception")};
    BatchSettings settings;
    settings.batch_size = 2;
    settings.max_send_attempts = 3;
    settings.retry_initial = 1ms;
    settings.dead_letters = &dead_letters;
    BatchSender sender("test", settings, std::ref(output), ack, content_weight);
    sender.submit(make_event(1));
    sender.submit(make_event(2));
    sender.flush();
    EXPECT_EQ(output.attempts[1], 3);
    EXPECT_EQ(output.attempts[2], 1);
    EXPECT_EQ(ack.snapshot().size(), 2u);
    auto lines = file.lines();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("\"status\":503,\"reason\":\"retries exhausted after 3 attempts: status 503: "
                            "cluster_block_exception\",\"attempts\":3"),
              std::string::npos)
        << lines[0];
}

TEST(BatchSender, AFatalResultStopsTheSenderWithTheEventUnacknowledged) {
    RecordingAcknowledger ack;
    ScriptedOutput output;
    output.script[2] = {EventResult::fatal("index pgstream is closed")};
    BatchSettings settings;
    settings.batch_size = 2;
    BatchSender sender("test", settings, std::ref(output), ack, content_weight);
    sender.submit(make_event(1));
    sender.submit(make_event(2));
    sender.flush();
    EXPECT_EQ(ack.snapshot(), (std::vector<uint64_t>{1}));
    EXPECT_EQ(sender.fatal_error(), "test: index pgstream is closed");
    EXPECT_THROW(sender.submit(make_event(3)), std::runtime_error);
}

TEST(BatchSender, PendingEventsAreLeftForTheOutputToAcknowledge) {
    RecordingAcknowledger ack;
    ScriptedOutput output;
    output.script[1] = {EventResult::pending()};
    BatchSettings settings;
    settings.batch_size = 2;
    BatchSender sender("test", settings, std::ref(output), ack, content_weight);
    sender.submit(make_event(1));
    sender.submit(make_event(2));
    sender.flush();
    EXPECT_EQ(ack.snapshot(), (std::vector<uint64_t>{2}));
    EXPECT_EQ(sender.counters().pending, 1u);
}

// An output that prepares batches ahead: records what it prepared and what each send was given, and can hold
// a send until released, so that tests can see what happens while a batch is being sent.
struct PreparingOutput {
    struct Prepared : PreparedBatch {
        std::vector<uint64_t> tokens;
    };
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<std::vector<uint64_t>> prepared;  // by prepare() call
    std::vector<std::pair<std::vector<uint64_t>, std::vector<uint64_t>>>
        sends;                                      // (batch, its prepared tokens)
    std::set<uint64_t> not_preparable;              // batches holding one: prepare declines
    std::set<uint64_t> held;                        // a send of a batch holding one waits
    std::map<uint64_t, EventResult> first_results;  // results of a token's first send

    static std::vector<uint64_t> tokens_of(const std::vector<EventPtr>& batch) {
        std::vector<uint64_t> tokens;
        for (const auto& event : batch) tokens.push_back(event->checkpoint_token);
        return tokens;
    }
    std::unique_ptr<PreparedBatch> prepare(const std::vector<EventPtr>& batch) {
        std::lock_guard lock(mutex);
        auto tokens = tokens_of(batch);
        prepared.push_back(tokens);
        changed.notify_all();
        for (uint64_t token : tokens)
            if (not_preparable.count(token)) return nullptr;
        auto result = std::make_unique<Prepared>();
        result->tokens = tokens;
        return result;
    }
    std::vector<EventResult> send(const std::vector<EventPtr>& batch, PreparedBatch* made) {
        std::unique_lock lock(mutex);
        auto tokens = tokens_of(batch);
        sends.emplace_back(tokens, made ? static_cast<Prepared*>(made)->tokens : std::vector<uint64_t>{});
        changed.notify_all();
        changed.wait(lock, [&] {
            return std::none_of(tokens.begin(), tokens.end(), [&](uint64_t t) { return held.count(t) > 0; });
        });
        std::vector<EventResult> results;
        for (uint64_t token : tokens) {
            auto scripted = first_results.find(token);
            if (scripted == first_results.end()) {
                results.push_back(EventResult::delivered());
            } else {
                results.push_back(scripted->second);
                first_results.erase(scripted);
            }
        }
        return results;
    }
    void release(uint64_t token) {
        std::lock_guard lock(mutex);
        held.erase(token);
        changed.notify_all();
    }
    // A sender preparing with this output: batches of `batch_size`, cut by size only, retried after 1 ms.
    std::unique_ptr<BatchSender> make_sender(size_t batch_size, Acknowledger& ack) {
        BatchSettings settings;
        settings.batch_size = batch_size;
        settings.batch_timeout = 10s;
        settings.retry_initial = 1ms;
        return std::make_unique<BatchSender>(
            "test", settings, [this](const auto& b) { return prepare(b); },
            [this](const auto& b, PreparedBatch* p) { return send(b, p); }, ack, content_weight);
    }
    // Waits (5 s at most) until `done` holds; false if it never did.
    template <typename Predicate>
    bool wait_until(Predicate done, std::chrono::milliseconds timeout = 5s) {
        std::unique_lock lock(mutex);
        return changed.wait_for(lock, timeout, done);
    }
};

TEST(BatchSender, PreparesTheNextBatchWhileTheCurrentOneIsSent) {
    RecordingAcknowledger ack;
    PreparingOutput output;
    output.held = {1};  // the first batch's send waits
    auto sender_owner = output.make_sender(2, ack);
    BatchSender& sender = *sender_owner;
    for (uint64_t token = 1; token <= 4; ++token) sender.submit(make_event(token));
    ASSERT_TRUE(output.wait_until([&] { return output.prepared.size() == 2; }))
        << "the second batch is prepared while the first one's send waits";
    EXPECT_TRUE(ack.snapshot().empty()) << "nothing acknowledged before its send returned";
    output.release(1);
    sender.flush();
    using Tokens = std::vector<uint64_t>;
    EXPECT_EQ(output.prepared, (std::vector<Tokens>{{1, 2}, {3, 4}}));
    ASSERT_EQ(output.sends.size(), 2u);
    EXPECT_EQ(output.sends[0], std::make_pair(Tokens{1, 2}, Tokens{1, 2}))
        << "each send gets its own batch's";
    EXPECT_EQ(output.sends[1], std::make_pair(Tokens{3, 4}, Tokens{3, 4}));
    EXPECT_EQ(ack.snapshot(), (Tokens{1, 2, 3, 4})) << "in order, each exactly once";
    EXPECT_EQ(sender.memory().in_use(), 0u);
}

TEST(BatchSender, ABatchThatCannotBePreparedAheadIsSentBeforeTheNextIsPrepared) {
    RecordingAcknowledger ack;
    PreparingOutput output;
    output.not_preparable = {3};  // a schema change, say: what follows depends on its outcome
    output.held = {3};
    auto sender_owner = output.make_sender(2, ack);
    BatchSender& sender = *sender_owner;
    for (uint64_t token = 1; token <= 6; ++token) sender.submit(make_event(token));
    ASSERT_TRUE(output.wait_until([&] { return output.sends.size() == 2; }))
        << "the second batch is being sent";
    EXPECT_FALSE(output.wait_until([&] { return output.prepared.size() > 2; }, 200ms))
        << "the third batch must not be prepared before the second, unprepared, one is sent";
    output.release(3);
    sender.flush();
    using Tokens = std::vector<uint64_t>;
    EXPECT_EQ(output.prepared, (std::vector<Tokens>{{1, 2}, {3, 4}, {5, 6}}));
    ASSERT_EQ(output.sends.size(), 3u);
    EXPECT_EQ(output.sends[1], std::make_pair(Tokens{3, 4}, Tokens{})) << "sent without anything prepared";
    EXPECT_EQ(output.sends[2], std::make_pair(Tokens{5, 6}, Tokens{5, 6}));
    EXPECT_EQ(ack.snapshot(), (Tokens{1, 2, 3, 4, 5, 6}));
}

TEST(BatchSender, AResendOfEventsThatAskedForARetryGetsNothingPrepared) {
    RecordingAcknowledger ack;
    PreparingOutput output;
    output.first_results[2] = EventResult::retry(429, "es_rejected_execution_exception");
    auto sender_owner = output.make_sender(3, ack);
    BatchSender& sender = *sender_owner;
    for (uint64_t token = 1; token <= 3; ++token) sender.submit(make_event(token));
    sender.flush();
    using Tokens = std::vector<uint64_t>;
    ASSERT_EQ(output.sends.size(), 2u);
    EXPECT_EQ(output.sends[0], std::make_pair(Tokens{1, 2, 3}, Tokens{1, 2, 3}));
    EXPECT_EQ(output.sends[1], std::make_pair(Tokens{2}, Tokens{}))
        << "what was prepared is the whole batch's";
    auto acked = ack.snapshot();
    std::sort(acked.begin(), acked.end());
    EXPECT_EQ(acked, (Tokens{1, 2, 3}));
}

TEST(BatchSender, AFatalResultWhileTheNextBatchIsPreparedLeavesEverythingAfterItUnacknowledged) {
    RecordingAcknowledger ack;
    PreparingOutput output;
    output.first_results[3] = EventResult::fatal("index pgstream is closed");
    output.held = {3};
    auto sender_owner = output.make_sender(2, ack);
    BatchSender& sender = *sender_owner;
    for (uint64_t token = 1; token <= 7; ++token) sender.submit(make_event(token));
    ASSERT_TRUE(output.wait_until([&] { return output.prepared.size() >= 3; }))
        << "the third batch is prepared while the second one's send waits";
    output.release(3);
    sender.flush();
    EXPECT_EQ(ack.snapshot(), (std::vector<uint64_t>{1, 2}));
    EXPECT_EQ(sender.fatal_error(), "test: index pgstream is closed");
    EXPECT_EQ(output.sends.size(), 2u) << "nothing is sent after the failed batch";
    EXPECT_THROW(sender.submit(make_event(8)), std::runtime_error);
    sender.close();
    EXPECT_EQ(sender.memory().in_use(), 0u) << "the prepared and queued events are dropped, not held";
}

TEST(BatchSender, AStopDuringRetriesLeavesEventsUnacknowledgedNotDeadLettered) {
    TempFile file;
    DeadLetterFile dead_letters(file.path(), "test output");
    RecordingAcknowledger ack;
    StopToken stop;
    std::atomic<int> sends{0};
    BatchSettings settings;
    settings.batch_size = 1;
    settings.retry_initial = 10min;
    settings.dead_letters = &dead_letters;
    BatchSender sender(
        "test", settings,
        [&](const std::vector<EventPtr>& batch) {
            ++sends;
            return std::vector<EventResult>(batch.size(), EventResult::retry(0, "connection refused"));
        },
        ack, content_weight, stop);
    sender.submit(make_event(1));
    ASSERT_TRUE(pgstream_it::wait_until([&] { return sends.load() >= 1; }, 5s));
    stop.request_stop();
    sender.flush();
    EXPECT_TRUE(ack.snapshot().empty());
    EXPECT_TRUE(file.lines().empty()) << "a stop is no reason to give up on an event";
}

}  // namespace
}  // namespace pgstream
