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
            for (const Pooled& pooled : events_) dropped.push_back(pooled.event);
            events_.clear();
            events_.shrink_to_fit();
            pooled_bytes_ = 0;
            open_.store(false, std::memory_order_relaxed);
        }
    }
    for (Event* event : dropped) delete event;
}

void RecycledEvents::take(std::vector<Event*>& out, size_t count) {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t taken = std::min(count, events_.size());
    for (size_t i = events_.size() - taken; i < events_.size(); ++i) {
        out.push_back(events_[i].event);
        pooled_bytes_ -= events_[i].bytes;
    }
    events_.resize(events_.size() - taken);
}

void RecycledEvents::give_back(Event* event) {
    // A row with large values would keep their memory for as long as it stays pooled. The unlocked test of
    // open_ only saves the lock while the pool is closed; users_ under the lock decides.
    if (open_.load(std::memory_order_relaxed)) {
        const size_t bytes = retained_bytes(*event);
        if (bytes <= kMaxEventBytes) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (users_ > 0 && pooled_bytes_ + bytes <= kMaxPooledBytes) {
                events_.push_back({event, bytes});
                pooled_bytes_ += bytes;
                return;
            }
        }
    }
    delete event;
}

size_t RecycledEvents::retained_bytes(const Event& event) {
    size_t bytes = sizeof(Event) + (event.columns.capacity() + event.identity.capacity()) * sizeof(Column);
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
