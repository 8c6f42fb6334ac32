// The one shutdown signal of a pipeline, shared by every thread that may wait.
//
// A shutdown has two phases. request_stop() (SIGTERM, or a fatal error anywhere) ends everything that waits
// for new work or for a dependency to recover: reading the source, retry backoffs, reconnects, the memory
// guard. What the outputs already accepted may still be delivered until the drain deadline (request time +
// drain timeout) or until end_drain() (an output failed for good: nothing more will be delivered); then the
// waits for deliveries end too and what is undelivered stays unconfirmed.
//
// StopToken is a cheap handle: copies share one state. A default-constructed token has a state of its own
// that nobody stops unless asked to, so components built without one behave as if they were never stopped.
//
// Waits take the caller's lock and condition variable: a stop locks that mutex before notifying, so a waiter
// cannot miss it between testing its predicate and blocking.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <list>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace pgstream {

// Thrown where a wait that a stop ended leaves nothing sensible to return: the work was abandoned on purpose,
// not failed.
class Stopped : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class StopToken {
  public:
    using Clock = std::chrono::steady_clock;

    // No drain limit: deliveries are waited for until end_drain().
    StopToken();
    explicit StopToken(std::chrono::milliseconds drain_timeout);

    // Idempotent; thread-safe. The drain deadline starts at the first request. Both notify the waiters under
    // their own mutexes: never call them while holding a mutex that a wait on this token uses.
    void request_stop();
    // Ends the drain now (and requests the stop if nobody did).
    void end_drain();

    bool stop_requested() const { return state_->stopped.load(std::memory_order_acquire); }
    // Stop requested and the drain deadline passed, or end_drain() was called.
    bool drain_over() const;
    // Clock::time_point::max() until a stop is requested, or when there is no drain limit.
    Clock::time_point drain_deadline() const;
    std::chrono::milliseconds drain_timeout() const { return state_->drain_timeout; }

    // Waits until pred() holds, a stop is requested or `until` passes; returns pred().
    template <typename Pred>
    bool wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, Clock::time_point until,
                    Pred pred) const {
        return wait(lock, cv, until, pred, Phase::kStop);
    }
    template <typename Pred>
    bool wait_for(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                  std::chrono::milliseconds timeout, Pred pred) const {
        return wait(lock, cv, deadline_after(timeout), pred, Phase::kStop);
    }
    template <typename Pred>
    bool wait(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, Pred pred) const {
        return wait(lock, cv, Clock::time_point::max(), pred, Phase::kStop);
    }
    // Waits for a delivery: until pred() holds, the drain is over or `until` passes; returns pred().
    template <typename Pred>
    bool wait_for_delivery(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, Pred pred,
                           Clock::time_point until = Clock::time_point::max()) const {
        return wait(lock, cv, until, pred, Phase::kDrain);
    }

    // Sleeps for `duration`; false when a stop cut it short (or had been requested before).
    bool sleep_for(std::chrono::milliseconds duration) const;

    // Waits until `fd` is ready for `events` (poll(2)); false when the drain is over first.
    bool wait_ready_for_delivery(int fd, short events) const;
    // Waits until `fd` is ready for `events`, a stop is requested or the timeout passes; true when ready.
    bool wait_ready(int fd, short events, std::chrono::milliseconds timeout) const;

  private:
    enum class Phase { kStop, kDrain };
    struct Waiter {
        std::mutex* mutex;
        std::condition_variable* cv;
        uint64_t notified_round = 0;
    };
    struct State {
        explicit State(std::chrono::milliseconds timeout) : drain_timeout(timeout) {}
        ~State();
        const std::chrono::milliseconds drain_timeout;
        std::mutex mutex;
        std::condition_variable changed;  // sleepers, and waiters leaving while being notified
        std::atomic<bool> stopped{false};
        bool drain_ended = false;
        Clock::time_point deadline = Clock::time_point::max();
        std::list<Waiter*> waiters;
        uint64_t round = 0;
        const Waiter* notifying = nullptr;
        int stop_fd = -1;  // eventfds, made on first use by a poll wait; readable once stopped / drain ended
        int drain_fd = -1;
    };
    // Registers a condition-variable wait for the stop's notifications for its lifetime.
    class Registration {
      public:
        Registration(State& state, std::mutex* mutex, std::condition_variable* cv);
        ~Registration();
        Registration(const Registration&) = delete;
        Registration& operator=(const Registration&) = delete;

      private:
        State& state_;
        Waiter waiter_;
        std::list<Waiter*>::iterator position_;
    };

    static Clock::time_point deadline_after(std::chrono::milliseconds timeout);
    // Notifies every registered waiter (each under its own mutex, none under the state's).
    void notify_waiters();
    bool ended(Phase phase) const { return phase == Phase::kStop ? stop_requested() : drain_over(); }
    Clock::time_point limit(Phase phase, Clock::time_point until) const {
        return phase == Phase::kStop ? until : std::min(until, drain_deadline());
    }
    void ensure_fds() const;
    bool poll_ready(int fd, short events, Phase phase, Clock::time_point until) const;

    template <typename Pred>
    bool wait(std::unique_lock<std::mutex>& lock, std::condition_variable& cv, Clock::time_point until,
              Pred& pred, Phase phase) const {
        while (!pred()) {
            {
                Registration registration(*state_, lock.mutex(), &cv);
                while (!pred() && !ended(phase)) {
                    Clock::time_point wake = limit(phase, until);
                    if (wake == Clock::time_point::max()) {
                        cv.wait(lock);
                    } else if (cv.wait_until(lock, wake) == std::cv_status::timeout &&
                               Clock::now() >= until) {
                        break;
                    }
                }
                // A stop notifies under our mutex while it holds a reference to the registration: leave
                // without it.
                lock.unlock();
            }
            lock.lock();
            // Another thread may have taken the lock in between and made pred() false again (a producer
            // filling the queue this one saw room in): that is no reason to give up, only an end or the
            // deadline is. Returning false then made a snapshot reader drop its range unfinished and the
            // snapshot wait for it forever.
            if (pred()) return true;
            if (ended(phase) || (until != Clock::time_point::max() && Clock::now() >= until)) return false;
        }
        return true;
    }

    std::shared_ptr<State> state_;
};

}  // namespace pgstream
