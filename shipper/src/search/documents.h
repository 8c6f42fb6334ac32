// Row changes to search documents: the document id, its external version, and the bulk action (index or
// delete) with its fields keyed by column pgstream id.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <cstring>
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
    std::vector<std::pair<std::string, std::string>> fields;  // field name -> JSON value (kIndex)
    // Columns an UPDATE left out (unchanged TOASTed values) whose old value the event does not carry: the
    // writer takes them from the document as it is before sending (see docs/search.md, "TOAST").
    std::vector<std::string> unchanged_fields;
    size_t event_index = 0;  // which event of the batch this item comes from

    // {"_table":...,"<column id>":...,"_change_version":<version>}
    std::string source() const;
};

// The Writer of bulk bodies: RapidJSON's, plus raw values (JSON already, from document_value()) copied in one
// go (Writer::RawValue copies them byte by byte).
class BulkJsonWriter : public rapidjson::Writer<rapidjson::StringBuffer> {
  public:
    using Writer::Writer;
    void raw_json(std::string_view json) {
        Prefix(rapidjson::kStringType);
        std::memcpy(os_->Push(json.size()), json.data(), json.size());
        EndValue(true);
    }
};

// Writes the document of an index item (BulkItem::source()) with `writer`.
void write_source(BulkJsonWriter& writer, const BulkItem& item);

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

// The bulk items for a row event (I, U, D): one index or delete; an UPDATE that changed the identity also
// deletes the old document first. `table` is the table in the schema version in force (nullptr when
// unknown): it tells which columns an UPDATE left out. Other actions give no item.
std::vector<BulkItem> bulk_items_for(const Event& event, const SchemaTable* table,
                                     const SearchSettings& settings, DocumentStats& stats, FieldTypes& types);
// The same with a cache of its own (single events, tests).
std::vector<BulkItem> bulk_items_for(const Event& event, const SchemaTable* table,
                                     const SearchSettings& settings, DocumentStats& stats);

}  // namespace pgstream::search
