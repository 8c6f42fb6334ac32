// The search indexer's pure parts: settings, the PostgreSQL type -> field mapping, value conversion, index
// and put-mapping bodies, document ids and versions, and the bulk items built from row events.
#include <gtest/gtest.h>
#include <openssl/sha.h>

#include "config/config.h"
#include "pipeline/module.h"
#include "search/documents.h"
#include "search/mapping.h"
#include "search/search_settings.h"
#include "search_schema_fixtures.h"

using namespace pgstream;
using namespace pgstream::search;
using namespace search_test;

namespace {

std::string mapping_of(const std::string& type, Engine engine = Engine::kOpenSearch) {
    return field_mapping(field_type_of(type), engine).value_or("<none>");
}

std::string value_of(const std::string& type, const std::string& wal2json_value) {
    return document_value(field_type_of(type), parse_json(wal2json_value)).value_or("<none>");
}

const std::string kKeyword = R"({"type":"keyword","ignore_above":8191,"fields":{"text":{"type":"text"}}})";

Column event_column(const std::string& id, const std::string& name, const std::string& type,
                    const std::string& json) {
    return Column{id, name, type, parse_json(json)};
}

SearchSettings settings(bool hash = false) {
    SearchSettings s;
    s.url = "http://127.0.0.1:9200";
    s.hash_doc_ids = hash;
    return s;
}

}  // namespace

TEST(SearchMapping, EveryTypeOfTheTable) {
    for (const char* type : {"smallint", "integer", "bigint", "oid"})
        EXPECT_EQ(mapping_of(type), R"({"type":"long"})") << type;
    for (const char* type : {"real", "double precision", "numeric", "numeric(10,2)"}) {
        EXPECT_EQ(mapping_of(type), R"({"type":"double"})") << type;
    }
    EXPECT_EQ(mapping_of("boolean"), R"({"type":"boolean"})");
    for (const char* type : {"text", "character varying(30)", "character(2)", "\"char\"", "name", "bytea",
                             "xml", "uuid", "inet", "cidr", "macaddr", "macaddr8", "interval", "interval(3)",
                             "interval year to month", "money", "bit(3)", "bit varying(5)", "citext"}) {
        EXPECT_EQ(mapping_of(type), kKeyword) << type;
    }
    EXPECT_EQ(mapping_of("json"), R"({"type":"text"})");
    EXPECT_EQ(mapping_of("jsonb"), R"({"type":"text"})");
    EXPECT_EQ(mapping_of("date"), R"({"type":"date","format":"uuuu-MM-dd"})");
    EXPECT_EQ(mapping_of("time without time zone"), R"({"type":"date","format":"HH:mm:ss.SSSSSS"})");
    EXPECT_EQ(mapping_of("time(3) with time zone"), R"({"type":"date","format":"HH:mm:ss.SSSSSSXXX"})");
    EXPECT_EQ(mapping_of("timestamp without time zone"),
              R"({"type":"date","format":"uuuu-MM-dd'T'HH:mm:ss.SSSSSS"})");
    EXPECT_EQ(mapping_of("timestamp(3) with time zone"),
              R"({"type":"date","format":"uuuu-MM-dd'T'HH:mm:ss.SSSSSSXXX"})");
}

TEST(SearchMapping, ArraysMapLikeTheirElements) {
    EXPECT_TRUE(field_type_of("integer[]").array);
    EXPECT_EQ(mapping_of("integer[]"), R"({"type":"long"})");
    EXPECT_EQ(mapping_of("text[]"), kKeyword);
    EXPECT_EQ(mapping_of("timestamp with time zone[]"),
              R"({"type":"date","format":"uuuu-MM-dd'T'HH:mm:ss.SSSSSSXXX"})");
    EXPECT_EQ(value_of("integer[]", R"("{1,NULL,-3}")"), "[1,null,-3]");
    EXPECT_EQ(value_of("integer[]", R"("{{1,2},{3,4}}")"), "[1,2,3,4]");
    EXPECT_EQ(value_of("integer[]", R"("[0:1]={7,8}")"), "[7,8]");
    EXPECT_EQ(value_of("text[]", R"("{plain,\"with, comma\",\"quote \\\" here\",NULL,\"NULL\"}")"),
              R"(["plain","with, comma","quote \" here",null,"NULL"])");
    EXPECT_EQ(value_of("boolean[]", R"("{t,f}")"), "[true,false]");
    EXPECT_EQ(value_of("double precision[]", R"("{1.5,NaN,-2e+20}")"), "[1.5,null,-2e+20]");
    EXPECT_EQ(value_of("date[]", R"("{2024-02-29,infinity}")"), R"(["2024-02-29","9999-12-31"])");
    EXPECT_EQ(value_of("integer[]", R"("not an array")"), "<none>");
}

