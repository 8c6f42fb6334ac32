// The search store's requests: _bulk writes with a final outcome per document, and the schema changes
// (index and alias creation, mapping updates, deletes by table, dropping a schema) with the applied
// versions kept in the `pgstream` index. Requests go through the shared HttpClient; nothing here retries
// forever on its own except write(), which follows the store retry policy until a stop.
#pragma once

#include <array>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "http/http_client.h"
#include "processor/translator/schema_log.h"
#include "search/documents.h"
#include "search/mapping.h"
#include "search/search_settings.h"
#include "util/stop_token.h"

namespace pgstream::search {

enum class ItemOutcome {
    kDelivered,  // written
    kIgnored,    // final without a write: an older version (409), a delete of a missing document (404)
    kRetry,      // not written yet: 429, 5xx, timeout, connection failure, credentials refused
    kGivenUp,    // refused for good (400 mapping errors...): for the dead-letter file, with status and reason
};

struct ItemResult {
    ItemOutcome outcome = ItemOutcome::kRetry;
    long status = 0;         // HTTP status of the item (or of the request); 0 without an answer
    std::string error_type;  // e.g. mapper_parsing_exception
    std::string reason;
    bool final() const { return outcome != ItemOutcome::kRetry; }
};

// A schema-level operation's result.
struct ChangeResult {
    enum class Status {
        kApplied,
        kAlreadyApplied,  // the same version is stored (a repeated delivery)
        kOutOfOrder,      // an older version than the stored one: refused
        kRetry,           // the store is unreachable or overloaded: try again later
        kFailed,          // refused for good (status and reason in detail)
    };
    Status status = Status::kApplied;
    std::string detail;
    MappingReport report;
};

// A _bulk request sent before its batch's turn (SearchStore::start_bulk), whose answer is read later.
struct StartedBulk {
    std::future<HttpResponse> response;
    size_t body_bytes = 0;
};

class SearchStore {
  public:
    // `http` must outlive the store (the RuntimeContext's shared client in the pipeline).
    SearchStore(SearchSettings settings, HttpClient& http);

    // The _bulk NDJSON body for `items` (index with the document, delete without; external versions),
    // written into the store's buffer (reused from batch to batch): valid until the next call.
    std::string_view bulk_body(const std::vector<BulkItem>& items);
    // One _bulk request; a result per item, in order.
    std::vector<ItemResult> send_bulk(const std::vector<BulkItem>& items, size_t* body_bytes = nullptr);
    // Whether `items` can be sent as they are, with nothing to ask the store first: no item waits for
    // unchanged fields, and every index written to has kChangeVersionField. Thread-safe.
    bool can_start_bulk(const std::vector<BulkItem>& items) const;
    // Sends the _bulk request for `items` now, its body in a buffer of its own, without waiting for the
    // answer. Thread-safe (the batch before may be being written meanwhile).
    StartedBulk start_bulk(const std::vector<BulkItem>& items);
    // Waits for the answer of a started request: a result per item, as send_bulk() gives.
    std::vector<ItemResult> finish_bulk(StartedBulk& started, const std::vector<BulkItem>& items);
    // Fills the unchanged (TOASTed) fields of index items from earlier items of the same batch or from the
    // stored documents. Returns the number of fields it could not find (a row the store never had).
    // Throws nothing: a store failure leaves the fields to a later attempt (false in `complete`).
    size_t fill_unchanged_fields(std::vector<BulkItem>& items, bool& complete);
    // One attempt: fill_unchanged_fields() and send_bulk() (every item kRetry when the fill could not reach
    // the store). `body_bytes` receives the size of the _bulk body (0 when none was sent).
    std::vector<ItemResult> write_once(std::vector<BulkItem>& items, size_t* body_bytes = nullptr);
    // write_once(), then resends the items that got kRetry, waiting as the store retry policy says, until
    // every item is final, the policy gives up, or `stop` is requested (those items stay kRetry: not
    // delivered, never acknowledged).
    std::vector<ItemResult> write(std::vector<BulkItem> items, const StopToken& stop);

    // "" when the store answers (GET /), else why not, without secrets.
    std::string probe();
    // The latest version of `schema_name` stored in the `pgstream` index (version 0 when none); kRetry /
    // kFailed on store errors.
    ChangeResult stored_schema(const std::string& schema_name, SchemaLogEntry& stored);

    // Applies a schema_log version (see docs/search.md, "Schema changes"); `change_version` is the version
    // of the schema_log event: a DROP TABLE deletes only the documents older than it.
    ChangeResult apply_schema_change(const SchemaLogEntry& entry, uint64_t change_version);
    // TRUNCATE / DROP TABLE: deletes the documents of these tables (by `_table`) whose kChangeVersionField
    // is below `older_than` (the change's own version), and those written before the field existed. A
    // replay that crosses the change so keeps the documents written after it.
    ChangeResult delete_table_documents(const std::string& schema_name,
                                        const std::vector<std::string>& table_ids, uint64_t older_than);
    // DROP SCHEMA: deletes the schema's index and its versions from the `pgstream` index.
    ChangeResult delete_schema(const std::string& schema_name);

    const SearchSettings& settings() const { return settings_; }

  private:
    // `shared_body`, when set, is sent instead of `body` (the _bulk body, without a copy).
    HttpResponse request(const std::string& method, const std::string& path, std::string body = {},
                         bool ndjson = false, std::shared_ptr<const std::string> shared_body = nullptr);
    HttpRequest make_request(const std::string& method, const std::string& path, std::string body,
                             bool ndjson, std::shared_ptr<const std::string> shared_body) const;
    ChangeResult ensure_schema_log_index();
    // Adds kChangeVersionField to the mappings of the indices `items` write to, once per index and run
    // (indices created before the field existed); the failure (kRetry) when the store could not be asked.
    std::optional<ItemResult> ensure_change_version_field(const std::vector<BulkItem>& items);

    SearchSettings settings_;
    HttpClient& http_;
    // Every request may reach any address: the store URL is the operator's choice, like the Postgres URL.
    std::shared_ptr<const AddressPolicy> address_policy_;
    mutable std::mutex indices_mutex_;  // indices_with_change_version_ is read by can_start_bulk() too
    std::set<std::string> indices_with_change_version_;  // aliases whose mapping has kChangeVersionField
    std::shared_ptr<std::string> bulk_body_;             // bulk_body(): lent to the HTTP client per request
    // start_bulk()'s bodies (its caller's thread only), used in turn.
    std::array<std::shared_ptr<std::string>, 2> started_bodies_;
    bool started_body_turn_ = false;
};

// "%XX"-escapes what is not unreserved in a URL path segment or query value.
std::string url_escape(const std::string& text);

}  // namespace pgstream::search
