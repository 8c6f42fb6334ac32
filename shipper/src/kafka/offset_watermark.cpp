#include "kafka/offset_watermark.h"

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
    const uint64_t sequence = state.acks.add(Entry{record.offset, bytes});
    state.sequence_of_offset.emplace(record.offset, sequence);
    in_flight_bytes_ += bytes;
}

bool OffsetWatermark::acknowledge(const TopicPartitionOffset& record) {
    std::lock_guard lock(mutex_);
    auto it = partitions_.find({record.topic, record.partition});
    if (it == partitions_.end()) return false;
    PartitionState& state = it->second;
    auto found = state.sequence_of_offset.find(record.offset);
    if (found == state.sequence_of_offset.end()) return false;
    const uint64_t sequence = found->second;
    state.sequence_of_offset.erase(found);
    for (const Entry& done : state.acks.complete(sequence)) {
        state.next_to_commit = done.offset + 1;
        in_flight_bytes_ -= done.bytes;
    }
    return true;
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
void OffsetWatermark::markCommitted(const TopicPartitionOffset& commit) {
    advance(&PartitionState::committed, commit);
}
std::vector<TopicPartitionOffset> OffsetWatermark::pendingStores() const {
    return behind(&PartitionState::stored);
}
void OffsetWatermark::markStored(const TopicPartitionOffset& stored) {
    advance(&PartitionState::stored, stored);
}

void OffsetWatermark::forget(const std::string& topic, int32_t partition) {
    std::lock_guard lock(mutex_);
    auto it = partitions_.find({topic, partition});
    if (it == partitions_.end()) return;
    // Bytes of records still in the pipeline are released now: their acks will be ignored.
    size_t pending_bytes = 0;
    auto& acks = it->second.acks;
    while (acks.pendingCount() > 0) {
        // Completing every remaining sequence in order returns each entry exactly once.
        for (const Entry& entry : acks.complete(acks.nextSequence() - acks.pendingCount()))
            pending_bytes += entry.bytes;
    }
    in_flight_bytes_ -= pending_bytes;
    partitions_.erase(it);
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
