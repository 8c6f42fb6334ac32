// The search batch indexer output: row changes become _bulk writes of documents keyed by column pgstream id,
// schema_log versions become index and mapping changes, in stream order (see docs/search.md).
//
// Events are cut into batches by the shared BatchSender (size, bytes, timeout, memory budget). A batch's
// documents are built while the batch before it is written (BatchSender's Prepare), unless the batch holds a
// schema change or a TRUNCATE, or an UPDATE of a schema whose version is not known yet; and when they need
// nothing from the store first (no UPDATE left a TOASTed column out), their _bulk request is sent right
// away, so that the store has the next request while the sender reads the answer to the last one. Two
// writes in flight may land in either order: external versions keep the newer document. Within a batch
// the writes before a schema change or a TRUNCATE are written (every item final) before the change is
// applied. Items the store has not taken yet (429, 5xx, timeouts, connection errors) are sent again, alone,
// with the store retry policy; items it refused for good (400...) are appended to the dead-letter file,
// counted and logged once per table. An event is acknowledged to the checkpointer only once each of its items
// is final.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "checkpoint/acknowledger.h"
#include "observability/metrics.h"
#include "observability/output_metrics.h"
#include "processor/batching.h"
#include "processor/dead_letter.h"
#include "processor/processor.h"
#include "search/documents.h"
#include "search/search_store.h"

namespace pgstream::search {

struct IndexerStats {
    std::atomic<uint64_t> documents_indexed{0};
    std::atomic<uint64_t> documents_deleted{0};
    std::atomic<uint64_t> documents_ignored{0};  // 409 older version, 404 delete of a missing document
    std::atomic<uint64_t> items_retried{0};      // bulk items sent again after a retryable answer
    std::atomic<uint64_t> dead_letters{0};       // events refused for good, in the dead-letter file
    std::atomic<uint64_t> schema_changes{0};     // schema versions applied
    std::atomic<uint64_t> truncates{0};
    std::atomic<uint64_t> events_skipped{0};  // no document: no metadata or identity, messages, out-of-order
    std::atomic<uint64_t> fields_skipped{0};  // unmapped types, values a field cannot take
    std::atomic<uint64_t> bulk_requests{0};
    std::atomic<uint64_t> bulk_bytes{0};
};

class SearchIndexer : public Processor {
  public:
    // No request is made before start(). The indexer has its own HTTP client that may reach any address: the
    // store URL is the operator's choice, like the Postgres URL (unlike URLs that subscribers choose).
    // `metrics` (null when metrics are off): the shared output instruments (outcomes, memory guard) of the
    // target "search-batch-indexer".
    SearchIndexer(SearchSettings settings, Acknowledger& acknowledger, StopToken stop = {},
                  std::unique_ptr<OutputMetrics> metrics = nullptr);
    ~SearchIndexer() override;

    std::string name() const override { return "search indexer"; }
    void start() override;
    void process(EventPtr event) override;
    void flush() override;
    void close() override;
    std::string fatal_error() const override;
    std::string readiness() const override;

    // Registers the indexer's counters (names in docs/search.md).
    void observe(Metrics& metrics);
    const IndexerStats& stats() const { return stats_; }
    const BatchSender& sender() const { return *sender_; }

  private:
    struct Pending;            // bulk items of the batch not written yet, with their events
    struct PreparedDocuments;  // a batch's items built ahead of its write
    // The batch's items, built on the BatchSender's cutting thread; null when it holds a schema change or a
    // TRUNCATE (what follows them depends on their outcome), or an UPDATE of a schema not known yet.
    std::unique_ptr<PreparedBatch> prepare_documents(const std::vector<EventPtr>& batch);
    // One result per event (the BatchSender retries the kRetry ones alone, in order, before the next batch).
    std::vector<EventResult> send_events(const std::vector<EventPtr>& batch, PreparedBatch* prepared);
    // One _bulk attempt for the pending items; sets their events' results. False when some item is not final.
    bool write_pending(Pending& pending, std::vector<EventResult>& results);
    // Sets the pending items' events' results from the store's answers (and counts the request); false when
    // some item is not final.
    bool take_answers(Pending& pending, const std::vector<ItemResult>& answers, size_t body_bytes,
                      std::vector<EventResult>& results);
    // Items written and done with, handed to the cutting thread's builder (prepare_documents), which writes
    // the next batch into their memory; `items` is left empty.
    void give_back(std::vector<BulkItem>& items);
    EventResult apply_schema_change(const Event& event);
    EventResult truncate(const Event& event);
    EventResult change_result(const ChangeResult& result);
    // Retries `operation` with `policy` while it answers kRetry (a stop ends the waits).
    ChangeResult with_retries(const RetryPolicy& policy, const std::function<ChangeResult()>& operation);
    // The table of `event` in the latest schema version known (nullptr when none): which columns an UPDATE
    // left out. Reads the version from the store the first time a schema is seen; false (and `result` a
    // retry) when the store could not answer.
    bool table_of(const Event& event, std::shared_ptr<const SchemaLogEntry>& schema,
                  const SchemaTable*& table, EventResult& result);
    std::shared_ptr<const SchemaLogEntry> known_schema(const std::string& schema_name) const;
    void count_result(const Event& event, const EventResult& result);
    void set_store_problem(std::string problem);
    void probe_store();

    SearchSettings settings_;
    HttpClient http_;
    SearchStore store_;
    StopToken stop_;
    IndexerStats stats_;
    // The latest schema versions known. Changed on the sending thread only, read on the cutting thread too.
    mutable std::mutex schemas_mutex_;
    std::map<std::string, std::shared_ptr<const SchemaLogEntry>> schemas_;
    DocumentBuilder documents_;           // sending thread only
    DocumentBuilder prepared_documents_;  // cutting thread only (prepare_documents)
    std::mutex done_items_mutex_;
    std::vector<BulkItem> done_items_;  // give_back(): one batch's items, for prepared_documents_ to reuse
    std::set<std::string> tables_dead_lettered_;    // logged once per table
    std::unique_ptr<DeadLetterFile> dead_letters_;  // PGSTREAM_SEARCH_INDEXER_DEAD_LETTER_FILE

    mutable std::mutex state_mutex_;
    std::condition_variable state_changed_;
    std::string store_problem_;  // "" once the store answered
    bool store_seen_ = false;
    bool closing_ = false;
    std::once_flag started_;
    std::thread prober_;

    std::unique_ptr<BatchSender> sender_;
    std::unique_ptr<OutputMetrics> metrics_;  // destroyed before sender_ (it reads the sender's memory guard)
};

}  // namespace pgstream::search
