// pgstream-search-mock, black box: the binary runs as a child process and is driven over HTTP with
// cpp-httplib's client. The conformance cases replay, in our own words, the requests and assertions of the
// search engine's REST API YAML tests (bulk, index, delete, get, indices.create, indices.put_mapping,
// delete_by_query, search), then the mock's own parts: both flavors, fault injection, authentication.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "support/process.h"
#include "support/search_mock.h"

using namespace std::chrono_literals;

namespace {

using pgstream_it::SearchMock;

struct Reply {
    int status = -1;  // -1: no HTTP answer (connection refused, closed, reset)
    std::string body;
    httplib::Headers headers;
    rapidjson::Document json;

    // A value by dotted path, array indices as numbers ("items.0.index.status"), as the YAML tests name them.
    const rapidjson::Value* at(const std::string& path) const {
        const rapidjson::Value* node = &json;
        size_t start = 0;
        while (node != nullptr && start <= path.size()) {
            size_t dot = path.find('.', start);
            std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
            if (node->IsObject()) {
                auto member = node->FindMember(part.c_str());
                node = member == node->MemberEnd() ? nullptr : &member->value;
            } else if (node->IsArray() && !part.empty() &&
                       part.find_first_not_of("0123456789") == std::string::npos) {
                size_t index = std::stoul(part);
                node = index < node->Size() ? &(*node)[static_cast<rapidjson::SizeType>(index)] : nullptr;
            } else {
                node = nullptr;
            }
            if (dot == std::string::npos) break;
            start = dot + 1;
        }
        return node;
    }
    std::string str(const std::string& path) const {
        const auto* value = at(path);
        return value != nullptr && value->IsString() ? value->GetString() : "<missing " + path + ">";
    }
    int64_t num(const std::string& path) const {
        const auto* value = at(path);
        return value != nullptr && value->IsInt64() ? value->GetInt64() : INT64_MIN;
    }
    bool has(const std::string& path) const { return at(path) != nullptr; }
    bool flag(const std::string& path) const {
        const auto* value = at(path);
        return value != nullptr && value->IsBool() && value->GetBool();
    }
    std::string text(const std::string& path) const {
        const auto* value = at(path);
        if (value == nullptr) return "<missing " + path + ">";
        rapidjson::StringBuffer buffer;
        rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
        value->Accept(writer);
        return buffer.GetString();
    }
};

class Client {
  public:
    explicit Client(int port) : client_("127.0.0.1", port) {
        client_.set_connection_timeout(5s);
        client_.set_read_timeout(10s);
    }
    void setHeaders(httplib::Headers headers) { headers_ = std::move(headers); }

    Reply call(const std::string& method, const std::string& path, const std::string& body = "",
               const std::string& content_type = "application/json") {
        auto send = [&]() {
            if (method == "GET") return client_.Get(path.c_str(), headers_);
            if (method == "HEAD") return client_.Head(path.c_str(), headers_);
            if (method == "DELETE") return client_.Delete(path.c_str(), headers_, body, content_type.c_str());
            if (method == "PUT") return client_.Put(path.c_str(), headers_, body, content_type.c_str());
            return client_.Post(path.c_str(), headers_, body, content_type.c_str());
        };
        httplib::Result result = send();
        Reply reply;
        if (!result) return reply;
        reply.status = result->status;
        reply.body = result->body;
        reply.headers = result->headers;
        reply.json.Parse(reply.body.c_str());
        return reply;
    }
    Reply get(const std::string& path) { return call("GET", path); }
    Reply put(const std::string& path, const std::string& body = "") { return call("PUT", path, body); }
    Reply post(const std::string& path, const std::string& body = "") { return call("POST", path, body); }
    Reply del(const std::string& path) { return call("DELETE", path); }
    Reply bulk(const std::string& lines, const std::string& path = "/_bulk") {
        return call("POST", path, lines, "application/x-ndjson");
    }

  private:
    httplib::Client client_;
    httplib::Headers headers_;
};

std::string describe(const Reply& reply) {
    return std::to_string(reply.status) + " " + reply.body;
}

class SearchMockTest : public ::testing::Test {
  protected:
    void SetUp() override {
        mock_ = std::make_unique<SearchMock>(std::vector<std::string>{"--listen", "127.0.0.1:0"});
    }
    Client client() { return Client(mock_->port()); }

    std::unique_ptr<SearchMock> mock_;
};

// ---------------------------------------------------------------------------------------------------------
// indices.create, indices.put_mapping, HEAD/GET/DELETE index
// ---------------------------------------------------------------------------------------------------------

TEST_F(SearchMockTest, CreateIndexWithSettingsMappingsAndAliases) {
    Client c = client();
    Reply created = c.put("/test_index", R"({"settings":{"number_of_replicas":"0"},
        "mappings":{"properties":{"field":{"type":"text"}}},
        "aliases":{"test_alias":{},"test_blias":{"routing":"b"},"test_clias":{"filter":{"term":{"field":"value"}}},
                   "test_dlias":{"is_write_index":true}}})");
    ASSERT_EQ(created.status, 200) << describe(created);
    EXPECT_TRUE(created.flag("acknowledged"));
    EXPECT_TRUE(created.flag("shards_acknowledged"));
    EXPECT_EQ(created.str("index"), "test_index");

    Reply aliases = c.get("/test_index/_alias");
    EXPECT_EQ(aliases.str("test_index.aliases.test_blias.search_routing"), "b");
    EXPECT_EQ(aliases.str("test_index.aliases.test_blias.index_routing"), "b");
    EXPECT_FALSE(aliases.has("test_index.aliases.test_blias.filter"));
    EXPECT_EQ(aliases.str("test_index.aliases.test_clias.filter.term.field"), "value");
    EXPECT_FALSE(aliases.has("test_index.aliases.test_alias.is_write_index"));
    EXPECT_TRUE(aliases.flag("test_index.aliases.test_dlias.is_write_index"));

    Reply settings = c.get("/test_index/_settings");
    EXPECT_EQ(settings.str("test_index.settings.index.number_of_replicas"), "0");
    EXPECT_EQ(settings.str("test_index.settings.index.number_of_shards"), "1");
    Reply index = c.get("/test_index");
    EXPECT_EQ(index.str("test_index.mappings.properties.field.type"), "text");
    EXPECT_TRUE(index.has("test_index.aliases.test_alias"));

    Reply again = c.put("/test_index");
    EXPECT_EQ(again.status, 400);
    EXPECT_EQ(again.str("error.type"), "resource_already_exists_exception");
    EXPECT_EQ(again.str("error.root_cause.0.type"), "resource_already_exists_exception");
    EXPECT_EQ(again.str("error.index"), "test_index");
    EXPECT_EQ(again.num("status"), 400);

    EXPECT_EQ(c.call("HEAD", "/test_index").status, 200);
    EXPECT_EQ(c.call("HEAD", "/missing").status, 404);
    EXPECT_TRUE(c.del("/test_index").flag("acknowledged"));
    EXPECT_EQ(c.call("HEAD", "/test_index").status, 404);
    Reply missing = c.del("/test_index");
    EXPECT_EQ(missing.status, 404);
    EXPECT_EQ(missing.str("error.root_cause.0.type"), "index_not_found_exception");
    EXPECT_EQ(missing.str("error.reason"), "no such index [test_index]");
    EXPECT_EQ(missing.str("error.index"), "test_index");
    EXPECT_EQ(missing.num("status"), 404);
}

TEST_F(SearchMockTest, CreateIndexRefusesBadMappingsAndNames) {
    Client c = client();
    Reply typed = c.put("/t1", R"({"mappings":{"_doc":{"properties":{"field":{"type":"keyword"}}}}})");
    EXPECT_EQ(typed.status, 400);
    EXPECT_EQ(typed.str("error.type"), "illegal_argument_exception");
    EXPECT_EQ(typed.str("error.reason"),
              "The mapping definition cannot be nested under a type [_doc] unless include_type_name is set "
              "to true.");
    Reply empty_name = c.put("/t1", R"({"mappings":{"properties":{"":{"type":"keyword"}}}})");
    EXPECT_EQ(empty_name.status, 400);
    EXPECT_NE(empty_name.body.find("illegal_argument_exception"), std::string::npos) << empty_name.body;
    Reply unknown_type = c.put("/t1", R"({"mappings":{"properties":{"f":{"type":"strange"}}}})");
    EXPECT_EQ(unknown_type.str("error.root_cause.0.type"), "mapper_parsing_exception");
    EXPECT_EQ(unknown_type.str("error.root_cause.0.reason"),
              "No handler for type [strange] declared on field [f]");
    Reply unknown_param =
        c.put("/t1", R"({"mappings":{"properties":{"f":{"type":"keyword","colour":"red"}}}})");
    EXPECT_EQ(unknown_param.str("error.root_cause.0.reason"),
              "unknown parameter [colour] on mapper [f] of type [keyword]");
    Reply bad_alias = c.put("/t1", R"({"mappings":{"properties":{"a":{"type":"alias","path":"nowhere"}}}})");
    EXPECT_EQ(bad_alias.status, 400);
    EXPECT_NE(bad_alias.str("error.reason").find("an alias must refer to an existing field in the mappings"),
              std::string::npos);
    Reply bad_format =
        c.put("/t1", R"({"mappings":{"properties":{"d":{"type":"date","format":"yyyy-qq"}}}})");
    EXPECT_EQ(bad_format.status, 400);
    Reply no_dimension = c.put("/t1", R"({"mappings":{"properties":{"v":{"type":"knn_vector"}}}})");
    EXPECT_EQ(no_dimension.status, 400);
    Reply upper = c.put("/Upper");
    EXPECT_EQ(upper.str("error.type"), "invalid_index_name_exception");
    EXPECT_EQ(upper.str("error.reason"), "Invalid index name [Upper], must be lowercase");
    Reply setting = c.put("/t1", R"({"settings":{"index":{"no_such_setting":1}}})");
    EXPECT_EQ(setting.str("error.type"), "illegal_argument_exception");
    EXPECT_EQ(c.call("HEAD", "/t1").status, 404);
}

TEST_F(SearchMockTest, PutMappingAddsFieldsAndRefusesTypeChanges) {
    Client c = client();
    ASSERT_EQ(c.put("/test_index").status, 200);
    Reply put =
        c.put("/test_index/_mapping", R"({"properties":{"text1":{"type":"text","analyzer":"whitespace"},
        "text2":{"type":"text","analyzer":"whitespace"},"subfield.text3":{"type":"text"}}})");
    ASSERT_EQ(put.status, 200) << describe(put);
    Reply mapping = c.get("/test_index/_mapping");
    EXPECT_EQ(mapping.str("test_index.mappings.properties.text1.analyzer"), "whitespace");
    EXPECT_EQ(mapping.str("test_index.mappings.properties.subfield.properties.text3.type"), "text");

    Reply multi = c.put(
        "/test_index/_mapping",
        R"({"properties":{"text1":{"type":"text","analyzer":"whitespace","fields":{"text_raw":{"type":"keyword"}}}}})");
    ASSERT_EQ(multi.status, 200) << describe(multi);
    mapping = c.get("/test_index/_mapping");
    EXPECT_EQ(mapping.str("test_index.mappings.properties.text1.fields.text_raw.type"), "keyword");

    Reply change = c.put("/test_index/_mapping", R"({"properties":{"text2":{"type":"long"}}})");
    EXPECT_EQ(change.status, 400);
    EXPECT_EQ(change.str("error.reason"), "mapper [text2] cannot be changed from type [text] to [long]");
    Reply analyzer =
        c.put("/test_index/_mapping", R"({"properties":{"text2":{"type":"text","analyzer":"standard"}}})");
    EXPECT_EQ(analyzer.status, 400);
    EXPECT_NE(analyzer.str("error.reason")
                  .find("Cannot update parameter [analyzer] from [whitespace] to [standard]"),
              std::string::npos);
    Reply typed = c.put("/test_index/_mapping", R"({"_doc":{"properties":{"field":{"type":"keyword"}}}})");
    EXPECT_EQ(typed.str("error.reason"), "Types cannot be provided in put mapping requests");
    Reply empty = c.put("/test_index/_mapping", R"({"properties":{"":{"type":"keyword"}}})");
    EXPECT_NE(empty.body.find("illegal_argument_exception"), std::string::npos);

    // dynamic: strict set by a later put mapping applies to the next document.
    ASSERT_EQ(c.put("/test_index/_mapping", R"({"dynamic":"strict"})").status, 200);
    Reply refused = c.put("/test_index/_doc/1", R"({"text1":"a","other":1})");
    EXPECT_EQ(refused.str("error.type"), "strict_dynamic_mapping_exception");
    EXPECT_EQ(c.put("/missing/_mapping", R"({"properties":{}})").status, 404);
}

