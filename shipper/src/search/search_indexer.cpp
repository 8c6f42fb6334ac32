#include "search/search_indexer.h"

#include "processor/translator/translator.h"
#include "util/log.h"
#include "util/redact.h"

namespace pgstream::search {

namespace {

BatchSettings batch_settings_of(const SearchSettings& settings) {
    BatchSettings batch;
    batch.max_queue_bytes = settings.max_queue_bytes;
    batch.batch_size = settings.batch_size;
    batch.batch_bytes = settings.batch_bytes;
    batch.batch_timeout = settings.batch_timeout;
    // Events the store has not taken (kRetry) are sent again alone by the sender, before the next batch, as
    // the store retry policy says: exponential doubling from the initial to the max interval, or constant.
    const RetryPolicy& policy = settings.store_retry;
    batch.retry_initial = std::max(policy.initial_interval, std::chrono::milliseconds(1));
    if (policy.kind == RetryPolicy::Kind::kConstant) {
        batch.retry_max = batch.retry_initial;
    } else {
        batch.retry_max = policy.max_interval.count() > 0 ? policy.max_interval : std::chrono::hours(1);
    }
    batch.max_send_attempts = policy.max_retries == 0 ? 0 : static_cast<int>(policy.max_retries) + 1;
    return batch;
}

HttpClientSettings http_settings() {
    HttpClientSettings settings;
    // A _bulk answer holds an item per document (about 200 bytes each, more with errors): the shared client's
    // 1 MiB limit would turn a large batch's answer into an endless retry.
    settings.max_response_bytes = 64u << 20;
    return settings;
}

std::string table_of_event(const Event& event) {
    return event.schema + "." + event.table;
}

std::string item_reason(const ItemResult& result) {
    return redact::scrub((result.error_type.empty() ? "" : result.error_type + ": ") + result.reason);
}

}  // namespace

// The index/delete items of the events seen since the last write, in order.
struct SearchIndexer::Pending {
    std::vector<BulkItem> items;
    std::vector<size_t> events;  // events[i]: the batch position of the event of items[i]
};

struct SearchIndexer::PreparedDocuments : PreparedBatch {
    Pending pending;
    std::vector<EventResult> results;  // delivered, or skipped for events without a document
    DocumentStats stats;
    // The schema versions whose tables the UPDATEs' items were built with (kept alive for the write).
    std::vector<std::shared_ptr<const SchemaLogEntry>> schemas;
    std::optional<StartedBulk> started;  // the items' _bulk request, when it could be sent ahead
};

SearchIndexer::SearchIndexer(SearchSettings settings, Acknowledger& acknowledger, StopToken stop,
                             std::unique_ptr<OutputMetrics> metrics)
    : settings_(std::move(settings)),
      http_(http_settings()),
      store_(settings_, http_),
      stop_(std::move(stop)),
      documents_(settings_),
      prepared_documents_(settings_) {
    BatchSettings batch = batch_settings_of(settings_);
    if (!settings_.dead_letter_file.empty()) {
        dead_letters_ = std::make_unique<DeadLetterFile>(settings_.dead_letter_file, name());
        batch.dead_letters = dead_letters_.get();
    }
    batch.on_result = [this](const Event& event, const EventResult& result) { count_result(event, result); };
    if (metrics) batch.on_result = metrics->result_recorder(std::move(batch.on_result));
    sender_ = std::make_unique<BatchSender>(
        name(), std::move(batch),
        [this](const std::vector<EventPtr>& events) { return prepare_documents(events); },
        [this](const std::vector<EventPtr>& events, PreparedBatch* prepared) {
            return send_events(events, prepared);
        },
        acknowledger, event_weight, stop_);
    if (metrics) metrics->observe_memory(sender_->memory());
    metrics_ = std::move(metrics);
}

SearchIndexer::~SearchIndexer() {
    close();
    metrics_.reset();
    sender_.reset();
}

void SearchIndexer::start() {
    std::call_once(started_, [this] { prober_ = std::thread([this] { probe_store(); }); });
}

// Until the store first answers, readiness says why not; the sends keep it current afterwards.
void SearchIndexer::probe_store() {
    const RetryPolicy probe{RetryPolicy::Kind::kExponential, std::chrono::milliseconds(200),
                            std::chrono::seconds(10), 0};
    for (unsigned attempt = 1;; ++attempt) {
        {
            std::lock_guard lock(state_mutex_);
            if (closing_ || store_seen_) return;
        }
        std::string problem = store_.probe();
        set_store_problem(problem);
        if (problem.empty()) return;
        if (attempt == 1) log::warn(problem, "; retrying");
        std::unique_lock lock(state_mutex_);
        stop_.wait_for(lock, state_changed_, *probe.delayBeforeRetry(attempt),
                       [this] { return closing_ || store_seen_; });
        if (closing_ || stop_.stop_requested()) return;
    }
}

void SearchIndexer::set_store_problem(std::string problem) {
    {
        std::lock_guard lock(state_mutex_);
        if (problem.empty()) store_seen_ = true;
        store_problem_ = std::move(problem);
    }
    state_changed_.notify_all();
}

std::string SearchIndexer::readiness() const {
    if (std::string fatal = sender_->fatal_error(); !fatal.empty()) return fatal;
    std::lock_guard lock(state_mutex_);
    if (!store_seen_ && store_problem_.empty()) return "search indexer: the store has not answered yet";
    return store_problem_;
}

void SearchIndexer::process(EventPtr event) {
    sender_->submit(std::move(event));
}

void SearchIndexer::flush() {
    sender_->flush();
}

void SearchIndexer::close() {
    {
        std::lock_guard lock(state_mutex_);
        closing_ = true;
    }
    state_changed_.notify_all();
    if (prober_.joinable()) prober_.join();
    if (sender_) sender_->close();
}

std::string SearchIndexer::fatal_error() const {
    return sender_->fatal_error();
}

std::unique_ptr<PreparedBatch> SearchIndexer::prepare_documents(const std::vector<EventPtr>& batch) {
    std::vector<BulkItem> done;
    {
        std::lock_guard lock(done_items_mutex_);
        done.swap(done_items_);
    }
    if (!done.empty()) prepared_documents_.reuse(std::move(done));
    auto prepared = std::make_unique<PreparedDocuments>();
    prepared->results.resize(batch.size());
    prepared->pending.items.reserve(batch.size());
    prepared->pending.events.reserve(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
        const Event& event = *batch[i];
        if (event.is_schema_log() || event.action == Action::Truncate) return nullptr;
        const SchemaTable* table = nullptr;
        if (event.action == Action::Update && !event.metadata.table_pgstream_id.empty()) {
            // The batches before this one hold no schema change still to apply (the sender sends a batch
            // that was not prepared before it prepares the next), so the version known now is the one in
            // force for this event.
            std::shared_ptr<const SchemaLogEntry> schema = known_schema(event.schema);
            if (!schema) return nullptr;  // to be read from the store, on the sending thread
            for (const auto& candidate : schema->tables) {
                if (candidate.pgstream_id == event.metadata.table_pgstream_id) {
                    table = &candidate;
                    break;
                }
            }
            if (prepared->schemas.empty() || prepared->schemas.back() != schema)
                prepared->schemas.push_back(std::move(schema));
        }
        const size_t added =
            prepared_documents_.append(event, table, prepared->stats, prepared->pending.items);
        if (added == 0) {
            prepared->results[i] =
                EventResult::skipped("no document (a message, or a row without identity or metadata)");
            continue;
        }
        prepared->pending.events.insert(prepared->pending.events.end(), added, i);
    }
    if (!prepared->pending.items.empty() && store_.can_start_bulk(prepared->pending.items))
        prepared->started = store_.start_bulk(prepared->pending.items);
    return prepared;
}

std::vector<EventResult> SearchIndexer::send_events(const std::vector<EventPtr>& batch,
                                                    PreparedBatch* prepared) {
    if (prepared != nullptr) {
        auto& documents = static_cast<PreparedDocuments&>(*prepared);
        if (documents.started) {
            const std::vector<ItemResult> answers =
                store_.finish_bulk(*documents.started, documents.pending.items);
            take_answers(documents.pending, answers, documents.started->body_bytes, documents.results);
        } else {
            write_pending(documents.pending, documents.results);
        }
        stats_.fields_skipped += documents.stats.fields_unmapped + documents.stats.values_unconvertible;
        return std::move(documents.results);
    }
    std::vector<EventResult> results(batch.size());
    Pending pending;
    // Row events mostly give one item each.
    pending.items.reserve(batch.size());
    pending.events.reserve(batch.size());
    DocumentStats document_stats;
    // A change that cannot be applied yet (or writes before it that are not final) holds back everything
    // after it in the batch: the sender retries them in order, so that no write passes a schema change or
    // TRUNCATE.
    size_t held_from = batch.size();
    for (size_t i = 0; i < batch.size() && held_from == batch.size(); ++i) {
        const Event& event = *batch[i];
        if (event.is_schema_log() || event.action == Action::Truncate) {
            if (!write_pending(pending, results)) {
                held_from = i;
                break;
            }
            results[i] = event.is_schema_log() ? apply_schema_change(event) : truncate(event);
            if (results[i].delivery == Delivery::kRetry) held_from = i + 1;
            continue;
        }
        std::shared_ptr<const SchemaLogEntry> schema;
        const SchemaTable* table = nullptr;
        if (!table_of(event, schema, table, results[i])) {
            held_from = i;
            break;
        }
        // Straight into the pending items: no vector of items per event.
        const size_t added = documents_.append(event, table, document_stats, pending.items);
        if (added == 0) {
            results[i] =
                EventResult::skipped("no document (a message, or a row without identity or metadata)");
            continue;
        }
        pending.events.insert(pending.events.end(), added, i);
    }
    write_pending(pending, results);  // the events before held_from
    for (size_t i = held_from; i < batch.size(); ++i)
        results[i] = EventResult::retry(0, "waiting for an earlier change of the batch");
    stats_.fields_skipped += document_stats.fields_unmapped + document_stats.values_unconvertible;
    return results;
}

bool SearchIndexer::write_pending(Pending& pending, std::vector<EventResult>& results) {
    if (pending.items.empty()) return true;
    size_t body_bytes = 0;
    const std::vector<ItemResult> answers = store_.write_once(pending.items, &body_bytes);
    return take_answers(pending, answers, body_bytes, results);
}

bool SearchIndexer::take_answers(Pending& pending, const std::vector<ItemResult>& answers, size_t body_bytes,
                                 std::vector<EventResult>& results) {
    if (body_bytes > 0) {
        ++stats_.bulk_requests;
        stats_.bulk_bytes += body_bytes;
    }
    bool all_final = true;
    std::string not_taken;
    for (size_t i = 0; i < answers.size(); ++i) {
        const ItemResult& answer = answers[i];
        EventResult& result = results[pending.events[i]];
        // An event with several items (an UPDATE that moved its key) takes its worst item's result.
        switch (answer.outcome) {
            case ItemOutcome::kDelivered:
                ++(pending.items[i].action == BulkItem::Action::kIndex ? stats_.documents_indexed
                                                                       : stats_.documents_deleted);
                break;
            case ItemOutcome::kIgnored:
                ++stats_.documents_ignored;
                if (result.delivery == Delivery::kDelivered)
                    result = EventResult::skipped(
                        "HTTP " + std::to_string(answer.status) +
                        (answer.status == 409 ? ": the store has a newer version" : ": nothing to delete"));
                break;
            case ItemOutcome::kGivenUp:
                if (result.delivery != Delivery::kRetry)
                    result = EventResult::give_up(static_cast<int>(answer.status), item_reason(answer));
                break;
            case ItemOutcome::kRetry:
                ++stats_.items_retried;
                all_final = false;
                not_taken = item_reason(answer);
                result = EventResult::retry(static_cast<int>(answer.status), not_taken);
                break;
        }
    }
    give_back(pending.items);
    pending.events.clear();
    set_store_problem(all_final ? std::string()
                                : "search indexer: the store at " + settings_.url +
                                      " did not take every document: " + not_taken);
    return all_final;
}

void SearchIndexer::give_back(std::vector<BulkItem>& items) {
    {
        std::lock_guard lock(done_items_mutex_);
        if (done_items_.empty()) done_items_.swap(items);
    }
    items.clear();  // a batch's items not taken (the last one is not reused yet): freed outside the lock
}

ChangeResult SearchIndexer::with_retries(const RetryPolicy& policy,
                                         const std::function<ChangeResult()>& operation) {
    for (unsigned attempt = 1;; ++attempt) {
        ChangeResult result = operation();
        if (result.status != ChangeResult::Status::kRetry) {
            set_store_problem({});
            return result;
        }
        set_store_problem("search indexer: " + result.detail);
        auto delay = policy.delayBeforeRetry(attempt);
        if (!delay) return result;
        if (attempt == 1) log::warn("search indexer: ", result.detail, "; retrying");
        if (!stop_.sleep_for(*delay)) return result;
    }
}

EventResult SearchIndexer::change_result(const ChangeResult& result) {
    switch (result.status) {
        case ChangeResult::Status::kApplied:
        case ChangeResult::Status::kAlreadyApplied:
            set_store_problem({});
            return EventResult::delivered();
        case ChangeResult::Status::kOutOfOrder:
            // A replay after a restart: the store already has a newer version.
            return EventResult::skipped(result.detail);
        case ChangeResult::Status::kRetry:
            set_store_problem("search indexer: " + result.detail);
            return EventResult::retry(0, result.detail);
        case ChangeResult::Status::kFailed:
            break;
    }
    return EventResult::give_up(0, result.detail);
}

EventResult SearchIndexer::apply_schema_change(const Event& event) {
    if (event.action != Action::Insert) return EventResult::skipped("not a new schema version");
    SchemaLogEntry entry;
    try {
        entry = Translator::entry_from_event(event);
    } catch (const std::exception& e) {
        return EventResult::give_up(0, std::string("unreadable schema_log row: ") + e.what());
    }
    const uint64_t change_version = document_version(event);
    ChangeResult result;
    if (entry.dropped) {
        // The dropped schema's cleanup follows its own policy (the reference's cleanup backoff; none by
        // default: one attempt, then the version goes to the dead-letter file rather than holding the
        // stream).
        result = with_retries(settings_.cleanup_retry,
                              [&] { return store_.apply_schema_change(entry, change_version); });
        if (result.status == ChangeResult::Status::kRetry) result.status = ChangeResult::Status::kFailed;
    } else {
        result = store_.apply_schema_change(entry, change_version);
    }
    for (const auto& column : result.report.skipped_columns)
        log::warn("search indexer: column ", column, " has no search mapping; its values are left out");
    for (const auto& warning : result.report.warnings) log::warn("search indexer: ", warning);
    if (result.status == ChangeResult::Status::kApplied) ++stats_.schema_changes;
    if (result.status == ChangeResult::Status::kApplied ||
        result.status == ChangeResult::Status::kAlreadyApplied) {
        std::lock_guard lock(schemas_mutex_);
        if (entry.dropped) {
            schemas_.erase(entry.schema_name);
        } else {
            schemas_[entry.schema_name] = std::make_shared<const SchemaLogEntry>(std::move(entry));
        }
    }
    return change_result(result);
}

EventResult SearchIndexer::truncate(const Event& event) {
    if (event.metadata.table_pgstream_id.empty())
        return EventResult::skipped("TRUNCATE without translator metadata");
    ChangeResult result = store_.delete_table_documents(event.schema, {event.metadata.table_pgstream_id},
                                                        document_version(event));
    if (result.status == ChangeResult::Status::kApplied) ++stats_.truncates;
    return change_result(result);
}

std::shared_ptr<const SchemaLogEntry> SearchIndexer::known_schema(const std::string& schema_name) const {
    std::lock_guard lock(schemas_mutex_);
    auto known = schemas_.find(schema_name);
    return known == schemas_.end() ? nullptr : known->second;
}

bool SearchIndexer::table_of(const Event& event, std::shared_ptr<const SchemaLogEntry>& schema,
                             const SchemaTable*& table, EventResult& result) {
    table = nullptr;
    // Only an UPDATE needs the table (the columns it left out); the metadata names it by pgstream id.
    if (event.action != Action::Update || event.metadata.table_pgstream_id.empty()) return true;
    schema = known_schema(event.schema);
    if (!schema) {
        SchemaLogEntry stored;
        ChangeResult read = store_.stored_schema(event.schema, stored);
        if (read.status != ChangeResult::Status::kApplied) {
            result = change_result(read);
            if (result.delivery == Delivery::kRetry) return false;
        }
        schema = std::make_shared<const SchemaLogEntry>(std::move(stored));
        std::lock_guard lock(schemas_mutex_);
        schemas_.emplace(event.schema, schema);
    }
    for (const auto& candidate : schema->tables) {
        if (candidate.pgstream_id == event.metadata.table_pgstream_id) {
            table = &candidate;
            break;
        }
    }
    return true;
}

void SearchIndexer::count_result(const Event& event, const EventResult& result) {
    if (result.delivery == Delivery::kSkipped) ++stats_.events_skipped;
    if (result.delivery != Delivery::kGiveUp) return;
    ++stats_.dead_letters;
    // The sender logs each batch's refusals; a table's first one is also logged here with its reason, as an
    // error, then only counted (a broken mapping would otherwise log every row).
    const std::string table = table_of_event(event);
    if (tables_dead_lettered_.insert(table).second) {
        log::error("search indexer: the store refused a change of ", table, " for good (",
                   result.status ? "HTTP " + std::to_string(result.status) + ": " : "", result.reason, ")",
                   dead_letters_ ? "; written to the " + dead_letters_->name() : std::string(),
                   " (further refusals of this table are counted in pgstream_search_documents_total"
                   "{outcome=\"dead_lettered\"})");
    }
}

void SearchIndexer::observe(Metrics& metrics) {
    auto counter = [&](const std::string& name, const std::string& unit, const std::string& help,
                       const MetricLabels& labels, const std::atomic<uint64_t>& value) {
        metrics.observe_counter(name, unit, help, labels, [&value] { return double(value.load()); });
    };
    const std::string documents = "pgstream.search.documents";
    const std::string documents_help = "Search documents by final outcome";
    counter(documents, "{document}", documents_help, {{"outcome", "indexed"}}, stats_.documents_indexed);
    counter(documents, "{document}", documents_help, {{"outcome", "deleted"}}, stats_.documents_deleted);
    counter(documents, "{document}", documents_help, {{"outcome", "ignored"}}, stats_.documents_ignored);
    counter(documents, "{document}", documents_help, {{"outcome", "dead_lettered"}}, stats_.dead_letters);
    counter("pgstream.search.items.retried", "{item}", "Bulk items sent again after a retryable answer", {},
            stats_.items_retried);
    counter("pgstream.search.schema_changes", "{change}", "Schema versions applied to the search store", {},
            stats_.schema_changes);
    counter("pgstream.search.truncates", "{table}", "TRUNCATEs applied (documents deleted by table)", {},
            stats_.truncates);
    counter("pgstream.search.events.skipped", "{event}",
            "Events giving no document (no identity or metadata, messages, older schema versions)", {},
            stats_.events_skipped);
    counter("pgstream.search.fields.skipped", "{field}",
            "Fields left out (unmapped types, unconvertible values)", {}, stats_.fields_skipped);
    counter("pgstream.search.bulk.requests", "{request}", "_bulk requests sent", {}, stats_.bulk_requests);
    counter("pgstream.search.bulk.bytes", "By", "Bytes of _bulk request bodies", {}, stats_.bulk_bytes);
}

}  // namespace pgstream::search
