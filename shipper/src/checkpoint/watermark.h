// The checkpointer's bookkeeping: which source positions are safe to confirm.
//
// The stream is cut into units — a transaction, a standalone (non-transactional) logical message, or an idle
// position reported by a keepalive. A unit is *complete* when it is closed (no more events will join it) and
// every event in it has been acknowledged by every output. The confirmed position is the end position of the
// last unit of the longest complete prefix: a unit never counts while an earlier one is still in flight,
// so the source never forgets a change that has not been delivered (at-least-once).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>

#include "checkpoint/acknowledger.h"
#include "wal/lsn.h"

namespace pgstream {

class Watermark : public Acknowledger {
  public:
    explicit Watermark(Lsn start = Lsn());

    // Opens a unit; its events are registered with add_pending() as they enter the pipeline.
    uint64_t open_unit();
    void add_pending(uint64_t unit, int count = 1);
    // No more events will join the unit; `end` is confirmed once it is complete. Lsn() confirms nothing
    // (an abandoned, half-received transaction that the source will send again).
    void close_unit(uint64_t unit, Lsn end);
    void ack(uint64_t unit, int count = 1);
    // The source reports that nothing is pending up to `position` (keepalive while no transaction is open).
    void observe_idle(Lsn position);

    // Acknowledger, keyed by Event::checkpoint_token.
    void acknowledge(const Event& event) override { ack(event.checkpoint_token); }
    void retain(const Event& event, int additional) override { add_pending(event.checkpoint_token, additional); }

    Lsn confirmed() const;
    size_t units_in_flight() const;
    // Blocks until every unit is complete or the timeout expires; true when drained.
    bool wait_drained(std::chrono::milliseconds timeout) const;

  private:
    struct Unit {
        int64_t pending = 0;
        bool closed = false;
        Lsn end;
    };
    void advance_locked();

    mutable std::mutex mutex_;
    mutable std::condition_variable drained_;
    std::map<uint64_t, Unit> units_;
    uint64_t next_unit_ = 1;
    Lsn confirmed_;
};

}  // namespace pgstream
