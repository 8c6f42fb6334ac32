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
#include "util/stop_token.h"
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
    // Throws std::logic_error for more acknowledgements than pending events (acknowledge() records it
    // instead).
    void ack(uint64_t unit, int count = 1);
    // `count` events registered with add_pending() never reached an output (the hand-over threw): they will
    // not be acknowledged, and the unit never confirms its end, whatever close_unit() says.
    void withdraw(uint64_t unit, int count = 1);
    // The source reports that nothing is pending up to `position` (keepalive while no transaction is open).
    void observe_idle(Lsn position);

    // Acknowledger, keyed by Event::checkpoint_token. A violation is recorded (fatal_error()) and not
    // applied: the unit then stays incomplete, so nothing from it on is confirmed.
    void acknowledge(const Event& event) override;
    void retain(const Event& event, int additional) override;
    std::string fatal_error() const override;

    Lsn confirmed() const;
    size_t units_in_flight() const;
    // Blocks until every unit is complete or the timeout expires; true when drained.
    bool wait_drained(std::chrono::milliseconds timeout) const;
    // Blocks until every unit is complete or the stop's drain is over; true when drained.
    bool wait_drained(const StopToken& stop) const;

  private:
    struct Unit {
        int64_t pending = 0;
        bool closed = false;
        bool withdrawn = false;  // some events never reached an output: confirms nothing
        Lsn end;
    };
    void advance_locked();
    // "" when applied, else why the acknowledgement breaks the rules.
    std::string ack_locked(uint64_t unit, int count);
    void record_violation(const std::string& violation);

    mutable std::mutex mutex_;
    mutable std::condition_variable drained_;
    std::map<uint64_t, Unit> units_;
    uint64_t next_unit_ = 1;
    Lsn confirmed_;
    std::string violation_;
};

}  // namespace pgstream
