#include "search/search_store.h"

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstring>
#include <ctime>
#include <map>
#include <string_view>

#include "util/redact.h"

namespace pgstream::search {

namespace {

bool retryable_status(long status) {
    // 401/403: credentials being rotated or a security plugin starting; giving every document up would
    // dead-letter the whole stream for a configuration slip.
    return status == 0 || status == 401 || status == 403 || status == 408 || status == 429 || status >= 500;
}

// The error of an engine response body: {"error":{"type":..,"reason":..},"status":..}, or the body itself.
void read_error(const std::string& body, std::string& type, std::string& reason) {
    try {
        JsonValue parsed = parse_json(body);
        if (const JsonValue* error = parsed.find("error")) {
            if (error->is_object()) {
                if (const JsonValue* t = error->find("type")) type = t->text;
                if (const JsonValue* r = error->find("reason")) reason = r->text;
                return;
            }
            reason = error->text;
            return;
        }
    } catch (const JsonError&) {
    }
    reason = body.substr(0, 300);
}

ChangeResult failure(const HttpResponse& response, const std::string& what) {
    ChangeResult result;
    std::string type, reason;
    if (!response.error.empty()) {
        reason = response.error;
    } else {
        read_error(response.body, type, reason);
    }
    result.status = retryable_status(response.status) && !response.address_refused
                        ? ChangeResult::Status::kRetry
                        : ChangeResult::Status::kFailed;
    result.detail =
        redact::scrub(what + ": " + (response.status ? "HTTP " + std::to_string(response.status) + " " : "") +
                      (type.empty() ? "" : type + ": ") + reason);
    return result;
}

ItemResult request_failure(const HttpResponse& response) {
    ItemResult result;
    result.status = response.status;
    if (!response.error.empty()) {
        result.reason = response.error;
    } else {
        read_error(response.body, result.error_type, result.reason);
    }
    result.outcome = retryable_status(response.status) && !response.address_refused ? ItemOutcome::kRetry
                                                                                    : ItemOutcome::kGivenUp;
    return result;
}

std::string now_utc() {
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    tm utc{};
    gmtime_r(&now.tv_sec, &utc);
    char text[40];
    size_t length = strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &utc);
    snprintf(text + length, sizeof text - length, ".%06ld", now.tv_nsec / 1000);
    return text;
}

}  // namespace

std::string url_escape(const std::string& text) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 0x0f];
        }
    }
    return out;
}

SearchStore::SearchStore(SearchSettings settings, HttpClient& http)
    : settings_(std::move(settings)),
      http_(http),
      address_policy_(std::make_shared<const AddressPolicy>(AddressPolicy::allow_all())) {}

HttpRequest SearchStore::make_request(const std::string& method, const std::string& path, std::string body,
                                      bool ndjson, std::shared_ptr<const std::string> shared_body) const {
    HttpRequest request;
    request.method = method;
    request.url = settings_.url + path;
    request.body = std::move(body);
    request.shared_body = std::move(shared_body);
    request.timeout = settings_.request_timeout;
    request.address_policy = address_policy_;
    request.ca_file = settings_.ca_file;
    request.verify_tls = settings_.tls_verify;
    if (settings_.engine == Engine::kElasticsearch) {
        // Elasticsearch 8's compatibility media types: answers stay in the 8.x shape after an upgrade.
        request.headers.push_back(
            ndjson ? "Content-Type: application/vnd.elasticsearch+x-ndjson; compatible-with=8"
                   : "Content-Type: application/vnd.elasticsearch+json; compatible-with=8");
        request.headers.push_back("Accept: application/vnd.elasticsearch+json; compatible-with=8");
    } else {
        request.headers.push_back(ndjson ? "Content-Type: application/x-ndjson"
                                         : "Content-Type: application/json");
    }
    if (std::string auth = settings_.authorization_header(); !auth.empty()) request.headers.push_back(auth);
    return request;
}

HttpResponse SearchStore::request(const std::string& method, const std::string& path, std::string body,
                                  bool ndjson, std::shared_ptr<const std::string> shared_body) {
    return http_.perform(make_request(method, path, std::move(body), ndjson, std::move(shared_body)));
}

