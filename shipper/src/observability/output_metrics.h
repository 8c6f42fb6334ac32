// The instruments of one output, shared by every output (stdout, Kafka, search, webhooks, your own) so that
// all of them are measured alike. Every series carries the label `target`: the output's name as the Go
// pgstream's `target` attribute spells it ("stdout-writer", "kafka-batch-writer", "search-batch-indexer",
// "webhooks-notifier"). Labels have bounded values: target, action, outcome; never table names or row data.
//
//   pgstream.target.events              counter   {event}  target, action           events handed to the
//   output pgstream.target.event.outcomes      counter   {event}  target, action, outcome  what became of
//   them pgstream.target.processing.lag      histogram s        target                   commit → the output
//   takes it pgstream.target.processing.latency  histogram s        target                   time process()
//   takes pgstream.target.memory.used         gauge     By       target                   memory guard bytes
//   held pgstream.target.memory.limit        gauge     By       target                   memory guard budget
//   pgstream.target.memory.blocked      counter   s        target                   time spent waiting for it
//
// Outcomes: delivered, skipped (deliberately not sent, acknowledged), retried (one failed attempt: the event
// is counted again when it is finally delivered or dead-lettered), dead_lettered (given up, written to the
// output's dead-letter sink), fatal (the output failed for good on it; the pipeline stops).
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "observability/metrics.h"
#include "wal/event.h"

namespace pgstream {

class MemoryGuard;
struct EventResult;  // processor/event_result.h

enum class OutputOutcome { kDelivered, kSkipped, kRetried, kDeadLettered, kFatal };

class OutputMetrics {
  public:
    // `target`: see above. Registers every series of the output at once (zeros are worth seeing).
    OutputMetrics(Metrics& metrics, std::string target);
    ~OutputMetrics();
    OutputMetrics(const OutputMetrics&) = delete;
    OutputMetrics& operator=(const OutputMetrics&) = delete;

    const std::string& target() const { return target_; }
    // The registry, for an output's own instruments beside these (the Kafka writer's batch histograms).
    Metrics& registry() const { return metrics_; }

    // The output takes `event` (the pipeline's instrumentation calls this before the output's process()):
    // counts it and observes its processing lag. Returns the time to hand to accepted(). One thread at a time
    // (the source's). These two record into per-output tallies of that thread (plain stores, no lock), which
    // every collection (scrape, export) adds to the instruments: per event they cost a bucket search and a
    // few stores instead of two histogram locks and a counter update.
    std::chrono::system_clock::time_point taking(const Event& event);
    // The output's process() returned: observes the processing latency since `taking_started`.
    void accepted(std::chrono::system_clock::time_point taking_started);

    // What became of one event. Thread-safe, lock-free.
    void record(Action action, OutputOutcome outcome, uint64_t events = 1);
    void record(const Event& event, OutputOutcome outcome) { record(event.action, outcome); }
    // Per the per-event result contract: kDelivered → delivered, kSkipped → skipped, kRetry → retried,
    // kGiveUp → dead_lettered, kFatal → fatal; kPending counts nothing (the output records the delivery
    // when it completes).
    void record(const Event& event, const EventResult& result);
    // A BatchSettings::on_result that records every result of a BatchSender into this object (which must
    // outlive the sender), then calls `also` (the on_result the settings had, if any).
    using ResultCallback = std::function<void(const Event&, const EventResult&)>;
    ResultCallback result_recorder(ResultCallback also = nullptr);

    // Observes `guard` (bytes used, limit, time blocked) at every collection, until this object is destroyed
    // (the guard must outlive it).
    void observe_memory(const MemoryGuard& guard);

  private:
    struct Observed;  // what the collection reads, detached when this object goes
    struct Taken;     // the source thread's tallies of taking() and accepted(), published at collection

    Metrics& metrics_;
    const std::string target_;
    std::array<prometheus::Counter*, 5> events_by_action_{};
    std::array<std::array<prometheus::Counter*, 5>, 5> outcomes_{};  // [action][outcome]
    prometheus::Histogram& lag_;
    prometheus::Histogram& latency_;
    std::shared_ptr<Observed> observed_;
    std::shared_ptr<Taken> taken_;
    // A transaction's events share one commit time: parse it once.
    SharedText last_commit_text_;
    std::optional<double> last_commit_time_;
};

// Seconds since the Unix epoch of a commit time as wal2json prints it ("2024-05-01 12:34:56.123456+00",
// "+05:30" offsets, "infinity" excluded); std::nullopt when it is not one.
std::optional<double> parse_commit_time(const std::string& text);

}  // namespace pgstream