TEST(SearchMapping, VectorsPerEngine) {
    EXPECT_EQ(mapping_of("vector(3)"), R"({"type":"knn_vector","dimension":3})");
    EXPECT_EQ(mapping_of("public.vector(3)"), R"({"type":"knn_vector","dimension":3})");
    EXPECT_EQ(mapping_of("vector(3)", Engine::kElasticsearch), R"({"type":"dense_vector","dims":3})");
    // knn_vector requires a dimension: a vector column without one has no mapping on OpenSearch.
    EXPECT_EQ(mapping_of("vector"), "<none>");
    EXPECT_EQ(mapping_of("vector", Engine::kElasticsearch), R"({"type":"dense_vector"})");
    EXPECT_EQ(value_of("vector(3)", R"("[1,2.5,-3]")"), "[1,2.5,-3]");
    EXPECT_EQ(value_of("vector(3)", R"("[1,2]")"), "<none>");  // wrong dimension
}

TEST(SearchMapping, UnknownTypesHaveNoMapping) {
    for (const char* type : {"point", "tsvector", "int4range", "my_enum", "hstore", "geometry"}) {
        EXPECT_EQ(field_type_of(type).kind, FieldKind::kUnknown) << type;
        EXPECT_EQ(mapping_of(type), "<none>") << type;
    }
}

