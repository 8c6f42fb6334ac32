// The search store against pgstream-search-mock (a child process): schema changes (index, alias, mapping
// updates, recorded versions, out-of-order refusal, table and schema deletes) and _bulk writes with their
// per-document outcomes under faults (409, 400, 429 items, an outage).
#include <gtest/gtest.h>
#include <httplib.h>

#include <thread>

#include "search/search_store.h"
#include "search_schema_fixtures.h"
#include "support/process.h"
#include "support/search_mock.h"

using namespace pgstream;
using namespace pgstream::search;
using pgstream_it::SearchMock;
using namespace search_test;

namespace {

HttpClientSettings local_http() {
    HttpClientSettings settings;
    settings.address_policy = AddressPolicy({*Network::parse("127.0.0.0/8")});
    return settings;
}

SchemaLogEntry version(int64_t number, std::vector<SchemaColumn> columns,
                       const std::string& table_name = "users") {
    return schema(number, {table(table_name, "t1", std::move(columns))});
}

std::vector<SchemaColumn> base_columns() {
    return {column("t1-1", "id", "integer"), column("t1-2", "body", "text"),
            column("t1-3", "embedding", "vector(2)")};
}

BulkItem index_item(const std::string& id, uint64_t version,
                    const std::vector<std::pair<std::string, std::string>>& fields,
                    const std::string& table = "t1") {
    BulkItem item;
    item.index = "public";
    item.id = id;
    item.version = version;
    item.add_field("_table", json_quote(table));
    for (const auto& [name, value] : fields) item.add_field(name, value);
    return item;
}

BulkItem delete_item(const std::string& id, uint64_t version) {
    BulkItem item;
    item.action = BulkItem::Action::kDelete;
    item.index = "public";
    item.id = id;
    item.version = version;
    return item;
}

// The _bulk body, byte for byte: an action line per item (external versions) and, for an index, the document
// with its version field.
TEST(SearchBulkBody, AnActionLinePerItemAndADocumentLinePerIndex) {
    HttpClient http(local_http());
    SearchSettings settings;
    settings.url = "http://127.0.0.1:9200";
    SearchStore store(settings, http);
    BulkItem odd_id = index_item("t1_a\"b\\c", 10, {{"t1-1", "1"}, {"t1-2", R"("x")"}});
    BulkItem no_fields;
    no_fields.index = "public";
    no_fields.id = "t1_2";
    no_fields.version = 11;
    EXPECT_EQ(
        store.bulk_body({odd_id, delete_item("t1_3", 18446744073709551615u), no_fields}),
        "{\"index\":{\"_index\":\"public\",\"_id\":\"t1_a\\\"b\\\\c\",\"version\":10,"
        "\"version_type\":\"external\"}}\n"
        "{\"_table\":\"t1\",\"t1-1\":1,\"t1-2\":\"x\",\"_change_version\":10}\n"
        "{\"delete\":{\"_index\":\"public\",\"_id\":\"t1_3\",\"version\":18446744073709551615,"
        "\"version_type\":\"external\"}}\n"
        "{\"index\":{\"_index\":\"public\",\"_id\":\"t1_2\",\"version\":11,\"version_type\":\"external\"}}\n"
        "{\"_change_version\":11}\n");
    EXPECT_EQ(store.bulk_body({delete_item("t1_4", 12)}),
              "{\"delete\":{\"_index\":\"public\",\"_id\":\"t1_4\",\"version\":12,\"version_type\":"
              "\"external\"}}\n");
}

class SearchStoreTest : public ::testing::Test {
  protected:
    void start(std::vector<std::string> args = {}) {
        args.insert(args.begin(), {"--listen", "127.0.0.1:0"});
        mock_ = std::make_unique<SearchMock>(args);
        SearchSettings settings;
        settings.engine = flavor_;
        settings.url = "http://127.0.0.1:" + std::to_string(mock_->port());
        settings.request_timeout = std::chrono::milliseconds(5000);
        // Short waits: the tests' faults clear in milliseconds.
        settings.store_retry = {RetryPolicy::Kind::kConstant, std::chrono::milliseconds(20), {}, 0};
        store_ = std::make_unique<SearchStore>(settings, *http_);
    }
    void SetUp() override { start(); }
    // The client's kept-alive connections closed first: the mock would wait for them to time out (5 s).
    void TearDown() override {
        store_.reset();
        http_.reset();
        mock_.reset();
    }