// ---------------------------------------------------------------------------------------------------------
// index, get, delete with versions
// ---------------------------------------------------------------------------------------------------------

TEST_F(SearchMockTest, IndexGetAndDeleteDocuments) {
    Client c = client();
    Reply created = c.put("/test_1/_doc/1", R"({"foo":"bar"})");
    ASSERT_EQ(created.status, 201) << describe(created);
    EXPECT_EQ(created.str("_index"), "test_1");
    EXPECT_EQ(created.str("_id"), "1");
    EXPECT_EQ(created.num("_version"), 1);
    EXPECT_EQ(created.str("result"), "created");
    EXPECT_EQ(created.num("_shards.total"), 2);
    EXPECT_EQ(created.num("_seq_no"), 0);
    EXPECT_EQ(created.num("_primary_term"), 1);
    Reply updated = c.put("/test_1/_doc/1?op_type=index", R"({"foo":"bar"})");
    EXPECT_EQ(updated.status, 200);
    EXPECT_EQ(updated.str("result"), "updated");
    EXPECT_EQ(updated.num("_version"), 2);

    Reply doc = c.get("/test_1/_doc/1");
    EXPECT_EQ(doc.status, 200);
    EXPECT_TRUE(doc.flag("found"));
    EXPECT_EQ(doc.str("_source.foo"), "bar");
    EXPECT_EQ(doc.num("_version"), 2);
    EXPECT_EQ(c.get("/test_1/_doc/1?version=2").status, 200);
    Reply stale = c.get("/test_1/_doc/1?version=1");
    EXPECT_EQ(stale.status, 409);
    EXPECT_EQ(stale.str("error.type"), "version_conflict_engine_exception");
    EXPECT_EQ(c.get("/test_1/_doc/1?_source=false").has("_source"), false);
    Reply unknown = c.get("/test_1/_doc/2");
    EXPECT_EQ(unknown.status, 404);
    EXPECT_FALSE(unknown.flag("found"));
    EXPECT_EQ(unknown.str("_id"), "2");
    EXPECT_EQ(c.get("/nothing/_doc/1").str("error.type"), "index_not_found_exception");

    Reply create_again = c.put("/test_1/_create/1", R"({"foo":"baz"})");
    EXPECT_EQ(create_again.status, 409);
    EXPECT_EQ(create_again.str("error.reason"),
              "[1]: version conflict, document already exists (current version [2])");

    Reply auto_id = c.post("/test_1/_doc", R"({"foo":"auto"})");
    EXPECT_EQ(auto_id.status, 201);
    EXPECT_EQ(auto_id.str("_id").size(), 20u);

    Reply long_id = c.put("/test_1/_doc/" + std::string(513, 'a'), R"({"foo":"bar"})");
    EXPECT_EQ(long_id.status, 400);
    EXPECT_EQ(long_id.str("error.type"), "action_request_validation_exception");
    EXPECT_NE(long_id.str("error.reason").find("is too long, must be no longer than 512 bytes but was: 513"),
              std::string::npos);

    Reply deleted = c.del("/test_1/_doc/1");
    EXPECT_EQ(deleted.status, 200);
    EXPECT_EQ(deleted.str("result"), "deleted");
    EXPECT_EQ(deleted.num("_version"), 3);
    Reply not_found = c.del("/test_1/_doc/1");
    EXPECT_EQ(not_found.status, 404);
    EXPECT_EQ(not_found.str("result"), "not_found");
    // A delete of a document in a missing index does not create the index.
    EXPECT_EQ(c.del("/test_2/_doc/1").str("error.type"), "index_not_found_exception");
    EXPECT_EQ(c.call("HEAD", "/test_2").status, 404);

    Reply internal_version = c.put("/test_1/_doc/5?version=3", R"({"foo":"bar"})");
    EXPECT_EQ(internal_version.status, 400);
    EXPECT_NE(internal_version.str("error.reason").find("internal versioning can not be used"),
              std::string::npos);
}

TEST_F(SearchMockTest, ExternalVersionsRefuseLowerOrEqualVersions) {
    Client c = client();
    auto index = [&c](int version) {
        return c.put("/test_1/_doc/1?version_type=external&version=" + std::to_string(version),
                     R"({"foo":"bar"})");
    };
    EXPECT_EQ(index(0).num("_version"), 0);
    EXPECT_EQ(index(5).num("_version"), 5);
    Reply equal = index(5);
    EXPECT_EQ(equal.status, 409);
    EXPECT_EQ(equal.str("error.root_cause.0.type"), "version_conflict_engine_exception");
    EXPECT_EQ(equal.str("error.reason"),
              "[1]: version conflict, current version [5] is higher or equal to the one provided [5]");
    EXPECT_EQ(equal.str("error.index"), "test_1");
    EXPECT_EQ(equal.str("error.shard"), "0");
    EXPECT_EQ(index(0).status, 409);
    EXPECT_EQ(index(6).num("_version"), 6);

    Reply lower_delete = c.del("/test_1/_doc/1?version_type=external&version=4");
    EXPECT_EQ(lower_delete.status, 409);
    Reply deleted = c.del("/test_1/_doc/1?version_type=external&version=7");
    EXPECT_EQ(deleted.status, 200);
    EXPECT_EQ(deleted.num("_version"), 7);
    // external_gte accepts the equal version.
    Reply gte = c.put("/test_1/_doc/2?version_type=external_gte&version=3", R"({"foo":"bar"})");
    EXPECT_EQ(gte.num("_version"), 3);
    EXPECT_EQ(c.put("/test_1/_doc/2?version_type=external_gte&version=3", R"({"foo":"bar"})").status, 200);
    Reply gte_lower = c.put("/test_1/_doc/2?version_type=external_gte&version=2", R"({"foo":"bar"})");
    EXPECT_EQ(gte_lower.str("error.reason"),
              "[2]: version conflict, current version [3] is higher than the one provided [2]");
    Reply no_version = c.put("/test_1/_doc/3?version_type=external", R"({"foo":"bar"})");
    EXPECT_EQ(no_version.str("error.type"), "action_request_validation_exception");
}

TEST_F(SearchMockTest, DeleteTombstonesRefuseOlderVersionsWithinGcDeletes) {
    Client c = client();
    ASSERT_EQ(c.put("/kept").status, 200);
    // A delete of a document that never existed still records its external version.
    Reply missing = c.del("/kept/_doc/9?version_type=external&version=7");
    EXPECT_EQ(missing.status, 404);
    EXPECT_EQ(missing.str("result"), "not_found");
    EXPECT_EQ(missing.num("_version"), 7);
    Reply older = c.put("/kept/_doc/9?version_type=external&version=6", R"({"n":1})");
    EXPECT_EQ(older.status, 409);
    EXPECT_EQ(older.str("error.reason"),
              "[9]: version conflict, current version [7] is higher or equal to the one provided [6]");
    EXPECT_EQ(c.put("/kept/_doc/9?version_type=external&version=8", R"({"n":1})").str("result"), "created");
    // Deleting an existing document: a late write of its previous version is refused.
    ASSERT_EQ(c.del("/kept/_doc/9?version_type=external&version=9").status, 200);
    EXPECT_EQ(c.put("/kept/_doc/9?version_type=external&version=8", R"({"n":1})").status, 409);
    // Internal versions continue after the tombstone.
    ASSERT_EQ(c.put("/kept/_doc/10", R"({"n":1})").num("_version"), 1);
    ASSERT_EQ(c.del("/kept/_doc/10").num("_version"), 2);
    EXPECT_EQ(c.put("/kept/_doc/10", R"({"n":1})").num("_version"), 3);

    // With gc_deletes at 0 the tombstone is gone at once and the older version goes in.
    ASSERT_EQ(c.put("/collected", R"({"settings":{"index.gc_deletes":"0s"}})").status, 200);
    ASSERT_EQ(c.del("/collected/_doc/9?version_type=external&version=7").status, 404);
    Reply accepted = c.put("/collected/_doc/9?version_type=external&version=6", R"({"n":1})");
    EXPECT_EQ(accepted.status, 201) << describe(accepted);
    EXPECT_EQ(accepted.num("_version"), 6);
    // An external-version delete creates a missing index, to keep its tombstone.
    EXPECT_EQ(c.del("/fresh/_doc/1?version_type=external&version=3").status, 404);
    EXPECT_EQ(c.call("HEAD", "/fresh").status, 200);
}

// ---------------------------------------------------------------------------------------------------------
// _bulk
// ---------------------------------------------------------------------------------------------------------

// Two _bulk requests in flight at once (the indexer keeps two): the mock reads both bodies at the same time
// and applies one request's items after the other's; every item is written once, versions and seq_nos stay
// whole.
TEST_F(SearchMockTest, ConcurrentBulkRequestsAreEachAppliedWhole) {
    Client setup = client();
    ASSERT_EQ(
        setup
            .put(
                "/c",
                R"({"mappings":{"dynamic":"strict","properties":{"n":{"type":"long"},"t":{"type":"keyword"}}}})")
            .status,
        200);
    constexpr int kItems = 2000;
    auto body = [](int request) {
        std::string lines;
        for (int i = 0; i < kItems; ++i) {
            std::string id = std::to_string(request) + "_" + std::to_string(i);
            lines +=
                "{\"index\":{\"_index\":\"c\",\"_id\":\"" + id + "\",\"version\":" + std::to_string(i + 1) +
                ",\"version_type\":\"external\"}}\n{\"n\":" + std::to_string(i) + ",\"t\":\"" + id + "\"}\n";
        }
        return lines;
    };
    Reply replies[2];
    std::vector<std::thread> senders;
    for (int request = 0; request < 2; ++request)
        senders.emplace_back([&, request] {
            Client c = client();
            replies[request] = c.bulk(body(request));
        });
    for (auto& sender : senders) sender.join();
    for (int request = 0; request < 2; ++request) {
        ASSERT_EQ(replies[request].status, 200) << describe(replies[request]);
        EXPECT_FALSE(replies[request].flag("errors"));
        EXPECT_EQ(replies[request].num("items." + std::to_string(kItems - 1) + ".index._version"), kItems);
    }
    // One request's seq_nos follow each other: its items were applied together.
    int64_t first = replies[0].num("items.0.index._seq_no");
    EXPECT_TRUE(first == 0 || first == kItems) << first;
    EXPECT_EQ(replies[0].num("items." + std::to_string(kItems - 1) + ".index._seq_no"), first + kItems - 1);
    EXPECT_EQ(replies[1].num("items.0.index._seq_no"), kItems - first);
    ASSERT_EQ(setup.post("/c/_refresh").status, 200);
    EXPECT_EQ(setup.get("/c/_count").num("count"), 2 * kItems);
}

