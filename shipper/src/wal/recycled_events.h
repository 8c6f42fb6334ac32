// Recycled events: a row's Event goes back to a process-wide pool when the last stage drops it (on an
// output's thread), and the thread that makes events (the stream's record parser, a snapshot reader) fills it
// with another row, so its column vector and value texts keep their memory: no allocation for them and no
// event to destroy per row.
#pragma once

#include <atomic>
#include <mutex>
#include <vector>

#include "wal/event.h"

namespace pgstream {

// The pool lives as long as the process (an event can be dropped after its maker is gone) but holds events
// only while a user has it open (RecycledEventsInUse: a stream's listener, a snapshot); otherwise, and beyond
// its bounds, returned events are deleted.
class RecycledEvents {
  public:
    static RecycledEvents& instance();

    void open();
    void close();
    // Moves up to `count` pooled events to `out`.
    void take(std::vector<Event*>& out, size_t count);
    void give_back(Event* event);

  private:
    // At most 16 MiB pooled, of events holding at most 8 KiB each. Bounded by bytes rather than by a count:
    // an output that acknowledges a thousand events at once (a _bulk answer) and keeps several thousand in
    // flight returns more at a time than a count of 2,048 held, and every event beyond it was deleted and
    // made again.
    static constexpr size_t kMaxPooledBytes = 16 << 20, kMaxEventBytes = 8192;

    static size_t retained_bytes(const Event& event);

    struct Pooled {
        Event* event;
        size_t bytes;  // retained_bytes when given back
    };

    std::mutex mutex_;
    std::vector<Pooled> events_;
    size_t pooled_bytes_ = 0;
    int users_ = 0;
    // users_ > 0, read without the lock by give_back: while nobody uses the pool, a returned event is deleted
    // without taking the mutex.
    std::atomic<bool> open_{false};
};

// A user of the pool, for as long as it lives.
class RecycledEventsInUse {
  public:
    RecycledEventsInUse() { RecycledEvents::instance().open(); }
    ~RecycledEventsInUse() { RecycledEvents::instance().close(); }
    RecycledEventsInUse(const RecycledEventsInUse&) = delete;
    RecycledEventsInUse& operator=(const RecycledEventsInUse&) = delete;
};

// One producing thread's events: recycled ones taken from the pool a batch at a time (one lock per batch),
// else new ones; either kind goes back to the pool when its last reference drops.
class EventSupply {
  public:
    EventSupply() = default;
    EventSupply(const EventSupply&) = delete;
    EventSupply& operator=(const EventSupply&) = delete;
    ~EventSupply();

    // An event to fill: as a new one (Event::reset_keeping_memory) but for its column vector, which keeps its
    // elements, and its schema and table names: the caller overwrites those.
    MutableEventPtr next();

  private:
    static constexpr size_t kBatch = 256;

    std::vector<Event*> spare_;
};

}  // namespace pgstream