    // A request to the mock (or its admin port) as JSON.
    JsonValue call(const std::string& method, const std::string& path, const std::string& body = "",
                   int port = 0) {
        httplib::Client client("127.0.0.1", port ? port : mock_->port());
        httplib::Result result = method == "GET"      ? client.Get(path)
                                 : method == "DELETE" ? client.Delete(path)
                                 : method == "PUT"    ? client.Put(path, body, "application/json")
                                                      : client.Post(path, body, "application/json");
        if (!result) return JsonValue{};
        return result->body.empty() ? JsonValue{} : parse_json(result->body);
    }
    std::string field(const JsonValue& value, const std::vector<std::string>& path) {
        const JsonValue* node = &value;
        for (const auto& key : path) {
            node = node->find(key);
            if (node == nullptr) return "<missing>";
        }
        return node->is_object() || node->is_array() ? node->to_json() : node->text;
    }
    std::string source_field(const std::string& id, const std::string& name) {
        return field(call("GET", "/public/_doc/" + id), {"_source", name});
    }
    // `change_version`: the schema_log event's version, after the rows the tests write (versions < 1000).
    void apply(const SchemaLogEntry& entry, ChangeResult::Status expected = ChangeResult::Status::kApplied,
               uint64_t change_version = 1000) {
        ChangeResult result = store_->apply_schema_change(entry, change_version);
        ASSERT_EQ(result.status, expected) << result.detail;
    }

    Engine flavor_ = Engine::kOpenSearch;
    std::unique_ptr<HttpClient> http_ = std::make_unique<HttpClient>(local_http());
    std::unique_ptr<SearchMock> mock_;
    std::unique_ptr<SearchStore> store_;
    StopToken stop_;
};

}  // namespace

TEST_F(SearchStoreTest, SchemaVersionsCreateTheIndexAddFieldsAndAliasesAndAreRecorded) {
    apply(version(1, base_columns()));
    JsonValue index = call("GET", "/public-1");
    EXPECT_EQ(field(index, {"public-1", "mappings", "dynamic"}), "strict");
    EXPECT_EQ(field(index, {"public-1", "mappings", "properties", "t1-3", "type"}), "knn_vector");
    EXPECT_EQ(field(index, {"public-1", "mappings", "properties", "users", "properties", "body", "path"}),
              "t1-2");
    EXPECT_NE(field(index, {"public-1", "aliases", "public"}), "<missing>");
    apply(version(1, base_columns()), ChangeResult::Status::kAlreadyApplied);

    // Version 2: a new column, a renamed column and a renamed table.
    auto columns = base_columns();
    columns[1].name = "text";
    columns.push_back(column("t1-4", "seen", "timestamp with time zone"));
    apply(version(2, columns, "people"));
    index = call("GET", "/public-1");
    EXPECT_EQ(field(index, {"public-1", "mappings", "properties", "t1-4", "type"}), "date");
    EXPECT_EQ(field(index, {"public-1", "mappings", "properties", "people", "properties", "text", "path"}),
              "t1-2");
    EXPECT_EQ(field(index, {"public-1", "mappings", "properties", "users", "properties", "body", "path"}),
              "t1-2")
        << "the old alias stays";

    // The alias answers queries by name.
    ASSERT_EQ(
        store_->write({index_item("t1_1", 10, {{"t1-1", "1"}, {"t1-2", "\"hello\""}})}, stop_)[0].outcome,
        ItemOutcome::kDelivered);
    call("POST", "/public/_refresh");
    EXPECT_EQ(field(call("POST", "/public/_search", R"({"query":{"term":{"people.text":"hello"}}})"),
                    {"hits", "total", "value"}),
              "1");

    JsonValue recorded = call("POST", "/pgstream/_search", R"({"sort":[{"version":{"order":"desc"}}]})");
    EXPECT_EQ(field(recorded, {"hits", "total", "value"}), "2");
    apply(version(1, base_columns()), ChangeResult::Status::kOutOfOrder);
}

