// Wires a pipeline from configuration: source (listener + checkpointer) → translator → filter → outputs, from
// the registered modules (pipeline/module.h: call register_builtin_modules() first).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "listener/postgres/postgres_source.h"
#include "observability/instrumented_processor.h"
#include "observability/metrics.h"
#include "pipeline/module.h"
#include "pipeline/observability.h"
#include "pipeline/runtime_context.h"
#include "processor/filter/filter.h"
#include "processor/translator/translator.h"
#include "snapshot/snapshotter.h"

namespace pgstream {

class Pipeline {
  public:
    // Throws ConfigError for missing or invalid settings (the CLI exits 2 with its message). Builds every
    // module with one RuntimeContext (metrics, stop token, shared HTTP client); does no network I/O.
    static std::unique_ptr<Pipeline> build(const Config& config);

    // Starts every output (Processor::start), then runs until stop() or a fatal error; returns "" on a clean
    // stop: everything the outputs accepted was delivered and checkpointed. After stop() the outputs have
    // PGSTREAM_SHUTDOWN_DRAIN_TIMEOUT to deliver; what they have not delivered by then stays unconfirmed and
    // run() returns an error.
    std::string run();
    // `pgstream snapshot`: starts the outputs, snapshots the tables of
    // PGSTREAM_POSTGRES_INITIAL_SNAPSHOT_TABLES into them and returns once every row is delivered ("" on
    // success). Does not stream.
    std::string snapshot_only();
    // Thread-safe, and safe to call before run().
    void stop();

    Source& source() { return *source_; }
    Metrics& metrics() { return *metrics_; }
    RuntimeContext& context() { return *context_; }
    // The components that are not ready (name, why): empty when the pipeline is ready (GET /ready).
    std::vector<std::pair<std::string, std::string>> readiness() const;
    std::vector<std::string> describe() const;

  private:
    Pipeline() = default;

    void instrument_outputs();
    void serve_health(HealthServer& server);
    // Starts the outputs, the health server and the exporters; "" or why not.
    std::string start();
    void finish();
    std::string run_snapshot(bool one_off);

    // Handed to every module: the one stop of this pipeline and its drain deadline.
    StopToken stop_;
    std::unique_ptr<Metrics> metrics_;
    std::unique_ptr<RuntimeContext> context_;  // handed to every module's create()
    std::unique_ptr<PipelineObservability> observability_;
    std::vector<std::unique_ptr<InstrumentedProcessor>> instrumented_;
    std::unique_ptr<Source> source_;
    std::vector<std::unique_ptr<Processor>> outputs_;
    std::unique_ptr<Processor> fan_out_;
    std::unique_ptr<Filter> filter_;
    std::unique_ptr<Translator> translator_;
    Processor* head_ = nullptr;
    // The PostgreSQL source's snapshot (docs/snapshot.md); null for other sources.
    SnapshotSettings snapshot_settings_;
    std::unique_ptr<Snapshotter> snapshotter_;
    std::atomic<bool> snapshotting_{false};  // GET /status phase
};

}  // namespace pgstream
