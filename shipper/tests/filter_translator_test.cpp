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
    EXPECT_EQ(filter.dropped(Action::Insert), 1u);
    EXPECT_EQ(filter.dropped(Action::Delete), 0u);
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

// pgstream.schema_log in memory, with the store's contract: the version in force at a position, then the
// later ones, at most `limit`.
class FakeStore : public SchemaLogStore {
  public:
    SchemaVersions versions_from(const std::string& schema_name, Lsn position, size_t limit) override {
        ++lookups;
        SchemaVersions found;
        const auto& versions = entries[schema_name];  // in version order
        size_t first = 0;
        for (size_t i = 0; i < versions.size(); ++i)
            if (versions[i].wal_position < position) first = i;
        for (size_t i = first; i < versions.size(); ++i) {
            if (found.entries.size() == limit) {
                found.more_from = versions[i].wal_position;
                break;
            }
            found.entries.push_back(versions[i]);
        }
        return found;
    }
    void ack(const SchemaLogEntry& entry) override { acked_ids.push_back(entry.id); }
    std::optional<std::string> whole_document(const SchemaLogEntry& entry) override {
        auto found = whole_documents.find(entry.id);
        if (found == whole_documents.end()) return std::nullopt;
        return found->second;
    }
    std::map<std::string, std::vector<SchemaLogEntry>> entries;
    std::map<std::string, std::string> whole_documents;  // by id; none: the store cannot tell
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

// An insert into schema_log as the stream carries it; without `wal_position`, as schema tracking before 0.2.0
// wrote it.
EventPtr schema_log_insert(const std::string& id, int version, const std::string& schema_json,
                           const std::string& wal_position = "", const std::string& lsn = "0/100",
                           const std::string& table = "schema_log") {
    std::string escaped = json_quote(schema_json);
    std::string position_column =
        wal_position.empty() ? ""
                             : R"(,{"name":"wal_position","type":"pg_lsn","value":")" + wal_position + "\"}";
    return event(R"({"action":"I","lsn":")" + lsn + R"(","schema":"pgstream","table":")" + table +
                 R"(","columns":[)"
                 R"({"name":"id","type":"pgstream.xid","value":")" +
                 id + R"("},{"name":"version","type":"bigint","value":)" + std::to_string(version) +
                 R"(},{"name":"schema_name","type":"text","value":"public"},)"
                 R"({"name":"schema","type":"jsonb","value":)" +
                 escaped + R"(},{"name":"acked","type":"boolean","value":false})" + position_column + "]}");
}

// kSchema after `ALTER TABLE items RENAME COLUMN note TO memo; ALTER TABLE items ADD COLUMN note text`: the
// old column keeps its id under the new name, the new column of the old name gets a new id.
std::string renamed_and_readded() {
    std::string schema = kSchema;
    schema.replace(schema.find(R"("name":"note")"), 13, R"("name":"memo")");
    std::string added =
        R"(,{"pgstream_id":"tid1-4","name":"note","type":"text","nullable":true,"unique":false})";
    schema.insert(schema.find(R"(]},{"oid":"16450")"), added);
    return schema;
}

SchemaLogEntry stored_version(const std::string& id, int version, const std::string& schema_json,
                              const std::string& wal_position) {
    SchemaLogEntry entry;
    entry.id = id;
    entry.version = version;
    entry.schema_name = "public";
    entry.wal_position = *Lsn::parse(wal_position);
    parse_schema_document(schema_json, entry);
    return entry;
}

EventPtr items_row(const std::string& lsn, const std::string& column) {
    return event(R"({"action":"I","lsn":")" + lsn +
                 R"(","schema":"public","table":"items","columns":[)"
                 R"({"name":")" +
                 column + R"(","type":"text","value":"x"}]})");
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
    EXPECT_EQ(translated.metadata.schema_id, "xid1") << "the schema_log id the row was translated with";
    EXPECT_EQ(translated.metadata.id_col_pgstream_ids, (std::vector<std::string>{"tid1-1", "tid1-2"}))
        << "composite primary key";
    EXPECT_EQ(translated.metadata.version, "0/2A");
    EXPECT_EQ(translated.columns[2].id, "tid1-3");
    EXPECT_EQ(translated.identity[1].id, "tid1-2");
    EXPECT_EQ(store_view->lookups, 0) << "the acknowledged entry is cached";
}