namespace {

// The literal parts of an item's _bulk lines (write_bulk_lines()):
//   {"index":{"_index":"<alias>","_id":"<id>","version":<v>,"version_type":"external"}}
//   {<fields_json>,"_change_version":<v>}
// or the delete line alone.
constexpr std::string_view kIndexAction = "{\"index\":{\"_index\":";
constexpr std::string_view kDeleteAction = "{\"delete\":{\"_index\":";
constexpr std::string_view kId = ",\"_id\":";
constexpr std::string_view kVersion = ",\"version\":";
constexpr std::string_view kActionEnd = ",\"version_type\":\"external\"}}\n";
constexpr std::string_view kChangeVersion = "\"_change_version\":";
constexpr std::string_view kDocumentEnd = "}\n";
constexpr size_t kMaxUintDigits = 20;
static_assert(kChangeVersion.substr(1, kChangeVersion.size() - 3) == std::string_view(kChangeVersionField));

constexpr size_t kFixedBytes = kDeleteAction.size() + kId.size() + kVersion.size() + kActionEnd.size() + 2 +
                               kChangeVersion.size() + kDocumentEnd.size();  // + the document's brace, comma
static_assert(kIndexAction.size() <= kDeleteAction.size());

// The most bytes write_bulk_lines() writes for `item` when neither its index nor its id needs an escape
// (nearly always), and the most it can write at all.
size_t bulk_lines_size(const BulkItem& item) {
    return kFixedBytes + 2 * kMaxUintDigits + item.index.size() + 2 + item.id.size() + 2 +
           item.fields_json.size();
}
size_t bulk_lines_bound(const BulkItem& item) {
    return kFixedBytes + 2 * kMaxUintDigits + json_string_bound(item.index.size()) +
           json_string_bound(item.id.size()) + item.fields_json.size();
}

char* write_literal(char* out, std::string_view text) {
    std::memcpy(out, text.data(), text.size());
    return out + text.size();
}

// Writes the _bulk lines of `item` into room for bulk_lines_bound(item) bytes; returns their end.
// `index_json` is the item's index as a JSON string (the items of a batch mostly share it). The document's
// fields are JSON already and go in with one copy; the version is formatted once for both lines.
char* write_bulk_lines(char* out, const BulkItem& item, std::string_view index_json) {
    char version[kMaxUintDigits];
    const std::string_view version_text(
        version, size_t(std::to_chars(version, version + kMaxUintDigits, item.version).ptr - version));
    const bool index = item.action == BulkItem::Action::kIndex;
    out = write_literal(out, index ? kIndexAction : kDeleteAction);
    out = write_literal(out, index_json);
    out = write_literal(out, kId);
    out = write_json_string(out, item.id);
    out = write_literal(out, kVersion);
    out = write_literal(out, version_text);
    out = write_literal(out, kActionEnd);
    if (!index) return out;
    *out++ = '{';
    out = write_literal(out, item.fields_json);
    if (!item.fields_json.empty()) *out++ = ',';
    out = write_literal(out, kChangeVersion);
    out = write_literal(out, version_text);
    return write_literal(out, kDocumentEnd);
}

// Reads a _bulk answer without building a tree: the top-level "errors" flag and, per item, its "status" and
// its error's "type" and "reason". With `stop_when_no_errors` it stops at "errors":false (the engine writes
// it before "items"): every item then succeeded and there is nothing more to read.
class BulkAnswerReader : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, BulkAnswerReader> {
  public:
    struct Item {
        std::optional<uint64_t> status;
        std::string error_type, reason;
    };

    explicit BulkAnswerReader(bool stop_when_no_errors) : stop_when_no_errors_(stop_when_no_errors) {}

    std::optional<bool> errors;
    bool has_items = false;
    std::vector<Item> items;
    bool stopped_early = false;

