#include "util/stop_token.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

namespace pgstream {

namespace {

void signal_fd(int fd) {
    if (fd < 0) return;
    uint64_t one = 1;
    ssize_t ignored = ::write(fd, &one, sizeof one);  // never read: stays readable
    (void)ignored;
}

int milliseconds_until(StopToken::Clock::time_point until) {
    if (until == StopToken::Clock::time_point::max()) return -1;
    auto left = std::chrono::ceil<std::chrono::milliseconds>(until - StopToken::Clock::now()).count();
    return int(std::clamp<int64_t>(left, 0, 1 << 30));
}

}  // namespace

StopToken::State::~State() {
    if (stop_fd >= 0) ::close(stop_fd);
    if (drain_fd >= 0) ::close(drain_fd);
}

StopToken::StopToken() : StopToken(std::chrono::milliseconds::max()) {}

StopToken::StopToken(std::chrono::milliseconds drain_timeout)
    : state_(std::make_shared<State>(drain_timeout)) {}

StopToken::Registration::Registration(State& state, std::mutex* mutex, std::condition_variable* cv)
    : state_(state), waiter_{mutex, cv} {
    std::lock_guard<std::mutex> lock(state_.mutex);
    // Joins after the current round: that round's stop is already visible to the caller's predicate check.
    waiter_.notified_round = state_.round;
    position_ = state_.waiters.insert(state_.waiters.end(), &waiter_);
}

StopToken::Registration::~Registration() {
    std::unique_lock<std::mutex> lock(state_.mutex);
    state_.changed.wait(lock, [&] { return state_.notifying != &waiter_; });
    state_.waiters.erase(position_);
}

StopToken::Clock::time_point StopToken::deadline_after(std::chrono::milliseconds timeout) {
    auto now = Clock::now();
    if (timeout >= std::chrono::duration_cast<std::chrono::milliseconds>(Clock::time_point::max() - now))
        return Clock::time_point::max();
    return now + timeout;
}

void StopToken::request_stop() {
    {
        std::lock_guard<std::mutex> lock(state_->mutex);
        if (state_->stopped.load(std::memory_order_relaxed)) return;
        state_->deadline = deadline_after(state_->drain_timeout);
        state_->stopped.store(true, std::memory_order_release);
        signal_fd(state_->stop_fd);
    }
    state_->changed.notify_all();
    notify_waiters();
}

void StopToken::end_drain() {
    request_stop();
    {
        std::lock_guard<std::mutex> lock(state_->mutex);
        if (state_->drain_ended) return;
        state_->drain_ended = true;
        signal_fd(state_->drain_fd);
    }
    notify_waiters();
}

bool StopToken::drain_over() const {
    if (!stop_requested()) return false;
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->drain_ended || Clock::now() >= state_->deadline;
}

StopToken::Clock::time_point StopToken::drain_deadline() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->drain_ended ? Clock::time_point::min() : state_->deadline;
}

void StopToken::notify_waiters() {
    std::unique_lock<std::mutex> lock(state_->mutex);
    const uint64_t round = ++state_->round;
    while (true) {
        Waiter* next = nullptr;
        for (Waiter* waiter : state_->waiters) {
            if (waiter->notified_round < round) {
                next = waiter;
                break;
            }
        }
        if (!next) break;
        next->notified_round = round;
        state_->notifying = next;
        lock.unlock();
        // Taking the waiter's mutex orders this notification after its predicate check: it is either about to
        // test the stop (and sees it) or already blocked (and is woken).
        { std::lock_guard<std::mutex> waiter_lock(*next->mutex); }
        next->cv->notify_all();
        lock.lock();
        state_->notifying = nullptr;
        state_->changed.notify_all();
    }
}

bool StopToken::sleep_for(std::chrono::milliseconds duration) const {
    std::unique_lock<std::mutex> lock(state_->mutex);
    Clock::time_point until = deadline_after(duration);
    auto stopped = [&] { return state_->stopped.load(std::memory_order_relaxed); };
    if (until == Clock::time_point::max()) {
        state_->changed.wait(lock, stopped);
    } else {
        state_->changed.wait_until(lock, until, stopped);
    }
    return !stopped();
}

void StopToken::ensure_fds() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (state_->stop_fd >= 0) return;
    state_->stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    state_->drain_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (state_->stopped.load(std::memory_order_relaxed)) signal_fd(state_->stop_fd);
    if (state_->drain_ended) signal_fd(state_->drain_fd);
}

bool StopToken::poll_ready(int fd, short events, Phase phase, Clock::time_point until) const {
    ensure_fds();
    while (true) {
        if (ended(phase)) return false;
        // Before the stop, its eventfd wakes us; after it, a delivery wait also watches end_drain()'s eventfd
        // and the deadline.
        bool stopped = stop_requested();
        pollfd fds[2] = {{fd, events, 0}, {stopped ? state_->drain_fd : state_->stop_fd, POLLIN, 0}};
        int timeout = milliseconds_until(limit(phase, until));
        int ready = ::poll(fds, 2, timeout);
        if (ready < 0 && errno != EINTR) return true;  // let the caller's own call report the problem
        if (ready > 0 && fds[0].revents != 0) return true;
        if (ready == 0 && Clock::now() >= until) return false;
    }
}

bool StopToken::wait_ready_for_delivery(int fd, short events) const {
    return poll_ready(fd, events, Phase::kDrain, Clock::time_point::max());
}

bool StopToken::wait_ready(int fd, short events, std::chrono::milliseconds timeout) const {
    return poll_ready(fd, events, Phase::kStop, deadline_after(timeout));
}

}  // namespace pgstream
