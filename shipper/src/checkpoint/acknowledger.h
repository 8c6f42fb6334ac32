// How outputs tell the checkpointer that they are done with an event.
#pragma once

#include <string>

#include "wal/event.h"

namespace pgstream {

class Acknowledger {
  public:
    virtual ~Acknowledger() = default;
    // The event is delivered (or deliberately skipped) by one consumer. Every event handed to a processor
    // must be acknowledged exactly once by it; until then the source position cannot move past it.
    virtual void acknowledge(const Event& event) = 0;
    // `additional` more acknowledgements are needed for this event before it counts as delivered (a
    // fan-out to N outputs retains N-1). Must be called before handing the event on.
    virtual void retain(const Event& event, int additional) = 0;
    // Non-empty once acknowledgements broke the checkpointer's rules (an event acknowledged more often than
    // it was handed out, or for a position it does not know). Acknowledgements arrive on output threads,
    // where an exception would end the process without a final checkpoint: implementations record the
    // violation instead of throwing, and the source stops the run with this message.
    virtual std::string fatal_error() const { return {}; }
};

}  // namespace pgstream
