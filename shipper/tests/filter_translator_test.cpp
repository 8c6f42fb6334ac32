#include <gtest/gtest.h>

#include "processor/filter/filter.h"
#include "processor/translator/translator.h"
#include "wal/record_parser.h"

namespace pgstream {
namespace {

class CollectingProcessor : public Processor {
  public:
    std::string name() const override { return "collector"; }
    void process(EventPtr event) override { events.push_back(std::move(event)); }
    std::vector<EventPtr> events;
};

class CountingAcknowledger : public Acknowledger {
  public:
    void acknowledge(const Event& event) override { acked.push_back(event.table); }
    void retain(const Event&, int) override {}
    std::vector<std::string> acked;
};

EventPtr event(const std::string& json) {
    return parse_wal2json_record(json).event;
}

EventPtr row(const std::string& schema, const std::string& table, const std::string& action = "I") {
    return event(R"({"action":")" + action + R"(","lsn":"0/10","schema":")" + schema + R"(","table":")" +
                 table + R"(","columns":[{"name":"id","type":"integer","value":1}]})");
}

TEST(GlobMatch, Wildcards) {
    EXPECT_TRUE(glob_match("*", ""));
    EXPECT_TRUE(glob_match("*", "anything"));
    EXPECT_TRUE(glob_match("user*", "users"));
    EXPECT_TRUE(glob_match("*_log", "audit_log"));
    EXPECT_TRUE(glob_match("a*b*c", "axxbyyc"));
    EXPECT_FALSE(glob_match("a*b*c", "axxbyy"));
    EXPECT_FALSE(glob_match("users", "users2"));
    EXPECT_TRUE(glob_match("", ""));
}

TEST(Filter, IncludeAndExcludeTablesAndSchemas) {
    CollectingProcessor next;
    CountingAcknowledger ack;
    FilterSettings settings;
    settings.include_tables = {"public.*", "sales.orders", "items"};
    settings.exclude_tables = {"public.secret*"};
    Filter filter(settings, next, ack);
    EXPECT_TRUE(filter.accepts(*row("public", "items")));
    EXPECT_TRUE(filter.accepts(*row("sales", "orders")));
    EXPECT_FALSE(filter.accepts(*row("sales", "refunds")));
    EXPECT_FALSE(filter.accepts(*row("public", "secret_keys")));
    EXPECT_FALSE(filter.accepts(*row("other", "items"))) << "a bare table name means public.<table>";

    FilterSettings schemas;
    schemas.include_schemas = {"app*"};
    schemas.exclude_schemas = {"app_tmp"};
    Filter by_schema(schemas, next, ack);
    EXPECT_TRUE(by_schema.accepts(*row("app", "t")));
    EXPECT_TRUE(by_schema.accepts(*row("app2", "t")));
    EXPECT_FALSE(by_schema.accepts(*row("app_tmp", "t")));
    EXPECT_FALSE(by_schema.accepts(*row("public", "t")));
}

TEST(Filter, DroppedEventsAreAcknowledgedAndPassedOnesForwarded) {
    CollectingProcessor next;
    CountingAcknowledger ack;
    FilterSettings settings;
    settings.exclude_tables = {"*.noise"};
    Filter filter(settings, next, ack);
    filter.process(row("public", "noise"));
    filter.process(row("public", "signal"));
    ASSERT_EQ(next.events.size(), 1u);
    EXPECT_EQ(next.events[0]->table, "signal");
    EXPECT_EQ(ack.acked, std::vector<std::string>{"noise"});
    EXPECT_EQ(filter.dropped(), 1u);
}

TEST(Filter, HidesPgstreamBookkeepingButKeepsSchemaChangesAndMessages) {
    CollectingProcessor next;
    CountingAcknowledger ack;
    FilterSettings settings;
    settings.include_schemas = {"public"};
    Filter filter(settings, next, ack);
    EXPECT_FALSE(filter.accepts(*row("pgstream", "table_ids")));
    EXPECT_FALSE(filter.accepts(*row("pgstream", "schema_log", "U"))) << "the acks' own updates";
    auto schema_change = [](const std::string& schema_name) {
        return event(R"({"action":"I","lsn":"0/1","schema":"pgstream","table":"schema_log","columns":[)"
                     R"({"name":"schema_name","type":"text","value":")" +
                     schema_name + R"("}]})");
    };
    EXPECT_TRUE(filter.accepts(*schema_change("public")));
    EXPECT_FALSE(filter.accepts(*schema_change("other"))) << "schema changes follow the schema filter";
    EXPECT_TRUE(filter.accepts(
        *event(R"({"action":"M","lsn":"0/2","transactional":false,"prefix":"p","content":"c"})")));
}