TEST(SearchMapping, ValuesKeepNumbersExactAndConvertDates) {
    EXPECT_EQ(value_of("bigint", "9223372036854775807"), "9223372036854775807");
    EXPECT_EQ(value_of("numeric(40,20)", "12345678901234567890.12345678901234567890"),
              "12345678901234567890.12345678901234567890");
    EXPECT_EQ(value_of("numeric", R"("NaN")"), "<none>");
    EXPECT_EQ(value_of("double precision", R"("Infinity")"), "<none>");
    EXPECT_EQ(value_of("boolean", "true"), "true");
    EXPECT_EQ(value_of("text", R"("a \"b\"")"), R"("a \"b\"")");
    EXPECT_EQ(value_of("integer", "null"), "null");
    EXPECT_EQ(value_of("jsonb", R"("{\"a\": 1}")"), R"("{\"a\": 1}")");
    EXPECT_EQ(value_of("uuid", R"("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")"),
              R"("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")");
    EXPECT_EQ(value_of("date", R"("2024-02-29")"), R"("2024-02-29")");
    EXPECT_EQ(value_of("date", R"("-infinity")"), R"("0001-01-01")");
    EXPECT_EQ(value_of("date", R"("0044-03-15 BC")"), "<none>");
    EXPECT_EQ(value_of("timestamp without time zone", R"("2024-01-02 03:04:05.5")"),
              R"("2024-01-02T03:04:05.500000")");
    EXPECT_EQ(value_of("timestamp without time zone", R"("2024-01-02 03:04:05")"),
              R"("2024-01-02T03:04:05.000000")");
    EXPECT_EQ(value_of("timestamp with time zone", R"("2024-01-02 03:04:05.123456+00")"),
              R"("2024-01-02T03:04:05.123456Z")");
    EXPECT_EQ(value_of("timestamp with time zone", R"("2024-01-02 03:04:05-03:30")"),
              R"("2024-01-02T03:04:05.000000-03:30")");
    EXPECT_EQ(value_of("timestamp with time zone", R"("infinity")"), R"("9999-12-31T23:59:59.999999Z")");
    EXPECT_EQ(value_of("timestamp with time zone", R"("1900-01-01 00:00:00+00:09:21")"), "<none>");
    EXPECT_EQ(value_of("timestamp without time zone", R"("12345-01-01 00:00:00")"), "<none>");
    EXPECT_EQ(value_of("time without time zone", R"("23:59:59.999")"), R"("23:59:59.999000")");
    EXPECT_EQ(value_of("time with time zone", R"("10:00:00+02")"), R"("10:00:00.000000+02:00")");
}

TEST(SearchMapping, IndexBodyHasStrictMappingIdsAliasesAndSkipsUnknownTypes) {
    SchemaLogEntry entry = schema(1, {table("users", "t1",
                                            {column("t1-1", "id", "integer"), column("t1-2", "name", "text"),
                                             column("t1-3", "place", "point")})});
    MappingReport report;
    std::string body = index_create_body(entry, Engine::kOpenSearch, report);
    EXPECT_NE(body.find(R"("dynamic":"strict")"), std::string::npos) << body;
    EXPECT_NE(body.find(R"("_table":{"type":"keyword"})"), std::string::npos) << body;
    EXPECT_NE(body.find(R"("t1-1":{"type":"long"})"), std::string::npos) << body;
    EXPECT_NE(
        body.find(
            R"("users":{"properties":{"id":{"type":"alias","path":"t1-1"},"name":{"type":"alias","path":"t1-2"}}})"),
        std::string::npos)
        << body;
    EXPECT_NE(body.find(R"("aliases":{"public":{}})"), std::string::npos) << body;
    EXPECT_NE(body.find(R"("index.knn":true)"), std::string::npos) << body;
    EXPECT_EQ(body.find("t1-3"), std::string::npos) << body;
    ASSERT_EQ(report.skipped_columns.size(), 1u);
    EXPECT_EQ(report.skipped_columns[0], "public.users.place (point)");
    EXPECT_NO_THROW(parse_json(body));
    MappingReport es_report;
    EXPECT_EQ(index_create_body(entry, Engine::kElasticsearch, es_report).find("knn"), std::string::npos);
}

TEST(SearchMapping, PutMappingAddsNewColumnsAndAliasesForRenames) {
    SchemaLogEntry v1 =
        schema(1, {table("users", "t1", {column("t1-1", "id", "integer"), column("t1-2", "name", "text")}),
                   table("gone", "t2", {column("t2-1", "id", "integer")})});
    SchemaLogEntry v2 =
        schema(2, {table("people", "t1",
                         {column("t1-1", "id", "integer"), column("t1-2", "full_name", "text"),
                          column("t1-3", "age", "smallint")})});
    MappingReport report;
    std::string body = put_mapping_body(&v1, v2, Engine::kOpenSearch, report);
    EXPECT_EQ(
        body,
        R"({"properties":{"t1-3":{"type":"long"},"people":{"properties":{"age":{"type":"alias","path":"t1-3"},)"
        R"("full_name":{"type":"alias","path":"t1-2"},"id":{"type":"alias","path":"t1-1"}}}}})");
    EXPECT_EQ(removed_table_ids(v1, v2), std::vector<std::string>{"t2"});
    // Nothing new: no request.
    EXPECT_EQ(put_mapping_body(&v2, v2, Engine::kOpenSearch, report), "");
    // A type change cannot be applied in place: reported, the field is left alone.
    SchemaLogEntry v3 = v2;
    v3.version = 3;
    v3.tables[0].columns[2].type = "text";
    MappingReport changed;
    EXPECT_EQ(put_mapping_body(&v2, v3, Engine::kOpenSearch, changed), "");
    ASSERT_EQ(changed.warnings.size(), 1u);
    EXPECT_NE(changed.warnings[0].find("people.age changed type from smallint to text"), std::string::npos);
}

TEST(SearchMapping, SchemaDocumentRoundTrips) {
    SchemaLogEntry v1 = schema(1, {table("users", "t1", {column("t1-1", "id", "integer")})});
    v1.tables[0].primary_key_columns = {"id"};
    SchemaLogEntry back;
    parse_schema_document(schema_document_json(v1), back);
    ASSERT_EQ(back.tables.size(), 1u);
    EXPECT_EQ(back.tables[0].pgstream_id, "t1");
    EXPECT_EQ(back.tables[0].columns[0].type, "integer");
    EXPECT_EQ(back.tables[0].primary_key_columns, std::vector<std::string>{"id"});
    EXPECT_NO_THROW(parse_json(schema_log_document(v1, "2024-01-01 00:00:00.000000")));
}

TEST(SearchDocuments, IdsSingleCompositeHashedAndLong) {
    EXPECT_EQ(document_id("t1", {"42"}, false), "t1_42");
    EXPECT_EQ(document_id("t1", {"a-b", "c"}, false), "t1_a\\-b-c");
    EXPECT_NE(document_id("t1", {"a-b", "c"}, false), document_id("t1", {"a", "b-c"}, false));
    std::string hashed = document_id("t1", {"42"}, true);
    ASSERT_EQ(hashed.size(), 3u + 64u);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>("42"), 2, digest);
    char first[3];
    snprintf(first, sizeof first, "%02x", digest[0]);
    EXPECT_EQ(hashed.substr(0, 5), std::string("t1_") + first);
    // Over 512 bytes: hashed even without hash_doc_ids, so the engine never refuses it.
    std::string long_value(600, 'x');
    std::string id = document_id("t1", {long_value}, false);
    EXPECT_LE(id.size(), kMaxDocumentIdBytes);
    EXPECT_EQ(id, document_id("t1", {long_value}, true));
    EXPECT_EQ(document_id("t1", {std::string(500, 'x')}, false).size(), 503u);
}

namespace {

Event row_event(Action action, uint64_t lsn) {
    Event event;
    event.action = action;
    event.lsn = Lsn(lsn);
    event.schema = "public";
    event.table = "users";
    event.metadata.table_pgstream_id = "t1";
    event.metadata.id_col_pgstream_ids = {"t1-1"};
    return event;
}

}  // namespace

TEST(SearchDocuments, VersionIsTheLsnPlusOneForUpdatesAndDeletes) {
    EXPECT_EQ(document_version(row_event(Action::Insert, 1000)), 1000u);
    EXPECT_EQ(document_version(row_event(Action::Update, 1000)), 1001u);
    EXPECT_EQ(document_version(row_event(Action::Delete, 1000)), 1001u);
}

TEST(SearchDocuments, InsertUpdateDeleteAndRowsWithoutIdentity) {
    DocumentStats stats;
    Event insert = row_event(Action::Insert, 100);
    insert.columns = {event_column("t1-1", "id", "integer", "7"),
                      event_column("t1-2", "name", "text", R"("ann")"),
                      event_column("t1-3", "place", "point", "\"(1,2)\""),
                      event_column("t1-4", "score", "numeric", R"("NaN")")};
    auto items = bulk_items_for(insert, nullptr, settings(), stats);
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].id, "t1_7");
    EXPECT_EQ(items[0].version, 100u);
    EXPECT_EQ(items[0].index, "public");
    EXPECT_EQ(items[0].source(), R"({"_table":"t1","t1-1":7,"t1-2":"ann","_change_version":100})");
    EXPECT_EQ(stats.fields_unmapped, 1u);
    EXPECT_EQ(stats.values_unconvertible, 1u);

    Event remove = row_event(Action::Delete, 200);
    remove.identity = {event_column("t1-1", "id", "integer", "7")};
    items = bulk_items_for(remove, nullptr, settings(), stats);
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].action, BulkItem::Action::kDelete);
    EXPECT_EQ(items[0].id, "t1_7");
    EXPECT_EQ(items[0].version, 201u);

    Event no_key = row_event(Action::Insert, 300);
    no_key.columns = {event_column("t1-1", "id", "integer", "null")};
    EXPECT_TRUE(bulk_items_for(no_key, nullptr, settings(), stats).empty());
    EXPECT_EQ(stats.rows_without_identity, 1u);
    Event untranslated = row_event(Action::Insert, 300);
    untranslated.metadata = {};
    EXPECT_TRUE(bulk_items_for(untranslated, nullptr, settings(), stats).empty());
    EXPECT_EQ(stats.events_without_metadata, 1u);
}

