// How outputs tell the checkpointer that they are done with an event.
#pragma once

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
};

}  // namespace pgstream
