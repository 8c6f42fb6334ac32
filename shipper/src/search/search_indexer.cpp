#include "search/search_indexer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "processor/translator/translator.h"
#include "util/log.h"
#include "util/redact.h"
#include "wal/record_parser.h"

namespace pgstream::search {

namespace {

BatchSettings batch_settings_of(const SearchSettings& settings) {
    BatchSettings batch;
    batch.max_queue_bytes = settings.max_queue_bytes;
    batch.batch_size = settings.batch_size;
    batch.batch_bytes = settings.batch_bytes;
    batch.batch_timeout = settings.batch_timeout;
    // The send function retries what the store has not taken itself (only the failed items, with the store
    // retry policy); a batch that throws anyway (a schema version the store keeps refusing to read) is sent
    // again as a whole with the same policy: versions make the repetition harmless.
    batch.max_send_attempts = 0;
    batch.retry_initial = settings.store_retry.initial_interval.count() > 0
                              ? settings.store_retry.initial_interval
                              : std::chrono::milliseconds(1000);
    batch.retry_max = settings.store_retry.max_interval.count() > 0 ? settings.store_retry.max_interval
                                                                    : batch.retry_initial;
    return batch;
}

std::string rfc3339_now() {
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    tm utc{};
    gmtime_r(&now.tv_sec, &utc);
    char text[40];
    size_t length = strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(text + length, sizeof text - length, ".%06ldZ", now.tv_nsec / 1000);
    return text;
}

HttpClientSettings http_settings() {
    HttpClientSettings settings;
    settings.address_policy = AddressPolicy::allow_all();
    // A _bulk answer holds an item per document (about 200 bytes each).
    settings.max_response_bytes = 64u << 20;
    return settings;
}

std::string table_of_event(const Event& event) {
    return event.schema + "." + event.table;
}

}  // namespace

// The index/delete items of the events seen since the last write, in order.
struct SearchIndexer::Pending {
    std::vector<BulkItem> items;
    std::vector<const Event*> events;  // events[i] is the event of items[i]
};

SearchIndexer::SearchIndexer(SearchSettings settings, Acknowledger& acknowledger, StopToken stop)
    : settings_(std::move(settings)),
      http_(http_settings()),
      store_(settings_, http_),
      stop_(std::move(stop)) {
    if (!settings_.dead_letter_file.empty()) {
        dead_letter_fd_ =
            ::open(settings_.dead_letter_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (dead_letter_fd_ < 0) {
            throw ConfigError(
                "PGSTREAM_SEARCH_INDEXER_DEAD_LETTER_FILE",
                "cannot open '" + settings_.dead_letter_file + "' for appending: " + strerror(errno));
        }
    }
    sender_ = std::make_unique<BatchSender>(
        "search indexer", batch_settings_of(settings_),
        [this](const std::vector<EventPtr>& batch) { send_batch(batch); }, acknowledger, event_weight, stop_);
}

SearchIndexer::~SearchIndexer() {
    close();
    sender_.reset();
    if (dead_letter_fd_ >= 0) ::close(dead_letter_fd_);
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

void SearchIndexer::send_batch(const std::vector<EventPtr>& batch) {
    Pending pending;
    DocumentStats document_stats;
    for (const auto& event : batch) {
        if (event->is_schema_log()) {
            write_pending(pending);  // the writes before a schema change come first
            if (event->action == Action::Insert) apply_schema_change(*event);
            continue;
        }
        if (event->action == Action::Truncate) {
            write_pending(pending);
            truncate(*event);
            continue;
        }
        std::vector<BulkItem> items = bulk_items_for(*event, table_of(*event), settings_, document_stats);
        if (items.empty()) ++stats_.events_skipped;
        for (auto& item : items) {
            pending.items.push_back(std::move(item));
            pending.events.push_back(event.get());
        }
    }
    write_pending(pending);
    stats_.fields_skipped += document_stats.fields_unmapped + document_stats.values_unconvertible;
}

void SearchIndexer::write_pending(Pending& pending) {
    if (pending.items.empty()) return;
    const std::vector<ItemResult> results =
        store_.write(pending.items, stop_, [this](size_t bytes, size_t retried) {
            ++stats_.bulk_requests;
            stats_.bulk_bytes += bytes;
            stats_.items_retried += retried;
        });
    const bool stopped = stop_.stop_requested();
    std::string unwritten;  // why the last item the store has not taken is not written
    for (size_t i = 0; i < results.size(); ++i) {
        const ItemResult& result = results[i];
        switch (result.outcome) {
            case ItemOutcome::kDelivered:
                ++(pending.items[i].action == BulkItem::Action::kIndex ? stats_.documents_indexed
                                                                       : stats_.documents_deleted);
                break;
            case ItemOutcome::kIgnored:
                ++stats_.documents_ignored;
                break;
            case ItemOutcome::kGivenUp:
                dead_letter(*pending.events[i], result.status,
                            (result.error_type.empty() ? "" : result.error_type + ": ") + result.reason);
                break;
            case ItemOutcome::kRetry:
                unwritten = redact::scrub(result.reason);
                // A stop leaves it to the next run (unacknowledged, sent again); a store retry policy with a
                // retry limit that ran out gives it up like a refusal.
                if (!stopped)
                    dead_letter(*pending.events[i], result.status,
                                "not taken after the store retry policy's last attempt: " + result.reason);
                break;
        }
    }
    pending.items.clear();
    pending.events.clear();
    if (!unwritten.empty()) {
        set_store_problem("search indexer: the store at " + settings_.url +
                          " did not take every document: " + unwritten);
        if (stopped) throw Stopped("search indexer: stopped before the store took the batch");
        return;
    }
    set_store_problem({});
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
        if (!stop_.sleep_for(*delay)) throw Stopped("search indexer: stopped while retrying a schema change");
    }
}

void SearchIndexer::apply_schema_change(const Event& event) {
    SchemaLogEntry entry;
    try {
        entry = Translator::entry_from_event(event);
    } catch (const std::exception& e) {
        dead_letter(event, 0, std::string("unreadable schema_log row: ") + e.what());
        return;
    }
    // A dropped schema's cleanup follows the cleanup policy (the reference's), everything else the store's.
    const RetryPolicy& policy = entry.dropped ? settings_.cleanup_retry : settings_.store_retry;
    ChangeResult result = with_retries(policy, [&] { return store_.apply_schema_change(entry); });
    for (const auto& column : result.report.skipped_columns) {
        log::warn("search indexer: column ", column, " has no search mapping; its values are left out");
    }
    for (const auto& warning : result.report.warnings) log::warn("search indexer: ", warning);
    switch (result.status) {
        case ChangeResult::Status::kApplied:
            ++stats_.schema_changes;
            [[fallthrough]];
        case ChangeResult::Status::kAlreadyApplied:
            if (entry.dropped) {
                schemas_.erase(entry.schema_name);
            } else {
                schemas_[entry.schema_name] = std::make_shared<const SchemaLogEntry>(std::move(entry));
            }
            return;
        case ChangeResult::Status::kOutOfOrder:
            // A replay after a restart: the store already has a newer version.
            log::warn("search indexer: ", result.detail, "; skipped");
            ++stats_.events_skipped;
            return;
        case ChangeResult::Status::kRetry:
        case ChangeResult::Status::kFailed:
            dead_letter(event, 0, result.detail);
            return;
    }
}

void SearchIndexer::truncate(const Event& event) {
    if (event.metadata.table_pgstream_id.empty()) {
        ++stats_.events_skipped;
        return;
    }
    ChangeResult result = with_retries(settings_.store_retry, [&] {
        return store_.delete_table_documents(event.schema, {event.metadata.table_pgstream_id});
    });
    if (result.status == ChangeResult::Status::kApplied) {
        ++stats_.truncates;
    } else {
        dead_letter(event, 0, result.detail);
    }
}

const SchemaTable* SearchIndexer::table_of(const Event& event) {
    // Only an UPDATE needs the table (the columns it left out); the metadata names it by pgstream id.
    if (event.action != Action::Update || event.metadata.table_pgstream_id.empty()) return nullptr;
    auto known = schemas_.find(event.schema);
    if (known == schemas_.end()) {
        SchemaLogEntry stored;
        ChangeResult read =
            with_retries(settings_.store_retry, [&] { return store_.stored_schema(event.schema, stored); });
        if (read.status != ChangeResult::Status::kApplied) {
            throw std::runtime_error("search indexer: " + read.detail);
        }
        known =
            schemas_.emplace(event.schema, std::make_shared<const SchemaLogEntry>(std::move(stored))).first;
    }
    for (const auto& table : known->second->tables) {
        if (table.pgstream_id == event.metadata.table_pgstream_id) return &table;
    }
    return nullptr;
}

void SearchIndexer::dead_letter(const Event& event, long status, const std::string& reason) {
    const std::string table = table_of_event(event);
    const std::string safe_reason = redact::scrub(reason);
    if (dead_letter_fd_ < 0) {
        throw std::runtime_error("search indexer: the store refused a change of " + table + " for good (" +
                                 (status ? "HTTP " + std::to_string(status) + ": " : "") + safe_reason +
                                 ") and PGSTREAM_SEARCH_INDEXER_DEAD_LETTER_FILE is not set");
    }
    std::string line = "{\"output\":\"search indexer\",\"failed_at\":\"" + rfc3339_now() +
                       "\",\"status\":" + std::to_string(status) + ",\"reason\":";
    append_json_string(line, safe_reason);
    line += ",\"attempts\":1,\"event\":";
    append_event_json(line, event);
    line += "}\n";
    size_t written = 0;
    while (written < line.size()) {
        ssize_t n = ::write(dead_letter_fd_, line.data() + written, line.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            throw std::runtime_error("search indexer: cannot write the dead-letter file '" +
                                     settings_.dead_letter_file + "': " + strerror(errno));
        }
        written += static_cast<size_t>(n);
    }
    if (::fdatasync(dead_letter_fd_) != 0) {
        throw std::runtime_error("search indexer: cannot sync the dead-letter file '" +
                                 settings_.dead_letter_file + "': " + strerror(errno));
    }
    ++stats_.dead_letters;
    if (tables_dead_lettered_.insert(table).second) {
        log::error("search indexer: the store refused a change of ", table, " for good (",
                   status ? "HTTP " + std::to_string(status) + ": " : "", safe_reason, "); written to ",
                   settings_.dead_letter_file, " (further refusals of this table are counted, not logged)");
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