class FakeStore : public SchemaLogStore {
  public:
    std::optional<SchemaLogEntry> latest_acked(const std::string& schema_name) override {
        ++lookups;
        auto it = entries.find(schema_name);
        if (it == entries.end()) return std::nullopt;
        return it->second;
    }
    void ack(const SchemaLogEntry& entry) override { acked_ids.push_back(entry.id); }
    std::map<std::string, SchemaLogEntry> entries;
    std::vector<std::string> acked_ids;
    int lookups = 0;
};

const char* kSchema =
    R"({"tables":[{"oid":"16442","name":"items","pgstream_id":"tid1","primary_key_columns":["a","b"],)"
    R"("columns":[{"pgstream_id":"tid1-1","name":"a","type":"integer","nullable":false,"unique":false},)"
    R"({"pgstream_id":"tid1-2","name":"b","type":"integer","nullable":false,"unique":false},)"
    R"({"pgstream_id":"tid1-3","name":"note","type":"text","nullable":true,"unique":false}]},)"
    R"({"oid":"16450","name":"nopk","pgstream_id":"tid2","primary_key_columns":[],)"
    R"("columns":[{"pgstream_id":"tid2-1","name":"x","type":"integer","nullable":true,"unique":true},)"
    R"({"pgstream_id":"tid2-2","name":"code","type":"text","nullable":false,"unique":true}]},)"
    R"({"oid":"16460","name":"bare","pgstream_id":"tid3","primary_key_columns":[],)"
    R"("columns":[{"pgstream_id":"tid3-1","name":"v","type":"integer","nullable":true,"unique":false}]}]})";

EventPtr schema_log_insert(const std::string& id, int version, const std::string& schema_json) {
    std::string escaped = json_quote(schema_json);
    return event(R"({"action":"I","lsn":"0/100","schema":"pgstream","table":"schema_log","columns":[)"
                 R"({"name":"id","type":"pgstream.xid","value":")" +
                 id + R"("},{"name":"version","type":"bigint","value":)" + std::to_string(version) +
                 R"(},{"name":"schema_name","type":"text","value":"public"},)"
                 R"({"name":"schema","type":"jsonb","value":)" +
                 escaped + R"(},{"name":"acked","type":"boolean","value":false}]})");
}

TEST(Translator, AcknowledgesSchemaChangesAndTranslatesLaterRows) {
    auto store = std::make_unique<FakeStore>();
    FakeStore* store_view = store.get();
    CollectingProcessor next;
    CountingAcknowledger ack;
    Translator translator(std::move(store), next, ack);

    translator.process(schema_log_insert("xid1", 1, kSchema));
    EXPECT_EQ(store_view->acked_ids, std::vector<std::string>{"xid1"});
    ASSERT_EQ(next.events.size(), 1u) << "the schema change itself is forwarded";
    EXPECT_TRUE(next.events[0]->is_schema_log());

    translator.process(event(
        R"({"action":"U","lsn":"0/2A","schema":"public","table":"items","columns":[{"name":"a","type":"integer","value":1},)"
        R"({"name":"b","type":"integer","value":2},{"name":"note","type":"text","value":"n"}],)"
        R"("identity":[{"name":"a","type":"integer","value":1},{"name":"b","type":"integer","value":3}]})"));
    ASSERT_EQ(next.events.size(), 2u);
    const Event& translated = *next.events[1];
    EXPECT_EQ(translated.metadata.table_pgstream_id, "tid1");
    EXPECT_EQ(translated.metadata.id_col_pgstream_ids, (std::vector<std::string>{"tid1-1", "tid1-2"}))
        << "composite primary key";
    EXPECT_EQ(translated.metadata.version, "0/2A");
    EXPECT_EQ(translated.columns[2].id, "tid1-3");
    EXPECT_EQ(translated.identity[1].id, "tid1-2");
    EXPECT_EQ(store_view->lookups, 0) << "the acknowledged entry is cached";
}

