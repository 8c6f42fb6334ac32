// The one interface every pipeline stage after the listener implements: translators, filters and outputs.
#pragma once

#include <string>

#include "wal/event.h"

namespace pgstream {

class Processor {
  public:
    virtual ~Processor() = default;
    virtual std::string name() const = 0;
    // Begins the work that talks to servers (connecting, preparing a topic); called once the whole pipeline
    // is built, before the first event. Construction does no network I/O: a server that is down is retried
    // here or while sending, never reported as a configuration error. Must not block.
    virtual void start() {}
    // Takes one event. May block to apply back-pressure (the memory guard). An output acknowledges every
    // event exactly once, through the Acknowledger it was built with, once it is delivered or deliberately
    // skipped; decorators forward the event or acknowledge it themselves when they drop it.
    // Throws on a failure that must stop the pipeline, or Stopped when a stop ended a wait (the event was
    // then not taken and is never acknowledged).
    virtual void process(EventPtr event) = 0;
    // Delivers everything accepted so far; returns when done. Called on shutdown.
    virtual void flush() {}
    // The source has handed over everything it has received for now. An output whose sends are cheap starts
    // sending its partial batch instead of waiting for the batch timeout, so a burst's last events are not
    // held back; outputs where each send is a costly request keep batching by timeout. Must not block.
    virtual void source_idle() {}
    // Stops background work. After close() the processor accepts nothing.
    virtual void close() {}
    // Non-empty once the processor has failed permanently (e.g. the output refused a batch too often). The
    // message names the module that failed ("stdout writer: ..."): decorators and fan-outs pass it on as is.
    virtual std::string fatal_error() const { return {}; }
    // "" when the processor can deliver, else why not ("kafka writer: no Kafka broker ... is reachable"), for
    // GET /ready. Thread-safe; must not block.
    virtual std::string readiness() const { return {}; }
};

}  // namespace pgstream
