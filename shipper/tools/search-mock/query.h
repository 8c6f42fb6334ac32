// The query DSL subset of _search, _count and _delete_by_query (match_all, match_none, term, terms, match,
// ids, exists, range, bool) and sorting (fields with order/mode/missing/unmapped_type, _score, _doc, _id),
// compiled against one index's mapping so that field aliases and field types apply as on the real engine.
#pragma once

#include <rapidjson/document.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "json.h"
#include "mapping.h"

namespace search_mock {

// A document's indexed terms: built when it was written, or deferred until a query first reads them
// (then built from the _source with the mapping the document was checked against; Mapping::indexDocument).
// Read and built under the cluster's mutex.
class DocTerms {
  public:
    DocTerms() : built_(IndexedFields()) {}  // no terms
    explicit DocTerms(IndexedFields built) : built_(std::move(built)) {}
    DocTerms(Flavor flavor, std::shared_ptr<const FieldMapping> checked_against)
        : flavor_(flavor), checked_against_(std::move(checked_against)) {}

    const IndexedFields& get(const std::string& id, const std::string& source) const {
        if (!built_) built_ = Mapping::deferredTerms(flavor_, *checked_against_, id, source);
        return *built_;
    }

  private:
    mutable std::optional<IndexedFields> built_;
    Flavor flavor_ = Flavor::kOpenSearch;
    std::shared_ptr<const FieldMapping> checked_against_;
};

// Never changed once stored: the live and the searchable view share it (Cluster::DocPtr). Only
// `superseded` changes, under the cluster's lock: set when the live view lets the document go (replaced or
// deleted), so that a refresh knows an unrefreshed write is still the live one without looking its id up.
struct StoredDoc {
    // Built whole, its strings and terms moved in: default-constructed and then assigned member by member, it
    // cost a move assignment call per string for each document written.
    StoredDoc(std::string&& id_in, std::string&& source_in, DocTerms&& terms_in, int64_t version_in,
              int64_t seq_no_in)
        : id(std::move(id_in)),
          source(std::move(source_in)),
          terms(std::move(terms_in)),
          version(version_in),
          seq_no(seq_no_in) {}

    std::string id;
    std::string source;  // the _source JSON exactly as it was sent
    DocTerms terms;
    int64_t version = 1;
    int64_t seq_no = 0;
    mutable bool superseded = false;

    const IndexedFields& fields() const { return terms.get(id, source); }
};

class Query {
  public:
    virtual ~Query() = default;
    virtual bool matches(const StoredDoc& doc) const = 0;
};

// Request-level problems (an unknown query, a malformed clause) fail the whole request with a
// parsing_exception; shard-level ones (a value the field's type cannot read) fail that index only.
enum class QueryError { kNone, kRequest, kShard };

// A missing query (nullptr json) is match_all.
std::unique_ptr<Query> compileQuery(const rapidjson::Value* json, const Mapping& mapping, Failure& error,
                                    QueryError& kind);

struct SortKey {
    enum class Kind { kField, kScore, kDoc, kId } kind = Kind::kScore;
    std::string field;   // as requested
    std::string target;  // after alias resolution
    const FieldMapping* mapping = nullptr;
    bool descending = false;
    std::string mode;  // min, max, avg, sum, median
    bool missing_first = false;
    bool numeric = false;  // long/date/boolean (as long), or double
    bool floating = false;
};

// The value a hit is sorted by for one key; nullopt when the document has none (placed per `missing`).
using SortValue = std::optional<Term>;

// Parses "sort" (string, object or array of them) for one index. Same error split as compileQuery.
bool compileSort(const rapidjson::Value* json, const Mapping& mapping, std::vector<SortKey>& keys,
                 Failure& error, QueryError& kind);

SortValue sortValue(const SortKey& key, const StoredDoc& doc);

// Orders two values of one key (missing placed as requested, direction applied).
int compareSortValues(const SortKey& key, const SortValue& left, const SortValue& right);

// How the engine prints a sort value in a hit's "sort" array.
void writeSortValue(JsonWriter& out, const SortKey& key, const SortValue& value);

}  // namespace search_mock