TEST_F(SearchStoreTest, OlderVersionsAndMissingDeletesAreIgnoredNotFailed) {
    apply(version(1, base_columns()));
    auto results = store_->write({index_item("t1_1", 100, {{"t1-2", "\"new\""}}),
                                  index_item("t1_1", 50, {{"t1-2", "\"old\""}}), delete_item("t1_404", 60)},
                                 stop_);
    ASSERT_EQ(results.size(), 3u);
    EXPECT_EQ(results[0].outcome, ItemOutcome::kDelivered);
    EXPECT_EQ(results[1].outcome, ItemOutcome::kIgnored);
    EXPECT_EQ(results[1].status, 409);
    EXPECT_EQ(results[2].outcome, ItemOutcome::kIgnored);
    EXPECT_EQ(results[2].status, 404);
    EXPECT_EQ(source_field("t1_1", "t1-2"), "new");
    // A repeated delete (same version) after the real one is ignored too.
    EXPECT_EQ(store_->write({delete_item("t1_1", 101)}, stop_)[0].outcome, ItemOutcome::kDelivered);
    EXPECT_EQ(store_->write({delete_item("t1_1", 101)}, stop_)[0].outcome, ItemOutcome::kIgnored);
}

TEST_F(SearchStoreTest, ABadDocumentIsGivenUpWithItsReasonAndTheOthersAreWritten) {
    apply(version(1, base_columns()));
    auto results =
        store_->write({index_item("t1_1", 10, {{"t1-1", "1"}}), index_item("t1_2", 10, {{"t1-1", "\"abc\""}}),
                       index_item("t1_3", 10, {{"t1-9", "1"}})},
                      stop_);
    EXPECT_EQ(results[0].outcome, ItemOutcome::kDelivered);
    EXPECT_EQ(results[1].outcome, ItemOutcome::kGivenUp);
    EXPECT_EQ(results[1].status, 400);
    EXPECT_EQ(results[1].error_type, "mapper_parsing_exception");
    EXPECT_NE(results[1].reason.find("failed to parse field [t1-1] of type [long]"), std::string::npos)
        << results[1].reason;
    EXPECT_EQ(results[2].outcome, ItemOutcome::kGivenUp);
    EXPECT_EQ(results[2].error_type, "strict_dynamic_mapping_exception");
}

// The indexer asks for _bulk answers filtered to each item's status and error (filter_path): about 25 bytes
// an item instead of ~200, and every outcome still read from them (delivered, a 409 ignored, a delete's 404
// ignored, a 400 given up with its reason).
TEST_F(SearchStoreTest, BulkAnswersCarryOnlyStatusAndErrorsYetEveryOutcome) {
    apply(version(1, base_columns()));
    std::vector<BulkItem> items;
    for (int i = 0; i < 200; ++i)
        items.push_back(index_item("t1_" + std::to_string(i), 10, {{"t1-1", std::to_string(i)}}));
    auto answer_bytes = [&] { return std::stol(field(call("GET", "/_mock/stats"), {"answer_bytes"})); };
    long before = answer_bytes();
    for (const auto& result : store_->write(items, stop_)) EXPECT_EQ(result.outcome, ItemOutcome::kDelivered);
    const long per_item = (answer_bytes() - before) / long(items.size());
    EXPECT_LE(per_item, 30) << "the whole answer is ~200 bytes per item";

    before = answer_bytes();
    auto results = store_->write({index_item("t1_0", 5, {{"t1-1", "0"}}), delete_item("t1_gone", 10),
                                  index_item("t1_bad", 10, {{"t1-1", "\"abc\""}})},
                                 stop_);
    ASSERT_EQ(results.size(), 3u);
    EXPECT_EQ(results[0].outcome, ItemOutcome::kIgnored);
    EXPECT_EQ(results[0].status, 409);
    EXPECT_EQ(results[1].outcome, ItemOutcome::kIgnored);
    EXPECT_EQ(results[1].status, 404);
    EXPECT_EQ(results[2].outcome, ItemOutcome::kGivenUp);
    EXPECT_EQ(results[2].error_type, "mapper_parsing_exception");
    EXPECT_NE(results[2].reason.find("failed to parse field [t1-1] of type [long]"), std::string::npos)
        << results[2].reason;
}

