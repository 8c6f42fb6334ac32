// Row changes to search documents: the document id, its external version, and the bulk action (index or
// delete) with its fields keyed by column pgstream id.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "processor/translator/schema_log.h"
#include "search/mapping.h"
#include "search/search_settings.h"
#include "wal/event.h"

namespace pgstream::search {

// Ids longer than this are refused by the engines; such ids are hashed even without hash_doc_ids.
inline constexpr size_t kMaxDocumentIdBytes = 512;

// "<table_pgstream_id>_<values>": a single value as is; several joined with '-', each with '\' and '-'
// escaped by a '\' so that ("a-b","c") and ("a","b-c") stay two documents. Hashed (sha256, hex) when `hash`
// is set or the id would be longer than kMaxDocumentIdBytes.
std::string document_id(const std::string& table_pgstream_id, const std::vector<std::string>& identity_values,
                        bool hash);

// The external version of the event's document: the LSN as an integer, +1 for updates and deletes (as the
// reference does), so that a repeated or late delivery never replaces a newer document.
uint64_t document_version(const Event& event);

struct BulkItem {
    enum class Action { kIndex, kDelete };
    Action action = Action::kIndex;
    std::string index;  // the schema's alias
    std::string id;
    uint64_t version = 0;
    // The document's fields (kIndex) as the members of a JSON object, in order, without the braces and
    // without kChangeVersionField: "\"_table\":\"t1\",\"t1-1\":7". Written once when the item is made and
    // copied into the _bulk body as is: a string pair per field cost two allocations per field and row, and
    // writing them again into the body a pass through every key.
    std::string fields_json;
    // Columns an UPDATE left out (unchanged TOASTed values) whose old value the event does not carry: the
    // writer takes them from the document as it is before sending (see docs/search.md, "TOAST").
    std::vector<std::string> unchanged_fields;
    size_t event_index = 0;  // which event of the batch this item comes from

    // Back to a default item, keeping the strings' memory (DocumentBuilder::reuse). Whoever adds a member
    // resets it here too.
    void reset_keeping_memory() {
        action = Action::kIndex;
        index.clear();
        id.clear();
        version = 0;
        fields_json.clear();
        unchanged_fields.clear();
        event_index = 0;
    }

    // Appends the field `name` with its value, JSON already (document_value()).
    void add_field(std::string_view name, std::string_view json_value);
    // The JSON value of the field `name`, nullopt when the document has none. Parses the document: for the
    // rare lookups of TOASTed values (fill_unchanged_fields), not for every item.
    std::optional<std::string> field_json(std::string_view name) const;
    // {"_table":...,"<column id>":...,"_change_version":<version>}
    std::string source() const;
};

// What building documents left out, for counted warnings.
struct DocumentStats {
    size_t events_without_metadata = 0;  // no translator metadata (no table id or identity columns)
    size_t rows_without_identity = 0;    // an identity value is missing or null
    size_t fields_unmapped = 0;          // a column type with no mapping
    size_t values_unconvertible = 0;     // a value its field cannot take (NaN in a double, a BC date)
};

// The field type of each PostgreSQL type (as a schema version or wal2json names it), parsed once: the values
// of a row look their column's type up instead of parsing the type text and building its mapping per value.
// The mapping of a type never changes, so the cache outlives schema versions.
class FieldTypes {
  public:
    explicit FieldTypes(Engine engine) : engine_(engine) {}
    // nullptr when the type has no mapping on the engine (unknown types; see field_mapping()).
    const FieldType* mapped(const std::string& postgres_type);

  private:
    Engine engine_;
    std::unordered_map<std::string, std::optional<FieldType>> by_type_;
};

// Builds the bulk items of row events; one per sending thread. It keeps what every row would otherwise
// build again: the field type and the JSON name of each column (by the column heads the rows of a table
// share), and the buffers the identity keys and the documents are written in.
class DocumentBuilder {
  public:
    explicit DocumentBuilder(const SearchSettings& settings)
        : types_(settings.engine), hash_ids_(settings.hash_doc_ids) {}

    // Appends the bulk items of a row event (I, U, D) to `items`: one index or delete; an UPDATE that changed
    // the identity also deletes the old document first. `table` is the table in the schema version in force
    // (nullptr when unknown): it tells which columns an UPDATE left out. Other actions give no item. Returns
    // how many items it appended.
    size_t append(const Event& event, const SchemaTable* table, DocumentStats& stats,
                  std::vector<BulkItem>& items);
    // Items sent and done with: append() fills them again (reset) before it makes new ones, so that a batch's
    // ids and documents are written into the memory of the batch before instead of two allocations per
    // document (and two frees on the thread that sent them). Keeps one batch's items.
    void reuse(std::vector<BulkItem>&& items);

  private:
    // A column as its documents need it: its field type (nullptr: no mapping) and its name as JSON,
    // "\"<column id>\":".
    struct ColumnHead {
        SharedText id, type;  // the texts it was made from (rows of a table share them)
        const FieldType* field = nullptr;
        std::string name_json;
    };
    // The head of `column`, the `position`th of its row: the one of the last row when it had the same
    // texts at that position (two pointer comparisons), else made again.
    const ColumnHead& head(size_t position, const Column& column);
    void make_head(ColumnHead& head, const Column& column);
    // The identity values of `columns` joined as document_id() joins them, into `key`; false when one is
    // missing or null (no document id).
    bool identity_key(const Event& event, const std::vector<Column>& columns, std::string& key);
    // A spare item (reset) or a new one, appended to `items`.
    BulkItem& next_item(std::vector<BulkItem>& items);
    // The document is written into document_ (its first document_size_ bytes), room made before each
    // piece for the most it can take, so that the pieces go in as plain copies.
    char* room(size_t bytes);
    void add_field(const ColumnHead& head, const Column& column, DocumentStats& stats);

    FieldTypes types_;
    bool hash_ids_;
    std::vector<ColumnHead> heads_;  // by position in the last row
    ColumnHead toast_head_;          // for the old values of TOASTed columns (rare)
    SharedText table_field_id_;      // the table id of the last row, and its "_table" field as JSON
    std::string table_field_json_;
    std::string key_, old_key_;  // scratch: reused by every row
    std::string document_;
    size_t document_size_ = 0;
    std::vector<BulkItem> spare_;  // reuse()
};

// The bulk items for a row event (DocumentBuilder::append with a builder of its own: single events, tests).
std::vector<BulkItem> bulk_items_for(const Event& event, const SchemaTable* table,
                                     const SearchSettings& settings, DocumentStats& stats);

}  // namespace pgstream::search