TEST_F(SearchMockTest, BulkItemsReportTheirOwnOutcome) {
    Client c = client();
    Reply empty_id = c.bulk(
        "{\"index\":{\"_index\":\"test\",\"_id\":\"\"}}\n{\"f\":1}\n"
        "{\"index\":{\"_index\":\"test\",\"_id\":\"id\"}}\n{\"f\":2}\n"
        "{\"index\":{\"_index\":\"test\"}}\n{\"f\":3}\n"
        "{\"create\":{\"_index\":\"test\"}}\n{\"f\":4}\n"
        "{\"index\":{\"_index\":\"test\",\"op_type\":\"create\"}}\n{\"f\":5}\n");
    ASSERT_EQ(empty_id.status, 200) << describe(empty_id);
    EXPECT_TRUE(empty_id.flag("errors"));
    EXPECT_EQ(empty_id.num("items.0.index.status"), 400);
    EXPECT_EQ(empty_id.str("items.0.index.error.type"), "illegal_argument_exception");
    EXPECT_EQ(empty_id.str("items.0.index.error.reason"), "if _id is specified it must not be empty");
    EXPECT_EQ(empty_id.str("items.1.index.result"), "created");
    EXPECT_EQ(empty_id.num("items.1.index.status"), 201);
    EXPECT_EQ(empty_id.str("items.2.index.result"), "created");
    EXPECT_EQ(empty_id.str("items.3.create.result"), "created");
    EXPECT_EQ(empty_id.str("items.4.create.result"), "created");
    EXPECT_TRUE(empty_id.has("took"));
    ASSERT_EQ(c.post("/test/_refresh").status, 200);
    EXPECT_EQ(c.get("/test/_count").num("count"), 4);

    Reply empty_action = c.bulk(
        "{\"index\":{\"_index\":\"test_index\",\"_id\":\"test_id\"}}\n{\"f1\":\"v1\",\"f2\":42}\n{}\n");
    EXPECT_EQ(empty_action.status, 400);
    EXPECT_EQ(empty_action.str("error.reason"),
              "Malformed action/metadata line [3], expected FIELD_NAME but found [END_OBJECT]");
    Reply unterminated = c.bulk("{\"delete\":{\"_index\":\"test\",\"_id\":\"1\"}}");
    EXPECT_EQ(unterminated.str("error.reason"), "The bulk request must be terminated by a newline [\\n]");
    Reply no_index = c.bulk("{\"delete\":{\"_id\":\"1\"}}\n");
    EXPECT_EQ(no_index.str("error.type"), "action_request_validation_exception");
    EXPECT_EQ(no_index.str("error.reason"), "Validation Failed: 1: index is missing;");

    Reply versions = c.bulk(
        "{\"index\":{\"_index\":\"test\",\"_id\":\"v\",\"version\":5,\"version_type\":\"external\"}}\n{\"f\":"
        "1}\n"
        "{\"index\":{\"_index\":\"test\",\"_id\":\"v\",\"version\":5,\"version_type\":\"external\"}}\n{\"f\":"
        "1}\n"
        "{\"delete\":{\"_index\":\"test\",\"_id\":\"never\"}}\n"
        "{\"delete\":{\"_index\":\"no_such_index\",\"_id\":\"1\"}}\n",
        "/test/_bulk");
    EXPECT_TRUE(versions.flag("errors"));
    EXPECT_EQ(versions.num("items.0.index._version"), 5);
    EXPECT_EQ(versions.num("items.1.index.status"), 409);
    EXPECT_EQ(versions.str("items.1.index.error.type"), "version_conflict_engine_exception");
    EXPECT_EQ(versions.str("items.1.index.error.reason"),
              "[v]: version conflict, current version [5] is higher or equal to the one provided [5]");
    EXPECT_EQ(versions.str("items.1.index.error.index"), "test");
    EXPECT_FALSE(versions.has("items.1.index.error.root_cause"));
    EXPECT_EQ(versions.num("items.2.delete.status"), 404);
    EXPECT_EQ(versions.str("items.2.delete.result"), "not_found");
    EXPECT_FALSE(versions.has("items.2.delete.error"));
    EXPECT_EQ(versions.num("items.3.delete.status"), 404);
    EXPECT_EQ(versions.str("items.3.delete.error.type"), "index_not_found_exception");

    // A delete of a missing document alone is no error.
    Reply quiet = c.bulk("{\"delete\":{\"_index\":\"test\",\"_id\":\"never\"}}\n");
    EXPECT_FALSE(quiet.flag("errors"));
    EXPECT_EQ(c.bulk("{\"update\":{\"_index\":\"test\",\"_id\":\"id\"}}\n{\"doc\":{}}\n")
                  .num("items.0.update.status"),
              400);
}

TEST_F(SearchMockTest, BulkRequireAliasAndWriteIndexes) {
    Client c = client();
    ASSERT_EQ(c.put("/backing_index", R"({"mappings":{},"aliases":{"test_require_alias":{}}})").status, 200);
    Reply reply = c.bulk(
        "{\"index\":{\"_index\":\"new_index_not_created\",\"require_alias\":true}}\n{\"f\":1}\n"
        "{\"index\":{\"_index\":\"new_index_created\"}}\n{\"f\":2}\n"
        "{\"index\":{\"_index\":\"test_require_alias\",\"require_alias\":true}}\n{\"f\":3}\n"
        "{\"create\":{\"_index\":\"test_require_alias\"}}\n{\"f\":4}\n");
    EXPECT_TRUE(reply.flag("errors"));
    EXPECT_EQ(reply.num("items.0.index.status"), 404);
    EXPECT_EQ(reply.str("items.0.index.error.type"), "index_not_found_exception");
    EXPECT_EQ(reply.str("items.0.index.error.reason"),
              "no such index [new_index_not_created] and [require_alias] request flag is [true] and "
              "[new_index_not_created] is not an alias");
    EXPECT_EQ(reply.str("items.1.index.result"), "created");
    EXPECT_EQ(reply.str("items.2.index.result"), "created");
    EXPECT_EQ(reply.str("items.2.index._index"), "backing_index");
    EXPECT_EQ(reply.str("items.3.create.result"), "created");
    EXPECT_EQ(c.get("/new_index_not_created").status, 404);

    ASSERT_EQ(c.put("/test_index1").status, 200);
    ASSERT_EQ(c.put("/test_index2").status, 200);
    ASSERT_EQ(c.put("/test_index1/_alias/test_index").status, 200);
    ASSERT_EQ(c.put("/test_index2/_alias/test_index").status, 200);
    Reply ambiguous = c.bulk("{\"index\":{\"_index\":\"test_index\"}}\n{\"field\":\"test\"}\n");
    EXPECT_EQ(ambiguous.num("items.0.index.status"), 400);
    EXPECT_EQ(ambiguous.str("items.0.index.error.type"), "illegal_argument_exception");
    EXPECT_EQ(
        ambiguous.str("items.0.index.error.reason"),
        "no write index is defined for alias [test_index]. The write index may be explicitly disabled using "
        "is_write_index=false or the alias points to multiple indices without one being designated as a "
        "write "
        "index");
}

// ---------------------------------------------------------------------------------------------------------
// Typed fields, dynamic mapping, aliases
// ---------------------------------------------------------------------------------------------------------

class TypedFieldsTest : public SearchMockTest {
  protected:
    void SetUp() override {
        SearchMockTest::SetUp();
        Reply created = client().put("/typed", R"({"mappings":{"dynamic":"strict","properties":{
            "n":{"type":"long"},"i":{"type":"integer"},"x":{"type":"double"},"f":{"type":"float"},
            "b":{"type":"boolean"},"k":{"type":"keyword","ignore_above":5},"t":{"type":"text"},
            "d":{"type":"date"},
            "ts":{"type":"date","format":"yyyy-MM-dd HH:mm:ss.SSSSSSZZZZZ||epoch_millis"},
            "o":{"properties":{"inner":{"type":"keyword"}}},
            "v":{"type":"knn_vector","dimension":3},
            "k_alias":{"type":"alias","path":"k"}}}})");
        ASSERT_EQ(created.status, 200) << describe(created);
    }

    // Indexes source as document 1 and returns the reply.
    Reply index(const std::string& source) { return client().put("/typed/_doc/1", source); }
};

TEST_F(TypedFieldsTest, AcceptsValuesOfTheMappedTypes) {
    Reply ok =
        index(R"({"n":[1,"2",3.7],"i":2147483647,"x":"1.5","f":2.5,"b":"true","k":"short","t":"Some Text",
        "d":"2024-01-02T03:04:05.678Z","ts":"2024-01-02 03:04:05.123456+02:00","o":[{"inner":"a"},{"inner":"b"}],
        "v":[0.1,0.2,0.3]})");
    EXPECT_EQ(ok.status, 201) << describe(ok);
    EXPECT_EQ(index(R"({"d":1700000000000,"ts":"1700000000000"})").status, 200);
    EXPECT_EQ(
        index(R"({"ts":"2024-01-02 03:04:05.123456Z","n":null,"k":"much too long for ignore_above"})").status,
        200);
}

TEST_F(TypedFieldsTest, RefusesValuesTheMappingCannotRead) {
    Reply text_in_long = index(R"({"n":"x"})");
    EXPECT_EQ(text_in_long.status, 400);
    EXPECT_EQ(text_in_long.str("error.root_cause.0.type"), "mapper_parsing_exception");
    EXPECT_EQ(
        text_in_long.str("error.reason"),
        "failed to parse field [n] of type [long] in document with id '1'. Preview of field's value: 'x'");
    EXPECT_EQ(text_in_long.str("error.caused_by.reason"), "For input string: \"x\"");
    Reply twenty = index(R"({"i":"twenty"})");
    EXPECT_EQ(twenty.str("error.caused_by.type"), "number_format_exception");
    EXPECT_EQ(index(R"({"i":3000000000})").str("error.caused_by.reason"),
              "Value [3000000000] is out of range for an integer");
    EXPECT_EQ(index(R"({"n":[1,"oops"]})").status, 400);
    EXPECT_EQ(index(R"({"b":"off"})").str("error.caused_by.reason"),
              "Failed to parse value [off] as only [true] or [false] are allowed.");
    Reply date = index(R"({"d":"javaboy"})");
    EXPECT_EQ(date.str("error.caused_by.reason"),
              "failed to parse date field [javaboy] with format [strict_date_optional_time||epoch_millis]");
    EXPECT_EQ(date.str("error.caused_by.caused_by.type"), "date_time_parse_exception");
    // java.time's ZZZZZ wants +HH:MM (or Z): PostgreSQL's short "+00" offset is refused.
    Reply short_offset = index(R"({"ts":"2024-01-02 03:04:05.123456+00"})");
    EXPECT_EQ(short_offset.status, 400);
    EXPECT_EQ(short_offset.str("error.caused_by.reason"),
              "failed to parse date field [2024-01-02 03:04:05.123456+00] with format "
              "[yyyy-MM-dd HH:mm:ss.SSSSSSZZZZZ||epoch_millis]");
    EXPECT_EQ(index(R"({"ts":"2024-02-30 03:04:05.123456+00:00"})").status, 400);
    EXPECT_EQ(index(R"({"ts":"2024-01-02 03:04:05.123+00:00"})").status, 400);
    Reply vector = index(R"({"v":[1,2]})");
    EXPECT_EQ(vector.str("error.caused_by.reason"), "Vector dimension mismatch. Expected: 3, Given: 2");
    Reply strict = index(R"({"unknown":1})");
    EXPECT_EQ(strict.str("error.type"), "strict_dynamic_mapping_exception");
    EXPECT_EQ(strict.str("error.reason"),
              "mapping set to strict, dynamic introduction of [unknown] within [_doc] is not allowed");
    Reply nested_strict = index(R"({"o":{"other":1}})");
    EXPECT_EQ(nested_strict.str("error.reason"),
              "mapping set to strict, dynamic introduction of [other] within [o] is not allowed");
    EXPECT_EQ(index(R"({"o":"flat"})").str("error.reason"),
              "object mapping for [o] tried to parse field [o] as object, but found a concrete value");
    EXPECT_EQ(index(R"({"k_alias":"x"})").str("error.reason"), "Cannot write to a field alias [k_alias].");
    EXPECT_EQ(index(R"({"k":{"a":1}})").status, 400);
    EXPECT_EQ(index("{\"n\":").str("error.type"), "mapper_parsing_exception");
    EXPECT_EQ(client().get("/typed/_doc/1").status, 404);
}