// A schema whose index does not exist yet (its version not seen): the _bulk auto-creates it. The version
// field is asked for once per write, not once per item (1000 PUTs per batch made the bench crawl).
TEST_F(SearchStoreTest, AMissingIndexIsAskedForTheVersionFieldOncePerWrite) {
    std::vector<BulkItem> items;
    for (int i = 0; i < 20; ++i)
        items.push_back(index_item("t1_" + std::to_string(i), 10, {{"t1-1", std::to_string(i)}}));
    auto requests = [&] { return std::stol(field(call("GET", "/_mock/stats"), {"requests"})); };
    const long before = requests();
    for (const auto& result : store_->write_once(items)) EXPECT_EQ(result.outcome, ItemOutcome::kDelivered);
    EXPECT_EQ(requests() - before, 2) << "one PUT _mapping (404) and one _bulk";
}

TEST_F(SearchStoreTest, RejectedItemsAreRetriedUntilEveryOneIsWritten) {
    apply(version(1, base_columns()));
    call("POST", "/_mock/faults", R"({"reject_bulk_items_ratio":0.2})");
    std::vector<BulkItem> items;
    for (int i = 0; i < 50; ++i)
        items.push_back(index_item("t1_" + std::to_string(i), 10, {{"t1-1", std::to_string(i)}}));
    std::vector<ItemResult> first = store_->send_bulk(items);
    size_t rejected = 0;
    for (const auto& result : first)
        rejected += result.outcome == ItemOutcome::kRetry && result.status == 429;
    EXPECT_EQ(rejected, 10u);

    auto results = store_->write(items, stop_);
    for (const auto& result : results) {
        EXPECT_TRUE(result.outcome == ItemOutcome::kDelivered || result.outcome == ItemOutcome::kIgnored)
            << result.status << " " << result.reason;
    }
    call("DELETE", "/_mock/faults");
    call("POST", "/public/_refresh");
    EXPECT_EQ(field(call("POST", "/public/_count", R"({"query":{"match_all":{}}})"), {"count"}), "50");
}

TEST_F(SearchStoreTest, AnOutageIsRetriedLaterNotGivenUp) {
    start({"--admin-listen", "127.0.0.1:0"});
    apply(version(1, base_columns()));
    // The mock keeps serving a connection kept alive from before an outage until its keep-alive timeout (5
    // s): the store gets a client without one.
    SearchSettings settings = store_->settings();
    store_.reset();
    http_.reset();
    call("POST", "/_mock/faults", R"({"outage":true})", mock_->adminPort());
    // The outage starts asynchronously: wait until a new connection is refused.
    ASSERT_TRUE(pgstream_it::wait_until([&] { return !httplib::Client("127.0.0.1", mock_->port()).Get("/"); },
                                        std::chrono::seconds(5)));
    auto fresh = std::make_unique<HttpClient>(local_http());
    SearchStore store(settings, *fresh);
    std::vector<BulkItem> items = {index_item("t1_1", 10, {{"t1-1", "1"}})};
    std::vector<ItemResult> during = store.send_bulk(items);
    EXPECT_EQ(during[0].outcome, ItemOutcome::kRetry);
    EXPECT_EQ(during[0].status, 0);
    EXPECT_FALSE(during[0].reason.empty());
    EXPECT_EQ(store.apply_schema_change(version(2, base_columns()), 1000).status,
              ChangeResult::Status::kRetry);

    // write() keeps retrying through the outage and delivers once the server is back.
    std::vector<ItemResult> results;
    std::thread writer([&] { results = store.write(items, stop_); });
    call("DELETE", "/_mock/faults", "", mock_->adminPort());
    writer.join();
    EXPECT_EQ(results[0].outcome, ItemOutcome::kDelivered) << results[0].reason;
    EXPECT_EQ(source_field("t1_1", "t1-1"), "1");
    fresh.reset();
}

