// Which snapshot rows the outputs have delivered, per range, and the acknowledger that routes an output's
// acknowledgement to it or to the stream's checkpointer.
//
// A snapshot row carries checkpoint_token = kSnapshotToken | <range index>. A range is done when it has been
// read to its end and every row read from it was acknowledged by every output; only then is it recorded as
// done in pgstream.snapshot_ranges (a restart re-reads the ranges that are not).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "checkpoint/acknowledger.h"
#include "util/stop_token.h"

namespace pgstream {

constexpr uint64_t kSnapshotToken = uint64_t(1) << 63;

class SnapshotProgress {
  public:
    // A new range; returns its index (the token's low bits).
    size_t add_range();
    // Before handing a row on (like Watermark::add_pending).
    void emitted(size_t range, int64_t count = 1);
    // The row handed on for `count` rows never reached an output (the hand-over was stopped).
    void withdrawn(size_t range, int64_t count = 1);
    void retained(size_t range, int64_t additional);
    void acknowledged(size_t range, int64_t count = 1);
    // The range was read to its end: no more rows will be emitted from it.
    void read_complete(size_t range);

    size_t ranges() const;
    bool done(size_t range) const;
    uint64_t rows_emitted(size_t range) const;
    // Rows of the range every output acknowledged (a lower bound while acknowledgements are pending).
    uint64_t rows_delivered(size_t range) const;
    // Waits until every range is done or the stop's drain is over; true when all are done.
    bool wait_all_done(const StopToken& stop) const;
    std::string violation() const;

  private:
    struct Range {
        std::atomic<int64_t> pending{0};  // acknowledgements still expected
        std::atomic<uint64_t> emitted{0};
        std::atomic<bool> read_complete{false};
        std::atomic<bool> withdrawn{false};
    };
    Range& at(size_t range) const;
    void check_done(Range& range);

    // Every output acknowledges every row: finding a row's range takes no lock. Ranges live in blocks that
    // never move (block b holds kFirstBlock << b of them); add_range publishes a block before the index of
    // any range in it is handed out, and the count after the range exists.
    static constexpr size_t kFirstBlock = 64;
    static constexpr size_t kBlocks = 48;
    static void locate(size_t index, size_t& block, size_t& offset);
    std::unique_ptr<Range[]> owned_blocks_[kBlocks];  // written under mutex_
    std::atomic<Range*> blocks_[kBlocks] = {};        // the same blocks, for lock-free reads
    std::atomic<size_t> count_{0};

    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::string violation_;
};

// The source's Acknowledger: snapshot rows go to the attached SnapshotProgress, the rest to the stream's.
class CheckpointRouter : public Acknowledger {
  public:
    explicit CheckpointRouter(Acknowledger& stream) : stream_(stream) {}
    void attach(SnapshotProgress* progress) { snapshot_.store(progress, std::memory_order_release); }

    void acknowledge(const Event& event) override;
    void retain(const Event& event, int additional) override;
    std::string fatal_error() const override;

  private:
    SnapshotProgress* snapshot_for(const Event& event) const;
    Acknowledger& stream_;
    std::atomic<SnapshotProgress*> snapshot_{nullptr};
    mutable std::mutex mutex_;
    std::string violation_;
};

}  // namespace pgstream
