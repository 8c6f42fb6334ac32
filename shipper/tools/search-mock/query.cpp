#include "query.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <set>
#include <unordered_set>

namespace search_mock {

using rapidjson::Value;

namespace {

class MatchAll : public Query {
  public:
    bool matches(const StoredDoc&) const override { return true; }
};

class MatchNone : public Query {
  public:
    bool matches(const StoredDoc&) const override { return false; }
};

// Any indexed term of the field satisfies the predicate.
class FieldPredicate : public Query {
  public:
    FieldPredicate(std::string path, std::function<bool(const Term&)> predicate)
        : path_(std::move(path)), predicate_(std::move(predicate)) {}
    bool matches(const StoredDoc& doc) const override {
        auto found = doc.fields().find(path_);
        if (found == doc.fields().end()) return false;
        for (const Term& term : found->second) {
            if (predicate_(term)) return true;
        }
        return false;
    }

  private:
    std::string path_;
    std::function<bool(const Term&)> predicate_;
};

// match on a text field: the analysed query's tokens, any (or) or all (and) of them.
class TextMatch : public Query {
  public:
    TextMatch(std::string path, std::vector<std::string> tokens, bool all)
        : path_(std::move(path)), tokens_(std::move(tokens)), all_(all) {}
    bool matches(const StoredDoc& doc) const override {
        auto found = doc.fields().find(path_);
        if (found == doc.fields().end() || tokens_.empty()) return false;
        size_t hits = 0;
        for (const auto& token : tokens_) {
            bool present = std::any_of(found->second.begin(), found->second.end(),
                                       [&token](const Term& term) { return term.text == token; });
            hits += present;
            if (present && !all_) return true;
        }
        return all_ && hits == tokens_.size();
    }

  private:
    std::string path_;
    std::vector<std::string> tokens_;
    bool all_;
};

class Ids : public Query {
  public:
    // A set: a query for thousands of ids is checked against every document.
    explicit Ids(std::vector<std::string> ids)
        : ids_(std::make_move_iterator(ids.begin()), std::make_move_iterator(ids.end())) {}
    bool matches(const StoredDoc& doc) const override { return ids_.count(doc.id) != 0; }

  private:
    std::unordered_set<std::string> ids_;
};

class Exists : public Query {
  public:
    explicit Exists(std::string path) : path_(std::move(path)) {}
    bool matches(const StoredDoc& doc) const override {
        if (doc.fields().count(path_) != 0) return true;
        // An object exists when any field below it has a value.
        auto below = doc.fields().lower_bound(path_ + ".");
        return below != doc.fields().end() && below->first.compare(0, path_.size() + 1, path_ + ".") == 0;
    }

  private:
    std::string path_;
};

class Bool : public Query {
  public:
    std::vector<std::unique_ptr<Query>> must, filter, should, must_not;
    size_t minimum_should_match = 0;
    bool matches(const StoredDoc& doc) const override {
        for (const auto& clause : must)
            if (!clause->matches(doc)) return false;
        for (const auto& clause : filter)
            if (!clause->matches(doc)) return false;
        for (const auto& clause : must_not)
            if (clause->matches(doc)) return false;
        size_t matched = 0;
        for (const auto& clause : should) matched += clause->matches(doc);
        return matched >= minimum_should_match;
    }
};

struct Compiler {
    const Mapping& mapping;
    Failure& error;
    QueryError& kind;

    std::unique_ptr<Query> requestError(std::string reason) {
        error = parsingException(std::move(reason));
        kind = QueryError::kRequest;
        return nullptr;
    }

    std::unique_ptr<Query> shardError(Failure failure) {
        error = std::move(failure);
        kind = QueryError::kShard;
        return nullptr;
    }

    // {field: value} or {field: {<value_key>: value, ...}}: the field name and the value.
    bool singleField(const char* query, const Value& body, const char* value_key, std::string& field,
                     const Value*& value) {
        if (!body.IsObject() || body.MemberCount() == 0) {
            requestError("[" + std::string(query) + "] query malformed, no start_object after query name");
            return false;
        }
        const Value* chosen = nullptr;
        for (const auto& member : body.GetObject()) {
            std::string name = member.name.GetString();
            if (name == "boost" || name == "_name") continue;
            if (chosen != nullptr) {
                requestError("[" + std::string(query) + "] query doesn't support multiple fields, found [" +
                             field + "] and [" + name + "]");
                return false;
            }
            field = name;
            chosen = &member.value;
        }
        if (chosen == nullptr) {
            requestError("[" + std::string(query) + "] query doesn't have a field");
            return false;
        }
        if (chosen->IsObject()) {
            if (!chosen->HasMember(value_key)) {
                requestError(
                    "[" + std::string(query) + "] query does not support [" +
                    (chosen->MemberCount() > 0 ? std::string(chosen->MemberBegin()->name.GetString()) : "") +
                    "]");
                return false;
            }
            value = &(*chosen)[value_key];
        } else {
            value = chosen;
        }
        return true;
    }

