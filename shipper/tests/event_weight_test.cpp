// The memory guard admits events by event_weight(): it must not under-count what an event really holds on the
// heap (or the guard's budget is not the bound it promises), nor inflate it far beyond (or it throttles for
// memory that is not used). This test counts the heap bytes an event holds through a replaced global
// operator new, which is why it is an executable of its own.
#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "processor/batching.h"
#include "wal/record_parser.h"

namespace {

std::atomic<long long> live_heap_bytes{0};

}  // namespace

void* operator new(std::size_t size) {
    void* pointer = std::malloc(size == 0 ? 1 : size);
    if (pointer == nullptr) throw std::bad_alloc();
    live_heap_bytes += static_cast<long long>(malloc_usable_size(pointer));
    return pointer;
}

// Not inlined: GCC would otherwise see std::free on memory from operator new (-Wmismatched-new-delete), which
// is what this replacement pairs on purpose.
__attribute__((noinline)) void operator delete(void* pointer) noexcept {
    if (pointer == nullptr) return;
    live_heap_bytes -= static_cast<long long>(malloc_usable_size(pointer));
    std::free(pointer);
}

void operator delete(void* pointer, std::size_t) noexcept {
    operator delete(pointer);
}

namespace pgstream {
namespace {

std::string row_record(const std::string& payload, int extra_columns = 0) {
    std::string text =
        R"({"action":"I","xid":725,"timestamp":"2026-11-26 01:26:50.263053+00","lsn":"0/15163F8",)"
        R"("schema":"public","table":"bench_rows","columns":[{"name":"id","type":"bigint","value":1},)"
        R"({"name":"written_us","type":"bigint","value":1795656338088303},)"
        R"({"name":"payload","type":"text","value":")" +
        payload + "\"}";
    for (int i = 0; i < extra_columns; ++i)
        text += R"(,{"name":"extra_column_number_)" + std::to_string(i) +
                R"(","type":"character varying","value":"a value longer than the small-string buffer"})";
    return text + "]}";
}

// What the translator adds: ids longer than the small-string buffer, made once per table and shared by all
// its events (Translator::heads_for), as the record parser shares the column names and types.
void add_translator_metadata(Event& event) {
    static const SharedText schema_id = "cqbl8g2v4nb5a3k0e1d0";
    static const SharedText table_id = "cqbl8g2v4nb5a3k0e1dg";
    static const SharedTextList identity_ids = {table_id + "-1"};
    static std::vector<SharedText> column_ids;
    while (column_ids.size() < event.columns.size())
        column_ids.emplace_back(table_id + "-" + std::to_string(column_ids.size() + 1));
    event.metadata.schema_id = schema_id;
    event.metadata.table_pgstream_id = table_id;
    for (size_t i = 0; i < event.columns.size(); ++i) event.columns[i].id = column_ids[i];
    event.metadata.id_col_pgstream_ids = identity_ids;
    event.metadata.version = event.lsn.str();
}

struct Measured {
    long long held;  // heap bytes the event keeps, as the allocator rounded them
    size_t weight;
};

Measured measure(const std::string& text) {
    // The parser's per-thread buffers and the shared heads of the table are made once, outside the
    // measurement.
    add_translator_metadata(*parse_wal2json_record(text).event);
    const long long before = live_heap_bytes.load();
    MutableEventPtr event = parse_wal2json_record(text).event;
    add_translator_metadata(*event);
    const long long held = live_heap_bytes.load() - before;
    return {held, event_weight(*event)};
}

void expect_weight_covers(const Measured& measured) {
    EXPECT_GE(static_cast<long long>(measured.weight), measured.held);
    EXPECT_LE(static_cast<long long>(measured.weight), 2 * measured.held + 512);
}

TEST(EventWeight, CoversWhatATypicalRowHoldsOnTheHeap) {
    Measured row = measure(row_record("payload of row 1"));
    SCOPED_TRACE("held " + std::to_string(row.held) + " weight " + std::to_string(row.weight));
    expect_weight_covers(row);
}

TEST(EventWeight, CountsLongValues) {
    Measured small = measure(row_record("x"));
    Measured large = measure(row_record(std::string(100000, 'x')));
    SCOPED_TRACE("held " + std::to_string(large.held) + " weight " + std::to_string(large.weight));
    expect_weight_covers(large);
    EXPECT_GE(large.weight, small.weight + 100000);
}

TEST(EventWeight, CountsManyColumns) {
    Measured wide = measure(row_record("payload", 200));
    SCOPED_TRACE("held " + std::to_string(wide.held) + " weight " + std::to_string(wide.weight));
    expect_weight_covers(wide);
}

}  // namespace
}  // namespace pgstream