TEST_F(SearchMockTest, DynamicMappingAddsFieldsFromTheFirstDocument) {
    Client c = client();
    ASSERT_EQ(
        c.put("/dyn/_doc/1", R"({"name":"x","count":3,"ratio":0.5,"ok":true,"when":"2024-01-02T03:04:05Z",
        "obj":{"sub":"y"},"nothing":null})")
            .status,
        201);
    Reply mapping = c.get("/dyn/_mapping");
    EXPECT_EQ(mapping.str("dyn.mappings.properties.name.type"), "text");
    EXPECT_EQ(mapping.str("dyn.mappings.properties.name.fields.keyword.type"), "keyword");
    EXPECT_EQ(mapping.num("dyn.mappings.properties.name.fields.keyword.ignore_above"), 256);
    EXPECT_EQ(mapping.str("dyn.mappings.properties.count.type"), "long");
    EXPECT_EQ(mapping.str("dyn.mappings.properties.ratio.type"), "float");
    EXPECT_EQ(mapping.str("dyn.mappings.properties.ok.type"), "boolean");
    EXPECT_EQ(mapping.str("dyn.mappings.properties.when.type"), "date");
    EXPECT_EQ(mapping.str("dyn.mappings.properties.obj.properties.sub.type"), "text");
    EXPECT_FALSE(mapping.has("dyn.mappings.properties.nothing"));
    // The field now has a type: a value of another type is refused.
    EXPECT_EQ(c.put("/dyn/_doc/2", R"({"count":"many"})").status, 400);

    // dynamic: false keeps unknown fields in _source only: not mapped, not searchable.
    ASSERT_EQ(
        c.put("/quiet", R"({"mappings":{"dynamic":false,"properties":{"known":{"type":"keyword"}}}})").status,
        200);
    ASSERT_EQ(c.put("/quiet/_doc/1?refresh=true", R"({"known":"a","extra":"b"})").status, 201);
    EXPECT_EQ(c.get("/quiet/_doc/1").str("_source.extra"), "b");
    EXPECT_FALSE(c.get("/quiet/_mapping").has("quiet.mappings.properties.extra"));
    EXPECT_EQ(c.post("/quiet/_search", R"({"query":{"term":{"extra":"b"}}})").num("hits.total.value"), 0);
    EXPECT_EQ(c.get("/quiet/_doc/1?_source_includes=known").text("_source"), R"({"known":"a"})");
}

// ---------------------------------------------------------------------------------------------------------
// _search, _count, _refresh
// ---------------------------------------------------------------------------------------------------------

TEST_F(SearchMockTest, SearchDefaultsAndTotalHits) {
    Client c = client();
    ASSERT_EQ(c.put("/test_2").status, 200);
    ASSERT_EQ(c.put("/test_1").status, 200);
    ASSERT_EQ(c.put("/test_1/_doc/1", R"({"foo":"bar"})").status, 201);
    ASSERT_EQ(c.put("/test_1/_doc/3", R"({"foo":"baz"})").status, 201);
    ASSERT_EQ(c.put("/test_2/_doc/42", R"({"foo":"bar"})").status, 201);
    ASSERT_EQ(c.post("/test_1,test_2/_refresh").status, 200);

    std::string match = R"({"query":{"match":{"foo":"bar"}}})";
    EXPECT_EQ(c.post("/_all/_search?rest_total_hits_as_int=true", match).num("hits.total"), 2);
    Reply one = c.post("/test_1/_search?rest_total_hits_as_int=true", match);
    EXPECT_EQ(one.num("hits.total"), 1);
    EXPECT_EQ(one.str("hits.hits.0._index"), "test_1");
    EXPECT_EQ(one.str("hits.hits.0._id"), "1");
    EXPECT_EQ(c.post("/test_2/_search?rest_total_hits_as_int=true", match).str("hits.hits.0._id"), "42");
    Reply all = c.post("/_search", R"({"query":{"match_all":{}}})");
    EXPECT_EQ(all.num("hits.total.value"), 3);
    EXPECT_EQ(all.str("hits.total.relation"), "eq");
    EXPECT_FALSE(all.flag("timed_out"));
    EXPECT_EQ(all.num("_shards.failed"), 0);
    EXPECT_EQ(c.post("/_search?track_total_hits=false", match).has("hits.total"), false);
    Reply capped = c.post("/_search?track_total_hits=1", match);
    EXPECT_EQ(capped.num("hits.total.value"), 1);
    EXPECT_EQ(capped.str("hits.total.relation"), "gte");
    EXPECT_NE(c.post("/_search?track_total_hits=-2", match)
                  .str("error.reason")
                  .find("must be positive or equals to -1, got -2"),
              std::string::npos);

    Reply no_query = c.post("/_search", R"({"match":{"foo":"bar"}})");
    EXPECT_EQ(no_query.status, 400);
    EXPECT_EQ(no_query.str("error.type"), "parsing_exception");
    Reply unknown = c.post("/_search", R"({"query":{"fuzzy_thing":{}}})");
    EXPECT_EQ(unknown.status, 400);
    EXPECT_EQ(unknown.str("error.reason"), "unknown query [fuzzy_thing]");
    EXPECT_EQ(c.post("/missing/_search", match).str("error.type"), "index_not_found_exception");
    EXPECT_EQ(c.post("/missing*/_search", match).num("hits.total.value"), 0);
}

TEST_F(SearchMockTest, SortsLongFieldsWithEveryMode) {
    Client c = client();
    ASSERT_EQ(c.put("/long_sort", R"({"settings":{"number_of_shards":3,"number_of_replicas":0},
        "mappings":{"properties":{"field":{"type":"long"}}}})")
                  .status,
              200);
    Reply bulk = c.bulk(
        "{\"index\":{\"_index\":\"long_sort\",\"_id\":\"1\"}}\n{\"field\":[9223372036854775807,1]}\n"
        "{\"index\":{\"_index\":\"long_sort\",\"_id\":\"2\"}}\n{\"field\":[922337203685477777,2]}\n"
        "{\"index\":{\"_index\":\"long_sort\",\"_id\":\"3\"}}\n{\"field\":[2147483647,3,4]}\n"
        "{\"index\":{\"_index\":\"long_sort\",\"_id\":\"4\"}}\n{\"field\":[2147483648,5,-1,-2]}\n",
        "/_bulk?refresh=true");
    ASSERT_FALSE(bulk.flag("errors")) << bulk.body;
    struct Case {
        std::string mode, order;
        std::vector<std::string> ids;
        std::vector<std::string> sorts;
    };
    std::vector<Case> cases = {
        {"max",
         "desc",
         {"1", "2", "4", "3"},
         {"9223372036854775807", "922337203685477777", "2147483648", "2147483647"}},
        {"max",
         "asc",
         {"3", "4", "2", "1"},
         {"2147483647", "2147483648", "922337203685477777", "9223372036854775807"}},
        {"min", "desc", {"3", "2", "1", "4"}, {"3", "2", "1", "-2"}},
        {"median", "asc", {"4", "3", "2", "1"}, {"2", "4", "461168601842738880", "4611686018427387904"}},
        {"avg",
         "desc",
         {"2", "3", "4", "1"},
         {"461168601842738880", "715827885", "536870913", "-4611686018427387904"}},
        {"sum",
         "asc",
         {"1", "4", "3", "2"},
         {"-9223372036854775808", "2147483650", "2147483654", "922337203685477779"}},
    };
    for (const auto& sort : cases) {
        Reply reply = c.post("/long_sort/_search", R"({"size":5,"sort":[{"field":{"mode":")" + sort.mode +
                                                       R"(","order":")" + sort.order + R"("}}]})");
        ASSERT_EQ(reply.num("hits.total.value"), 4) << reply.body;
        EXPECT_EQ(reply.num("_shards.total"), 3);
        for (size_t i = 0; i < 4; ++i) {
            std::string hit = "hits.hits." + std::to_string(i);
            EXPECT_EQ(reply.str(hit + "._id"), sort.ids[i]) << sort.mode << " " << sort.order;
            EXPECT_EQ(reply.text(hit + ".sort"), "[" + sort.sorts[i] + "]") << sort.mode << " " << sort.order;
            EXPECT_FALSE(reply.at(hit + "._score")->IsNumber());
        }
    }
}

TEST_F(SearchMockTest, QueriesFollowFieldTypesAndAliases) {
    Client c = client();
    ASSERT_EQ(c.put("/q", R"({"mappings":{"properties":{"status":{"type":"keyword","ignore_above":10},
        "owner":{"type":"alias","path":"status"},"title":{"type":"text"},"n":{"type":"integer"},
        "d":{"type":"date","format":"yyyy-MM-dd"}}}})")
                  .status,
              200);
    ASSERT_FALSE(
        c.bulk("{\"index\":{\"_index\":\"q\",\"_id\":\"a\"}}\n{\"status\":\"open\",\"title\":\"Quick Brown "
               "Fox\",\"n\":1,\"d\":\"2024-01-01\"}\n"
               "{\"index\":{\"_index\":\"q\",\"_id\":\"b\"}}\n{\"status\":\"closed\",\"title\":\"lazy "
               "dog\",\"n\":2,\"d\":\"2024-02-01\"}\n"
               "{\"index\":{\"_index\":\"q\",\"_id\":\"c\"}}\n{\"status\":\"exceedingly long\",\"n\":3}\n",
               "/_bulk?refresh=wait_for")
            .flag("errors"));
    auto ids = [&c](const std::string& query) {
        Reply reply = c.post("/q/_search", R"({"sort":["_id"],"query":)" + query + "}");
        std::string found;
        for (int i = 0; reply.has("hits.hits." + std::to_string(i)); ++i)
            found += reply.str("hits.hits." + std::to_string(i) + "._id");
        return reply.status == 200 ? found : describe(reply);
    };
    EXPECT_EQ(ids(R"({"term":{"status":"open"}})"), "a");
    EXPECT_EQ(ids(R"({"term":{"owner":{"value":"closed"}}})"), "b");
    EXPECT_EQ(ids(R"({"terms":{"owner":["open","closed"]}})"), "ab");
    EXPECT_EQ(ids(R"({"term":{"status":"exceedingly long"}})"), "");  // over ignore_above: not indexed
    EXPECT_EQ(ids(R"({"match":{"title":"QUICK dog"}})"), "ab");
    EXPECT_EQ(ids(R"({"match":{"title":{"query":"quick dog","operator":"and"}}})"), "");
    EXPECT_EQ(ids(R"({"term":{"title":"Quick"}})"), "");  // term is not analysed; the tokens are lowercase
    EXPECT_EQ(ids(R"({"term":{"n":"2"}})"), "b");
    EXPECT_EQ(ids(R"({"range":{"n":{"gte":2}}})"), "bc");
    EXPECT_EQ(ids(R"({"range":{"d":{"lt":"2024-01-15"}}})"), "a");
    EXPECT_EQ(ids(R"({"exists":{"field":"d"}})"), "ab");
    EXPECT_EQ(ids(R"({"ids":{"values":["c","a"]}})"), "ac");
    EXPECT_EQ(ids(R"({"bool":{"filter":[{"range":{"n":{"gt":1}}}],"must_not":{"term":{"_id":"c"}}}})"), "b");
    EXPECT_EQ(ids(R"({"term":{"unmapped":"x"}})"), "");

    Reply bad_number = c.post("/q/_search", R"({"query":{"term":{"n":"abc"}}})");
    EXPECT_EQ(bad_number.status, 400);
    EXPECT_EQ(bad_number.str("error.type"), "search_phase_execution_exception");
    EXPECT_EQ(bad_number.str("error.root_cause.0.type"), "query_shard_exception");
    Reply text_sort = c.post("/q/_search", R"({"sort":[{"title":"asc"}]})");
    EXPECT_EQ(text_sort.status, 400);
    EXPECT_EQ(text_sort.str("error.type"), "search_phase_execution_exception");
    EXPECT_EQ(text_sort.str("error.root_cause.0.type"), "illegal_argument_exception");
    EXPECT_NE(text_sort.str("error.root_cause.0.reason").find("Text fields are not optimised"),
              std::string::npos);
    Reply unmapped_sort = c.post("/q/_search", R"({"sort":[{"nope":"asc"}]})");
    EXPECT_EQ(unmapped_sort.str("error.root_cause.0.reason"),
              "No mapping found for [nope] in order to sort on");
    Reply with_unmapped_type =
        c.post("/q/_search", R"({"sort":[{"nope":{"order":"asc","unmapped_type":"long"}}]})");
    EXPECT_EQ(with_unmapped_type.status, 200);
    Reply page = c.post("/q/_search?size=1&from=1&sort=n:desc", "");
    EXPECT_EQ(page.str("hits.hits.0._id"), "b");
    EXPECT_EQ(page.text("hits.hits.0.sort"), "[2]");
    EXPECT_EQ(c.post("/q/_search", R"({"size":-1})").status, 400);
    EXPECT_EQ(c.post("/q/_search", R"({"from":9990,"size":11})").str("error.type"),
              "search_phase_execution_exception");
    Reply by_alias_sort = c.post("/q/_search", R"({"sort":[{"owner":"desc"}],"size":1})");
    EXPECT_EQ(by_alias_sort.str("hits.hits.0._id"), "a");
    Reply filtered = c.post("/q/_search", R"({"query":{"ids":{"values":["a"]}},"_source":["status"]})");
    EXPECT_EQ(filtered.text("hits.hits.0._source"), R"({"status":"open"})");
    EXPECT_EQ(c.post("/q/_count", R"({"query":{"term":{"status":"open"}}})").num("count"), 1);
}

