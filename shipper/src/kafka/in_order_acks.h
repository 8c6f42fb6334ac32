// Turns out-of-order completions (delivery reports arrive per partition) into in-order acknowledgements:
// a token is released only once it and everything registered before it are complete.
#pragma once

#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

namespace pgstream::kafka {

template <typename Token>
class InOrderAcks {
  public:
    // Returns the sequence number to pass to complete().
    uint64_t add(Token token) {
        pending_.push_back(Entry{std::move(token), false});
        return first_sequence_ + pending_.size() - 1;
    }

    // Marks `sequence` complete and appends the tokens that became acknowledgeable to `released`, oldest
    // first. A sequence that is not pending (never added, or completed before) is an acknowledgement-order
    // violation: nothing changes and the answer is false. Callers report it; throwing here would end the
    // process from whatever thread delivered the acknowledgement.
    [[nodiscard]] bool complete(uint64_t sequence, std::vector<Token>& released) {
        if (sequence < first_sequence_ || sequence >= first_sequence_ + pending_.size()) return false;
        Entry& entry = pending_[sequence - first_sequence_];
        if (entry.done) return false;
        entry.done = true;
        while (!pending_.empty() && pending_.front().done) {
            released.push_back(std::move(pending_.front().token));
            pending_.pop_front();
            ++first_sequence_;
        }
        return true;
    }

    // The sequence number the next add() will return.
    uint64_t nextSequence() const { return first_sequence_ + pending_.size(); }

    size_t pendingCount() const { return pending_.size(); }

  private:
    struct Entry {
        Token token;
        bool done;
    };
    std::deque<Entry> pending_;
    uint64_t first_sequence_ = 0;
};

}  // namespace pgstream::kafka
