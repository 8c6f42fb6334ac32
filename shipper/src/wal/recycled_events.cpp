#include "wal/recycled_events.h"

#include <algorithm>

namespace pgstream {

namespace {

struct ReturnToRecycledEvents {
    void operator()(Event* event) const { RecycledEvents::instance().give_back(event); }
};

}  // namespace

RecycledEvents& RecycledEvents::instance() {
    static RecycledEvents* pool = new RecycledEvents();  // never freed: see the class comment
    return *pool;
}

void RecycledEvents::open() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++users_;
    open_.store(true, std::memory_order_relaxed);
}

void RecycledEvents::close() {
    std::vector<Event*> dropped;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (--users_ == 0) {
            dropped.swap(events_);
            open_.store(false, std::memory_order_relaxed);
        }
    }
    for (Event* event : dropped) delete event;
}

void RecycledEvents::take(std::vector<Event*>& out, size_t count) {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t taken = std::min(count, events_.size());
    out.insert(out.end(), events_.end() - ptrdiff_t(taken), events_.end());
    events_.resize(events_.size() - taken);
}

void RecycledEvents::give_back(Event* event) {
    // A row with large values would keep their memory for as long as it stays pooled. The unlocked test of
    // open_ only saves the lock while the pool is closed; users_ under the lock decides.
    if (open_.load(std::memory_order_relaxed) && retained_bytes(*event) <= kMaxEventBytes) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (users_ > 0 && events_.size() < kMaxEvents) {
            events_.push_back(event);
            return;
        }
    }
    delete event;
}

size_t RecycledEvents::retained_bytes(const Event& event) {
    size_t bytes = (event.columns.capacity() + event.identity.capacity()) * sizeof(Column);
    for (const Column& column : event.columns) bytes += column.value.text.capacity();
    for (const Column& column : event.identity) bytes += column.value.text.capacity();
    return bytes;
}

EventSupply::~EventSupply() {
    for (Event* event : spare_) RecycledEvents::instance().give_back(event);
}

MutableEventPtr EventSupply::next() {
    if (spare_.empty()) RecycledEvents::instance().take(spare_, kBatch);
    if (spare_.empty()) return MutableEventPtr(new Event(), ReturnToRecycledEvents());
    Event* event = spare_.back();
    spare_.pop_back();
    MutableEventPtr owned(event, ReturnToRecycledEvents());
    event->reset_keeping_memory();
    return owned;
}

}  // namespace pgstream
