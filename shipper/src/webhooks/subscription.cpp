#include "webhooks/subscription.h"

#include <algorithm>

namespace pgstream::webhooks {

namespace {

bool matches_name(const std::string& wanted, const std::string& name) {
    return wanted.empty() || wanted == name;
}

}  // namespace

bool Subscription::matches(const Event& event) const {
    if (event.action == Action::Message) return schema.empty() && table.empty() && event_types.empty();
    if (!event_types.empty()) {
        const std::string type(1, static_cast<char>(event.action));
        if (std::find(event_types.begin(), event_types.end(), type) == event_types.end()) return false;
    }
    if (matches_name(schema, event.schema) && matches_name(table, event.table)) return true;
    if (!event.is_schema_log() || !table.empty()) return false;
    const Column* described = event.find_column("schema_name");
    return described != nullptr && described->value.is_string() &&
           matches_name(schema, described->value.text);
}

}  // namespace pgstream::webhooks