TEST(SearchDocuments, UpdateThatMovesTheKeyDeletesTheOldDocument) {
    DocumentStats stats;
    Event update = row_event(Action::Update, 100);
    update.columns = {event_column("t1-1", "id", "integer", "8")};
    update.identity = {event_column("t1-1", "id", "integer", "7")};
    auto items = bulk_items_for(update, nullptr, settings(), stats);
    ASSERT_EQ(items.size(), 2u);
    EXPECT_EQ(items[0].action, BulkItem::Action::kDelete);
    EXPECT_EQ(items[0].id, "t1_7");
    EXPECT_EQ(items[1].id, "t1_8");
}

TEST(SearchDocuments, UpdateWithoutAnUnchangedToastColumnMarksItOrTakesTheOldValue) {
    SchemaTable users = table(
        "users", "t1",
        {column("t1-1", "id", "integer"), column("t1-2", "body", "text"), column("t1-3", "n", "integer")});
    DocumentStats stats;
    Event update = row_event(Action::Update, 100);
    update.columns = {event_column("t1-1", "id", "integer", "7"), event_column("t1-3", "n", "integer", "1")};
    auto items = bulk_items_for(update, &users, settings(), stats);
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].unchanged_fields, std::vector<std::string>{"t1-2"});
    // REPLICA IDENTITY FULL: the old row has it.
    update.identity = {event_column("t1-1", "id", "integer", "7"),
                       event_column("t1-2", "body", "text", R"("old")"),
                       event_column("t1-3", "n", "integer", "0")};
    items = bulk_items_for(update, &users, settings(), stats);
    ASSERT_EQ(items.size(), 1u);
    EXPECT_TRUE(items[0].unchanged_fields.empty());
    EXPECT_EQ(items[0].source(), R"({"_table":"t1","t1-1":7,"t1-3":1,"t1-2":"old","_change_version":101})");
}

