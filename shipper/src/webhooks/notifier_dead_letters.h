// Where the webhook notifier puts the deliveries it gave up: pgstream.webhook_dead_letters (migration 0008).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "util/pg.h"
#include "wal/lsn.h"

namespace pgstream::webhooks {

struct DeadLetter {
    int64_t subscription_id = 0;
    std::string url;
    std::string payload;  // the body as it was sent
    Lsn lsn;
    std::string idempotency_key;
    int status = 0;  // HTTP status of the last attempt, 0 when no response arrived
    std::string last_error;
    int attempts = 0;
};

class DeadLetterStore {
  public:
    virtual ~DeadLetterStore() = default;
    // Stores the dead letter durably before returning; throws when it could not (the caller retries).
    virtual void write(const DeadLetter& letter) = 0;
    // "table pgstream.webhook_dead_letters", for logs.
    virtual std::string describe() const = 0;
};

// One connection, made on first use and again after a failure (no I/O at construction).
class PostgresDeadLetters : public DeadLetterStore {
  public:
    explicit PostgresDeadLetters(std::string url) : url_(std::move(url)) {}
    void write(const DeadLetter& letter) override;
    std::string describe() const override { return "table pgstream.webhook_dead_letters"; }

  private:
    const std::string url_;
    std::mutex mutex_;
    pg::ConnPtr conn_;
};

}  // namespace pgstream::webhooks
