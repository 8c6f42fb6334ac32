#include "webhooks/notifier_dead_letters.h"

namespace pgstream::webhooks {

void PostgresDeadLetters::write(const DeadLetter& letter) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (conn_ && PQstatus(conn_.get()) != CONNECTION_OK) conn_.reset();
    if (!conn_) conn_ = pg::connect(url_, false, "pgstream webhook notifier");
    try {
        pg::exec(
            conn_.get(),
            "INSERT INTO pgstream.webhook_dead_letters (subscription_id, url, payload, lsn, idempotency_key, "
            "status, last_error, attempts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            {std::to_string(letter.subscription_id), letter.url, letter.payload,
             letter.lsn.valid() ? std::optional<std::string>(letter.lsn.str()) : std::nullopt,
             letter.idempotency_key,
             letter.status != 0 ? std::optional<std::string>(std::to_string(letter.status)) : std::nullopt,
             letter.last_error, std::to_string(letter.attempts)});
    } catch (...) {
        // The connection may be broken half-way: a fresh one for the next attempt.
        conn_.reset();
        throw;
    }
}

}  // namespace pgstream::webhooks