// The indexer writes the values rows mostly hold in place (write_scalar_value); they must be exactly what
// document_value() gives, refusals included.
TEST(SearchMapping, ScalarValuesWrittenInPlaceAreTheDocumentValues) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"integer", "7"},
        {"integer", "-12"},
        {"integer", R"("12")"},
        {"integer", "1.5"},
        {"bigint", R"("NaN")"},
        {"integer", "true"},
        {"integer", "null"},
        {"numeric", "1.5e3"},
        {"numeric", R"("NaN")"},
        {"double precision", "-0"},
        {"boolean", "true"},
        {"boolean", R"("t")"},
        {"boolean", R"("f")"},
        {"boolean", R"("yes")"},
        {"boolean", "1"},
        {"text", R"("ann")"},
        {"text", R"("a\"b\\c\n\u0001")"},
        {"text", "12"},
        {"text", "false"},
        {"character varying(3)", R"("")"},
        {"jsonb", R"("{\"a\":1}")"},
        {"uuid", "null"},
    };
    for (const auto& [type, json] : cases) {
        const FieldType field = field_type_of(type);
        const JsonValue value = parse_json(json);
        ASSERT_TRUE(is_scalar_value(field, value)) << type << " " << json;
        std::string out(scalar_value_bound(value), '\0');
        char* end = write_scalar_value(out.data(), field, value);
        const std::optional<std::string> expected = document_value(field, value);
        if (!expected) {
            EXPECT_EQ(end, nullptr) << type << " " << json;
            continue;
        }
        ASSERT_NE(end, nullptr) << type << " " << json;
        EXPECT_EQ(std::string(out.data(), end), *expected) << type << " " << json;
    }
    // Arrays, dates, vectors and composite values go through document_value() itself.
    EXPECT_FALSE(is_scalar_value(field_type_of("integer[]"), parse_json(R"("{1,2}")")));
    EXPECT_FALSE(is_scalar_value(field_type_of("date"), parse_json(R"("2024-01-02")")));
    EXPECT_FALSE(is_scalar_value(field_type_of("vector(2)"), parse_json(R"("[1,2]")")));
    EXPECT_FALSE(is_scalar_value(field_type_of("jsonb"), parse_json(R"({"a":1})")));
}