TEST(Translator, IdentityFallsBackToFirstUniqueNotNullColumnAndCountsTablesWithout) {
    auto store = std::make_unique<FakeStore>();
    SchemaLogEntry entry;
    entry.id = "xid0";
    entry.schema_name = "public";
    parse_schema_document(kSchema, entry);
    store->entries["public"] = entry;
    CollectingProcessor next;
    CountingAcknowledger ack;
    Translator translator(std::move(store), next, ack);

    translator.process(row("public", "nopk"));
    EXPECT_EQ(next.events.back()->metadata.id_col_pgstream_ids, std::vector<std::string>{"tid2-2"})
        << "x is unique but nullable; code is unique and not null";
    translator.process(row("public", "bare"));
    EXPECT_TRUE(next.events.back()->metadata.id_col_pgstream_ids.empty());
    EXPECT_EQ(next.events.back()->metadata.table_pgstream_id, "tid3");
    EXPECT_EQ(translator.stats().without_identity.load(), 1u);
}

TEST(Translator, PassesUnknownSchemasUntranslatedAndHidesPgstreamWrites) {
    CollectingProcessor next;
    CountingAcknowledger ack;
    auto store = std::make_unique<FakeStore>();
    FakeStore* store_view = store.get();
    Translator translator(std::move(store), next, ack);
    translator.process(row("elsewhere", "t"));
    translator.process(row("elsewhere", "t"));
    ASSERT_EQ(next.events.size(), 2u);
    EXPECT_TRUE(next.events[0]->metadata.table_pgstream_id.empty());
    EXPECT_EQ(store_view->lookups, 1) << "a schema without entries is looked up once";

    translator.process(row("pgstream", "table_ids"));
    translator.process(row("pgstream", "schema_log", "U"));
    EXPECT_EQ(next.events.size(), 2u);
    EXPECT_EQ(ack.acked, (std::vector<std::string>{"table_ids", "schema_log"}));
    EXPECT_EQ(translator.stats().hidden.load(), 2u);
}

TEST(Translator, ANewSchemaVersionReplacesTheCachedOne) {
    CollectingProcessor next;
    CountingAcknowledger ack;
    Translator translator(std::make_unique<FakeStore>(), next, ack);
    translator.process(schema_log_insert("v1", 1, kSchema));
    std::string renamed = kSchema;
    renamed.replace(renamed.find("\"note\""), 6, "\"title\"");
    translator.process(schema_log_insert("v2", 2, renamed));
    translator.process(event(R"({"action":"I","lsn":"0/30","schema":"public","table":"items","columns":[)"
                             R"({"name":"title","type":"text","value":"t"}]})"));
    EXPECT_EQ(next.events.back()->columns[0].id, "tid1-3") << "a renamed column keeps its id";
}

TEST(Translator, ANewSchemaVersionChangesTheIdentityOfLaterRows) {
    CollectingProcessor next;
    CountingAcknowledger ack;
    Translator translator(std::make_unique<FakeStore>(), next, ack);
    auto row = [] {
        return event(R"({"action":"I","lsn":"0/30","schema":"public","table":"items","columns":[)"
                     R"({"name":"a","type":"integer","value":1},{"name":"b","type":"integer","value":2}]})");
    };
    translator.process(schema_log_insert("v1", 1, kSchema));
    translator.process(row());
    EXPECT_EQ(next.events.back()->metadata.id_col_pgstream_ids,
              (std::vector<std::string>{"tid1-1", "tid1-2"}));
    translator.process(row());
    EXPECT_EQ(next.events.back()->metadata.id_col_pgstream_ids,
              (std::vector<std::string>{"tid1-1", "tid1-2"}))
        << "the same answer for every row of a schema version";
    std::string narrower = kSchema;
    narrower.replace(narrower.find(R"("primary_key_columns":["a","b"])"), 31,
                     R"("primary_key_columns":["b"])");
    translator.process(schema_log_insert("v2", 2, narrower));
    translator.process(row());
    EXPECT_EQ(next.events.back()->metadata.id_col_pgstream_ids, std::vector<std::string>{"tid1-2"})
        << "ALTER TABLE ... PRIMARY KEY (b) reaches the rows after it";
}

}  // namespace
}  // namespace pgstream