TEST_F(SearchMockTest, DocumentsBecomeSearchableOnRefresh) {
    Client c = client();
    ASSERT_EQ(c.put("/manual", R"({"settings":{"refresh_interval":"-1"}})").status, 200);
    ASSERT_EQ(c.put("/manual/_doc/1", R"({"a":1})").status, 201);
    EXPECT_EQ(c.post("/manual/_search").num("hits.total.value"), 0);
    EXPECT_EQ(c.get("/manual/_doc/1").status, 200);  // get is realtime
    Reply refreshed = c.post("/manual/_refresh");
    EXPECT_EQ(refreshed.num("_shards.successful"), 1);
    EXPECT_EQ(c.post("/manual/_search").num("hits.total.value"), 1);
    ASSERT_EQ(c.put("/manual/_doc/2?refresh=true", R"({"a":2})").status, 201);
    EXPECT_EQ(c.post("/manual/_search").num("hits.total.value"), 2);
    EXPECT_EQ(c.put("/manual/_doc/3?refresh=true", R"({"a":3})").flag("forced_refresh"), true);

    // The default refresh_interval (1s) makes documents searchable without an explicit refresh.
    ASSERT_EQ(c.put("/periodic/_doc/1", R"({"a":1})").status, 201);
    EXPECT_TRUE(pgstream_it::wait_until(
        [&c] { return c.post("/periodic/_search").num("hits.total.value") == 1; }, 5s));
}

// On a kept-alive connection without Nagle on the client side (as the indexer's), an answer must not wait for
// the client's delayed ACK of its headers (Nagle's algorithm: ~40 ms per request on Linux): 20 small _bulk
// round trips take well under 20 x 40 ms.
TEST_F(SearchMockTest, KeptAliveRequestsDoNotWaitForDelayedAcks) {
    httplib::Client keep_alive("127.0.0.1", mock_->port());
    keep_alive.set_keep_alive(true);
    keep_alive.set_tcp_nodelay(true);  // as libcurl, the indexer's client
    ASSERT_EQ(keep_alive.Put("/fast", "{}", "application/json")->status, 200);
    auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) {
        std::string line = R"({"index":{"_index":"fast","_id":")" + std::to_string(i) + "\"}}\n{\"n\":1}\n";
        auto result = keep_alive.Post("/_bulk", line, "application/x-ndjson");
        ASSERT_TRUE(result);
        ASSERT_EQ(result->status, 200);
    }
    EXPECT_LT(std::chrono::steady_clock::now() - started, 400ms);
}

// A refresh publishes exactly the writes since the previous one: new, overwritten and deleted documents.
TEST_F(SearchMockTest, RefreshPublishesOverwritesAndDeletesSinceTheLastRefresh) {
    Client c = client();
    ASSERT_EQ(
        c.put("/manual",
              R"({"settings":{"refresh_interval":"-1"},"mappings":{"properties":{"n":{"type":"long"}}}})")
            .status,
        200);
    ASSERT_EQ(c.put("/manual/_doc/1", R"({"n":1})").status, 201);
    ASSERT_EQ(c.put("/manual/_doc/2", R"({"n":2})").status, 201);
    ASSERT_EQ(c.post("/manual/_refresh").status, 200);
    ASSERT_EQ(c.put("/manual/_doc/1", R"({"n":10})").status, 200);
    ASSERT_EQ(c.del("/manual/_doc/2").status, 200);
    ASSERT_EQ(c.put("/manual/_doc/3", R"({"n":3})").status, 201);
    ASSERT_EQ(c.del("/manual/_doc/3").status, 200);
    auto count = [&c](const std::string& query) {
        return c.post("/manual/_search", R"({"query":)" + query + "}").num("hits.total.value");
    };
    // Not refreshed yet: the searches still see the first two documents as they were.
    EXPECT_EQ(count(R"({"term":{"n":1}})"), 1);
    EXPECT_EQ(count(R"({"term":{"n":2}})"), 1);
    ASSERT_EQ(c.post("/manual/_refresh").status, 200);
    EXPECT_EQ(count(R"({"term":{"n":1}})"), 0);
    EXPECT_EQ(count(R"({"term":{"n":10}})"), 1);
    EXPECT_EQ(count(R"({"match_all":{}})"), 1);
}

// A document keeps the terms of the mapping it was indexed with: a multi-field added later indexes only
// the documents written after it (the engine does not reindex), even when the terms are built lazily.
TEST_F(SearchMockTest, DocumentsKeepTheTermsOfTheMappingTheyWereIndexedWith) {
    Client c = client();
    ASSERT_EQ(
        c.put("/terms", R"({"mappings":{"dynamic":"strict","properties":{"title":{"type":"keyword"}}}})")
            .status,
        200);
    ASSERT_EQ(c.put("/terms/_doc/old", R"({"title":"Red Fox"})").status, 201);
    ASSERT_EQ(c.put("/terms/_mapping",
                    R"({"properties":{"title":{"type":"keyword","fields":{"words":{"type":"text"}}}}})")
                  .status,
              200);
    ASSERT_EQ(c.put("/terms/_doc/new", R"({"title":"Red Fox"})").status, 201);
    ASSERT_EQ(c.post("/terms/_refresh").status, 200);
    Reply words = c.post("/terms/_search", R"({"query":{"term":{"title.words":"fox"}}})");
    EXPECT_EQ(words.num("hits.total.value"), 1) << describe(words);
    EXPECT_EQ(words.str("hits.hits.0._id"), "new");
    EXPECT_EQ(c.post("/terms/_search", R"({"query":{"term":{"title":"Red Fox"}}})").num("hits.total.value"),
              2);
}

// ---------------------------------------------------------------------------------------------------------
// _delete_by_query
// ---------------------------------------------------------------------------------------------------------

TEST_F(SearchMockTest, DeleteByQueryDeletesWhatTheLastRefreshShows) {
    Client c = client();
    ASSERT_EQ(c.put("/test/_doc/1", R"({"text":"test"})").status, 201);
    ASSERT_EQ(c.post("/test/_refresh").status, 200);
    Reply basic = c.post("/test/_delete_by_query", R"({"query":{"match_all":{}}})");
    ASSERT_EQ(basic.status, 200) << describe(basic);
    EXPECT_FALSE(basic.flag("timed_out"));
    EXPECT_EQ(basic.num("deleted"), 1);
    EXPECT_FALSE(basic.has("created"));
    EXPECT_EQ(basic.num("version_conflicts"), 0);
    EXPECT_EQ(basic.num("batches"), 1);
    EXPECT_EQ(basic.text("failures"), "[]");
    EXPECT_EQ(basic.num("noops"), 0);
    EXPECT_EQ(basic.num("throttled_millis"), 0);
    EXPECT_GE(basic.num("took"), 0);
    EXPECT_FALSE(basic.has("task"));
    ASSERT_EQ(c.post("/test/_refresh").status, 200);
    EXPECT_EQ(c.get("/test/_count").num("count"), 0);

    // A document changed after the refresh is a version conflict.
    ASSERT_EQ(c.put("/conflict", R"({"settings":{"index.refresh_interval":-1}})").status, 200);
    ASSERT_EQ(c.put("/conflict/_doc/1", R"({"text":"test"})").status, 201);
    ASSERT_EQ(c.post("/conflict/_refresh").status, 200);
    ASSERT_EQ(c.put("/conflict/_doc/1", R"({"text":"test2"})").status, 200);
    Reply conflict = c.post("/conflict/_delete_by_query", R"({"query":{"match_all":{}}})");
    EXPECT_EQ(conflict.status, 409);
    EXPECT_EQ(conflict.num("deleted"), 0);
    EXPECT_EQ(conflict.num("version_conflicts"), 1);
    EXPECT_EQ(conflict.str("failures.0.index"), "conflict");
    EXPECT_EQ(conflict.str("failures.0.id"), "1");
    EXPECT_EQ(conflict.num("failures.0.status"), 409);
    EXPECT_EQ(conflict.str("failures.0.cause.type"), "version_conflict_engine_exception");
    EXPECT_TRUE(std::regex_search(conflict.str("failures.0.cause.reason"),
                                  std::regex(R"(\[1\]:.version.conflict,.required.seqNo.\[\d+\])")));
    EXPECT_EQ(conflict.str("failures.0.cause.shard"), "0");
    Reply proceed = c.post("/conflict/_delete_by_query?conflicts=proceed", R"({"query":{"match_all":{}}})");
    EXPECT_EQ(proceed.status, 200);
    EXPECT_EQ(proceed.num("version_conflicts"), 1);
    EXPECT_EQ(proceed.text("failures"), "[]");
    EXPECT_EQ(c.get("/conflict/_doc/1").status, 200);

    // Limited by term / terms / match and max_docs.
    ASSERT_FALSE(
        c.bulk("{\"index\":{\"_index\":\"twitter\",\"_id\":\"1\"}}\n{\"user\":\"foobar\",\"tag\":1}\n"
               "{\"index\":{\"_index\":\"twitter\",\"_id\":\"2\"}}\n{\"user\":\"junk\",\"tag\":2}\n"
               "{\"index\":{\"_index\":\"twitter\",\"_id\":\"3\"}}\n{\"user\":\"foobar\",\"tag\":3}\n",
               "/_bulk?refresh=true")
            .flag("errors"));
    EXPECT_EQ(
        c.post("/twitter/_delete_by_query?refresh=true", R"({"query":{"terms":{"tag":[2]}}})").num("deleted"),
        1);
    EXPECT_EQ(c.post("/twitter/_delete_by_query?refresh=true",
                     R"({"max_docs":1,"query":{"match":{"user":"foobar"}}})")
                  .num("deleted"),
              1);
    EXPECT_EQ(c.get("/twitter/_count").num("count"), 1);
    EXPECT_EQ(c.post("/twitter/_delete_by_query", "{}").status, 400);
    EXPECT_EQ(c.post("/nothing/_delete_by_query", R"({"query":{"match_all":{}}})").status, 404);
}

