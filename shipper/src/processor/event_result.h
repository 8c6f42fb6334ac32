// What an output reports for each event it was handed: the contract between outputs and the BatchSender (and
// any output that completes events itself). Every event ends with exactly one final result; until then the
// checkpointer cannot move past it.
#pragma once

#include <string>

namespace pgstream {

enum class Delivery {
    kDelivered,  // the target has it: acknowledged
    kSkipped,  // deliberately not sent (nothing to do for it, e.g. a 409 for an older version): acknowledged
    kRetry,    // not delivered this time (429, 5xx, timeout, connection error): sent again after a backoff
    kGiveUp,   // permanently refused (400, another 4xx): written to the output's dead-letter sink,
               // acknowledged
    kFatal,    // the output cannot go on: the pipeline stops and the event stays unacknowledged
    kPending,  // handed over; the output acknowledges it itself once it completes (e.g. Kafka delivery
               // reports)
};

// The name metrics and logs use: "delivered", "skipped", "retry", "given_up", "fatal", "pending".
const char* delivery_name(Delivery delivery);

struct EventResult {
    Delivery delivery = Delivery::kDelivered;
    int status = 0;      // the protocol's status (HTTP) when there is one, else 0
    std::string reason;  // why, for every result but kDelivered; never holds a secret

    static EventResult delivered() { return {}; }
    static EventResult skipped(std::string reason) { return {Delivery::kSkipped, 0, std::move(reason)}; }
    static EventResult retry(int status, std::string reason) {
        return {Delivery::kRetry, status, std::move(reason)};
    }
    static EventResult give_up(int status, std::string reason) {
        return {Delivery::kGiveUp, status, std::move(reason)};
    }
    static EventResult fatal(std::string reason) { return {Delivery::kFatal, 0, std::move(reason)}; }
    static EventResult pending() { return {Delivery::kPending, 0, {}}; }

    // A final result: the event is done with (acknowledged, or in the dead-letter sink).
    bool final() const {
        return delivery == Delivery::kDelivered || delivery == Delivery::kSkipped ||
               delivery == Delivery::kGiveUp;
    }
};

}  // namespace pgstream