    bool StartObject() {
        ++depth_;
        // depth 3: an item ({"index":{...}}), inside the top-level "items" array.
        if (depth_ == 3 && in_items_) items.emplace_back();
        return true;
    }
    bool EndObject(rapidjson::SizeType) {
        --depth_;
        return true;
    }
    bool StartArray() {
        ++depth_;
        if (depth_ == 2 && key_ == "items") {
            in_items_ = true;
            has_items = true;
        }
        return true;
    }
    bool EndArray(rapidjson::SizeType) {
        if (depth_ == 2) in_items_ = false;
        --depth_;
        return true;
    }
    bool Key(const char* text, rapidjson::SizeType length, bool) {
        key_.assign(text, length);
        // depth 5: the members of an item's "error" object.
        if (depth_ == 4) in_error_ = key_ == "error";
        return true;
    }
    bool Bool(bool value) {
        if (depth_ == 1 && key_ == "errors") {
            errors = value;
            if (!value && stop_when_no_errors_) {
                stopped_early = true;
                return false;  // ends the parse: nothing below can change an item's outcome
            }
        }
        return true;
    }
    bool Uint(unsigned value) { return number(value); }
    bool Int(int value) { return number(static_cast<uint64_t>(value < 0 ? 0 : value)); }
    bool Uint64(uint64_t value) { return number(value); }
    bool Int64(int64_t value) { return number(static_cast<uint64_t>(value < 0 ? 0 : value)); }
    bool String(const char* text, rapidjson::SizeType length, bool) {
        if (depth_ == 5 && in_items_ && in_error_ && !items.empty()) {
            if (key_ == "type") items.back().error_type.assign(text, length);
            if (key_ == "reason") items.back().reason.assign(text, length);
        }
        return true;
    }

  private:
    bool number(uint64_t value) {
        if (depth_ == 4 && in_items_ && key_ == "status" && !items.empty()) items.back().status = value;
        return true;
    }

    bool stop_when_no_errors_;
    int depth_ = 0;
    bool in_items_ = false;
    bool in_error_ = false;
    std::string key_;
};

}  // namespace