    std::unique_ptr<Query> termQuery(const std::string& field, std::vector<const Value*> values) {
        if (field == "_id") {
            std::vector<std::string> ids;
            for (const Value* value : values)
                ids.push_back(value->IsString() ? value->GetString() : toJson(*value));
            return std::make_unique<Ids>(std::move(ids));
        }
        std::string target;
        const FieldMapping* fm = mapping.resolve(field, target);
        if (fm == nullptr || fm->isObject()) return std::make_unique<MatchNone>();
        std::vector<Term> wanted;
        for (const Value* value : values) {
            if (value->IsObject() || value->IsArray())
                return requestError("[term] query does not support array of values or objects for field [" +
                                    field + "]");
            Term term;
            if (!queryTerm(*fm, *value, term, error)) return shardError(error);
            wanted.push_back(std::move(term));
        }
        return std::make_unique<FieldPredicate>(target, [wanted](const Term& term) {
            return std::any_of(wanted.begin(), wanted.end(), [&term](const Term& w) { return term == w; });
        });
    }

    std::unique_ptr<Query> matchQuery(const Value& body) {
        std::string field;
        const Value* value = nullptr;
        if (!singleField("match", body, "query", field, value)) return nullptr;
        bool all = false;
        const Value& options = body[field.c_str()];
        if (options.IsObject() && options.HasMember("operator") && options["operator"].IsString()) {
            std::string op = options["operator"].GetString();
            std::transform(op.begin(), op.end(), op.begin(), ::tolower);
            all = op == "and";
        }
        if (field == "_id") return termQuery(field, {value});
        std::string target;
        const FieldMapping* fm = mapping.resolve(field, target);
        if (fm == nullptr || fm->isObject()) return std::make_unique<MatchNone>();
        if (fm->type == "text") {
            std::string text = value->IsString() ? value->GetString() : toJson(*value);
            return std::make_unique<TextMatch>(target, analyzeText(text), all);
        }
        return termQuery(field, {value});
    }

    std::unique_ptr<Query> rangeQuery(const Value& body) {
        if (!body.IsObject() || body.MemberCount() != 1)
            return requestError("[range] query doesn't support multiple fields");
        const auto& member = *body.MemberBegin();
        std::string field = member.name.GetString();
        const Value& bounds = member.value;
        if (!bounds.IsObject())
            return requestError("[range] query malformed, no start_object after query name");
        std::string target;
        const FieldMapping* fm = mapping.resolve(field, target);
        if (fm == nullptr || fm->isObject()) return std::make_unique<MatchNone>();
        FieldMapping with_format = *fm;
        if (bounds.HasMember("format") && bounds["format"].IsString() && fm->type == "date") {
            std::string why;
            auto format = DateFormat::compile(bounds["format"].GetString(), why);
            if (!format) return shardError(illegalArgument(why));
            with_format.format = std::make_shared<DateFormat>(*format);
        }
        struct Bound {
            Term term;
            int op;  // 0 gt, 1 gte, 2 lt, 3 lte
        };
        std::vector<Bound> checks;
        static const char* names[] = {"gt", "gte", "lt", "lte"};
        for (const auto& option : bounds.GetObject()) {
            std::string name = option.name.GetString();
            int op = -1;
            for (int i = 0; i < 4; ++i)
                if (name == names[i]) op = i;
            if (name == "from") op = 1;
            if (name == "to") op = 3;
            if (op < 0) {
                if (name == "format" || name == "boost" || name == "time_zone" || name == "relation" ||
                    name == "include_lower" || name == "include_upper")
                    continue;
                return requestError("[range] query does not support [" + name + "]");
            }
            if (option.value.IsNull()) continue;
            Term term;
            if (!queryTerm(with_format, option.value, term, error)) return shardError(error);
            checks.push_back({term, op});
        }
        return std::make_unique<FieldPredicate>(target, [checks](const Term& term) {
            for (const auto& check : checks) {
                int order = term.compare(check.term);
                if ((check.op == 0 && order <= 0) || (check.op == 1 && order < 0) ||
                    (check.op == 2 && order >= 0) || (check.op == 3 && order > 0))
                    return false;
            }
            return true;
        });
    }

