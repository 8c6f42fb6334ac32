// Index mappings: the field types the indexer uses, checked the way the search engine checks them when a
// mapping is created or updated and when a document is indexed (typed values, `dynamic: strict`, field
// aliases, vector dimensions), and the indexed terms that queries and sorts read.
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "date_format.h"
#include "json.h"

namespace search_mock {

enum class Flavor { kOpenSearch, kElasticsearch };

// One indexed value of a field: what term queries compare and sorts order by.
struct Term {
    enum class Kind { kLong, kDouble, kString, kBool };
    Kind kind = Kind::kString;
    int64_t integer = 0;  // kLong (also dates, as epoch millis) and kBool (0/1)
    double real = 0;      // kDouble
    std::string text;     // kString (keyword values, text tokens)

    static Term ofLong(int64_t value) {
        Term term;
        term.kind = Kind::kLong;
        term.integer = value;
        return term;
    }
    static Term ofDouble(double value) {
        Term term;
        term.kind = Kind::kDouble;
        term.real = value;
        return term;
    }
    static Term ofString(std::string value) {
        Term term;
        term.kind = Kind::kString;
        term.text = std::move(value);
        return term;
    }
    static Term ofBool(bool value) {
        Term term;
        term.kind = Kind::kBool;
        term.integer = value ? 1 : 0;
        return term;
    }
    bool operator==(const Term& other) const;
    // Orders terms of the same kind; terms of different kinds order by kind.
    int compare(const Term& other) const;
};

// Full field path ("author.name", "title.keyword") → its indexed terms. Fields without values are absent.
using IndexedFields = std::map<std::string, std::vector<Term>>;

struct FieldMapping {
    std::string type;     // "object" for the root and for object fields
    std::string dynamic;  // objects: "true", "false", "strict", or "" to inherit from the parent
    bool enabled = true;  // objects: false keeps the value in _source only
    std::map<std::string, FieldMapping> properties;  // objects
    std::map<std::string, FieldMapping> fields;      // multi-fields of a leaf field
    int64_t ignore_above = -1;                       // keyword: longer values are not indexed
    std::shared_ptr<DateFormat> format;              // date
    int dimension = 0;                               // knn_vector / dense_vector (0: set by the first doc)
    std::string path;                                // alias: the target field's full path
    bool coerce = true;                              // numbers: accept "5" and truncate 5.5 for integers
    bool index = true;
    bool fielddata = false;  // text: sorting allowed
    // Set for the fields of a built mapping (false elsewhere, which only takes the slower general path):
    bool plain_leaf = false;  // not an object, alias or vector: a document's value indexes straight into it
    bool any_scalar = false;  // keyword or text: takes every scalar value
    // long, integer, short or byte: takes the whole numbers from integer_min to integer_max as they are
    bool integral = false;
    int64_t integer_min = 0, integer_max = 0;

    bool isObject() const { return type == "object" || type == "nested"; }
};

class Mapping {
  public:
    explicit Mapping(Flavor flavor);
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;

    // Index creation ("mappings" of PUT /index). On failure the mapping is unchanged.
    bool create(const rapidjson::Value& mappings, Failure& error);
    // PUT /index/_mapping: adds fields and updates the parameters that may change.
    bool update(const rapidjson::Value& mappings, Failure& error);

    // Parses a document against the mapping; with dynamic mapping on, new fields are added to the mapping
    // (only when the whole document is valid, so a refused document leaves the mapping as it was).
    // With `deferred`, a document whose keys are all known top-level leaves is only checked (same errors)
    // and *deferred is set to the mapping it was checked against: its terms are built when a query first
    // needs them (deferredTerms), with that mapping, as the engine indexed them at write time. Otherwise
    // *deferred is reset and `out` has the terms.
    bool indexDocument(const rapidjson::Value& source, const std::string& id, const std::string& source_text,
                       IndexedFields& out, Failure& error,
                       std::shared_ptr<const FieldMapping>* deferred = nullptr);

    // indexDocument's known-leaves check (with `deferred`) read straight from the document's text, without a
    // DOM: true when the text is one object whose members are all known top-level leaves with scalar values
    // their fields take; `deferred` is then set as indexDocument sets it. False for anything else (arrays,
    // unknown or dotted keys, refused values, malformed JSON): the caller then parses the document and runs
    // indexDocument, which decides it and words any error. `scanned`, when not null and not kUnsupported, is
    // source_text already scanned (scanLine): its events are read instead of parsing the text again.
    bool checkKnownLeaves(std::string_view source_text, const ScannedLine* scanned, const std::string& id,
                          std::shared_ptr<const FieldMapping>& deferred);

    // The terms of a document that indexDocument checked against `checked_against` without building them.
    static IndexedFields deferredTerms(Flavor flavor, const FieldMapping& checked_against,
                                       const std::string& id, const std::string& source_text);

    // The field a query or sort names, following a field alias; nullptr when not mapped. target_path is
    // the path whose terms to read.
    const FieldMapping* resolve(const std::string& path, std::string& target_path) const;

    const rapidjson::Value& json() const { return json_; }

  private:
    bool rebuild(rapidjson::Document& candidate, Failure& error);

    Flavor flavor_;
    rapidjson::Document json_;  // what GET /index/_mapping shows
    // Replaced (never changed in place) by each rebuild, so documents with deferred terms keep the mapping
    // they were checked against.
    std::shared_ptr<const FieldMapping> root_;
    std::map<std::string, const FieldMapping*> flat_;
    // root_'s top-level fields that a known-leaves document may name (plain leaves, non-empty names without
    // a dot), hashed for checkKnownLeaves: the ordered properties compare the columns' common id prefix.
    std::unordered_map<std::string_view, const FieldMapping*> known_leaves_;
    // The known leaves the last known-leaves document named, in its order, for checkKnownLeaves to try first
    // (cleared with known_leaves_, whose fields they point at).
    std::vector<std::pair<std::string, const FieldMapping*>> last_leaf_order_;
};

// Analyses text the way the standard analyzer does for the mock's purpose: lowercase words.
std::vector<std::string> analyzeText(const std::string& text);

// Converts a query value (term, terms, match, range) into the field's term domain. Returns false with the
// shard-level failure when the value cannot be read as the field's type.
bool queryTerm(const FieldMapping& field, const rapidjson::Value& value, Term& out, Failure& error);

}  // namespace search_mock