namespace {

// Both engines leave out of the answer what `filter_path` does not name (their common response filtering; an
// answer to a failed request, `{"error":...,"status":...}`, is never filtered): the items keep their status
// and, if they failed, their error, which is all bulk_results reads. About 25 bytes per item instead of ~200
// (`_index`, `_id`, `_version`, `result`, `_shards`, `_seq_no`, `_primary_term`): less for the engine to write,
// for both sides' kernels to carry and for the HTTP client to collect. Logstash's output asks the same.
constexpr const char* kBulkPath = "/_bulk?filter_path=errors,items.*.status,items.*.error";

// The _bulk NDJSON body for `items`, written into `body` (whose memory is reused).
void write_bulk_body(const std::vector<BulkItem>& items, std::string& body) {
    // Sized for the lines as they nearly always are (no escapes in index names and ids), plus the largest
    // difference one item can make: no item then finds too little room unless escapes add up, and growing
    // the string (which zero-fills what it adds) stays out of the common case. The string keeps the size of
    // the last body, so a batch like the last one fills little.
    size_t size = 0, excess = 0;
    for (const auto& item : items) {
        size += bulk_lines_size(item);
        excess = std::max(excess, bulk_lines_bound(item) - bulk_lines_size(item));
    }
    body.resize(size + excess);
    size_t used = 0;
    const std::string* index = nullptr;
    std::string index_json;
    for (const auto& item : items) {
        if (index == nullptr || item.index != *index) {
            index = &item.index;
            index_json = json_quote(item.index);
        }
        const size_t bound = bulk_lines_bound(item);
        if (body.size() - used < bound) body.resize(std::max(2 * body.size(), used + bound));
        used = size_t(write_bulk_lines(body.data() + used, item, index_json) - body.data());
    }
    body.resize(used);
}

// A result per item from the answer to a _bulk request of `items`.
std::vector<ItemResult> bulk_results(const std::vector<BulkItem>& items, const HttpResponse& response) {
    if (!response.ok()) return std::vector<ItemResult>(items.size(), request_failure(response));
    std::vector<ItemResult> results(items.size());
    // Deletes need their item's status even without errors (a 404 not_found is not an error but is
    // ignored, not delivered); a batch of index items only needs the errors flag.
    const bool has_deletes = std::any_of(items.begin(), items.end(), [](const BulkItem& item) {
        return item.action == BulkItem::Action::kDelete;
    });
    BulkAnswerReader answer(!has_deletes);
    rapidjson::Reader reader;
    rapidjson::StringStream stream(response.body.c_str());
    rapidjson::ParseResult parsed = reader.Parse(stream, answer);
    if (answer.stopped_early) {
        for (auto& result : results) {
            result.outcome = ItemOutcome::kDelivered;
            result.status = 200;
        }
        return results;
    }
    if (parsed.IsError()) {
        // An answer we cannot read tells nothing about the items: send them again (versions make it safe).
        for (auto& result : results)
            result.reason = std::string("unreadable bulk response: ") +
                            rapidjson::GetParseError_En(parsed.Code()) + " at offset " +
                            std::to_string(parsed.Offset());
        return results;
    }
    if (!answer.has_items || answer.items.size() != items.size()) {
        for (auto& result : results) result.reason = "bulk response without one item per request item";
        return results;
    }
    for (size_t i = 0; i < items.size(); ++i) {
        const BulkAnswerReader::Item& item = answer.items[i];
        ItemResult& result = results[i];
        if (!item.status) {
            result.reason = "bulk item without a status";
            continue;
        }
        result.status = static_cast<long>(*item.status);
        result.error_type = item.error_type;
        result.reason = item.reason;
        if (result.status >= 200 && result.status < 300) {
            result.outcome = ItemOutcome::kDelivered;
        } else if (result.status == 409) {
            result.outcome = ItemOutcome::kIgnored;  // the store has this version or a newer one
        } else if (result.status == 404 && items[i].action == BulkItem::Action::kDelete) {
            result.outcome = ItemOutcome::kIgnored;  // nothing to delete (its tombstone keeps the version)
        } else if (result.status == 429 || result.status >= 500) {
            result.outcome = ItemOutcome::kRetry;
        } else {
            result.outcome = ItemOutcome::kGivenUp;
        }
    }
    return results;
}

// `kept` to write the next body into when no request holds it any more (the HTTP client lets go of a body
// before the response comes back): its memory, sized for a batch like the last, serves again instead of a
// fresh buffer whose pages are faulted in and zero-filled for every batch. Else a new one, which `kept`
// keeps.
std::shared_ptr<std::string>& reusable_body(std::shared_ptr<std::string>& kept) {
    if (kept && kept.use_count() == 1) {
        // Pairs with the release of the client's reference: its reads of the body happened before.
        std::atomic_thread_fence(std::memory_order_acquire);
        return kept;
    }
    kept = std::make_shared<std::string>();
    return kept;
}

}  // namespace

std::string_view SearchStore::bulk_body(const std::vector<BulkItem>& items) {
    write_bulk_body(items, *reusable_body(bulk_body_));
    return *bulk_body_;
}

std::vector<ItemResult> SearchStore::send_bulk(const std::vector<BulkItem>& items, size_t* body_bytes) {
    if (items.empty()) return {};
    const std::string_view body = bulk_body(items);
    if (body_bytes != nullptr) *body_bytes = body.size();
    // The body goes to the HTTP client shared, not copied.
    return bulk_results(items, request("POST", kBulkPath, {}, true, bulk_body_));
}

bool SearchStore::can_start_bulk(const std::vector<BulkItem>& items) const {
    std::lock_guard lock(indices_mutex_);
    const std::string* checked = nullptr;  // the items of a batch mostly go to one index
    for (const auto& item : items) {
        if (!item.unchanged_fields.empty()) return false;
        if (item.action != BulkItem::Action::kIndex || (checked != nullptr && item.index == *checked))
            continue;
        if (!indices_with_change_version_.count(item.index)) return false;
        checked = &item.index;
    }
    return true;
}

StartedBulk SearchStore::start_bulk(const std::vector<BulkItem>& items) {
    // Two requests are in flight at most: of two bodies, the one of the request before last is free again.
    started_body_turn_ = !started_body_turn_;
    const std::shared_ptr<std::string>& body = reusable_body(started_bodies_[started_body_turn_]);
    write_bulk_body(items, *body);
    StartedBulk started;
    started.body_bytes = body->size();
    started.response = http_.start(make_request("POST", kBulkPath, {}, true, body));
    return started;
}

