// Turns out-of-order completions (delivery reports arrive per partition) into in-order acknowledgements:
// a token is released only once it and everything registered before it are complete.
#pragma once

#include <cstdint>
#include <deque>
#include <stdexcept>
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

    // Marks `sequence` complete and returns the tokens that became acknowledgeable, oldest first.
    std::vector<Token> complete(uint64_t sequence) {
        std::vector<Token> released;
        complete(sequence, released);
        return released;
    }

    // The same, appending to `released` (many completions, one vector).
    void complete(uint64_t sequence, std::vector<Token>& released) {
        if (sequence < first_sequence_ || sequence >= first_sequence_ + pending_.size()) {
            throw std::logic_error("in-order acks: unknown sequence");
        }
        pending_[sequence - first_sequence_].done = true;
        while (!pending_.empty() && pending_.front().done) {
            released.push_back(std::move(pending_.front().token));
            pending_.pop_front();
            ++first_sequence_;
        }
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
