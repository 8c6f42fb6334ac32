// Output that writes every event as one JSON line (see docs/configuration.md for the fields) to stdout or a
// file, batched and memory-guarded like every other output.
#pragma once

#include <memory>
#include <string>

#include "observability/output_metrics.h"
#include "processor/batching.h"
#include "processor/processor.h"
#include "processor/stdout/line_sink.h"
#include "util/stop_token.h"
#include "wal/event_codec.h"

namespace pgstream {

struct StdoutWriterSettings {
    std::string file = "-";  // "-" = standard output; otherwise a path opened for appending
    BatchSettings batch;
    LineSink::WriteFunction write_function;  // empty: write(2); tests inject faults here
};

class StdoutWriter : public Processor {
  public:
    // Throws std::runtime_error when the file cannot be opened. A pipe or socket is written without blocking,
    // so that a reader that stops reading holds the shutdown no longer than the stop's drain.
    // `metrics` (null: none) records what became of each event and the memory guard.
    StdoutWriter(StdoutWriterSettings settings, Acknowledger& acknowledger, StopToken stop = {},
                 std::unique_ptr<OutputMetrics> metrics = nullptr);
    ~StdoutWriter() override;

    std::string name() const override { return "stdout writer"; }
    void process(EventPtr event) override;
    void flush() override;
    // A write(2) per partial batch is cheap: send at once rather than after the batch timeout.
    void source_idle() override;
    void close() override;
    std::string fatal_error() const override;

    const BatchSender& sender() const { return *sender_; }

  private:
    void write_batch(const std::vector<EventPtr>& batch);

    StdoutWriterSettings settings_;
    std::unique_ptr<LineSink> sink_;
    int blocking_flags_ = -1;  // the fd's flags before O_NONBLOCK was added, restored on destruction
    StopToken stop_;
    EventJsonBuffer buffer_;
    std::unique_ptr<BatchSender> sender_;
    // Declared after the sender: destroyed first, it stops reading the sender's memory guard.
    std::unique_ptr<OutputMetrics> metrics_;
};

}  // namespace pgstream