// The search indexer's TRUNCATE: terms on _table and a range on the version field, or no such field.
void expectRangeDeletesOnlyOlderDocuments(Client& c) {
    ASSERT_EQ(c.put("/versions", R"({"mappings":{"dynamic":"strict","properties":{"t":{"type":"keyword"},
        "v":{"type":"long"}}}})")
                  .status,
              200);
    ASSERT_FALSE(c.bulk("{\"index\":{\"_index\":\"versions\",\"_id\":\"old\"}}\n{\"t\":\"a\",\"v\":10}\n"
                        "{\"index\":{\"_index\":\"versions\",\"_id\":\"at\"}}\n{\"t\":\"a\",\"v\":20}\n"
                        "{\"index\":{\"_index\":\"versions\",\"_id\":\"new\"}}\n{\"t\":\"a\",\"v\":30}\n"
                        "{\"index\":{\"_index\":\"versions\",\"_id\":\"none\"}}\n{\"t\":\"a\"}\n"
                        "{\"index\":{\"_index\":\"versions\",\"_id\":\"other\"}}\n{\"t\":\"b\",\"v\":1}\n",
                        "/_bulk?refresh=true")
                     .flag("errors"));
    // lt excludes the bound; a document without the field matches no range.
    EXPECT_EQ(c.post("/versions/_count", R"({"query":{"range":{"v":{"lt":20}}}})").num("count"), 2);
    EXPECT_EQ(c.post("/versions/_count", R"({"query":{"range":{"v":{"lte":"20"}}}})").num("count"), 3);
    Reply deleted = c.post("/versions/_delete_by_query?conflicts=proceed&refresh=true",
                           R"({"query":{"bool":{"filter":[{"terms":{"t":["a"]}}],"should":[)"
                           R"({"range":{"v":{"lt":20}}},{"bool":{"must_not":[{"exists":{"field":"v"}}]}}],)"
                           R"("minimum_should_match":1}}})");
    ASSERT_EQ(deleted.status, 200) << describe(deleted);
    EXPECT_EQ(deleted.num("deleted"), 2);  // "old" and "none"
    EXPECT_EQ(c.get("/versions/_doc/at").status, 200);
    EXPECT_EQ(c.get("/versions/_doc/new").status, 200);
    EXPECT_EQ(c.get("/versions/_doc/other").status, 200);
    EXPECT_EQ(c.get("/versions/_doc/old").status, 404);

    Reply unknown = c.post("/versions/_delete_by_query", R"({"query":{"range":{"v":{"below":20}}}})");
    EXPECT_EQ(unknown.status, 400);
    EXPECT_EQ(unknown.str("error.type"), "parsing_exception");
    EXPECT_EQ(unknown.str("error.reason"), "[range] query does not support [below]");
    Reply two_fields = c.post("/versions/_search", R"({"query":{"range":{"v":{"lt":1},"t":{"lt":"b"}}}})");
    EXPECT_EQ(two_fields.status, 400);
    EXPECT_EQ(two_fields.str("error.type"), "parsing_exception");
    Reply not_a_number = c.post("/versions/_delete_by_query", R"({"query":{"range":{"v":{"lt":"abc"}}}})");
    EXPECT_EQ(not_a_number.status, 400);
    EXPECT_EQ(not_a_number.str("error.type"), "search_phase_execution_exception");
    EXPECT_EQ(not_a_number.str("error.root_cause.0.type"), "query_shard_exception");
    EXPECT_EQ(c.get("/versions/_count").num("count"), 3);
}

TEST_F(SearchMockTest, DeleteByQueryWithARangeDeletesOnlyOlderDocuments) {
    Client c = client();
    expectRangeDeletesOnlyOlderDocuments(c);
}

TEST(SearchMockElasticsearch, DeleteByQueryWithARangeDeletesOnlyOlderDocuments) {
    SearchMock mock({"--listen", "127.0.0.1:0", "--flavor", "elasticsearch"});
    Client c(mock.port());
    expectRangeDeletesOnlyOlderDocuments(c);
}

// ---------------------------------------------------------------------------------------------------------
// Aliases and request checks
// ---------------------------------------------------------------------------------------------------------

TEST_F(SearchMockTest, AliasesMoveAtomicallyBetweenIndices) {
    Client c = client();
    ASSERT_EQ(c.put("/v1").status, 200);
    ASSERT_EQ(c.put("/v2").status, 200);
    ASSERT_EQ(c.post("/_aliases", R"({"actions":[{"add":{"index":"v1","alias":"current"}}]})").status, 200);
    ASSERT_EQ(c.put("/current/_doc/1?refresh=true", R"({"a":1})").str("_index"), "v1");
    Reply swap = c.post("/_aliases", R"({"actions":[{"remove":{"index":"v1","alias":"current"}},
        {"add":{"index":"v2","alias":"current"}}]})");
    ASSERT_EQ(swap.status, 200) << describe(swap);
    EXPECT_EQ(c.put("/current/_doc/2?refresh=true", R"({"a":2})").str("_index"), "v2");
    EXPECT_EQ(c.post("/current/_search").str("hits.hits.0._id"), "2");
    EXPECT_EQ(c.get("/_alias/current").has("v2.aliases.current"), true);
    EXPECT_EQ(c.get("/_alias/current").has("v1"), false);
    EXPECT_EQ(c.call("HEAD", "/_alias/current").status, 200);
    EXPECT_EQ(c.call("HEAD", "/_alias/none").status, 404);
    Reply missing = c.get("/_alias/none");
    EXPECT_EQ(missing.status, 404);
    EXPECT_EQ(missing.str("error"), "alias [none] missing");

    // A failing action leaves every other action of the request undone.
    Reply failing = c.post("/_aliases", R"({"actions":[{"add":{"index":"v1","alias":"other"}},
        {"remove":{"index":"v1","alias":"not_there"}}]})");
    EXPECT_EQ(failing.status, 404);
    EXPECT_EQ(failing.str("error.type"), "aliases_not_found_exception");
    EXPECT_EQ(c.call("HEAD", "/_alias/other").status, 404);
    Reply clash = c.post("/_aliases", R"({"actions":[{"add":{"index":"v1","alias":"v2"}}]})");
    EXPECT_EQ(clash.str("error.type"), "invalid_alias_name_exception");
    EXPECT_EQ(c.put("/current").str("error.reason"), "Invalid index name [current], already exists as alias");
    EXPECT_EQ(c.del("/current").status, 400);
    EXPECT_EQ(c.del("/v2/_alias/current").status, 200);
    EXPECT_EQ(c.call("HEAD", "/_alias/current").status, 404);
}

TEST_F(SearchMockTest, UnknownParametersAndPathsAreRefused) {
    Client c = client();
    ASSERT_EQ(c.put("/p").status, 200);
    Reply unknown = c.put("/p/_doc/1?colour=red", R"({"a":1})");
    EXPECT_EQ(unknown.status, 400);
    EXPECT_EQ(unknown.str("error.reason"), "request [/p/_doc/1] contains unrecognized parameter: [colour]");
    EXPECT_EQ(c.get("/p/_nothing_here").status, 400);
    Reply wrong_method = c.call("PUT", "/p/_search", "{}");
    EXPECT_EQ(wrong_method.status, 405);
    Reply text_body = c.call("PUT", "/p/_doc/1", "a=1", "text/plain");
    EXPECT_EQ(text_body.status, 406);
    EXPECT_EQ(text_body.str("error"), "Content-Type header [text/plain] is not supported");
    // OpenSearch does not speak Elasticsearch's compatible-with media types.
    EXPECT_EQ(
        c.call("PUT", "/p/_doc/1", R"({"a":1})", "application/vnd.elasticsearch+json; compatible-with=8")
            .status,
        406);
    Reply root = c.get("/");
    EXPECT_EQ(root.str("version.distribution"), "opensearch");
    EXPECT_EQ(c.get("/_cluster/health").str("status"), "yellow");
}

// ---------------------------------------------------------------------------------------------------------
// filter_path (response filtering, every endpoint): OpenSearch's FilterPath/FilterPathBasedFilter over
// Jackson's filtering generator; answers built from an exception are never filtered
// ---------------------------------------------------------------------------------------------------------

constexpr char kLogstashFilter[] = "filter_path=errors,items.*.status,items.*.error";

// A filtered answer is still one JSON object.
::testing::AssertionResult validJson(const Reply& reply) {
    if (reply.json.HasParseError() || !reply.json.IsObject())
        return ::testing::AssertionFailure() << "not a JSON object: " << describe(reply);
    return ::testing::AssertionSuccess();
}

TEST_F(SearchMockTest, FilterPathKeepsWhatLogstashReadsOfASuccessfulBulk) {
    Client c = client();
    // Each call writes new documents (ids prefixed), so that every answer is the same.
    auto lines = [](const std::string& prefix) {
        return "{\"index\":{\"_index\":\"logs\",\"_id\":\"" + prefix + "1\"}}\n{\"f\":1}\n" +
               "{\"create\":{\"_index\":\"logs\",\"_id\":\"" + prefix + "2\"}}\n{\"f\":2}\n" +
               "{\"delete\":{\"_index\":\"logs\",\"_id\":\"" + prefix + "1\"}}\n";
    };
    const std::string expected =
        R"({"errors":false,"items":[{"index":{"status":201}},{"create":{"status":201}},)"
        R"({"delete":{"status":200}}]})";
    Reply reply = c.bulk(lines("a"), std::string("/_bulk?") + kLogstashFilter);
    ASSERT_EQ(reply.status, 200) << describe(reply);
    EXPECT_EQ(reply.body, expected);
    EXPECT_TRUE(validJson(reply));
    // The expressions are a set: another order, repeats and blanks around them filter alike.
    EXPECT_EQ(c.bulk(lines("b"), "/_bulk?filter_path=items.*.error,%20errors,items.*.status,errors").body,
              expected);
    EXPECT_EQ(describe(c.bulk(lines("c"), "/_bulk?filter_path=items.*.error")), "200 {}");
    // An empty filter_path filters nothing.
    EXPECT_TRUE(c.bulk(lines("d"), "/_bulk?filter_path=").has("took"));
}

TEST_F(SearchMockTest, FilterPathKeepsStatusAndErrorOfFailedBulkItems) {
    Client c = client();
    ASSERT_EQ(c.put("/logs", R"({"mappings":{"properties":{"n":{"type":"long"}}}})").status, 200);
    ASSERT_EQ(c.put("/logs/_doc/c", R"({"n":1})").status, 201);
    std::string lines =
        "{\"index\":{\"_index\":\"logs\",\"_id\":\"1\"}}\n{\"n\":1}\n"
        "{\"create\":{\"_index\":\"logs\",\"_id\":\"c\"}}\n{\"n\":2}\n"
        "{\"index\":{\"_index\":\"logs\",\"_id\":\"3\"}}\n{\"n\":\"x\"}\n"
        "{\"delete\":{\"_index\":\"logs\",\"_id\":\"never\"}}\n";
    Reply whole = c.bulk(lines);
    ASSERT_EQ(whole.status, 200) << describe(whole);
    Reply reply = c.bulk(lines, std::string("/_bulk?") + kLogstashFilter);
    ASSERT_EQ(reply.status, 200) << describe(reply);
    ASSERT_TRUE(validJson(reply));
    EXPECT_TRUE(reply.flag("errors"));
    EXPECT_FALSE(reply.has("took"));
    EXPECT_EQ(reply.num("items.0.index.status"), 200);
    EXPECT_EQ(reply.num("items.1.create.status"), 409);
    EXPECT_EQ(reply.num("items.2.index.status"), 400);
    EXPECT_EQ(reply.num("items.3.delete.status"), 404);
    for (const char* item : {"items.0.index", "items.1.create", "items.2.index", "items.3.delete"}) {
        for (const char* gone :
             {"_index", "_id", "_version", "result", "_shards", "_seq_no", "_primary_term"})
            EXPECT_FALSE(reply.has(std::string(item) + "." + gone)) << item << "." << gone;
    }
    EXPECT_FALSE(reply.has("items.0.index.error"));
    EXPECT_FALSE(reply.has("items.3.delete.error"));
    // The error objects are the unfiltered answer's, whole.
    EXPECT_EQ(reply.str("items.1.create.error.type"), "version_conflict_engine_exception");
    EXPECT_EQ(reply.text("items.1.create.error"), whole.text("items.1.create.error"));
    EXPECT_EQ(reply.str("items.2.index.error.type"), "mapper_parsing_exception");
    EXPECT_EQ(reply.text("items.2.index.error"), whole.text("items.2.index.error"));
    EXPECT_EQ(reply.text("items.2.index.error.caused_by"), whole.text("items.2.index.error.caused_by"));
}