// Events are immutable once shared: an event someone else still holds is translated as a copy.
TEST(Translator, TranslatesASharedEventAsACopyAndLeavesTheOriginalUntouched) {
    auto store = std::make_unique<FakeStore>();
    store->entries["public"] = {stored_version("xid1", 1, kSchema, "0/1")};
    CollectingProcessor next;
    CountingAcknowledger ack;
    Translator translator(std::move(store), next, ack);
    EventPtr held = items_row("0/2A", "note");
    translator.process(held);
    ASSERT_EQ(next.events.size(), 1u);
    EXPECT_NE(next.events[0].get(), held.get());
    EXPECT_EQ(next.events[0]->metadata.table_pgstream_id, "tid1");
    EXPECT_EQ(next.events[0]->metadata.schema_id, "xid1");
    EXPECT_TRUE(held->metadata.table_pgstream_id.empty()) << "the held event was changed";
    // Handed over alone, the event itself is completed: no copy per row.
    EventPtr alone = items_row("0/2B", "note");
    const Event* address = alone.get();
    translator.process(std::move(alone));
    EXPECT_EQ(next.events.back().get(), address);
}

TEST(Translator, IdentityFallsBackToFirstUniqueNotNullColumnAndCountsTablesWithout) {
    auto store = std::make_unique<FakeStore>();
    SchemaLogEntry entry;
    entry.id = "xid0";
    entry.schema_name = "public";
    parse_schema_document(kSchema, entry);
    store->entries["public"] = {entry};
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

TEST(Translator, RowsGetTheVersionInForceAtTheirPositionWhereverTheStreamStarts) {
    // A restart (or a second slot) replays rows from before the DDL after the store already has the new
    // version.
    auto store = std::make_unique<FakeStore>();
    store->entries["public"] = {stored_version("v1", 1, kSchema, "0/100"),
                                stored_version("v2", 2, renamed_and_readded(), "0/200")};
    FakeStore* store_view = store.get();
    CollectingProcessor next;
    CountingAcknowledger ack;
    Translator translator(std::move(store), next, ack);

    translator.process(items_row("0/150", "note"));
    EXPECT_EQ(next.events.back()->columns[0].id, "tid1-3") << "written before the DDL: the old column";
    translator.process(items_row("0/250", "note"));
    EXPECT_EQ(next.events.back()->columns[0].id, "tid1-4") << "written after the DDL: the new column";
    translator.process(items_row("0/260", "memo"));
    EXPECT_EQ(next.events.back()->columns[0].id, "tid1-3") << "the renamed column keeps its id";
    EXPECT_EQ(store_view->lookups, 1) << "both versions came with the first read";

    // The stream then brings the DDL itself: known already, it changes nothing.
    translator.process(schema_log_insert("v2", 2, renamed_and_readded(), "0/200", "0/201"));
    translator.process(items_row("0/170", "note"));
    EXPECT_EQ(next.events.back()->columns[0].id, "tid1-3");
    EXPECT_EQ(store_view->lookups, 1);
}

// A schema of many tables: each row's table is found by its name, whichever table came before it, in the
// version in force at its position and in its own schema (rows of one table in a row take a shortcut; the
// others a lookup by name made per version).
TEST(Translator, FindsTablesByNameAmongManyAcrossVersionsAndSchemas) {
    auto schema_of = [](const std::string& id_prefix, size_t tables, const std::string& renamed_from = "",
                        const std::string& renamed_to = "") {
        std::string json = R"({"tables":[)";
        for (size_t i = 0; i < tables; ++i) {
            std::string name = "t" + std::to_string(i), id = id_prefix + std::to_string(i);
            if (name == renamed_from) name = renamed_to;
            json += std::string(i ? "," : "") + R"({"oid":")" + std::to_string(20000 + i) + R"(","name":")" +
                    name + R"(","pgstream_id":")" + id + R"(","primary_key_columns":["a"],"columns":[)" +
                    R"({"pgstream_id":")" + id + R"(-1","name":"a","type":"integer","nullable":false,)" +
                    R"("unique":false}]})";
        }
        return json + "]}";
    };
    auto store = std::make_unique<FakeStore>();
    store->entries["public"] = {stored_version("v1", 1, schema_of("tid", 600), "0/100"),
                                stored_version("v2", 2, schema_of("tid", 600, "t5", "t5_new"), "0/200")};
    SchemaLogEntry other = stored_version("w1", 1, schema_of("oid", 10), "0/100");
    other.schema_name = "other";
    store->entries["other"] = {other};
    CollectingProcessor next;
    CountingAcknowledger ack;
    Translator translator(std::move(store), next, ack);
    auto id_of = [&](const std::string& schema, const std::string& table, const std::string& lsn) {
        translator.process(event(R"({"action":"I","lsn":")" + lsn + R"(","schema":")" + schema +
                                 R"(","table":")" + table +
                                 R"(","columns":[{"name":"a","type":"integer","value":1}]})"));
        return std::string(next.events.back()->columns[0].id.view());
    };
    EXPECT_EQ(id_of("public", "t599", "0/150"), "tid599-1");
    EXPECT_EQ(id_of("public", "t599", "0/150"), "tid599-1");
    EXPECT_EQ(id_of("public", "t0", "0/150"), "tid0-1");
    EXPECT_EQ(id_of("other", "t5", "0/150"), "oid5-1") << "the same name in another schema";
    EXPECT_EQ(id_of("public", "t5", "0/150"), "tid5-1");
    EXPECT_EQ(id_of("public", "t5", "0/250"), "") << "renamed by then: untranslated";
    EXPECT_EQ(id_of("public", "t5_new", "0/250"), "tid5-1") << "a renamed table keeps its id";
    EXPECT_EQ(id_of("public", "t5_new", "0/150"), "") << "not yet renamed at that position";
    EXPECT_EQ(id_of("public", "t5", "0/150"), "tid5-1");
    EXPECT_EQ(id_of("other", "t599", "0/150"), "") << "only the public schema has it";
    EXPECT_EQ(id_of("other", "t9", "0/150"), "oid9-1");
}

