#include "snapshot/snapshot_progress.h"

#include <stdexcept>

namespace pgstream {

void SnapshotProgress::locate(size_t index, size_t& block, size_t& offset) {
    // Blocks of 64, 128, 256, ...: index + 64 has its highest bit at 6 + block.
    size_t shifted = index + kFirstBlock;
    size_t highest = size_t(63 - __builtin_clzll(uint64_t(shifted)));
    block = highest - 6;
    offset = shifted - (size_t(1) << highest);
    static_assert(kFirstBlock == 64, "locate() assumes blocks of 64 << b ranges");
}

size_t SnapshotProgress::add_range() {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t index = count_.load(std::memory_order_relaxed);
    size_t block, offset;
    locate(index, block, offset);
    if (block >= kBlocks) throw std::length_error("snapshot: too many ranges");
    if (!owned_blocks_[block]) {
        owned_blocks_[block] = std::make_unique<Range[]>(kFirstBlock << block);
        blocks_[block].store(owned_blocks_[block].get(), std::memory_order_release);
    }
    count_.store(index + 1, std::memory_order_release);
    return index;
}

SnapshotProgress::Range& SnapshotProgress::at(size_t range) const {
    if (range >= count_.load(std::memory_order_acquire))
        throw std::out_of_range("snapshot range " + std::to_string(range) + " does not exist");
    size_t block, offset;
    locate(range, block, offset);
    return blocks_[block].load(std::memory_order_acquire)[offset];
}

size_t SnapshotProgress::ranges() const {
    return count_.load(std::memory_order_acquire);
}

void SnapshotProgress::emitted(size_t index, int64_t count) {
    Range& range = at(index);
    range.pending.fetch_add(count, std::memory_order_relaxed);
    range.emitted.fetch_add(uint64_t(count), std::memory_order_relaxed);
}

void SnapshotProgress::withdrawn(size_t index, int64_t count) {
    Range& range = at(index);
    range.withdrawn = true;
    range.pending.fetch_sub(count, std::memory_order_relaxed);
    range.emitted.fetch_sub(uint64_t(count), std::memory_order_relaxed);
}

void SnapshotProgress::retained(size_t index, int64_t additional) {
    at(index).pending.fetch_add(additional, std::memory_order_relaxed);
}

void SnapshotProgress::acknowledged(size_t index, int64_t count) {
    Range& range = at(index);
    int64_t before = range.pending.fetch_sub(count, std::memory_order_acq_rel);
    if (before < count) {
        range.pending.fetch_add(count);
        std::lock_guard<std::mutex> lock(mutex_);
        if (violation_.empty())
            violation_ =
                "snapshot range " + std::to_string(index) + " acknowledged more often than handed out";
        return;
    }
    // Rows count as delivered when nothing of the range is pending: with several outputs, a row is delivered
    // once every output acknowledged it, which the pending count alone tells.
    if (before == count) check_done(range);
}

void SnapshotProgress::read_complete(size_t index) {
    Range& range = at(index);
    range.read_complete = true;
    check_done(range);
}

void SnapshotProgress::check_done(Range& range) {
    if (range.pending.load() != 0) return;
    // Taking the lock orders this notification after a waiter's predicate check: no lost wake-up.
    { std::lock_guard<std::mutex> lock(mutex_); }
    changed_.notify_all();
}

bool SnapshotProgress::done(size_t index) const {
    Range& range = at(index);
    return range.read_complete.load() && !range.withdrawn.load() && range.pending.load() == 0;
}

uint64_t SnapshotProgress::rows_emitted(size_t index) const {
    return at(index).emitted.load(std::memory_order_relaxed);
}

uint64_t SnapshotProgress::rows_delivered(size_t index) const {
    // With several outputs a row's acknowledgements are counted apart: a lower bound while some are pending.
    Range& range = at(index);
    int64_t pending = range.pending.load(std::memory_order_relaxed);
    uint64_t emitted = range.emitted.load(std::memory_order_relaxed);
    return pending <= 0 ? emitted : emitted > uint64_t(pending) ? emitted - uint64_t(pending) : 0;
}

bool SnapshotProgress::wait_all_done(const StopToken& stop) const {
    auto all_done = [this] {
        for (size_t index = 0, count = ranges(); index < count; ++index) {
            const Range& range = at(index);
            if (!range.read_complete.load() || range.withdrawn.load() || range.pending.load() != 0)
                return false;
        }
        return true;
    };
    std::unique_lock<std::mutex> lock(mutex_);
    while (!all_done()) {
        if (stop.drain_over()) return false;
        // The drain deadline is re-checked now and then; acknowledgements notify at once.
        changed_.wait_for(lock, std::chrono::milliseconds(100), all_done);
    }
    return true;
}

std::string SnapshotProgress::violation() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return violation_;
}

SnapshotProgress* CheckpointRouter::snapshot_for(const Event& event) const {
    if ((event.checkpoint_token & kSnapshotToken) == 0) return nullptr;
    return snapshot_.load(std::memory_order_acquire);
}

void CheckpointRouter::acknowledge(const Event& event) {
    if ((event.checkpoint_token & kSnapshotToken) == 0) return stream_.acknowledge(event);
    if (SnapshotProgress* progress = snapshot_for(event))
        return progress->acknowledged(size_t(event.checkpoint_token & ~kSnapshotToken));
    std::lock_guard<std::mutex> lock(mutex_);
    if (violation_.empty()) violation_ = "a snapshot row was acknowledged after its snapshot ended";
}

void CheckpointRouter::retain(const Event& event, int additional) {
    if ((event.checkpoint_token & kSnapshotToken) == 0) return stream_.retain(event, additional);
    if (SnapshotProgress* progress = snapshot_for(event))
        progress->retained(size_t(event.checkpoint_token & ~kSnapshotToken), additional);
}

std::string CheckpointRouter::fatal_error() const {
    std::string error = stream_.fatal_error();
    if (!error.empty()) return error;
    if (SnapshotProgress* progress = snapshot_.load(std::memory_order_acquire)) {
        error = progress->violation();
        if (!error.empty()) return error;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    return violation_;
}

}  // namespace pgstream