// _bulk writes the Logstash set's answer directly; any other filter goes through the generic filter. An
// expression that matches nothing keeps the request off the fast path without changing the answer.
TEST_F(SearchMockTest, BulkFastPathAnswersAsTheGenericFilter) {
    Client c = client();
    ASSERT_EQ(c.put("/logs", R"({"mappings":{"properties":{"n":{"type":"long"}}}})").status, 200);
    ASSERT_EQ(c.put("/logs/_doc/c", R"({"n":1})").status, 201);
    std::string lines =
        "{\"index\":{\"_index\":\"logs\",\"_id\":\"1\"}}\n{\"n\":1}\n"
        "{\"index\":{\"_index\":\"logs\",\"_id\":\"2\"}}\n{\"n\":2}\n"
        "{\"create\":{\"_index\":\"logs\",\"_id\":\"c\"}}\n{\"n\":3}\n"
        "{\"index\":{\"_index\":\"logs\",\"_id\":\"3\"}}\n{\"n\":\"x\"}\n"
        "{\"delete\":{\"_index\":\"logs\",\"_id\":\"never\"}}\n";
    Reply fast = c.bulk(lines, std::string("/_bulk?") + kLogstashFilter);
    ASSERT_EQ(fast.status, 200) << describe(fast);
    // Back to the same state for the same outcomes: 1 and 2 created again, c still at version 1.
    ASSERT_EQ(c.del("/logs/_doc/1").status, 200);
    ASSERT_EQ(c.del("/logs/_doc/2").status, 200);
    Reply generic = c.bulk(lines, std::string("/_bulk?") + kLogstashFilter + ",no_such_field");
    ASSERT_EQ(generic.status, 200) << describe(generic);
    EXPECT_EQ(fast.body, generic.body);
    ASSERT_TRUE(validJson(fast));
    EXPECT_EQ(fast.num("items.0.index.status"), 201);
    EXPECT_EQ(fast.num("items.1.index.status"), 201);
    EXPECT_EQ(fast.str("items.2.create.error.type"), "version_conflict_engine_exception");
    EXPECT_EQ(fast.str("items.3.index.error.type"), "mapper_parsing_exception");
    EXPECT_EQ(fast.num("items.4.delete.status"), 404);
}

TEST_F(SearchMockTest, FilterPathLeavesErrorAnswersWhole) {
    Client c = client();
    Reply malformed = c.bulk("garbage\n", std::string("/_bulk?") + kLogstashFilter);
    EXPECT_EQ(malformed.status, 400);
    EXPECT_EQ(malformed.str("error.type"), "illegal_argument_exception");
    EXPECT_EQ(malformed.str("error.root_cause.0.type"), "illegal_argument_exception");
    EXPECT_EQ(malformed.num("status"), 400);
    Reply missing_index = c.get("/nothing/_doc/1?filter_path=found");
    EXPECT_EQ(missing_index.status, 404);
    EXPECT_EQ(missing_index.str("error.type"), "index_not_found_exception");
    // A 404 that is an answer, not an exception, is filtered.
    ASSERT_EQ(c.put("/p").status, 200);
    EXPECT_EQ(describe(c.get("/p/_doc/1?filter_path=found")), R"(404 {"found":false})");
}

TEST_F(SearchMockTest, FilterPathOnSearch) {
    Client c = client();
    ASSERT_EQ(c.bulk("{\"index\":{\"_index\":\"s\",\"_id\":\"1\"}}\n{\"a\":1,\"b\":{\"c\":2,\"d\":3}}\n"
                     "{\"index\":{\"_index\":\"s\",\"_id\":\"2\"}}\n{\"a\":2,\"b\":{\"c\":4,\"d\":5}}\n",
                     "/_bulk?refresh=true")
                  .status,
              200);
    EXPECT_EQ(describe(c.get("/s/_search?filter_path=hits.hits._id")),
              R"(200 {"hits":{"hits":[{"_id":"1"},{"_id":"2"}]}})");

    // "**" matches any depth (at least one name).
    Reply totals = c.get("/s/_search?filter_path=**.total");
    ASSERT_TRUE(validJson(totals));
    EXPECT_FALSE(totals.has("took"));
    EXPECT_TRUE(totals.has("_shards.total"));
    EXPECT_FALSE(totals.has("_shards.successful"));
    EXPECT_EQ(totals.num("hits.total.value"), 2);
    EXPECT_FALSE(totals.has("hits.hits"));
    Reply names = c.get("/s/_search?filter_path=hits.**._i*");
    EXPECT_EQ(names.str("hits.hits.1._index"), "s");
    EXPECT_EQ(names.str("hits.hits.1._id"), "2");
    EXPECT_FALSE(names.has("hits.hits.1._score"));
    EXPECT_EQ(describe(c.get("/s/_search?filter_path=**.d")),
              R"(200 {"hits":{"hits":[{"_source":{"b":{"d":3}}},{"_source":{"b":{"d":5}}}]}})");

    // Exclusions, alone and after includes.
    Reply excluded = c.get("/s/_search?filter_path=-hits.hits._source,-took");
    ASSERT_TRUE(validJson(excluded));
    EXPECT_FALSE(excluded.has("took"));
    EXPECT_TRUE(excluded.has("timed_out"));
    EXPECT_TRUE(excluded.has("_shards.total"));
    EXPECT_EQ(excluded.str("hits.hits.0._id"), "1");
    EXPECT_FALSE(excluded.has("hits.hits.0._source"));
    EXPECT_EQ(describe(c.get("/s/_search?filter_path=**._source,-**.b.c")),
              R"(200 {"hits":{"hits":[{"_source":{"a":1,"b":{"d":3}}},{"_source":{"a":2,"b":{"d":5}}}]}})");
    // Nothing left: the root object stays.
    EXPECT_EQ(describe(c.get("/s/_count?filter_path=-*")), "200 {}");
}

TEST_F(SearchMockTest, FilteredAnswersStayValidJson) {
    Client c = client();
    ASSERT_EQ(c.put("/raw", R"({"mappings":{"dynamic":false}})").status, 200);
    // Stored as sent (spaces, escapes, 1.50); a filtered answer is rewritten as the engine's filtering
    // generator rewrites it: compact, strings re-escaped, integers of any size kept, doubles as doubles.
    ASSERT_EQ(c.put("/raw/_doc/1?refresh=true",
                    R"({ "s" : "q\" b\\ n\n \u00e9 \u0001 \/", "big": 123456789012345678901234567890,)"
                    R"( "f": 1.50, "z": -0, "e": [], "o": {} })")
                  .status,
              201);
    Reply reply = c.get("/raw/_search?filter_path=hits.hits._source");
    ASSERT_TRUE(validJson(reply));
    EXPECT_EQ(reply.body,
              "{\"hits\":{\"hits\":[{\"_source\":{\"s\":\"q\\\" b\\\\ n\\n \xC3\xA9 \\u0001 /\","
              "\"big\":123456789012345678901234567890,\"f\":1.5,\"z\":0,\"e\":[],\"o\":{}}}]}}");
    // Under a partly matched path, empty objects and arrays are dropped (Jackson's TokenFilter defaults).
    EXPECT_EQ(describe(c.get("/raw/_search?filter_path=hits.hits._source.e.x,hits.hits._source.o.x")),
              "200 {}");
    Reply document = c.get("/raw/_doc/1?filter_path=_source.s,_id");
    ASSERT_TRUE(validJson(document));
    EXPECT_EQ(document.str("_id"), "1");
    EXPECT_EQ(document.str("_source.s"), "q\" b\\ n\n \xC3\xA9 \x01 /");
}

TEST_F(SearchMockTest, FilterPathCornersTheMockDoesNotImplementAreRefused) {
    Client c = client();
    for (const char* value : {"a%5Cb", "-", "%20", "a,-%20", ".a", "a.", "a..b"}) {
        Reply refused = c.put(std::string("/r/_doc/1?filter_path=") + value, R"({"a":1})");
        EXPECT_EQ(refused.status, 400) << value << ": " << describe(refused);
        EXPECT_EQ(refused.str("error.type"), "illegal_argument_exception") << value;
    }
    // Refused before the request is applied.
    EXPECT_EQ(c.get("/r").status, 404);
    // An escaped dot is a dot within a name.
    ASSERT_EQ(c.put("/r", R"({"mappings":{"dynamic":false}})").status, 200);
    ASSERT_EQ(c.put("/r/_doc/1", R"({"a.b":1,"a":{"b":2}})").status, 201);
    EXPECT_EQ(describe(c.get("/r/_doc/1?filter_path=_source.a%5C.b")), R"(200 {"_source":{"a.b":1}})");
    EXPECT_EQ(describe(c.get("/r/_doc/1?filter_path=_source.a.b")), R"(200 {"_source":{"a":{"b":2}}})");
}

// ---------------------------------------------------------------------------------------------------------
// --flavor elasticsearch
// ---------------------------------------------------------------------------------------------------------

TEST(SearchMockElasticsearch, DifferencesFromOpenSearch) {
    SearchMock mock({"--listen", "127.0.0.1:0", "--flavor", "elasticsearch"});
    Client c(mock.port());
    Reply root = c.get("/");
    EXPECT_EQ(root.str("version.number").substr(0, 2), "8.");
    EXPECT_FALSE(root.has("version.distribution"));
    EXPECT_EQ(root.headers.find("X-Elastic-Product")->second, "Elasticsearch");

    Reply knn = c.put("/k", R"({"mappings":{"properties":{"v":{"type":"knn_vector","dimension":3}}}})");
    EXPECT_EQ(knn.str("error.root_cause.0.reason"), "No handler for type [knn_vector] declared on field [v]");
    EXPECT_EQ(c.put("/k", R"({"settings":{"index.knn":true}})").str("error.type"),
              "illegal_argument_exception");
    ASSERT_EQ(
        c.put("/e", R"({"mappings":{"dynamic":"strict","properties":{"v":{"type":"dense_vector","dims":3},
        "n":{"type":"long"}}}})")
            .status,
        200);
    Reply dims = c.put("/e/_doc/1", R"({"v":[1,2]})");
    EXPECT_EQ(dims.str("error.type"), "document_parsing_exception");
    EXPECT_EQ(
        dims.str("error.reason"),
        "[1:6] failed to parse: The [dense_vector] field [v] in doc [document with id '1'] has a different "
        "number of dimensions [2] than defined in the mapping [3]");
    Reply number = c.put("/e/_doc/1", R"({"n":"x"})");
    EXPECT_EQ(number.str("error.type"), "document_parsing_exception");
    EXPECT_EQ(number.str("error.reason"),
              "[1:6] failed to parse field [n] of type [long] in document with id '1'. Preview of field's "
              "value: 'x'");
    Reply strict = c.put("/e/_doc/1", R"({"zz":1})");
    EXPECT_EQ(strict.str("error.type"), "strict_dynamic_mapping_exception");
    EXPECT_EQ(strict.str("error.reason"),
              "[1:7] mapping set to strict, dynamic introduction of [zz] within [_doc] is not allowed");

    // Versioned media types (compatible-with=8) are accepted and answered in kind.
    c.setHeaders({{"Accept", "application/vnd.elasticsearch+json; compatible-with=8"}});
    Reply bulk =
        c.call("POST", "/_bulk", "{\"index\":{\"_index\":\"e\",\"_id\":\"1\"}}\n{\"v\":[1,2,3],\"n\":1}\n",
               "application/vnd.elasticsearch+x-ndjson; compatible-with=8");
    EXPECT_EQ(bulk.status, 200) << bulk.body;
    EXPECT_FALSE(bulk.flag("errors"));
    EXPECT_EQ(bulk.headers.find("Content-Type")->second,
              "application/vnd.elasticsearch+json;compatible-with=8");
    c.setHeaders({{"Accept", "application/vnd.elasticsearch+json; compatible-with=9"}});
    EXPECT_EQ(c.get("/e/_doc/1").str("error.type"), "media_type_header_exception");
    c.setHeaders({});
    EXPECT_EQ(c.del("/e*").str("error.reason"), "Wildcard expressions or all indices are not allowed");
    Reply rejected_items = c.get("/e/_doc/1");
    EXPECT_EQ(rejected_items.num("_version"), 1);
}

