// A source of events. It feeds a Processor and reports positions to a checkpointer.
#pragma once

#include <string>

namespace pgstream {

class Listener {
  public:
    virtual ~Listener() = default;
    // Reads until stop() or a fatal error; then stops reading, drains what is in flight through the
    // processor, writes a final checkpoint and returns. Returns an empty string on a clean stop, else the
    // fatal error.
    virtual std::string run() = 0;
    // Thread-safe; may be called from a signal-watching thread.
    virtual void stop() = 0;
};

}  // namespace pgstream