std::vector<ItemResult> SearchStore::finish_bulk(StartedBulk& started, const std::vector<BulkItem>& items) {
    return bulk_results(items, started.response.get());
}

size_t SearchStore::fill_unchanged_fields(std::vector<BulkItem>& items, bool& complete) {
    complete = true;
    // Most batches have no UPDATE that left a TOASTed column out: nothing to look up.
    if (std::none_of(items.begin(), items.end(),
                     [](const BulkItem& item) { return !item.unchanged_fields.empty(); }))
        return 0;
    size_t missing = 0;
    std::map<std::string, size_t> latest;  // document id -> index of its latest item so far
    for (size_t i = 0; i < items.size(); ++i) {
        BulkItem& item = items[i];
        auto earlier = latest.find(item.id);
        if (!item.unchanged_fields.empty()) {
            std::vector<std::string> from_store;
            for (const auto& field : item.unchanged_fields) {
                bool found = false;
                if (earlier != latest.end()) {
                    if (std::optional<std::string> value = items[earlier->second].field_json(field)) {
                        item.add_field(field, *value);
                        found = true;
                    }
                    // After a delete in the batch there is nothing to keep; after an index the field was
                    // null.
                    if (!found) ++missing;
                } else {
                    from_store.push_back(field);
                }
            }
            if (!from_store.empty()) {
                std::string includes;
                for (const auto& field : from_store) includes += (includes.empty() ? "" : ",") + field;
                HttpResponse response =
                    request("GET", "/" + url_escape(item.index) + "/_doc/" + url_escape(item.id) +
                                       "?_source_includes=" + url_escape(includes));
                if (response.status == 404) {
                    missing += from_store.size();
                } else if (!response.ok()) {
                    complete = false;
                    latest[item.id] = i;
                    continue;  // keep unchanged_fields: a later attempt fills them
                } else {
                    JsonValue parsed;
                    try {
                        parsed = parse_json(response.body);
                    } catch (const JsonError&) {
                        complete = false;
                        latest[item.id] = i;
                        continue;
                    }
                    const JsonValue* source = parsed.find("_source");
                    for (const auto& field : from_store) {
                        const JsonValue* value = source != nullptr ? source->find(field) : nullptr;
                        if (value != nullptr) {
                            item.add_field(field, value->to_json());
                        } else {
                            ++missing;
                        }
                    }
                }
            }
            item.unchanged_fields.clear();
        }
        latest[item.id] = i;
    }
    return missing;
}

std::string SearchStore::probe() {
    HttpResponse response = request("GET", "/");
    if (response.ok()) return {};
    return failure(response, "search store " + settings_.url + " unreachable").detail;
}

std::vector<ItemResult> SearchStore::write_once(std::vector<BulkItem>& items, size_t* body_bytes) {
    if (body_bytes != nullptr) *body_bytes = 0;
    if (std::optional<ItemResult> unreachable = ensure_change_version_field(items))
        return std::vector<ItemResult>(items.size(), *unreachable);
    bool complete = true;
    fill_unchanged_fields(items, complete);
    if (!complete)
        return std::vector<ItemResult>(
            items.size(), ItemResult{ItemOutcome::kRetry, 0, {}, "store unreachable for TOAST fields"});
    return send_bulk(items, body_bytes);
}

std::vector<ItemResult> SearchStore::write(std::vector<BulkItem> items, const StopToken& stop) {
    std::vector<ItemResult> results(items.size());
    std::vector<size_t> pending(items.size());
    for (size_t i = 0; i < items.size(); ++i) pending[i] = i;
    for (unsigned attempt = 1;; ++attempt) {
        std::vector<BulkItem> batch;
        for (size_t index : pending) batch.push_back(items[index]);
        std::vector<ItemResult> answers = write_once(batch);
        std::vector<size_t> still_pending;
        for (size_t i = 0; i < pending.size(); ++i) {
            results[pending[i]] = answers[i];
            if (!answers[i].final()) {
                still_pending.push_back(pending[i]);
            } else {
                items[pending[i]] = batch[i];  // filled fields are kept for later items of the same id
            }
        }
        pending.swap(still_pending);
        if (pending.empty()) return results;
        auto delay = settings_.store_retry.delayBeforeRetry(attempt);
        if (!delay || !stop.sleep_for(*delay)) return results;
    }
}