TEST(Translator, AVersionFromTheStreamAppliesFromItsPositionOn) {
    CollectingProcessor next;
    CountingAcknowledger ack;
    auto store = std::make_unique<FakeStore>();
    store->entries["public"] = {stored_version("v1", 1, kSchema, "0/100")};
    Translator translator(std::move(store), next, ack);
    translator.process(items_row("0/150", "note"));
    EXPECT_EQ(next.events.back()->columns[0].id, "tid1-3");
    translator.process(schema_log_insert("v2", 2, renamed_and_readded(), "0/200", "0/201"));
    translator.process(items_row("0/250", "note"));
    EXPECT_EQ(next.events.back()->columns[0].id, "tid1-4");
    // A transaction that committed after the DDL but wrote before it (another table's lock, same schema).
    translator.process(items_row("0/180", "note"));
    EXPECT_EQ(next.events.back()->columns[0].id, "tid1-3");
}

TEST(Translator, LongHistoriesAreReadInWindows) {
    // More versions than the translator holds: rows far apart are still translated with their own version.
    auto store = std::make_unique<FakeStore>();
    const int versions = static_cast<int>(Translator::kVersionsHeldPerSchema) * 3;
    for (int v = 1; v <= versions; ++v)
        store->entries["public"].push_back(stored_version("v" + std::to_string(v), v,
                                                          v % 2 ? kSchema : renamed_and_readded(),
                                                          "0/" + std::to_string(v * 100)));
    FakeStore* store_view = store.get();
    CollectingProcessor next;
    CountingAcknowledger ack;
    Translator translator(std::move(store), next, ack);
    for (int v = 1; v <= versions; ++v) {
        translator.process(items_row("0/" + std::to_string(v * 100 + 50), "note"));
        EXPECT_EQ(next.events.back()->columns[0].id, v % 2 ? "tid1-3" : "tid1-4") << "version " << v;
    }
    EXPECT_EQ(store_view->lookups, 3) << "one read per window of versions";
    translator.process(items_row("0/150", "note"));
    EXPECT_EQ(next.events.back()->columns[0].id, "tid1-3") << "an early row again";
}