// One builder serves every row of the sender: what it keeps between rows (column heads by position, its
// document buffer) never leaks from one row or table into another.
TEST(SearchDocuments, ABuilderReusedAcrossRowsAndTablesWritesEachRowsOwnDocument) {
    DocumentBuilder builder(settings());
    DocumentStats stats;
    std::vector<BulkItem> items;
    Event first = row_event(Action::Insert, 100);
    first.columns = {event_column("t1-1", "id", "integer", "7"),
                     event_column("t1-2", "name", "text", R"("a long text with \"quotes\" and a \\")"),
                     event_column("t1-3", "born", "date", R"("2024-01-02")"),
                     event_column("t1-4", "tags", "text[]", R"("{a,\"b c\"}")")};
    // The same column heads (as the rows of a table share them), other values: one unconvertible.
    Event second = first;
    second.lsn = Lsn(200);
    second.columns[0].value = parse_json("8");
    second.columns[1].value = parse_json(R"("short")");
    second.columns[2].value = parse_json(R"("not a date")");
    // Another table at the same positions: other ids and types.
    Event other = row_event(Action::Insert, 300);
    other.metadata.table_pgstream_id = "t2";
    other.metadata.id_col_pgstream_ids = {"t2-1"};
    other.columns = {event_column("t2-1", "id", "text", R"("x-1")"),
                     event_column("t2-2", "flag", "boolean", R"("t")")};
    for (const Event* event : {&first, &second, &other, &first})
        EXPECT_EQ(builder.append(*event, nullptr, stats, items), 1u);
    ASSERT_EQ(items.size(), 4u);
    EXPECT_EQ(items[0].source(), R"({"_table":"t1","t1-1":7,"t1-2":"a long text with \"quotes\" and a \\",)"
                                 R"("t1-3":"2024-01-02","t1-4":["a","b c"],"_change_version":100})");
    EXPECT_EQ(items[1].source(), R"({"_table":"t1","t1-1":8,"t1-2":"short","t1-4":["a","b c"],)"
                                 R"("_change_version":200})");
    EXPECT_EQ(stats.values_unconvertible, 1u);
    EXPECT_EQ(items[2].id, "t2_x-1");
    EXPECT_EQ(items[2].source(), R"({"_table":"t2","t2-1":"x-1","t2-2":true,"_change_version":300})");
    EXPECT_EQ(items[3].source(), items[0].source());
    // Each the same as a builder of its own gives.
    DocumentStats fresh;
    EXPECT_EQ(bulk_items_for(second, nullptr, settings(), fresh)[0].source(), items[1].source());
    EXPECT_EQ(bulk_items_for(other, nullptr, settings(), fresh)[0].source(), items[2].source());
}

// Items handed back after a write are filled again for the next batch: nothing of the earlier item may show
// (a delete's action, an UPDATE's unchanged TOAST fields, a longer id or document).
TEST(SearchDocuments, ItemsReusedForTheNextBatchAreTheSameAsNewOnes) {
    SchemaTable users = table(
        "users", "t1",
        {column("t1-1", "id", "integer"), column("t1-2", "body", "text"), column("t1-3", "n", "integer")});
    Event toast_update = row_event(Action::Update, 100);
    toast_update.columns = {event_column("t1-1", "id", "integer", "7777777"),
                            event_column("t1-3", "n", "integer", "1")};
    Event moved = row_event(Action::Update, 150);  // a delete of the old key, then the new document
    moved.columns = {event_column("t1-1", "id", "integer", "8"),
                     event_column("t1-2", "body", "text", R"("b")"),
                     event_column("t1-3", "n", "integer", "2")};
    moved.identity = {event_column("t1-1", "id", "integer", "123456789")};
    Event insert = row_event(Action::Insert, 200);
    insert.columns = {event_column("t1-1", "id", "integer", "9"),
                      event_column("t1-2", "body", "text", R"("c")"),
                      event_column("t1-3", "n", "integer", "3")};
    Event remove = row_event(Action::Delete, 300);
    remove.identity = {event_column("t1-1", "id", "integer", "10")};

    DocumentBuilder builder(settings());
    DocumentStats stats;
    std::vector<BulkItem> first;
    for (const Event* event : {&toast_update, &moved, &insert}) builder.append(*event, &users, stats, first);
    ASSERT_EQ(first.size(), 4u);
    ASSERT_EQ(first[0].unchanged_fields, std::vector<std::string>{"t1-2"});
    builder.reuse(std::move(first));
    // The next batch, in another order: each item lands on an earlier one of another kind.
    std::vector<BulkItem> next;
    for (const Event* event : {&insert, &remove, &insert, &moved})
        builder.append(*event, &users, stats, next);
    std::vector<BulkItem> expected;
    for (const Event* event : {&insert, &remove, &insert, &moved}) {
        for (auto& item : bulk_items_for(*event, &users, settings(), stats))
            expected.push_back(std::move(item));
    }
    ASSERT_EQ(next.size(), expected.size());
    for (size_t i = 0; i < next.size(); ++i) {
        SCOPED_TRACE(i);
        EXPECT_EQ(next[i].action, expected[i].action);
        EXPECT_EQ(next[i].index, expected[i].index);
        EXPECT_EQ(next[i].id, expected[i].id);
        EXPECT_EQ(next[i].version, expected[i].version);
        EXPECT_EQ(next[i].fields_json, expected[i].fields_json);
        EXPECT_EQ(next[i].unchanged_fields, expected[i].unchanged_fields);
        EXPECT_EQ(next[i].event_index, expected[i].event_index);
    }
}

TEST(SearchDocuments, AFieldOfADocumentReadsBackAsWritten) {
    BulkItem item;
    item.add_field("_table", R"("t1")");
    item.add_field("t1-1", "12345678901234567890123");
    item.add_field("t1-2", R"("a\"b\n")");
    item.add_field("t1-3", "[1.50,2]");
    EXPECT_EQ(item.field_json("t1-1"), "12345678901234567890123");
    EXPECT_EQ(item.field_json("t1-2"), R"("a\"b\n")");
    EXPECT_EQ(item.field_json("t1-3"), "[1.50,2]");
    EXPECT_EQ(item.field_json("t1-4"), std::nullopt);
}

TEST(SearchSettings, DefaultsOfTheReference) {
    SearchSettings s = search_settings_from_config(Config(
        std::map<std::string, std::string>{{"PGSTREAM_OPENSEARCH_STORE_URL", "http://localhost:9200/"}}));
    EXPECT_EQ(s.engine, Engine::kOpenSearch);
    EXPECT_EQ(s.url, "http://localhost:9200");
    EXPECT_EQ(s.batch_timeout, std::chrono::milliseconds(1000));
    EXPECT_EQ(s.batch_size, 100u);
    EXPECT_EQ(s.max_queue_bytes, 100u << 20);
    EXPECT_EQ(s.store_retry.kind, RetryPolicy::Kind::kExponential);
    EXPECT_EQ(s.store_retry.delayBeforeRetry(1), std::chrono::milliseconds(1000));
    EXPECT_EQ(s.store_retry.delayBeforeRetry(100), std::chrono::milliseconds(60000));
    EXPECT_EQ(s.cleanup_retry.kind, RetryPolicy::Kind::kNone);
    EXPECT_FALSE(s.hash_doc_ids);
    EXPECT_TRUE(s.tls_verify);
    EXPECT_TRUE(validate(s).empty());
}

TEST(SearchSettings, CredentialsFromTheUrlOrSettingsNeverInErrors) {
    SearchSettings s = search_settings_from_config(
        Config({{"PGSTREAM_ELASTICSEARCH_STORE_URL", "https://elastic:s%40cret@es.example:9243/prefix"},
                {"PGSTREAM_SEARCH_INDEXER_HASH_DOC_IDS", "true"},
                {"PGSTREAM_SEARCH_STORE_BACKOFF_INTERVAL", "5s"}}));
    EXPECT_EQ(s.engine, Engine::kElasticsearch);
    EXPECT_EQ(s.url, "https://es.example:9243/prefix");
    EXPECT_EQ(s.username, "elastic");
    EXPECT_EQ(s.password, "s@cret");
    EXPECT_EQ(s.authorization_header(), "Authorization: Basic ZWxhc3RpYzpzQGNyZXQ=");
    EXPECT_TRUE(s.hash_doc_ids);
    EXPECT_EQ(s.store_retry.kind, RetryPolicy::Kind::kConstant);
    EXPECT_EQ(s.store_retry.delayBeforeRetry(7), std::chrono::milliseconds(5000));

    auto error_of = [](std::map<std::string, std::string> values) {
        try {
            search_settings_from_config(Config(std::move(values)));
        } catch (const ConfigError& e) {
            return std::string(e.what());
        }
        return std::string("<no error>");
    };
    std::string bad_scheme = error_of({{"PGSTREAM_OPENSEARCH_STORE_URL", "ftp://u:hunter2@host"}});
    EXPECT_NE(bad_scheme.find("invalid PGSTREAM_OPENSEARCH_STORE_URL: expected http://"), std::string::npos);
    EXPECT_EQ(bad_scheme.find("hunter2"), std::string::npos);
    EXPECT_NE(error_of({{"PGSTREAM_OPENSEARCH_STORE_URL", "http://a"},
                        {"PGSTREAM_ELASTICSEARCH_STORE_URL", "http://b"}})
                  .find("not both"),
              std::string::npos);
    EXPECT_NE(error_of({{"PGSTREAM_OPENSEARCH_STORE_URL", "http://a"},
                        {"PGSTREAM_SEARCH_STORE_EXP_BACKOFF_MAX_RETRIES", "3"},
                        {"PGSTREAM_SEARCH_STORE_BACKOFF_INTERVAL", "1s"}})
                  .find("not both"),
              std::string::npos);
    EXPECT_NE(
        error_of({{"PGSTREAM_OPENSEARCH_STORE_URL", "http://u:p@a"}, {"PGSTREAM_SEARCH_STORE_USERNAME", "v"}})
            .find("invalid PGSTREAM_SEARCH_STORE_USERNAME"),
        std::string::npos);
    EXPECT_NE(
        error_of({{"PGSTREAM_OPENSEARCH_STORE_URL", "http://a"}, {"PGSTREAM_SEARCH_INDEXER_BATCH_SIZE", "0"}})
            .find("PGSTREAM_SEARCH_INDEXER_BATCH_SIZE"),
        std::string::npos);

    SearchSettings both = settings();
    both.api_key = "k";
    both.username = "u";
    both.ca_file = "/nonexistent/ca.pem";
    auto problems = validate(both);
    ASSERT_EQ(problems.size(), 2u);
    EXPECT_NE(problems[0].find("PGSTREAM_SEARCH_STORE_API_KEY"), std::string::npos);
    EXPECT_NE(problems[1].find("PGSTREAM_SEARCH_STORE_CA_FILE"), std::string::npos);
}

TEST(SearchSettings, YamlTargetSearchSectionAsTheGoPgstreamWritesIt) {
    register_builtin_modules();
    Config config(Config::parse_yaml(R"(target:
  search:
    engine: elasticsearch
    url: https://elastic:pw@es.example:9243
    batch:
      timeout: 2s
      size: 50
      max_bytes: 2MiB
      max_queue_bytes: 50MiB
    backoff:
      constant:
        interval: 3s
        max_retries: 4
    cleanup_backoff:
      exponential:
        initial_interval: 1s
        max_interval: 8s
    dead_letter_file: /tmp/dead.jsonl
    hash_doc_ids: true
)",
                                     "test.yaml"));
    SearchSettings s = search_settings_from_config(config);
    EXPECT_EQ(s.engine, Engine::kElasticsearch);
    EXPECT_EQ(s.url, "https://es.example:9243");
    EXPECT_EQ(s.username, "elastic");
    EXPECT_EQ(s.batch_timeout, std::chrono::milliseconds(2000));
    EXPECT_EQ(s.batch_size, 50u);
    EXPECT_EQ(s.batch_bytes, 2u << 20);
    EXPECT_EQ(s.max_queue_bytes, 50u << 20);
    EXPECT_EQ(s.store_retry.kind, RetryPolicy::Kind::kConstant);
    EXPECT_EQ(s.store_retry.max_retries, 4u);
    EXPECT_EQ(s.store_retry.delayBeforeRetry(1), std::chrono::milliseconds(3000));
    EXPECT_EQ(s.cleanup_retry.kind, RetryPolicy::Kind::kExponential);
    EXPECT_EQ(s.cleanup_retry.delayBeforeRetry(9), std::chrono::milliseconds(8000));
    EXPECT_EQ(s.dead_letter_file, "/tmp/dead.jsonl");
    EXPECT_TRUE(s.hash_doc_ids);
}