std::optional<ItemResult> SearchStore::ensure_change_version_field(const std::vector<BulkItem>& items) {
    std::set<std::string> asked;           // once per index and call: an index that is missing stays missing
    const std::string* checked = nullptr;  // the items of a batch mostly go to one index
    for (const auto& item : items) {
        if (item.action != BulkItem::Action::kIndex || (checked != nullptr && item.index == *checked))
            continue;
        {
            std::lock_guard lock(indices_mutex_);
            if (indices_with_change_version_.count(item.index)) {
                checked = &item.index;
                continue;
            }
        }
        if (!asked.insert(item.index).second) continue;
        // Adding a field the mapping already has with the same type is accepted: no need to read it first.
        HttpResponse put =
            request("PUT", "/" + url_escape(item.index) + "/_mapping", change_version_mapping_body());
        if (put.ok()) {
            std::lock_guard lock(indices_mutex_);
            indices_with_change_version_.insert(item.index);
        } else if (put.status != 404) {
            // A refusal (400) is left to the write, whose per-document answer says why; only an unreachable
            // store holds the items.
            ItemResult failed = request_failure(put);
            if (failed.outcome == ItemOutcome::kRetry) return failed;
            std::lock_guard lock(indices_mutex_);
            indices_with_change_version_.insert(item.index);
        }
        // 404: no index yet; the write answers for itself and the next one asks again.
    }
    return std::nullopt;
}

ChangeResult SearchStore::ensure_schema_log_index() {
    HttpResponse head = request("HEAD", std::string("/") + kSchemaLogIndex);
    if (head.ok()) return {};
    if (head.status != 404) return failure(head, "checking the pgstream index");
    HttpResponse created = request("PUT", std::string("/") + kSchemaLogIndex, schema_log_index_body());
    if (created.ok() || created.body.find("resource_already_exists_exception") != std::string::npos)
        return {};
    return failure(created, "creating the pgstream index");
}

ChangeResult SearchStore::stored_schema(const std::string& schema_name, SchemaLogEntry& stored) {
    std::string query = "{\"query\":{\"term\":{\"schema_name\":" + json_quote(schema_name) +
                        "}},\"sort\":[{\"version\":{\"order\":\"desc\"}}],\"size\":1}";
    HttpResponse response = request("POST", std::string("/") + kSchemaLogIndex + "/_search", query);
    if (!response.ok()) return failure(response, "reading the stored schema version");
    try {
        JsonValue parsed = parse_json(response.body);
        const JsonValue* hits = parsed.find("hits");
        hits = hits != nullptr ? hits->find("hits") : nullptr;
        if (hits == nullptr || !hits->is_array() || hits->items.empty()) return {};
        const JsonValue* source = hits->items.front().find("_source");
        if (source == nullptr) return {};
        if (const JsonValue* version = source->find("version")) stored.version = std::stoll(version->text);
        if (const JsonValue* id = source->find("id")) stored.id = id->text;
        stored.schema_name = schema_name;
        if (const JsonValue* schema = source->find("schema")) parse_schema_document(schema->text, stored);
    } catch (const std::exception& e) {
        ChangeResult result;
        result.status = ChangeResult::Status::kFailed;
        result.detail =
            std::string("the stored version of schema ") + schema_name + " is unreadable: " + e.what();
        return result;
    }
    return {};
}