TEST_F(SearchStoreTest, AStopEndsRetriesWithTheItemsStillPending) {
    call("POST", "/_mock/faults", R"({"status_503":true})");
    StopToken stop;
    stop.request_stop();
    auto results = store_->write({index_item("t1_1", 10, {{"t1-1", "1"}})}, stop);
    EXPECT_EQ(results[0].outcome, ItemOutcome::kRetry);
    EXPECT_EQ(results[0].status, 503);
}

TEST_F(SearchStoreTest, AnUpdateKeepsTheUnchangedToastedColumn) {
    apply(version(1, base_columns()));
    const std::string large(20000, 'x');
    ASSERT_EQ(store_->write({index_item("t1_1", 10, {{"t1-1", "1"}, {"t1-2", json_quote(large)}})}, stop_)[0]
                  .outcome,
              ItemOutcome::kDelivered);
    // The UPDATE changed only the vector; wal2json left the TOASTed text out.
    BulkItem update = index_item("t1_1", 21, {{"t1-1", "1"}, {"t1-3", "[1,2]"}});
    update.unchanged_fields = {"t1-2"};
    // A second update of the same row in the same batch takes it from the first.
    BulkItem again = index_item("t1_1", 31, {{"t1-1", "1"}, {"t1-3", "[3,4]"}});
    again.unchanged_fields = {"t1-2"};
    auto results = store_->write({update, again}, stop_);
    EXPECT_EQ(results[0].outcome, ItemOutcome::kDelivered);
    EXPECT_EQ(results[1].outcome, ItemOutcome::kDelivered);
    EXPECT_EQ(source_field("t1_1", "t1-2").size(), large.size());
    EXPECT_EQ(source_field("t1_1", "t1-3"), "[3,4]");
}

TEST_F(SearchStoreTest, TruncateDropTableAndDropSchemaDeleteDocuments) {
    SchemaLogEntry v1 = version(1, base_columns());
    SchemaTable other;
    other.name = "other";
    other.pgstream_id = "t2";
    other.columns = {column("t2-1", "id", "integer")};
    v1.tables.push_back(other);
    apply(v1);
    BulkItem row_of_other = index_item("t2_1", 10, {{"t2-1", "1"}}, "t2");
    store_->write(
        {index_item("t1_1", 10, {{"t1-1", "1"}}), index_item("t1_2", 10, {{"t1-1", "2"}}), row_of_other},
        stop_);
    ASSERT_EQ(store_->delete_table_documents("public", {"t1"}, 20).status, ChangeResult::Status::kApplied);
    EXPECT_EQ(field(call("POST", "/public/_count", R"({"query":{"match_all":{}}})"), {"count"}), "1");

    // DROP TABLE other: its documents go with the version that no longer has it.
    apply(version(2, base_columns()));
    EXPECT_EQ(field(call("POST", "/public/_count", R"({"query":{"match_all":{}}})"), {"count"}), "0");

    SchemaLogEntry dropped = version(3, {});
    dropped.tables.clear();
    dropped.dropped = true;
    apply(dropped);
    EXPECT_EQ(field(call("GET", "/public-1"), {"status"}), "404");
    EXPECT_EQ(field(call("POST", "/pgstream/_count", R"({"query":{"match_all":{}}})"), {"count"}), "0");
}

