// Where an output puts the events it gave up on (a permanent refusal, or retries exhausted), so that nothing
// is silently lost: the stream goes on, the event stays readable there, and only then is it acknowledged.
#pragma once

#include <mutex>
#include <string>

#include "processor/event_result.h"
#include "processor/stdout/line_sink.h"
#include "wal/event.h"

namespace pgstream {

class DeadLetterSink {
  public:
    virtual ~DeadLetterSink() = default;
    // For logs: "dead-letter file /var/lib/pgstream/search.jsonl".
    virtual std::string name() const = 0;
    // Stores the event durably before returning; throws std::runtime_error when it cannot (the caller must
    // then not acknowledge the event). Thread-safe.
    virtual void write(const Event& event, const EventResult& result, int attempts) = 0;
};

// One JSON line per event, on disk (fdatasync) before write() returns:
// {"output":"search indexer","failed_at":"2026-12-01T02:03:04.567Z","status":400,"reason":"...","attempts":1,
//  "event":<the event JSON, as the stdout output prints it>}
class DeadLetterFile : public DeadLetterSink {
  public:
    // Opens (creating with mode 0600, appending) `path`; throws std::runtime_error naming it on failure.
    DeadLetterFile(const std::string& path, std::string output);

    std::string name() const override { return "dead-letter file " + sink_.name(); }
    void write(const Event& event, const EventResult& result, int attempts) override;
    const std::string& path() const { return sink_.name(); }

  private:
    const std::string output_;
    std::mutex mutex_;
    LineSink sink_;  // a failed write leaves no torn line behind
    std::string line_;
};

}  // namespace pgstream
