// Subscription::matches: which events a webhook subscription receives.
#include <gtest/gtest.h>

#include "webhooks/subscription.h"

namespace pgstream::webhooks {
namespace {

Event row_event(Action action, const std::string& schema, const std::string& table) {
    Event event;
    event.action = action;
    event.schema = schema;
    event.table = table;
    return event;
}

Event schema_change_of(const std::string& described_schema) {
    Event event = row_event(Action::Insert, "pgstream", "schema_log");
    Column column;
    column.name = "schema_name";
    column.value.kind = JsonValue::Kind::String;
    column.value.text = described_schema;
    event.columns.push_back(column);
    return event;
}

Subscription subscription(const std::string& schema, const std::string& table,
                          std::vector<std::string> types) {
    Subscription result;
    result.url = "https://example.com/hook";
    result.schema = schema;
    result.table = table;
    result.event_types = std::move(types);
    return result;
}

TEST(WebhookSubscription, EmptyFiltersMatchEveryRowChange) {
    const Subscription everything = subscription("", "", {});
    EXPECT_TRUE(everything.matches(row_event(Action::Insert, "public", "orders")));
    EXPECT_TRUE(everything.matches(row_event(Action::Truncate, "sales", "items")));
}

TEST(WebhookSubscription, SchemaTableAndEventTypeEachFilter) {
    const Subscription orders_deletes = subscription("public", "orders", {"D", "T"});
    EXPECT_TRUE(orders_deletes.matches(row_event(Action::Delete, "public", "orders")));
    EXPECT_TRUE(orders_deletes.matches(row_event(Action::Truncate, "public", "orders")));
    EXPECT_FALSE(orders_deletes.matches(row_event(Action::Insert, "public", "orders")));
    EXPECT_FALSE(orders_deletes.matches(row_event(Action::Delete, "public", "items")));
    EXPECT_FALSE(orders_deletes.matches(row_event(Action::Delete, "sales", "orders")));

    const Subscription any_table_of_sales = subscription("sales", "", {});
    EXPECT_TRUE(any_table_of_sales.matches(row_event(Action::Update, "sales", "x")));
    EXPECT_FALSE(any_table_of_sales.matches(row_event(Action::Update, "public", "x")));

    const Subscription orders_in_any_schema = subscription("", "orders", {"U"});
    EXPECT_TRUE(orders_in_any_schema.matches(row_event(Action::Update, "sales", "orders")));
    EXPECT_FALSE(orders_in_any_schema.matches(row_event(Action::Update, "sales", "items")));
}

TEST(WebhookSubscription, SchemaChangeMatchesAsSchemaLogInsertAndAsTheSchemaItDescribes) {
    EXPECT_TRUE(subscription("", "", {}).matches(schema_change_of("public")));
    EXPECT_TRUE(subscription("pgstream", "schema_log", {"I"}).matches(schema_change_of("public")));
    EXPECT_TRUE(subscription("public", "", {}).matches(schema_change_of("public")));
    EXPECT_TRUE(subscription("public", "", {"I"}).matches(schema_change_of("public")));
    EXPECT_FALSE(subscription("public", "", {"U", "D"}).matches(schema_change_of("public")));
    EXPECT_FALSE(subscription("sales", "", {}).matches(schema_change_of("public")));
    // A schema change describes a whole schema, not one table.
    EXPECT_FALSE(subscription("public", "orders", {}).matches(schema_change_of("public")));
    // Only pgstream.schema_log rows describe schemas.
    Event not_schema_log = schema_change_of("public");
    not_schema_log.table = "table_ids";
    EXPECT_FALSE(subscription("public", "", {}).matches(not_schema_log));
}

TEST(WebhookSubscription, LogicalMessagesOnlyReachSubscriptionsToEverything) {
    Event message;
    message.action = Action::Message;
    message.prefix = "app";
    EXPECT_TRUE(subscription("", "", {}).matches(message));
    EXPECT_FALSE(subscription("public", "", {}).matches(message));
    EXPECT_FALSE(subscription("", "", {"I", "U", "D", "T"}).matches(message));
}

}  // namespace
}  // namespace pgstream::webhooks