// kSchema's `items` after `ALTER TABLE items RENAME COLUMN note TO memo; ALTER TABLE items ADD COLUMN note
// text` and `DROP TABLE bare`, as a delta version (pgstream.schema_versions = delta) of version `base`.
std::string items_delta(int base) {
    return R"({"delta":{"base_version":)" + std::to_string(base) +
           R"(,"removed":["16460"]},"changed":[{"oid":"16442","name":"items","pgstream_id":"tid1",)"
           R"("primary_key_columns":["a","b"],)"
           R"("columns":[{"pgstream_id":"tid1-1","name":"a","type":"integer","nullable":false,"unique":false},)"
           R"({"pgstream_id":"tid1-2","name":"b","type":"integer","nullable":false,"unique":false},)"
           R"({"pgstream_id":"tid1-3","name":"memo","type":"text","nullable":true,"unique":false},)"
           R"({"pgstream_id":"tid1-4","name":"note","type":"text","nullable":true,"unique":false}]}]})";
}

EventPtr table_row(const std::string& lsn, const std::string& table, const std::string& column) {
    return event(R"({"action":"I","lsn":")" + lsn + R"(","schema":"public","table":")" + table +
                 R"(","columns":[{"name":")" + column + R"(","type":"text","value":"x"}]})");
}

TEST(SchemaLog, ADeltaAppliedToItsBaseIsTheWholeSchemaInNameOrder) {
    SchemaLogEntry base = stored_version("v1", 1, kSchema, "0/100");
    SchemaLogEntry delta = stored_version("v2", 2, items_delta(1), "0/200");
    ASSERT_TRUE(delta.delta_base.has_value());
    EXPECT_EQ(delta.tables.size(), 1u) << "a delta holds only the changed tables";
    apply_delta(base, delta);
    EXPECT_FALSE(delta.delta_base.has_value());
    ASSERT_EQ(delta.tables.size(), 2u) << "bare was removed";
    EXPECT_EQ(delta.tables[0].name, "items");
    EXPECT_EQ(delta.tables[1].name, "nopk");
    EXPECT_EQ(delta.find_table("items")->find_column("note")->pgstream_id, "tid1-4");
    EXPECT_EQ(delta.find_table("items")->find_column("memo")->pgstream_id, "tid1-3");

    SchemaLogEntry other = stored_version("v3", 3, items_delta(2), "0/300");
    EXPECT_THROW(apply_delta(base, other), JsonError) << "version 1 is not the base of a delta of version 2";
}

// A translator whose store holds version 1 (kSchema), after a row of items made it read that version.
struct HoldingVersionOne {
    explicit HoldingVersionOne(std::map<std::string, std::string> whole_documents = {}) {
        auto owned = std::make_unique<FakeStore>();
        store = owned.get();
        store->entries["public"] = {stored_version("v1", 1, kSchema, "0/100")};
        store->whole_documents = std::move(whole_documents);
        translator = std::make_unique<Translator>(std::move(owned), next, ack);
        translator->process(items_row("0/150", "note"));
    }
    CollectingProcessor next;
    CountingAcknowledger ack;
    FakeStore* store = nullptr;
    std::unique_ptr<Translator> translator;
};