ChangeResult SearchStore::apply_schema_change(const SchemaLogEntry& entry, uint64_t change_version) {
    if (ChangeResult ensured = ensure_schema_log_index(); ensured.status != ChangeResult::Status::kApplied) {
        return ensured;
    }
    SchemaLogEntry stored;
    if (ChangeResult read = stored_schema(entry.schema_name, stored);
        read.status != ChangeResult::Status::kApplied) {
        return read;
    }
    ChangeResult result;
    if (stored.version > entry.version) {
        result.status = ChangeResult::Status::kOutOfOrder;
        result.detail = "schema " + entry.schema_name + " version " + std::to_string(entry.version) +
                        " is older than the applied version " + std::to_string(stored.version);
        return result;
    }
    if (stored.version == entry.version) {
        result.status = ChangeResult::Status::kAlreadyApplied;
        return result;
    }
    if (entry.dropped) return delete_schema(entry.schema_name);

    const std::string index_path = "/" + url_escape(index_name(entry.schema_name));
    HttpResponse head = request("HEAD", index_path);
    if (head.status == 404) {
        HttpResponse created =
            request("PUT", index_path, index_create_body(entry, settings_.engine, result.report));
        if (!created.ok()) return failure(created, "creating index " + index_name(entry.schema_name));
    } else if (head.ok()) {
        const SchemaLogEntry* previous = stored.version > 0 ? &stored : nullptr;
        std::string body = put_mapping_body(previous, entry, settings_.engine, result.report);
        if (!body.empty()) {
            HttpResponse put = request("PUT", index_path + "/_mapping", body);
            if (!put.ok()) return failure(put, "updating the mapping of " + index_name(entry.schema_name));
        }
        if (previous != nullptr) {
            std::vector<std::string> removed = removed_table_ids(stored, entry);
            if (!removed.empty()) {
                ChangeResult deleted = delete_table_documents(entry.schema_name, removed, change_version);
                if (deleted.status != ChangeResult::Status::kApplied) return deleted;
            }
        }
    } else {
        return failure(head, "checking index " + index_name(entry.schema_name));
    }
    HttpResponse logged =
        request("PUT", std::string("/") + kSchemaLogIndex + "/_doc/" + url_escape(entry.id) + "?refresh=true",
                schema_log_document(entry, now_utc()));
    if (!logged.ok())
        return failure(logged,
                       "recording schema " + entry.schema_name + " version " + std::to_string(entry.version));
    return result;
}

ChangeResult SearchStore::delete_table_documents(const std::string& schema_name,
                                                 const std::vector<std::string>& table_ids,
                                                 uint64_t older_than) {
    const std::string alias_path = "/" + url_escape(alias_name(schema_name));
    // _delete_by_query matches what the last refresh made searchable: the writes before this change.
    HttpResponse refreshed = request("POST", alias_path + "/_refresh");
    if (refreshed.status == 404) return {};  // no index: no documents
    if (!refreshed.ok()) return failure(refreshed, "refreshing " + schema_name);
    std::string terms;
    for (const auto& id : table_ids) terms += (terms.empty() ? "" : ",") + json_quote(id);
    // Only what is older than this change: after a crash the replay may cross it again, and the documents
    // written after it are already in the store (their replayed writes are refused as not newer: 409).
    // Documents without the field were written before it existed, hence before this change.
    const std::string field = json_quote(kChangeVersionField);
    const std::string query = "{\"query\":{\"bool\":{\"filter\":[{\"terms\":{\"_table\":[" + terms +
                              "]}}],\"should\":[{\"range\":{" + field +
                              ":{\"lt\":" + std::to_string(older_than) +
                              "}}},{\"bool\":{\"must_not\":[{\"exists\":{\"field\":" + field +
                              "}}]}}],\"minimum_should_match\":1}}}";
    HttpResponse deleted =
        request("POST", alias_path + "/_delete_by_query?conflicts=proceed&refresh=true", query);
    if (!deleted.ok()) return failure(deleted, "deleting the documents of tables of " + schema_name);
    return {};
}

ChangeResult SearchStore::delete_schema(const std::string& schema_name) {
    HttpResponse deleted = request("DELETE", "/" + url_escape(index_name(schema_name)));
    if (!deleted.ok() && deleted.status != 404)
        return failure(deleted, "deleting index " + index_name(schema_name));
    HttpResponse versions = request(
        "POST", std::string("/") + kSchemaLogIndex + "/_delete_by_query?conflicts=proceed&refresh=true",
        "{\"query\":{\"term\":{\"schema_name\":" + json_quote(schema_name) + "}}}");
    if (!versions.ok() && versions.status != 404) {
        return failure(versions, "deleting the versions of schema " + schema_name);
    }
    return {};
}

}  // namespace pgstream::search
