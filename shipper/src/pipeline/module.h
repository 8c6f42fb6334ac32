// The module contract: how outputs (stdout, Kafka, search, webhooks, your own) and sources (PostgreSQL,
// Kafka) plug into `pgstream run`.
//
// A module is a descriptor: its settings (names, defaults, one-line docs), the YAML section it owns,
// configured() (does the configuration ask for it), validate() (checks its settings; no I/O) and create()
// (builds it from the settings and the runtime context; no network I/O either: a server that is down at
// start-up is a runtime condition the module retries and reports through readiness(), never a
// configuration error). Registration is an explicit call (register_output_module / register_source_module,
// or register_builtin_modules() for every module built into libpgstream): no static initialisers, so a
// program that links libpgstream normally gets every module it registers.
//
// Lifecycle of what create() returns (see processor/processor.h and Source below): start() once the whole
// pipeline is built (network work begins), flush() drains, close() stops.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/acknowledger.h"
#include "config/config.h"
#include "observability/metrics.h"
#include "pipeline/runtime_context.h"
#include "processor/processor.h"

namespace pgstream {

// One setting of a module, for the known-key list and generated documentation.
struct Setting {
    std::string key;            // PGSTREAM_*
    std::string default_value;  // as a user would write it; "" when there is none
    std::string doc;            // one line
};

// A listener together with the checkpointer that owns its positions.
class Source {
  public:
    virtual ~Source() = default;
    virtual std::string name() const = 0;
    // What outputs acknowledge through (the checkpointer).
    virtual Acknowledger& acknowledger() = 0;
    // Feeds `head` until stopped; returns "" on a clean stop, else the fatal error (see Listener::run).
    virtual std::string run(Processor& head) = 0;
    // Thread-safe. Sources built with the pipeline's StopToken also stop when it is requested.
    virtual void stop() = 0;
    // Postgres URL that a translator may use by default ("" when the source has none).
    virtual std::string default_schema_log_url() const { return {}; }
    // "" when connected and streaming, else why not (for GET /ready). Thread-safe.
    virtual std::string readiness() const { return {}; }
    // Registers the source's instruments (once, before run()); observable ones are read at each collection.
    virtual void observe(Metrics& metrics) { (void)metrics; }
    // A JSON object describing the source (GET /status).
    virtual std::string status_json() const { return "{}"; }
};

struct OutputModule {
    std::string name;
    std::vector<Setting> settings;
    // The YAML section under `target:` it owns (optional: a module without one is set with flat keys).
    std::optional<YamlSection> yaml;
    // Whether the configuration asks for this output.
    std::function<bool(const Config&)> configured;
    // Throws ConfigError naming the first bad setting. No I/O. Optional (create() validates as well).
    std::function<void(const Config&)> validate;
    // Builds it: no network I/O. Every wait of the output watches `context.stop()`: waits for new work or
    // for a recovery end at the stop, waits for deliveries when its drain is over (see util/stop_token.h).
    std::function<std::unique_ptr<Processor>(const Config&, Acknowledger&, RuntimeContext&)> create;
};

struct SourceModule {
    std::string name;
    std::vector<Setting> settings;
    std::optional<YamlSection> yaml;  // under `source:`
    std::function<bool(const Config&)> configured;
    std::function<void(const Config&)> validate;
    // `context.stop()`: the pipeline's stop, which the source watches and requests on a fatal error.
    std::function<std::unique_ptr<Source>(const Config&, RuntimeContext&)> create;
};

// Registers the module and its settings (their keys become known keys, its YAML section a known section).
// Registering a module of the same name again is a no-op. Call at start-up, before loading the configuration
// and from one thread.
void register_output_module(OutputModule module);
void register_source_module(SourceModule module);
const std::vector<OutputModule>& registered_outputs();
const std::vector<SourceModule>& registered_sources();

// Every module built into libpgstream: the PostgreSQL source, stdout, the Kafka writer and reader, the webhook
// notifier.
// Idempotent.
void register_builtin_modules();

}  // namespace pgstream