TEST(Translator, DeltaVersionsFromTheStreamAreComposedWithTheHeldVersion) {
    HoldingVersionOne held;
    CollectingProcessor& next = held.next;
    FakeStore* store_view = held.store;
    Translator& translator = *held.translator;
    EXPECT_EQ(next.events.back()->columns[0].id, "tid1-3");
    EXPECT_EQ(store_view->lookups, 1);

    translator.process(schema_log_insert("v2", 2, items_delta(1), "0/200", "0/201"));
    EXPECT_EQ(store_view->acked_ids, std::vector<std::string>{"v2"});
    translator.process(items_row("0/250", "note"));
    EXPECT_EQ(next.events.back()->columns[0].id, "tid1-4") << "the changed table comes from the delta";
    translator.process(table_row("0/260", "nopk", "code"));
    EXPECT_EQ(next.events.back()->columns[0].id, "tid2-2")
        << "an unchanged table comes from the base version";
    translator.process(table_row("0/270", "bare", "v"));
    EXPECT_EQ(next.events.back()->columns[0].id, "") << "a removed table is gone";
    translator.process(items_row("0/180", "note"));
    EXPECT_EQ(next.events.back()->columns[0].id, "tid1-3") << "rows before the delta keep the base version";
    EXPECT_EQ(store_view->lookups, 1) << "the delta was composed without reading the store";
}

TEST(Translator, ATableKeptByADeltaNamesTheVersionEachRowIsTranslatedWith) {
    HoldingVersionOne held;
    CollectingProcessor& next = held.next;
    Translator& translator = *held.translator;
    translator.process(table_row("0/160", "nopk", "code"));
    EXPECT_EQ(next.events.back()->metadata.schema_id, "v1");
    // Version 2 keeps nopk unchanged (shared with version 1, not copied).
    translator.process(schema_log_insert("v2", 2, items_delta(1), "0/200", "0/201"));
    translator.process(table_row("0/260", "nopk", "code"));
    EXPECT_EQ(next.events.back()->metadata.schema_id, "v2") << "a row after the delta names version 2";
    EXPECT_EQ(next.events.back()->columns[0].id, "tid2-2");
    translator.process(table_row("0/170", "nopk", "code"));
    EXPECT_EQ(next.events.back()->metadata.schema_id, "v1") << "a row before it still names version 1";
}

TEST(SchemaLog, ComposedVersionsShareTheTablesTheyKeepAndCopyATableOnlyToWriteIt) {
    SchemaLogEntry base = stored_version("v1", 1, kSchema, "0/100");
    SchemaLogEntry delta = stored_version("v2", 2, items_delta(1), "0/200");
    apply_delta(base, delta);
    const SchemaTable* kept = delta.find_table("nopk");
    ASSERT_NE(kept, nullptr);
    EXPECT_EQ(kept, base.find_table("nopk")) << "the unchanged table is the base's, not a copy";
    SchemaLogEntry changed = delta;
    changed.tables[1].columns[0].type = "bigint";
    EXPECT_EQ(changed.tables[1].name, "nopk");
    EXPECT_EQ(delta.find_table("nopk")->columns[0].type, "integer") << "writing copies the shared table";
    EXPECT_EQ(base.find_table("nopk")->columns[0].type, "integer");
    EXPECT_NE(changed.find_table("nopk"), kept);
}

TEST(Translator, ADeltaWhoseBaseIsNotHeldIsReadFromTheStore) {
    CollectingProcessor next;
    CountingAcknowledger ack;
    auto store = std::make_unique<FakeStore>();
    FakeStore* store_view = store.get();
    // The store composes deltas (pgstream.schema_at): it holds version 3 as the whole schema.
    store->entries["public"] = {stored_version("v1", 1, kSchema, "0/100"),
                                stored_version("v3", 3, renamed_and_readded(), "0/300")};
    Translator translator(std::move(store), next, ack);
    translator.process(items_row("0/150", "note"));
    EXPECT_EQ(store_view->lookups, 1);
    // Version 2 never reached this stream (its transaction was before the slot's start, say): the delta of
    // version 3 cannot be composed from version 1.
    translator.process(schema_log_insert("v3", 3, items_delta(2), "0/300", "0/301"));
    translator.process(items_row("0/350", "note"));
    EXPECT_EQ(store_view->lookups, 2) << "the schema's versions are read again";
    EXPECT_EQ(next.events.back()->columns[0].id, "tid1-4");
}

