// Instrumentation as a decorator (as the Go pgstream does it): wraps an output and records, per target,
// events handed in by action, the processing lag (commit time → the output takes the event) and the time the
// output's process() takes (which includes waiting on its memory guard), into the output's OutputMetrics.
#pragma once

#include <string>

#include "observability/metrics.h"
#include "observability/output_metrics.h"
#include "processor/processor.h"

namespace pgstream {

class InstrumentedProcessor : public Processor {
  public:
    // `target` is the Go pgstream's target name ("stdout-writer", "kafka-batch-writer", ...).
    InstrumentedProcessor(Processor& inner, std::string target, Metrics& metrics);

    std::string name() const override { return inner_.name(); }
    void start() override { inner_.start(); }
    void process(EventPtr event) override;
    void flush() override { inner_.flush(); }
    void source_idle() override { inner_.source_idle(); }
    void close() override { inner_.close(); }
    std::string fatal_error() const override { return inner_.fatal_error(); }
    std::string readiness() const override { return inner_.readiness(); }

  private:
    Processor& inner_;
    OutputMetrics metrics_;
};

}  // namespace pgstream