// A restart replays from the last confirmed position: the writes before a TRUNCATE, the TRUNCATE, and the
// writes after it, which the store already has. The replayed TRUNCATE must not delete those.
TEST_F(SearchStoreTest, AReplayedTruncateKeepsTheDocumentsWrittenAfterIt) {
    apply(version(1, base_columns()));
    auto stream = [&] {
        store_->write({index_item("t1_1", 10, {{"t1-1", "1"}}), index_item("t1_2", 11, {{"t1-1", "2"}})},
                      stop_);
        ChangeResult truncated = store_->delete_table_documents("public", {"t1"}, 20);
        ASSERT_EQ(truncated.status, ChangeResult::Status::kApplied) << truncated.detail;
        store_->write({index_item("t1_3", 30, {{"t1-1", "3"}}), index_item("t1_1", 31, {{"t1-1", "1"}})},
                      stop_);
    };
    stream();
    stream();  // the replay
    const std::string query = R"({"query":{"match_all":{}},"sort":[{"_id":"asc"}],"_source":false})";
    JsonValue hits = call("POST", "/public/_search", query);
    EXPECT_EQ(field(hits, {"hits", "total", "value"}), "2");
    EXPECT_EQ(source_field("t1_1", "_change_version"), "31");
    EXPECT_EQ(source_field("t1_3", "_change_version"), "30");
    EXPECT_EQ(field(call("GET", "/public/_doc/t1_2"), {"found"}), "false");
}

// An index created before the version field existed gets it by a put-mapping before the first write; its
// documents without the field are older than any TRUNCATE to come and are deleted by it.
TEST_F(SearchStoreTest, AnIndexWithoutTheVersionFieldGetsItAndItsOldDocumentsAreTruncated) {
    call(
        "PUT", "/public-1",
        R"({"mappings":{"dynamic":"strict","properties":{"_table":{"type":"keyword"},"t1-1":{"type":"long"}}},)"
        R"("aliases":{"public":{}}})");
    call("PUT", "/public/_doc/t1_1?version=5&version_type=external", R"({"_table":"t1","t1-1":1})");
    std::vector<ItemResult> written = store_->write(
        {index_item("t1_2", 10, {{"t1-1", "2"}}), index_item("t1_3", 30, {{"t1-1", "3"}})}, stop_);
    for (const auto& result : written) EXPECT_EQ(result.outcome, ItemOutcome::kDelivered) << result.reason;
    EXPECT_EQ(field(call("GET", "/public-1/_mapping"),
                    {"public-1", "mappings", "properties", "_change_version", "type"}),
              "long");
    ChangeResult truncated = store_->delete_table_documents("public", {"t1"}, 20);
    ASSERT_EQ(truncated.status, ChangeResult::Status::kApplied) << truncated.detail;
    EXPECT_EQ(field(call("POST", "/public/_count", R"({"query":{"match_all":{}}})"), {"count"}), "1");
    EXPECT_EQ(field(call("GET", "/public/_doc/t1_3"), {"found"}), "true");
}

class ElasticsearchStoreTest : public SearchStoreTest {
  protected:
    void SetUp() override {
        flavor_ = Engine::kElasticsearch;
        start({"--flavor", "elasticsearch"});
    }
};

TEST_F(ElasticsearchStoreTest, DenseVectorsAndCompatibleMediaTypes) {
    apply(version(1, base_columns()));
    EXPECT_EQ(field(call("GET", "/public-1"), {"public-1", "mappings", "properties", "t1-3", "type"}),
              "dense_vector");
    auto results = store_->write({index_item("t1_1", 10, {{"t1-1", "1"}, {"t1-3", "[1,2]"}}),
                                  index_item("t1_2", 10, {{"t1-3", "[1,2,3]"}})},
                                 stop_);
    EXPECT_EQ(results[0].outcome, ItemOutcome::kDelivered) << results[0].reason;
    EXPECT_EQ(results[1].outcome, ItemOutcome::kGivenUp);
    EXPECT_EQ(results[1].error_type, "document_parsing_exception");
}
