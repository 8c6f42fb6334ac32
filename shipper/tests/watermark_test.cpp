#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "checkpoint/watermark.h"

namespace pgstream {
namespace {

Lsn L(uint64_t v) { return Lsn(v); }

TEST(Watermark, StartsAtTheStartPosition) {
    Watermark watermark(L(100));
    EXPECT_EQ(watermark.confirmed(), L(100));
    EXPECT_EQ(watermark.units_in_flight(), 0u);
}

TEST(Watermark, ConfirmsATransactionOnlyWhenClosedAndFullyAcknowledged) {
    Watermark watermark(L(10));
    uint64_t unit = watermark.open_unit();
    watermark.add_pending(unit);
    watermark.add_pending(unit);
    watermark.ack(unit);
    EXPECT_EQ(watermark.confirmed(), L(10)) << "open transaction";
    watermark.close_unit(unit, L(50));
    EXPECT_EQ(watermark.confirmed(), L(10)) << "one event still unacknowledged";
    watermark.ack(unit);
    EXPECT_EQ(watermark.confirmed(), L(50));
    EXPECT_EQ(watermark.units_in_flight(), 0u);
}

TEST(Watermark, NeverMovesPastAnEarlierUnitStillInFlight) {
    Watermark watermark(L(0));
    uint64_t first = watermark.open_unit();
    watermark.add_pending(first);
    watermark.close_unit(first, L(100));
    uint64_t second = watermark.open_unit();
    watermark.add_pending(second);
    watermark.close_unit(second, L(200));
    watermark.ack(second);  // a faster output finished the later transaction first
    EXPECT_EQ(watermark.confirmed(), L(0));
    watermark.ack(first);
    EXPECT_EQ(watermark.confirmed(), L(200)) << "both complete: the later end position counts";
}

TEST(Watermark, EmptyTransactionsCompleteWhenClosed) {
    Watermark watermark(L(0));
    uint64_t unit = watermark.open_unit();
    watermark.close_unit(unit, L(30));
    EXPECT_EQ(watermark.confirmed(), L(30));
}

TEST(Watermark, RetainRequiresEveryOutputToAcknowledge) {
    Watermark watermark(L(0));
    uint64_t unit = watermark.open_unit();
    Event event;
    event.checkpoint_token = unit;
    watermark.add_pending(unit);
    watermark.retain(event, 2);  // fan-out to three outputs
    watermark.close_unit(unit, L(40));
    watermark.acknowledge(event);
    watermark.acknowledge(event);
    EXPECT_EQ(watermark.confirmed(), L(0));
    watermark.acknowledge(event);
    EXPECT_EQ(watermark.confirmed(), L(40));
}

TEST(Watermark, IdlePositionsAdvanceOnlyWhenNothingIsInFlight) {
    Watermark watermark(L(10));
    watermark.observe_idle(L(20));
    EXPECT_EQ(watermark.confirmed(), L(20));
    watermark.observe_idle(L(15));
    EXPECT_EQ(watermark.confirmed(), L(20)) << "never goes backwards";

    uint64_t unit = watermark.open_unit();
    watermark.add_pending(unit);
    watermark.close_unit(unit, L(30));
    watermark.observe_idle(L(90));
    EXPECT_EQ(watermark.confirmed(), L(20)) << "the keepalive must wait for the transaction before it";
    watermark.ack(unit);
    EXPECT_EQ(watermark.confirmed(), L(90));
}

TEST(Watermark, KeepalivesDuringAStallDoNotPileUp) {
    Watermark watermark(L(0));
    uint64_t stuck = watermark.open_unit();
    watermark.add_pending(stuck);
    watermark.close_unit(stuck, L(10));
    for (uint64_t position = 20; position <= 2000; position += 10) watermark.observe_idle(L(position));
    EXPECT_LE(watermark.units_in_flight(), 2u);
    watermark.ack(stuck);
    EXPECT_EQ(watermark.confirmed(), L(2000));
}

TEST(Watermark, AbandonedUnitsReleaseTheQueueWithoutConfirmingTheirPosition) {
    Watermark watermark(L(0));
    uint64_t cut = watermark.open_unit();
    watermark.add_pending(cut);
    watermark.close_unit(cut, Lsn());  // connection lost mid-transaction: the server sends it again
    EXPECT_EQ(watermark.confirmed(), L(0));
    uint64_t resent = watermark.open_unit();
    watermark.add_pending(resent);
    watermark.close_unit(resent, L(70));
    watermark.ack(resent);
    EXPECT_EQ(watermark.confirmed(), L(0)) << "the cut transaction's event is still in an output";
    watermark.ack(cut);
    EXPECT_EQ(watermark.confirmed(), L(70));
}

TEST(Watermark, RejectsMoreAcknowledgementsThanEvents) {
    Watermark watermark(L(0));
    uint64_t unit = watermark.open_unit();
    watermark.add_pending(unit);
    watermark.ack(unit);
    EXPECT_THROW(watermark.ack(unit), std::logic_error);
    EXPECT_THROW(watermark.add_pending(999), std::logic_error);
}

TEST(Watermark, WaitDrainedReturnsOnceEverythingIsAcknowledged) {
    Watermark watermark(L(0));
    uint64_t unit = watermark.open_unit();
    watermark.add_pending(unit);
    watermark.close_unit(unit, L(5));
    EXPECT_FALSE(watermark.wait_drained(std::chrono::milliseconds(20)));
    std::thread acker([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        watermark.ack(unit);
    });
    EXPECT_TRUE(watermark.wait_drained(std::chrono::seconds(5)));
    acker.join();
    EXPECT_EQ(watermark.confirmed(), L(5));
}

// Many transactions acknowledged in random order from several threads: the confirmed position must never
// pass a transaction that still has unacknowledged events, and must end at the last one.
TEST(Watermark, RandomOrderAcknowledgementsFromManyThreadsKeepTheInvariant) {
    constexpr int kUnits = 2000;
    Watermark watermark(L(0));
    struct Pending {
        uint64_t unit;
        uint64_t end;
    };
    std::vector<Pending> events;
    std::vector<std::atomic<int>> remaining(kUnits);
    std::mt19937 random(42);
    for (int i = 0; i < kUnits; ++i) {
        uint64_t unit = watermark.open_unit();
        int count = int(random() % 4);  // empty transactions too
        remaining[i] = count;
        for (int e = 0; e < count; ++e) {
            watermark.add_pending(unit);
            events.push_back({unit, uint64_t(i)});
        }
        watermark.close_unit(unit, L(uint64_t(i + 1) * 10));
    }
    std::shuffle(events.begin(), events.end(), random);
    std::atomic<bool> violated{false};
    std::atomic<size_t> next{0};
    auto worker = [&] {
        while (true) {
            size_t index = next++;
            if (index >= events.size()) return;
            const Pending& event = events[index];
            // Before acknowledging, the confirmed position must not cover this transaction yet.
            if (watermark.confirmed() >= L((event.end + 1) * 10)) violated = true;
            remaining[event.end]--;
            watermark.ack(event.unit);
        }
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) threads.emplace_back(worker);
    for (auto& thread : threads) thread.join();
    EXPECT_FALSE(violated);
    EXPECT_EQ(watermark.confirmed(), L(uint64_t(kUnits) * 10));
    EXPECT_EQ(watermark.units_in_flight(), 0u);
}

}  // namespace
}  // namespace pgstream