// ---------------------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------------------

class SearchMockFaultsTest : public SearchMockTest {
  protected:
    Reply faults(const std::string& json) { return client().post("/_mock/faults", json); }
    int64_t stat(const std::string& name) { return client().get("/_mock/stats").num(name); }
};

TEST_F(SearchMockFaultsTest, RejectsAShareOfBulkItemsWith429) {
    Client c = client();
    ASSERT_EQ(faults(R"({"reject_bulk_items_ratio":0.2})").status, 200);
    std::string lines;
    for (int i = 0; i < 10; ++i)
        lines += "{\"index\":{\"_index\":\"r\",\"_id\":\"" + std::to_string(i) +
                 "\"}}\n{\"n\":" + std::to_string(i) + "}\n";
    Reply reply = c.bulk(lines);
    ASSERT_EQ(reply.status, 200) << reply.body;
    EXPECT_TRUE(reply.flag("errors"));
    std::vector<int> rejected;
    for (int i = 0; i < 10; ++i) {
        std::string item = "items." + std::to_string(i) + ".index";
        if (reply.num(item + ".status") == 429) {
            rejected.push_back(i);
            EXPECT_EQ(reply.str(item + ".error.type"), "rejected_execution_exception");
            EXPECT_EQ(c.get("/r/_doc/" + std::to_string(i)).status, 404)
                << "a rejected item must not be applied";
        } else {
            EXPECT_EQ(reply.num(item + ".status"), 201);
        }
    }
    EXPECT_EQ(rejected, (std::vector<int>{4, 9}));
    EXPECT_EQ(stat("bulk_items_rejected"), 2);
    ASSERT_EQ(c.del("/_mock/faults").status, 200);
    EXPECT_FALSE(c.bulk(lines).flag("errors"));
}

TEST_F(SearchMockFaultsTest, RejectsAndFailsWholeRequests) {
    Client c = client();
    ASSERT_EQ(faults(R"({"reject_requests":1})").status, 200);
    Reply rejected = c.put("/f/_doc/1", R"({"a":1})");
    EXPECT_EQ(rejected.status, 429);
    EXPECT_EQ(rejected.str("error.type"), "rejected_execution_exception");
    EXPECT_EQ(c.put("/f/_doc/1", R"({"a":1})").status, 201);

    ASSERT_EQ(faults(R"({"status_503":true})").status, 200);
    for (int i = 0; i < 3; ++i) {
        Reply unavailable = c.get("/f/_doc/1");
        EXPECT_EQ(unavailable.status, 503);
        EXPECT_EQ(unavailable.str("error.type"), "cluster_block_exception");
        EXPECT_EQ(unavailable.str("error.reason"), "blocked by: [SERVICE_UNAVAILABLE/2/no cluster-manager];");
    }
    ASSERT_EQ(faults(R"({"status_503":false,"unavailable_requests":2,"path_filter":"_bulk"})").status, 200);
    EXPECT_EQ(c.get("/f/_doc/1").status, 200);  // not a bulk request
    EXPECT_EQ(c.bulk("{\"delete\":{\"_index\":\"f\",\"_id\":\"x\"}}\n").status, 503);
    EXPECT_EQ(c.bulk("{\"delete\":{\"_index\":\"f\",\"_id\":\"x\"}}\n").status, 503);
    EXPECT_EQ(c.bulk("{\"delete\":{\"_index\":\"f\",\"_id\":\"x\"}}\n").status, 200);
    EXPECT_EQ(stat("requests_unavailable"), 5);
    EXPECT_EQ(faults(R"({"no_such_fault":1})").status, 400);
}

TEST_F(SearchMockFaultsTest, SlowsDownAnswers) {
    Client c = client();
    ASSERT_EQ(faults(R"({"delay_ms":300})").status, 200);
    auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(c.get("/").status, 200);
    EXPECT_GE(std::chrono::steady_clock::now() - started, 300ms);
    ASSERT_EQ(c.del("/_mock/faults").status, 200);
    started = std::chrono::steady_clock::now();
    EXPECT_EQ(c.get("/").status, 200);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 300ms);
}

TEST_F(SearchMockFaultsTest, DropsConnectionsBeforeOrAfterApplyingTheRequest) {
    Client c = client();
    ASSERT_EQ(faults(R"({"drop_connections":1})").status, 200);
    EXPECT_EQ(c.put("/d/_doc/1", R"({"a":1})").status, -1);
    EXPECT_EQ(c.get("/d/_doc/1").status, 404) << "a request dropped before processing is not applied";
    ASSERT_EQ(faults(R"({"drop_responses":1})").status, 200);
    EXPECT_EQ(c.put("/d/_doc/2?version_type=external&version=5", R"({"a":1})").status, -1);
    // Applied although its answer was lost: a retry with the same external version gets 409.
    EXPECT_EQ(c.get("/d/_doc/2").num("_version"), 5);
    EXPECT_EQ(c.put("/d/_doc/2?version_type=external&version=5", R"({"a":1})").status, 409);
    EXPECT_EQ(stat("connections_dropped"), 1);
    EXPECT_EQ(stat("responses_dropped"), 1);
}

TEST_F(SearchMockFaultsTest, OutageRefusesConnectionsUntilItEnds) {
    Client c = client();
    ASSERT_EQ(c.put("/o/_doc/1", R"({"a":1})").status, 201);
    EXPECT_EQ(faults(R"({"outage":true})").status, 400) << "an endless outage needs the admin listener";
    ASSERT_EQ(faults(R"({"outage":true,"outage_ms":700})").status, 200);
    EXPECT_TRUE(pgstream_it::wait_until([&c] { return c.get("/").status == -1; }, 5s));
    EXPECT_TRUE(pgstream_it::wait_until([&c] { return c.get("/").status == 200; }, 10s));
    EXPECT_EQ(c.get("/o/_doc/1").status, 200) << "the data survives the outage";
    EXPECT_EQ(stat("outages"), 1);
}

TEST(SearchMockOutage, AdminListenerEndsAnOutage) {
    SearchMock mock({"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"});
    Client data(mock.port());
    Client admin(mock.adminPort());
    ASSERT_EQ(admin.post("/_mock/faults", R"({"outage":true})").status, 200);
    EXPECT_TRUE(pgstream_it::wait_until([&data] { return data.get("/").status == -1; }, 5s));
    EXPECT_TRUE(admin.get("/_mock/stats").flag("outage_active"));
    ASSERT_EQ(admin.del("/_mock/faults").status, 200);
    EXPECT_TRUE(pgstream_it::wait_until([&data] { return data.get("/").status == 200; }, 10s));
    EXPECT_EQ(admin.get("/").status, 404) << "the admin listener serves /_mock/ only";
}

// A test that switches an outage on knows, when the admin answer comes, that nothing listens any more.
TEST(SearchMockOutage, AnOutageIsInForceWhenTheAdminAnswerComes) {
    SearchMock mock({"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"});
    Client admin(mock.adminPort());
    for (int round = 0; round < 10; ++round) {
        Client data(mock.port());
        ASSERT_EQ(data.get("/").status, 200);
        ASSERT_EQ(admin.post("/_mock/faults", R"({"outage":true})").status, 200);
        EXPECT_EQ(data.get("/").status, -1) << "round " << round;
        ASSERT_EQ(admin.del("/_mock/faults").status, 200);
        ASSERT_TRUE(pgstream_it::wait_until([&data] { return data.get("/").status == 200; }, 10s));
    }
}

// ---------------------------------------------------------------------------------------------------------
// Authentication and the command line
// ---------------------------------------------------------------------------------------------------------

TEST(SearchMockAuth, BasicAuthAndApiKeys) {
    SearchMock opensearch({"--listen", "127.0.0.1:0", "--user", "elastic:s3cret"});
    Client anonymous(opensearch.port());
    Reply refused = anonymous.get("/");
    EXPECT_EQ(refused.status, 401);
    EXPECT_EQ(refused.body, "Unauthorized");
    EXPECT_EQ(refused.headers.find("WWW-Authenticate")->second, "Basic realm=\"OpenSearch Security\"");
    Client user(opensearch.port());
    user.setHeaders({{"Authorization", "Basic ZWxhc3RpYzpzM2NyZXQ="}});  // elastic:s3cret
    EXPECT_EQ(user.get("/").status, 200);
    Client wrong(opensearch.port());
    wrong.setHeaders({{"Authorization", "Basic ZWxhc3RpYzp3cm9uZw=="}});  // elastic:wrong
    EXPECT_EQ(wrong.get("/").status, 401);
    EXPECT_EQ(anonymous.get("/_mock/stats").num("unauthorized"), 2);

    SearchMock elasticsearch(
        {"--listen", "127.0.0.1:0", "--flavor", "elasticsearch", "--api-key", "a2V5OnNlY3JldA=="});
    Client none(elasticsearch.port());
    Reply missing = none.get("/_search");
    EXPECT_EQ(missing.status, 401);
    EXPECT_EQ(missing.str("error.type"), "security_exception");
    EXPECT_EQ(missing.str("error.reason"), "missing authentication credentials for REST request [/_search]");
    EXPECT_EQ(missing.str("error.root_cause.0.type"), "security_exception");
    Client key(elasticsearch.port());
    key.setHeaders({{"Authorization", "ApiKey a2V5OnNlY3JldA=="}});
    EXPECT_EQ(key.get("/_search").status, 200);
    Client bad_key(elasticsearch.port());
    bad_key.setHeaders({{"Authorization", "ApiKey bm9wZQ=="}});
    EXPECT_EQ(bad_key.get("/_search").str("error.type"), "security_exception");
}

TEST(SearchMockCli, BadOptionsExitWithOneLineAndCode2) {
    auto bad_flavor =
        pgstream_it::run_command({pgstream_it::search_mock_binary(), "--flavor", "solr"}, {}, 10s);
    EXPECT_EQ(bad_flavor.exit_code, 2) << bad_flavor.describe();
    ASSERT_FALSE(bad_flavor.err_lines().empty());
    EXPECT_EQ(bad_flavor.err_lines().front(),
              "pgstream-search-mock: --flavor must be opensearch or elasticsearch, got 'solr'");
    auto bad_listen =
        pgstream_it::run_command({pgstream_it::search_mock_binary(), "--listen", "localhost"}, {}, 10s);
    EXPECT_EQ(bad_listen.exit_code, 2);
    auto bad_user = pgstream_it::run_command(
        {pgstream_it::search_mock_binary(), "--user", "secretwithoutcolon"}, {}, 10s);
    EXPECT_EQ(bad_user.exit_code, 2);
    EXPECT_EQ(bad_user.err.find("secretwithoutcolon"), std::string::npos) << "the credential is never echoed";
}

}  // namespace
