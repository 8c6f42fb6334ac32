// Instrumentation as a decorator (as the Go pgstream does it): wraps an output and records, per target,
// events handed in by action, the processing lag (commit time → the output takes the event) and the time the
// output's process() takes (which includes waiting on its memory guard).
#pragma once

#include <array>
#include <chrono>
#include <optional>
#include <string>

#include "observability/metrics.h"
#include "processor/processor.h"

namespace pgstream {

// Seconds since the Unix epoch of a commit time as wal2json prints it ("2024-05-01 12:34:56.123456+00",
// "+05:30" offsets, "infinity" excluded); std::nullopt when it is not one.
std::optional<double> parse_commit_time(const std::string& text);

class InstrumentedProcessor : public Processor {
  public:
    // `target` is the Go pgstream's target name ("stdout-writer", "kafka-batch-writer", ...).
    InstrumentedProcessor(Processor& inner, std::string target, Metrics& metrics);

    std::string name() const override { return inner_.name(); }
    void process(EventPtr event) override;
    void flush() override { inner_.flush(); }
    void source_idle() override { inner_.source_idle(); }
    void close() override { inner_.close(); }
    std::string fatal_error() const override { return inner_.fatal_error(); }

  private:
    Processor& inner_;
    std::array<prometheus::Counter*, 5> events_by_action_{};
    prometheus::Histogram& lag_;
    prometheus::Histogram& latency_;
    // A transaction's events share one commit time: parse it once.
    std::string last_commit_text_;
    std::optional<double> last_commit_time_;
};

}  // namespace pgstream