    bool clauses(const Value& body, const char* name, std::vector<std::unique_ptr<Query>>& into) {
        if (!body.HasMember(name)) return true;
        const Value& value = body[name];
        if (value.IsArray()) {
            for (const auto& clause : value.GetArray()) {
                auto compiled = compile(clause);
                if (!compiled) return false;
                into.push_back(std::move(compiled));
            }
            return true;
        }
        auto compiled = compile(value);
        if (!compiled) return false;
        into.push_back(std::move(compiled));
        return true;
    }

    std::unique_ptr<Query> boolQuery(const Value& body) {
        if (!body.IsObject()) return requestError("[bool] query malformed, no start_object after query name");
        static const std::set<std::string> known = {"must",
                                                    "filter",
                                                    "should",
                                                    "must_not",
                                                    "minimum_should_match",
                                                    "boost",
                                                    "_name",
                                                    "adjust_pure_negative"};
        for (const auto& member : body.GetObject()) {
            if (known.count(member.name.GetString()) == 0)
                return requestError("[bool] query does not support [" + std::string(member.name.GetString()) +
                                    "]");
        }
        auto query = std::make_unique<Bool>();
        if (!clauses(body, "must", query->must) || !clauses(body, "filter", query->filter) ||
            !clauses(body, "should", query->should) || !clauses(body, "must_not", query->must_not))
            return nullptr;
        // Without must/filter at least one should clause has to match; with them should only scores.
        bool scoring_only = !query->must.empty() || !query->filter.empty();
        query->minimum_should_match = query->should.empty() || scoring_only ? 0 : 1;
        if (body.HasMember("minimum_should_match")) {
            const Value& minimum = body["minimum_should_match"];
            if (minimum.IsInt())
                query->minimum_should_match = static_cast<size_t>(std::max(0, minimum.GetInt()));
            if (minimum.IsString())
                query->minimum_should_match =
                    static_cast<size_t>(std::max(0, std::atoi(minimum.GetString())));
        }
        return query;
    }