// kSchema with items_delta(1) applied, as PostgreSQL prints the jsonb of pgstream.schema_log: tables in name
// order, each with its members in the order parsed, ", " and ": " between items.
const char* kComposedDocument =
    R"({"tables": [{"oid": "16442", "name": "items", "pgstream_id": "tid1", "primary_key_columns": ["a", "b"], )"
    R"("columns": [{"pgstream_id": "tid1-1", "name": "a", "type": "integer", "nullable": false, "unique": false}, )"
    R"({"pgstream_id": "tid1-2", "name": "b", "type": "integer", "nullable": false, "unique": false}, )"
    R"({"pgstream_id": "tid1-3", "name": "memo", "type": "text", "nullable": true, "unique": false}, )"
    R"({"pgstream_id": "tid1-4", "name": "note", "type": "text", "nullable": true, "unique": false}]}, )"
    R"({"oid": "16450", "name": "nopk", "pgstream_id": "tid2", "primary_key_columns": [], )"
    R"("columns": [{"pgstream_id": "tid2-1", "name": "x", "type": "integer", "nullable": true, "unique": true}, )"
    R"({"pgstream_id": "tid2-2", "name": "code", "type": "text", "nullable": false, "unique": true}]}]})";

std::string forwarded_schema(const Event& event) {
    const Column* schema = event.find_column("schema");
    return schema ? schema->value.text : "";
}

// Extension 0.5.0 streams pgstream.schema_log_entries, deltas by default: the translator composes them and
// forwards pgstream.schema_log with the whole document, so outputs see what they saw before.
TEST(Translator, AVersionFromSchemaLogEntriesGoesOnAsSchemaLogWithTheWholeDocument) {
    HoldingVersionOne held;
    CollectingProcessor& next = held.next;
    FakeStore* store_view = held.store;
    Translator& translator = *held.translator;

    translator.process(schema_log_insert("v2", 2, items_delta(1), "0/200", "0/201", "schema_log_entries"));
    ASSERT_EQ(next.events.size(), 2u) << "the version is forwarded, not hidden as pgstream bookkeeping";
    const Event& forwarded = *next.events.back();
    EXPECT_EQ(forwarded.table, "schema_log");
    EXPECT_TRUE(forwarded.is_schema_log());
    EXPECT_EQ(forwarded_schema(forwarded), kComposedDocument);
    EXPECT_EQ(store_view->acked_ids, std::vector<std::string>{"v2"});
    translator.process(items_row("0/250", "note"));
    EXPECT_EQ(next.events.back()->columns[0].id, "tid1-4");

    // A whole version (pgstream.schema_versions = full) goes on as the stream carries it.
    std::string whole = renamed_and_readded();
    translator.process(schema_log_insert("v3", 3, whole, "0/300", "0/301", "schema_log_entries"));
    EXPECT_EQ(next.events.back()->table, "schema_log");
    EXPECT_EQ(forwarded_schema(*next.events.back()), whole);
    EXPECT_EQ(store_view->lookups, 1);
}

TEST(Translator, ADeltaWhoseBaseIsNotHeldGoesOnAsTheStoresWholeDocument) {
    HoldingVersionOne held(std::map<std::string, std::string>{{"v3", kComposedDocument}});
    CollectingProcessor& next = held.next;
    FakeStore* store_view = held.store;
    Translator& translator = *held.translator;
    // Version 2 never reached this stream: the delta of version 3 is not composed from version 1.
    translator.process(schema_log_insert("v3", 3, items_delta(2), "0/300", "0/301", "schema_log_entries"));
    EXPECT_EQ(forwarded_schema(*next.events.back()), kComposedDocument);
    translator.process(items_row("0/350", "note"));
    EXPECT_EQ(next.events.back()->columns[0].id, "tid1-4");
    EXPECT_EQ(store_view->lookups, 1) << "the store's whole document is the version held";
}

}  // namespace
}  // namespace pgstream
