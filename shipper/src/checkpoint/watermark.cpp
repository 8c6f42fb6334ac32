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

std::string Watermark::ack_locked(uint64_t unit, int count) {
    auto it = units_.find(unit);
    if (it == units_.end() || it->second.pending < count)
        return "checkpoint: more acknowledgements than pending events for unit " + std::to_string(unit) +
               " (an output acknowledged an event twice or one it was never given)";
    it->second.pending -= count;
    advance_locked();
    return {};
}

void Watermark::ack(uint64_t unit, int count) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string violation = ack_locked(unit, count);
    if (!violation.empty()) throw std::logic_error(violation);
}

void Watermark::withdraw(uint64_t unit, int count) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = units_.find(unit);
    if (it == units_.end() || it->second.pending < count)
        throw std::logic_error("watermark: withdrawing more events than pending");
    it->second.withdrawn = true;
    it->second.pending -= count;
    advance_locked();
}

void Watermark::record_violation(const std::string& violation) {
    if (violation_.empty()) violation_ = violation;
}

void Watermark::acknowledge(const Event& event) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string violation = ack_locked(event.checkpoint_token, 1);
    if (!violation.empty()) record_violation(violation);
}

void Watermark::retain(const Event& event, int additional) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = units_.find(event.checkpoint_token);
    if (it == units_.end()) {
        record_violation("checkpoint: an event of unit " + std::to_string(event.checkpoint_token) +
                         " was retained after its unit completed");
        return;
    }
    it->second.pending += additional;
}

std::string Watermark::fatal_error() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return violation_;
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
    if (last.closed && last.pending == 0 && !last.withdrawn && last.end.valid()) {
        if (position > last.end) last.end = position;
        return;
    }
    Unit idle;
    idle.closed = true;
    idle.end = position;
    units_.emplace(next_unit_++, idle);
}

void Watermark::advance_locked() {
    while (!units_.empty()) {
        auto first = units_.begin();
        if (!first->second.closed || first->second.pending != 0) break;
        if (!first->second.withdrawn && first->second.end > confirmed_) confirmed_ = first->second.end;
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

bool Watermark::wait_drained(const StopToken& stop) const {
    std::unique_lock<std::mutex> lock(mutex_);
    return stop.wait_for_delivery(lock, drained_, [this] { return units_.empty(); });
}

}  // namespace pgstream
