#include "kafka/offset_watermark.h"

#include <algorithm>
#include <charconv>

namespace pgstream::kafka {

std::string formatPosition(const TopicPartitionOffset& position) {
    return position.topic + "/" + std::to_string(position.partition) + "/" + std::to_string(position.offset);
}

std::optional<TopicPartitionOffset> parsePosition(const std::string& text) {
    const size_t last = text.rfind('/');
    if (last == std::string::npos || last == 0) return std::nullopt;
    const size_t middle = text.rfind('/', last - 1);
    if (middle == std::string::npos || middle == 0) return std::nullopt;
    TopicPartitionOffset position;
    position.topic = text.substr(0, middle);
    const char* begin = text.data();
    auto [p_end, p_err] = std::from_chars(begin + middle + 1, begin + last, position.partition);
    if (p_err != std::errc() || p_end != begin + last || position.partition < 0) return std::nullopt;
    auto [o_end, o_err] = std::from_chars(begin + last + 1, begin + text.size(), position.offset);
    if (o_err != std::errc() || o_end != begin + text.size() || position.offset < 0) return std::nullopt;
    return position;
}

void OffsetWatermark::registerConsumed(const TopicPartitionOffset& record, size_t bytes) {
    std::lock_guard lock(mutex_);
    PartitionState& state = partitions_[{record.topic, record.partition}];
    if (state.first_consumed < 0) state.first_consumed = record.offset;
    const uint64_t sequence = state.acks.add(Entry{record.offset, bytes});
    state.sequence_of_offset.emplace(record.offset, sequence);
    in_flight_bytes_ += bytes;
}

bool OffsetWatermark::acknowledge(const TopicPartitionOffset& record) {
    {
        std::lock_guard lock(mutex_);
        auto it = partitions_.find({record.topic, record.partition});
        if (it == partitions_.end()) return false;
        PartitionState& state = it->second;
        auto found = state.sequence_of_offset.find(record.offset);
        if (found == state.sequence_of_offset.end()) return false;
        const uint64_t sequence = found->second;
        state.sequence_of_offset.erase(found);
        std::vector<Entry> released;
        if (!state.acks.complete(sequence, released)) {
            if (violation_.empty())
                violation_ = "kafka checkpoint: acknowledgement of " + formatPosition(record) +
                             " does not match the order its records were read in";
            return false;
        }
        for (const Entry& done : released) {
            state.next_to_commit = done.offset + 1;
            in_flight_bytes_ -= done.bytes;
        }
    }
    acknowledged_.notify_all();
    return true;
}

size_t OffsetWatermark::inFlightRecordsLocked(const std::vector<TopicPartitionOffset>& partitions) const {
    size_t count = 0;
    for (const auto& tp : partitions) {
        auto it = partitions_.find({tp.topic, tp.partition});
        if (it != partitions_.end()) count += it->second.acks.pendingCount();
    }
    return count;
}

bool OffsetWatermark::waitInFlightBytesAtMost(size_t limit, const StopToken& stop) const {
    std::unique_lock lock(mutex_);
    return stop.wait(lock, acknowledged_, [&] { return in_flight_bytes_ <= limit; });
}

bool OffsetWatermark::waitDrained(const std::vector<TopicPartitionOffset>& partitions,
                                  std::chrono::steady_clock::time_point until, const StopToken& stop) const {
    std::unique_lock lock(mutex_);
    return stop.wait_for_delivery(
        lock, acknowledged_, [&] { return inFlightRecordsLocked(partitions) == 0; }, until);
}

std::string OffsetWatermark::violation() const {
    std::lock_guard lock(mutex_);
    return violation_;
}

std::vector<TopicPartitionOffset> OffsetWatermark::behind(int64_t PartitionState::*mark) const {
    std::lock_guard lock(mutex_);
    std::vector<TopicPartitionOffset> positions;
    for (const auto& [key, state] : partitions_) {
        if (state.next_to_commit > state.*mark)
            positions.push_back({key.first, key.second, state.next_to_commit});
    }
    return positions;
}

void OffsetWatermark::advance(int64_t PartitionState::*mark, const TopicPartitionOffset& position) {
    std::lock_guard lock(mutex_);
    auto it = partitions_.find({position.topic, position.partition});
    if (it != partitions_.end() && position.offset > it->second.*mark) it->second.*mark = position.offset;
}

std::vector<TopicPartitionOffset> OffsetWatermark::pendingCommits() const {
    return behind(&PartitionState::committed);
}
int64_t OffsetWatermark::markCommitted(const TopicPartitionOffset& commit) {
    std::lock_guard lock(mutex_);
    auto it = partitions_.find({commit.topic, commit.partition});
    if (it == partitions_.end() || commit.offset <= it->second.committed) return 0;
    PartitionState& state = it->second;
    const int64_t from = std::max(state.committed, state.first_consumed);
    state.committed = commit.offset;
    return from < 0 ? 0 : std::max<int64_t>(0, commit.offset - from);
}
std::vector<TopicPartitionOffset> OffsetWatermark::pendingStores() const {
    return behind(&PartitionState::stored);
}
void OffsetWatermark::markStored(const TopicPartitionOffset& stored) {
    advance(&PartitionState::stored, stored);
}

void OffsetWatermark::forget(const std::string& topic, int32_t partition) {
    {
        std::lock_guard lock(mutex_);
        auto it = partitions_.find({topic, partition});
        if (it == partitions_.end()) return;
        // Bytes of records still in the pipeline are released now: their acks will be ignored.
        auto& acks = it->second.acks;
        std::vector<Entry> released;
        for (uint64_t sequence = acks.nextSequence() - acks.pendingCount(); sequence < acks.nextSequence();
             ++sequence) {
            // Completed ones are skipped (false); the first incomplete one releases everything up to the
            // next.
            static_cast<void>(acks.complete(sequence, released));
        }
        for (const Entry& entry : released) in_flight_bytes_ -= entry.bytes;
        partitions_.erase(it);
    }
    acknowledged_.notify_all();
}

size_t OffsetWatermark::inFlightRecords() const {
    std::lock_guard lock(mutex_);
    size_t count = 0;
    for (const auto& [key, state] : partitions_) count += state.acks.pendingCount();
    return count;
}

size_t OffsetWatermark::inFlightBytes() const {
    std::lock_guard lock(mutex_);
    return in_flight_bytes_;
}

size_t OffsetWatermark::inFlightRecords(const std::string& topic, int32_t partition) const {
    std::lock_guard lock(mutex_);
    auto it = partitions_.find({topic, partition});
    return it == partitions_.end() ? 0 : it->second.acks.pendingCount();
}

}  // namespace pgstream::kafka
