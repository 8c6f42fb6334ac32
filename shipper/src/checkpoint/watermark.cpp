#include "checkpoint/watermark.h"

#include <stdexcept>

namespace pgstream {

Watermark::Watermark(Lsn start) : confirmed_(start) {}

uint64_t Watermark::open_unit() {
    std::lock_guard<std::mutex> lock(mutex_);
    uint64_t id = next_unit_++;
    units_.emplace(id, Unit{});
    return id;
}

void Watermark::add_pending(uint64_t unit, int count) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = units_.find(unit);
    if (it == units_.end()) throw std::logic_error("watermark: events added to an unknown or completed unit");
    it->second.pending += count;
}

void Watermark::close_unit(uint64_t unit, Lsn end) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = units_.find(unit);
    if (it == units_.end()) throw std::logic_error("watermark: closing an unknown unit");
    it->second.closed = true;
    it->second.end = end;
    advance_locked();
}

void Watermark::ack(uint64_t unit, int count) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = units_.find(unit);
    if (it == units_.end() || it->second.pending < count)
        throw std::logic_error("watermark: more acknowledgements than pending events");
    it->second.pending -= count;
    advance_locked();
}

void Watermark::observe_idle(Lsn position) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (units_.empty()) {
        if (position > confirmed_) confirmed_ = position;
        return;
    }
    // Something earlier is still in flight: the idle position counts once it is delivered.
    // A delivered unit at the tail (waiting only for earlier ones) absorbs the position: it came after that
    // unit, so a long stall does not pile up one unit per keepalive.
    auto& last = units_.rbegin()->second;
    if (last.closed && last.pending == 0 && last.end.valid()) {
        if (position > last.end) last.end = position;
        return;
    }
    units_.emplace(next_unit_++, Unit{0, true, position});
}

void Watermark::advance_locked() {
    while (!units_.empty()) {
        auto first = units_.begin();
        if (!first->second.closed || first->second.pending != 0) break;
        if (first->second.end > confirmed_) confirmed_ = first->second.end;
        units_.erase(first);
    }
    if (units_.empty()) drained_.notify_all();
}

Lsn Watermark::confirmed() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return confirmed_;
}

size_t Watermark::units_in_flight() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return units_.size();
}

bool Watermark::wait_drained(std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(mutex_);
    return drained_.wait_for(lock, timeout, [this] { return units_.empty(); });
}

}  // namespace pgstream