    std::unique_ptr<Query> compile(const Value& json) {
        if (!json.IsObject()) return requestError("query malformed, must start with start_object");
        if (json.MemberCount() != 1) {
            if (json.MemberCount() == 0) return requestError("query malformed, empty clause found");
            return requestError("[" + std::string(json.MemberBegin()->name.GetString()) +
                                "] malformed query, expected [END_OBJECT] but found [FIELD_NAME]");
        }
        const auto& clause = *json.MemberBegin();
        std::string name = clause.name.GetString();
        const Value& body = clause.value;
        if (name == "match_all") return std::make_unique<MatchAll>();
        if (name == "match_none") return std::make_unique<MatchNone>();
        if (name == "term") {
            std::string field;
            const Value* value = nullptr;
            if (!singleField("term", body, "value", field, value)) return nullptr;
            return termQuery(field, {value});
        }
        if (name == "terms") {
            if (!body.IsObject())
                return requestError("[terms] query malformed, no start_object after query name");
            std::string field;
            const Value* values = nullptr;
            for (const auto& member : body.GetObject()) {
                std::string key = member.name.GetString();
                if (key == "boost" || key == "_name") continue;
                if (values != nullptr) return requestError("[terms] query does not support multiple fields");
                field = key;
                values = &member.value;
            }
            if (values == nullptr || !values->IsArray())
                return requestError("[terms] query does not support [" + field + "]");
            std::vector<const Value*> list;
            for (const auto& value : values->GetArray()) list.push_back(&value);
            return termQuery(field, list);
        }
        if (name == "match") return matchQuery(body);
        if (name == "ids") {
            if (!body.IsObject() || !body.HasMember("values") || !body["values"].IsArray())
                return requestError("[ids] query malformed, no values");
            std::vector<std::string> ids;
            for (const auto& value : body["values"].GetArray())
                ids.push_back(value.IsString() ? value.GetString() : toJson(value));
            return std::make_unique<Ids>(std::move(ids));
        }
        if (name == "exists") {
            if (!body.IsObject() || !body.HasMember("field") || !body["field"].IsString())
                return requestError("[exists] must be provided with a [field]");
            std::string field = body["field"].GetString();
            std::string target = field;
            const FieldMapping* fm = mapping.resolve(field, target);
            if (fm == nullptr) return std::make_unique<MatchNone>();
            return std::make_unique<Exists>(target);
        }
        if (name == "range") return rangeQuery(body);
        if (name == "bool") return boolQuery(body);
        error = parsingException("unknown query [" + name + "]");
        Failure cause;
        cause.type = "named_object_not_found_exception";
        cause.reason = "[1:1] unknown field [" + name + "]";
        error.causedBy(cause);
        kind = QueryError::kRequest;
        return nullptr;
    }
};

bool parseSortEntry(const std::string& field, const Value* options, const Mapping& mapping, SortKey& key,
                    Failure& error, QueryError& kind) {
    key.field = field;
    std::string unmapped_type;
    if (options != nullptr) {
        if (options->IsString()) {
            std::string order = options->GetString();
            if (order != "asc" && order != "desc") {
                error = illegalArgument("Unknown SortOrder [" + order + "]");
                kind = QueryError::kRequest;
                return false;
            }
            key.descending = order == "desc";
        } else if (options->IsObject()) {
            for (const auto& member : options->GetObject()) {
                std::string name = member.name.GetString();
                if (name == "order" && member.value.IsString()) {
                    std::string order = member.value.GetString();
                    if (order != "asc" && order != "desc") {
                        error = illegalArgument("Unknown SortOrder [" + order + "]");
                        kind = QueryError::kRequest;
                        return false;
                    }
                    key.descending = order == "desc";
                } else if (name == "mode" && member.value.IsString()) {
                    key.mode = member.value.GetString();
                    static const std::set<std::string> modes = {"min", "max", "avg", "sum", "median"};
                    if (modes.count(key.mode) == 0) {
                        error = illegalArgument("Unknown MultiValueMode [" + key.mode + "]");
                        kind = QueryError::kRequest;
                        return false;
                    }
                } else if (name == "missing" && member.value.IsString()) {
                    key.missing_first = std::string(member.value.GetString()) == "_first";
                } else if (name == "unmapped_type" && member.value.IsString()) {
                    unmapped_type = member.value.GetString();
                } else if (name != "numeric_type" && name != "format") {
                    error = parsingException("[field_sort] unknown field [" + name + "]");
                    kind = QueryError::kRequest;
                    return false;
                }
            }
        }
    }
    if (field == "_score") {
        key.kind = SortKey::Kind::kScore;
        if (options == nullptr) key.descending = true;
        return true;
    }
    if (field == "_doc") {
        key.kind = SortKey::Kind::kDoc;
        return true;
    }
    if (field == "_id") {
        key.kind = SortKey::Kind::kId;
        return true;
    }
    key.kind = SortKey::Kind::kField;
    const FieldMapping* fm = mapping.resolve(field, key.target);
    if (fm == nullptr) {
        if (unmapped_type.empty()) {
            Failure failure;
            failure.status = 400;
            failure.type = "query_shard_exception";
            failure.reason = "No mapping found for [" + field + "] in order to sort on";
            error = failure;
            kind = QueryError::kShard;
            return false;
        }
        key.target = field;
        key.numeric = unmapped_type != "keyword" && unmapped_type != "text";
        return true;
    }
    if (fm->type == "text" && !fm->fielddata) {
        error = illegalArgument(
            "Text fields are not optimised for operations that require per-document field data "
            "like aggregations and sorting, so these operations are disabled by default. Please "
            "use a keyword field instead. Alternatively, set fielddata=true on [" +
            key.target +
            "] in order to load field data by uninverting the inverted index. Note that this can "
            "use significant memory.");
        kind = QueryError::kShard;
        return false;
    }
    if (fm->isObject() || fm->type == "knn_vector" || fm->type == "dense_vector") {
        error = illegalArgument("Field [" + field + "] of type [" + fm->type + "] does not support sorting");
        kind = QueryError::kShard;
        return false;
    }
    key.mapping = fm;
    key.numeric = fm->type != "keyword" && fm->type != "text" && fm->type != "ip" && fm->type != "binary";
    key.floating = fm->type == "double" || fm->type == "float" || fm->type == "half_float";
    if (!key.numeric && (key.mode == "avg" || key.mode == "sum" || key.mode == "median")) {
        error = illegalArgument(
            "only [min, max] modes are supported for sorting on non-numeric fields, got [" + key.mode + "]");
        kind = QueryError::kShard;
        return false;
    }
    return true;
}

}  // namespace

std::unique_ptr<Query> compileQuery(const Value* json, const Mapping& mapping, Failure& error,
                                    QueryError& kind) {
    kind = QueryError::kNone;
    if (json == nullptr) return std::make_unique<MatchAll>();
    Compiler compiler{mapping, error, kind};
    return compiler.compile(*json);
}

bool compileSort(const Value* json, const Mapping& mapping, std::vector<SortKey>& keys, Failure& error,
                 QueryError& kind) {
    kind = QueryError::kNone;
    if (json == nullptr) return true;
    auto entry = [&](const Value& item) {
        SortKey key;
        if (item.IsString()) {
            if (!parseSortEntry(item.GetString(), nullptr, mapping, key, error, kind)) return false;
        } else if (item.IsObject() && item.MemberCount() == 1) {
            const auto& member = *item.MemberBegin();
            if (!parseSortEntry(member.name.GetString(), &member.value, mapping, key, error, kind))
                return false;
        } else {
            error = parsingException(
                "malformed sort format, within the sort array, an object, or an actual string "
                "are allowed");
            kind = QueryError::kRequest;
            return false;
        }
        keys.push_back(key);
        return true;
    };
    if (json->IsArray()) {
        for (const auto& item : json->GetArray())
            if (!entry(item)) return false;
        return true;
    }
    return entry(*json);
}

SortValue sortValue(const SortKey& key, const StoredDoc& doc) {
    if (key.kind == SortKey::Kind::kId) return Term::ofString(doc.id);
    if (key.kind != SortKey::Kind::kField) return std::nullopt;
    auto found = doc.fields().find(key.target);
    if (found == doc.fields().end() || found->second.empty()) return std::nullopt;
    const auto& terms = found->second;
    std::string mode = key.mode.empty() ? (key.descending ? "max" : "min") : key.mode;
    auto [low, high] = std::minmax_element(terms.begin(), terms.end(),
                                           [](const Term& a, const Term& b) { return a.compare(b) < 0; });
    if (mode == "min") return *low;
    if (mode == "max") return *high;
    std::vector<Term> sorted = terms;
    std::sort(sorted.begin(), sorted.end(), [](const Term& a, const Term& b) { return a.compare(b) < 0; });
    if (key.floating) {
        double sum = 0;
        for (const Term& term : sorted) sum += term.real;
        if (mode == "sum") return Term::ofDouble(sum);
        if (mode == "avg") return Term::ofDouble(sum / static_cast<double>(sorted.size()));
        size_t n = sorted.size();
        return Term::ofDouble(n % 2 == 1 ? sorted[n / 2].real
                                         : (sorted[n / 2 - 1].real + sorted[n / 2].real) / 2);
    }
    // Longs add up with Java's wrap-around; avg and median are rounded doubles, as the engine computes them.
    uint64_t sum = 0;
    for (const Term& term : sorted) sum += static_cast<uint64_t>(term.integer);
    int64_t wrapped = static_cast<int64_t>(sum);
    if (mode == "sum") return Term::ofLong(wrapped);
    if (mode == "avg")
        return Term::ofLong(std::llround(static_cast<double>(wrapped) / static_cast<double>(sorted.size())));
    size_t n = sorted.size();
    if (n % 2 == 1) return Term::ofLong(sorted[n / 2].integer);
    double middle =
        (static_cast<double>(sorted[n / 2 - 1].integer) + static_cast<double>(sorted[n / 2].integer)) / 2;
    return Term::ofLong(std::llround(middle));
}

int compareSortValues(const SortKey& key, const SortValue& left, const SortValue& right) {
    if (!left && !right) return 0;
    // Missing values go last (or first) whatever the direction.
    if (!left) return key.missing_first ? -1 : 1;
    if (!right) return key.missing_first ? 1 : -1;
    int order = left->compare(*right);
    return key.descending ? -order : order;
}

void writeSortValue(JsonWriter& out, const SortKey& key, const SortValue& value) {
    if (!value) {
        if (!key.numeric) {
            out.null();
        } else if (key.floating) {
            bool high = key.missing_first == key.descending;
            out.dbl(high ? std::numeric_limits<double>::infinity()
                         : -std::numeric_limits<double>::infinity());
        } else {
            bool high = key.missing_first == key.descending;
            out.num(high ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min());
        }
        return;
    }
    switch (value->kind) {
        case Term::Kind::kString:
            out.str(value->text);
            break;
        case Term::Kind::kDouble:
            out.dbl(value->real);
            break;
        default:
            out.num(value->integer);
    }
}

}  // namespace search_mock
