// The webhook output on the module contract (pipeline/module.h): output "webhook notifier", configured by
// PGSTREAM_WEBHOOK_SUBSCRIPTION_STORE_URL (as in the Go pgstream). It builds the subscription store (with
// its cache), the subscription server and the notifier (webhooks/notifier.h).
#pragma once

#include "config/config.h"
#include "webhooks/notifier.h"

namespace pgstream::webhooks {

// PGSTREAM_WEBHOOK_NOTIFIER_* over the defaults; throws ConfigError naming the first bad setting. No I/O.
NotifierSettings notifier_settings_from(const Config& config);

// Idempotent. Called by register_builtin_modules().
void register_webhook_module();

}  // namespace pgstream::webhooks
