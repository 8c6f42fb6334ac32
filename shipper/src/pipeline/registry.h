// Where modules outside the core (Kafka, search, webhooks, your own) plug into `pgstream run`.
//
// A module registers a factory from a static object in its .cpp:
//
//     static pgstream::OutputRegistration kafka_writer({"kafka writer",
//         [](const pgstream::Config& c) { return c.has("PGSTREAM_KAFKA_SERVERS") && ...; },
//         [](const pgstream::Config& c, pgstream::Acknowledger& ack, const pgstream::StopToken& stop) {
//             return std::make_unique<KafkaWriter>(...); }});
//
// The CLI and tests link libpgstream as a whole archive, so these objects are never dropped by the linker.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/acknowledger.h"
#include "config/config.h"
#include "listener/listener.h"
#include "observability/metrics.h"
#include "processor/processor.h"
#include "util/stop_token.h"

namespace pgstream {

struct OutputFactory {
    std::string name;
    // Whether the configuration asks for this output.
    std::function<bool(const Config&)> configured;
    // Builds it; throws ConfigError for bad settings. Every wait of the output watches `stop`: waits for new
    // work or for a recovery end at the stop, waits for deliveries when its drain is over (see
    // util/stop_token.h).
    std::function<std::unique_ptr<Processor>(const Config&, Acknowledger&, const StopToken&)> create;
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
    // Registers the source's instruments (once, before run()); observable ones are read at each collection.
    virtual void observe(Metrics& metrics) { (void)metrics; }
    // "" when the source is connected and reading, else why not (GET /ready; no secrets).
    virtual std::string readiness() const { return {}; }
    // A JSON object describing the source (GET /status).
    virtual std::string status_json() const { return "{}"; }
};

struct SourceFactory {
    std::string name;
    std::function<bool(const Config&)> configured;
    // `stop`: the pipeline's stop, which the source watches and requests on a fatal error.
    std::function<std::unique_ptr<Source>(const Config&, const StopToken&)> create;
};

void register_output(OutputFactory factory);
void register_source(SourceFactory factory);
const std::vector<OutputFactory>& registered_outputs();
const std::vector<SourceFactory>& registered_sources();

struct OutputRegistration {
    explicit OutputRegistration(OutputFactory factory) { register_output(std::move(factory)); }
};
struct SourceRegistration {
    explicit SourceRegistration(SourceFactory factory) { register_source(std::move(factory)); }
};

}  // namespace pgstream
