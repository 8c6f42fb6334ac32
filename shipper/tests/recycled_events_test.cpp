// The pool of recycled events (wal/recycled_events.h): what it keeps for the next rows and what it lets go.
// In an executable of its own: the pool is one per process.
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "wal/recycled_events.h"

namespace pgstream {
namespace {

// `count` events from `supply`, each with `columns` columns whose values hold `value_bytes` bytes.
std::vector<MutableEventPtr> make_events(EventSupply& supply, size_t count, size_t columns,
                                         size_t value_bytes) {
    std::vector<MutableEventPtr> events;
    for (size_t i = 0; i < count; ++i) {
        MutableEventPtr event = supply.next();
        event->columns.resize(columns);
        for (Column& column : event->columns) column.value.text.assign(value_bytes, 'v');
        events.push_back(std::move(event));
    }
    return events;
}

size_t count_made_before(const std::vector<MutableEventPtr>& events, const std::set<const Event*>& before) {
    size_t count = 0;
    for (const auto& event : events) count += before.count(event.get());
    return count;
}

// An output that acknowledges a whole batch at once (a _bulk answer) returns thousands of events together
// while more are in flight: all of them come back for the next rows, none is deleted and made again.
TEST(RecycledEvents, ABurstOfThousandsOfReturnedEventsIsKeptForTheNextRows) {
    RecycledEventsInUse pool;
    EventSupply supply;
    std::vector<MutableEventPtr> first = make_events(supply, 5000, 4, 24);
    std::set<const Event*> made;
    for (const auto& event : first) made.insert(event.get());
    first.clear();
    std::vector<MutableEventPtr> second = make_events(supply, 5000, 4, 24);
    EXPECT_EQ(count_made_before(second, made), 5000u);
    // A recycled event reads as new but for its columns, which the row's maker overwrites.
    for (const auto& event : second) {
        EXPECT_TRUE(event->identity.empty());
        EXPECT_EQ(event->checkpoint_token, 0u);
    }
}

// The pool holds at most 16 MiB: events with large values beyond that are deleted, not kept.
TEST(RecycledEvents, KeepsNoMoreThanItsBytes) {
    RecycledEventsInUse pool;
    EventSupply supply;
    std::vector<MutableEventPtr> first = make_events(supply, 5000, 4, 1500);  // about 7 KiB each
    std::set<const Event*> made;
    for (const auto& event : first) made.insert(event.get());
    first.clear();
    std::vector<MutableEventPtr> second = make_events(supply, 5000, 4, 1500);
    const size_t kept = count_made_before(second, made);
    EXPECT_GT(kept, 1500u);
    EXPECT_LT(kept, 2600u);  // 16 MiB / ~7 KiB
}

// Without a user (no listener or snapshot running) nothing is kept.
TEST(RecycledEvents, AClosedPoolKeepsNothing) {
    EventSupply supply;
    make_events(supply, 100, 4, 24).clear();  // returned at once, while nobody uses the pool
    // Addresses may be reused by the allocator, so the test is on the pool's side: it was given nothing.
    RecycledEventsInUse pool;
    std::vector<Event*> taken;
    RecycledEvents::instance().take(taken, 1000);
    EXPECT_TRUE(taken.empty());
}

}  // namespace
}  // namespace pgstream
