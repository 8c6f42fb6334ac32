// The pipeline's stop: waits end at the stop (or, for deliveries, at the end of the drain), from any thread,
// without a lost wakeup; and the retry loops that use it end promptly.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <thread>

#include "processor/translator/schema_log.h"
#include "support/process.h"
#include "util/stop_token.h"

namespace pgstream {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Runs `wait` on a thread, requests the stop from this one, and returns how long the wait outlived the
// request (it must end promptly).
template <typename Wait>
Clock::duration time_after_stop(StopToken& stop, Wait wait,
                                void (StopToken::*request)() = &StopToken::request_stop) {
    auto waiting = std::async(std::launch::async, wait);
    auto requested = Clock::now();
    (stop.*request)();
    EXPECT_EQ(waiting.wait_for(5s), std::future_status::ready) << "the wait did not end after the stop";
    waiting.get();
    return Clock::now() - requested;
}

TEST(StopToken, StopEndsAConditionWaitWhosePredicateNeverHolds) {
    for (int round = 0; round < 200; ++round) {  // many rounds: a lost wakeup would hang one of them
        StopToken stop;
        std::mutex mutex;
        std::condition_variable cv;
        time_after_stop(stop, [&] {
            std::unique_lock<std::mutex> lock(mutex);
            EXPECT_FALSE(stop.wait(lock, cv, [] { return false; }));
            EXPECT_TRUE(lock.owns_lock());
        });
    }
}

TEST(StopToken, SleepEndsAtTheStop) {
    StopToken stop;
    auto after = time_after_stop(stop, [&] { EXPECT_FALSE(stop.sleep_for(std::chrono::minutes(10))); });
    EXPECT_LT(after, 2s);
    EXPECT_FALSE(stop.sleep_for(10min)) << "a stopped token does not sleep";
    StopToken running;
    EXPECT_TRUE(running.sleep_for(1ms));
}

TEST(StopToken, DeliveryWaitsOutliveTheStopUntilTheDrainDeadline) {
    StopToken stop(300ms);
    std::mutex mutex;
    std::condition_variable cv;
    auto after = time_after_stop(stop, [&] {
        std::unique_lock<std::mutex> lock(mutex);
        EXPECT_FALSE(stop.wait_for_delivery(lock, cv, [] { return false; }));
    });
    EXPECT_GE(after, 250ms) << "a delivery wait must go on while the drain lasts";
    EXPECT_LT(after, 3s);
    EXPECT_TRUE(stop.drain_over());
}

TEST(StopToken, EndDrainEndsDeliveryWaitsAtOnce) {
    StopToken stop;  // no drain limit: only end_drain() ends them
    std::mutex mutex;
    std::condition_variable cv;
    auto after = time_after_stop(
        stop,
        [&] {
            std::unique_lock<std::mutex> lock(mutex);
            EXPECT_FALSE(stop.wait_for_delivery(lock, cv, [] { return false; }));
        },
        &StopToken::end_drain);
    EXPECT_LT(after, 2s);
    EXPECT_TRUE(stop.stop_requested());
}

TEST(StopToken, AFullPipeIsWaitedForUntilTheDrainIsOver) {
    int fds[2];
    ASSERT_EQ(pipe2(fds, O_NONBLOCK), 0);
    std::string chunk(4096, 'x');
    while (write(fds[1], chunk.data(), chunk.size()) > 0) {
    }
    StopToken stop(200ms);
    auto after = time_after_stop(stop, [&] { EXPECT_FALSE(stop.wait_ready_for_delivery(fds[1], POLLOUT)); });
    EXPECT_GE(after, 150ms);
    EXPECT_LT(after, 3s);
    StopToken other;
    char buffer[65536];
    ASSERT_GT(read(fds[0], buffer, sizeof buffer), 0);
    EXPECT_TRUE(other.wait_ready_for_delivery(fds[1], POLLOUT)) << "room again: ready";
    close(fds[0]);
    close(fds[1]);
}

// Two producers and a consumer on a queue with room for one item, as the snapshot readers and the hand-over
// share theirs: a producer woken with room may find it taken again by the other producer before it has its
// lock back. That must send it back to waiting; a wait returns false only at the stop (it once returned false
// there, and a snapshot reader dropped its range unfinished while the snapshot waited for it forever).
TEST(StopToken, AWaitWhosePredicateIsUndoneBeforeItRelocksKeepsWaiting) {
    StopToken stop;
    std::mutex mutex;
    std::condition_variable not_full, not_empty;
    int queued = 0;
    constexpr int kPerProducer = 20000;
    std::atomic<int> gave_up{0};
    auto produce = [&] {
        for (int i = 0; i < kPerProducer; ++i) {
            std::unique_lock<std::mutex> lock(mutex);
            if (!stop.wait(lock, not_full, [&] { return queued == 0; })) {
                ++gave_up;
                return;
            }
            ++queued;
            lock.unlock();
            not_empty.notify_one();
        }
    };
    std::thread first(produce), second(produce);
    int consumed = 0;
    while (consumed < 2 * kPerProducer && gave_up == 0) {
        std::unique_lock<std::mutex> lock(mutex);
        if (!stop.wait_for_delivery(
                lock, not_empty, [&] { return queued > 0 || gave_up > 0; }, Clock::now() + 10s))
            break;
        if (queued == 0) break;
        --queued;
        ++consumed;
        lock.unlock();
        // Both producers may wait: wake them both, so that one of them finds the room taken.
        not_full.notify_all();
    }
    stop.request_stop();
    first.join();
    second.join();
    EXPECT_EQ(gave_up.load(), 0) << "a producer's wait returned false without a stop";
    EXPECT_EQ(consumed, 2 * kPerProducer);
}

TEST(PostgresSchemaLogStore, AStopEndsTheRetriesForAnUnreachableStore) {
    StopToken stop;
    PostgresSchemaLogStore store(
        "postgres://postgres@127.0.0.1:" + std::to_string(pgstream_it::refused_port()) + "/postgres", stop);
    // Without the stop the store retries for about two minutes.
    auto after =
        time_after_stop(stop, [&] { EXPECT_THROW(store.versions_from("public", Lsn(1), 16), Stopped); });
    EXPECT_LT(after, 2s);
}

}  // namespace
}  // namespace pgstream
