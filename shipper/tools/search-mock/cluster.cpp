#include "cluster.h"

#include "filter_path.h"

#include <emmintrin.h>
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <iterator>
#include <random>
#include <set>
#include <string_view>

namespace search_mock {

using rapidjson::Value;

namespace {

constexpr int64_t kPrimaryTerm = 1;
constexpr size_t kMaxIdBytes = 512;

// Stores a document in the ordered view, keyed by a view of the document's own id, trying `hint` (the
// position the entry would take) first; returns the entry's position. A replaced entry is re-keyed to the new
// document's id: the old key views the old document, which may be freed once the entry lets it go.
template <typename Docs>
typename Docs::iterator putDocumentNear(Docs& docs, typename Docs::const_iterator hint,
                                        const Cluster::DocPtr& doc) {
    size_t before = docs.size();
    auto entry = docs.try_emplace(hint, doc->id, doc);
    if (docs.size() != before) return entry;
    auto node = docs.extract(entry);
    node.key() = doc->id;
    node.mapped() = doc;
    return docs.insert(std::move(node)).position;
}

Response failed(const Failure& failure) {
    return {failure.status, failure.responseBody(), true};
}

Response ok(const JsonWriter& out, int status = 200) {
    return {status, out.text()};
}

Response acknowledged() {
    return {200, "{\"acknowledged\":true}"};
}

std::string randomToken(size_t length) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    static std::mt19937_64 generator(std::random_device{}());
    static std::mutex mutex;
    std::lock_guard<std::mutex> lock(mutex);
    std::string token;
    for (size_t i = 0; i < length; ++i) token += alphabet[generator() % 64];
    return token;
}

int64_t nowMillis() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// A time value setting ("1s", "500ms", "-1"); nullopt when the unit is missing or unknown.
std::optional<int64_t> parseTimeValue(const std::string& text) {
    if (text == "-1") return -1;
    if (text == "0") return 0;
    size_t digits = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
    if (digits == 0) return std::nullopt;
    int64_t number = std::stoll(text.substr(0, digits));
    std::string unit = text.substr(digits);
    static const std::map<std::string, int64_t> units = {
        {"nanos", 0}, {"micros", 0}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    auto found = units.find(unit);
    if (found == units.end()) return std::nullopt;
    return number * found->second;
}

std::vector<std::string> splitCommas(const std::string& text) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (start <= text.size()) {
        size_t comma = text.find(',', start);
        std::string part = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (!part.empty()) parts.push_back(part);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return parts;
}

bool isTrue(const Params& params, const std::string& name) {
    auto found = params.find(name);
    return found != params.end() && (found->second.empty() || found->second == "true");
}

std::optional<std::string> param(const Params& params, const std::string& name) {
    auto found = params.find(name);
    if (found == params.end()) return std::nullopt;
    return found->second;
}

// Settings arrive nested ({"index":{"number_of_shards":1}}), dotted ("index.refresh_interval") or bare
// ("number_of_replicas"); the engine keeps them as flat "index.*" keys with string values.
void flattenSettings(const Value& value, const std::string& prefix, std::map<std::string, std::string>& out) {
    for (const auto& member : value.GetObject()) {
        std::string key = prefix.empty() ? member.name.GetString() : prefix + "." + member.name.GetString();
        if (member.value.IsObject()) {
            flattenSettings(member.value, key, out);
        } else if (member.value.IsString()) {
            out[key] = member.value.GetString();
        } else if (member.value.IsArray()) {
            out[key] = toJson(member.value);
        } else {
            out[key] = toJson(member.value);
        }
    }
}

void writeNestedSettings(JsonWriter& out, const std::map<std::string, std::string>& flat) {
    // Group dotted keys into objects; arrays were kept as JSON text.
    std::function<void(std::map<std::string, std::string>::const_iterator,
                       std::map<std::string, std::string>::const_iterator, size_t)>
        write;
    write = [&](auto begin, auto end, size_t depth) {
        out.beginObject();
        auto it = begin;
        while (it != end) {
            std::string rest = it->first.substr(depth);
            size_t dot = rest.find('.');
            if (dot == std::string::npos) {
                out.key(rest);
                if (!it->second.empty() && it->second.front() == '[')
                    out.raw(it->second);
                else
                    out.str(it->second);
                ++it;
                continue;
            }
            std::string head = rest.substr(0, dot);
            auto group_end = it;
            while (group_end != end && group_end->first.compare(depth, head.size() + 1, head + ".") == 0)
                ++group_end;
            out.key(head);
            write(it, group_end, depth + head.size() + 1);
            it = group_end;
        }
        out.endObject();
    };
    write(flat.begin(), flat.end(), 0);
}

bool knownSetting(const std::string& key, Flavor flavor) {
    static const std::set<std::string> exact = {"index.number_of_shards",
                                                "index.number_of_replicas",
                                                "index.refresh_interval",
                                                "index.gc_deletes",
                                                "index.max_result_window",
                                                "index.auto_expand_replicas",
                                                "index.codec",
                                                "index.hidden",
                                                "index.default_pipeline",
                                                "index.final_pipeline",
                                                "index.write.wait_for_active_shards",
                                                "index.soft_deletes.enabled",
                                                "index.max_inner_result_window",
                                                "index.max_ngram_diff",
                                                "index.max_shingle_diff",
                                                "index.max_terms_count",
                                                "index.max_regex_length",
                                                "index.priority",
                                                "index.creation_date",
                                                "index.uuid",
                                                "index.provided_name",
                                                "index.version.created",
                                                "index.format",
                                                "index.shard.check_on_startup",
                                                "index.load_fixed_bitset_filters_eagerly",
                                                "index.max_docvalue_fields_search",
                                                "index.max_script_fields",
                                                "index.max_rescore_window",
                                                "index.max_refresh_listeners",
                                                "index.number_of_routing_shards"};
    static const std::vector<std::string> prefixes = {
        "index.analysis.",   "index.mapping.",  "index.blocks.",     "index.routing.",
        "index.translog.",   "index.sort.",     "index.search.",     "index.indexing.",
        "index.similarity.", "index.store.",    "index.unassigned.", "index.merge.",
        "index.queries.",    "index.requests.", "index.lifecycle.",  "index.query."};
    if (exact.count(key) != 0) return true;
    for (const auto& prefix : prefixes)
        if (key.compare(0, prefix.size(), prefix) == 0) return true;
    if (flavor == Flavor::kOpenSearch &&
        (key == "index.knn" || key.compare(0, 10, "index.knn.") == 0 ||
         key.compare(0, 18, "index.replication.") == 0 || key.compare(0, 15, "index.plugins.") == 0))
        return true;
    if (flavor == Flavor::kElasticsearch && (key == "index.mode" || key.compare(0, 11, "index.time_") == 0))
        return true;
    return false;
}

void writeShards(JsonWriter& out, int total, int successful) {
    out.key("_shards")
        .beginObject()
        .key("total")
        .num(total)
        .key("successful")
        .num(successful)
        .key("failed")
        .num(0)
        .endObject();
}

Failure aliasesMissing(const std::vector<std::string>& names) {
    Failure failure;
    failure.status = 404;
    failure.type = "aliases_not_found_exception";
    std::string list;
    for (const auto& name : names) list += (list.empty() ? "" : ",") + name;
    failure.reason = "aliases [" + list + "] missing";
    failure.with("resource.type", jsonString("aliases")).with("resource.id", jsonString(list));
    return failure;
}

Failure invalidAlias(const std::string& alias) {
    Failure failure;
    failure.type = "invalid_alias_name_exception";
    failure.reason =
        "Invalid alias name [" + alias + "]: an index or data stream exists with the same name as the alias";
    return failure;
}

void readAliasOptions(const Value& spec, Cluster::AliasOptions& options) {
    if (!spec.IsObject()) return;
    if (spec.HasMember("is_write_index") && spec["is_write_index"].IsBool())
        options.is_write_index = spec["is_write_index"].GetBool();
    if (spec.HasMember("filter")) options.filter_json = toJson(spec["filter"]);
    if (spec.HasMember("routing") && spec["routing"].IsString())
        options.index_routing = options.search_routing = spec["routing"].GetString();
    if (spec.HasMember("index_routing") && spec["index_routing"].IsString())
        options.index_routing = spec["index_routing"].GetString();
    if (spec.HasMember("search_routing") && spec["search_routing"].IsString())
        options.search_routing = spec["search_routing"].GetString();
    if (spec.HasMember("is_hidden") && spec["is_hidden"].IsBool())
        options.hidden = spec["is_hidden"].GetBool();
}

std::vector<std::string> stringList(const Value& spec, const char* one, const char* many) {
    std::vector<std::string> names;
    if (spec.HasMember(one) && spec[one].IsString()) names.push_back(spec[one].GetString());
    if (spec.HasMember(many) && spec[many].IsArray())
        for (const auto& item : spec[many].GetArray())
            if (item.IsString()) names.push_back(item.GetString());
    return names;
}

void writeAliasOptions(JsonWriter& out, const Cluster::AliasOptions& options) {
    out.beginObject();
    if (!options.filter_json.empty()) out.key("filter").raw(options.filter_json);
    if (!options.index_routing.empty()) out.key("index_routing").str(options.index_routing);
    if (!options.search_routing.empty()) out.key("search_routing").str(options.search_routing);
    if (options.is_write_index) out.key("is_write_index").boolean(*options.is_write_index);
    if (options.hidden) out.key("is_hidden").boolean(true);
    out.endObject();
}
}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Indices
// ---------------------------------------------------------------------------------------------------------

Cluster::Cluster(Flavor flavor) : flavor_(flavor) {}

Cluster::Index* Cluster::findIndex(const std::string& name) {
    auto found = indices_.find(name);
    return found == indices_.end() ? nullptr : found->second.get();
}

bool Cluster::validIndexName(const std::string& name, Failure& error) {
    if (name.empty()) {
        error = invalidIndexName(name, "must not be empty");
        return false;
    }
    for (char c : name) {
        if (std::isupper(static_cast<unsigned char>(c))) {
            error = invalidIndexName(name, "must be lowercase");
            return false;
        }
    }
    if (name.front() == '_' || name.front() == '-' || name.front() == '+') {
        error = invalidIndexName(name, "must not start with '_', '-', or '+'");
        return false;
    }
    static const std::string forbidden = "\\/*?\"<>| ,#:";
    for (char c : name) {
        if (forbidden.find(c) != std::string::npos) {
            error = invalidIndexName(
                name, "must not contain the following characters [ , \", *, \\, <, |, ,, >, /, ?]");
            return false;
        }
    }
    if (name == "." || name == "..") {
        error = invalidIndexName(name, "must not be '.' or '..'");
        return false;
    }
    if (name.size() > 255) {
        error = invalidIndexName(name, "index name is too long, (" + std::to_string(name.size()) + " > 255)");
        return false;
    }
    for (const auto& [other, index] : indices_) {
        if (index->aliases.count(name) != 0) {
            error = invalidIndexName(name, "already exists as alias");
            return false;
        }
    }
    return true;
}

bool Cluster::applySettings(Index& index, const Value* settings, Failure& error) {
    std::map<std::string, std::string> flat;
    if (settings != nullptr) {
        if (!settings->IsObject()) {
            error = illegalArgument("Malformed [settings] section, expected an object");
            return false;
        }
        std::map<std::string, std::string> given;
        flattenSettings(*settings, "", given);
        for (auto& [key, value] : given)
            flat[key.compare(0, 6, "index.") == 0 ? key : "index." + key] = value;
    }
    for (const auto& [key, value] : flat) {
        if (!knownSetting(key, flavor_)) {
            error = illegalArgument(
                "unknown setting [" + key +
                "] please check that any required plugins are installed, or check the breaking "
                "changes documentation for removed settings");
            return false;
        }
    }
    auto integer = [&](const std::string& key, int64_t minimum, int64_t& into) {
        auto found = flat.find(key);
        if (found == flat.end()) return true;
        try {
            size_t used = 0;
            int64_t value = std::stoll(found->second, &used);
            if (used == found->second.size() && value >= minimum) {
                into = value;
                return true;
            }
            error = illegalArgument("Failed to parse value [" + found->second + "] for setting [" + key +
                                    "] must be >= " + std::to_string(minimum));
        } catch (const std::exception&) {
            error =
                illegalArgument("Failed to parse value [" + found->second + "] for setting [" + key + "]");
        }
        return false;
    };
    auto time = [&](const std::string& key, int64_t& into) {
        auto found = flat.find(key);
        if (found == flat.end()) return true;
        auto parsed = parseTimeValue(found->second);
        if (!parsed) {
            error = illegalArgument("failed to parse setting [" + key + "] with value [" + found->second +
                                    "] as a time value: unit is missing or unrecognized");
            return false;
        }
        into = *parsed;
        return true;
    };
    int64_t shards = 1, replicas = 1;
    if (!integer("index.number_of_shards", 1, shards) || !integer("index.number_of_replicas", 0, replicas) ||
        !integer("index.max_result_window", 1, index.max_result_window) ||
        !time("index.refresh_interval", index.refresh_interval_ms) ||
        !time("index.gc_deletes", index.gc_deletes_ms))
        return false;
    index.shards = static_cast<int>(shards);
    index.replicas = static_cast<int>(replicas);
    for (const auto& [key, value] : flat) index.settings[key] = value;
    return true;
}

Response Cluster::createIndex(const std::string& name, const std::string& body) {
    std::lock_guard<std::mutex> lock(mutex_);
    Failure error;
    rapidjson::Document request;
    if (!body.empty() && !parseJson(body, request, error))
        return failed(parsingException("Failed to parse content to map").causedBy(error));
    if (!validIndexName(name, error)) return failed(error);
    if (Index* existing = findIndex(name)) return failed(resourceAlreadyExists(name, existing->uuid));
    auto index = std::make_unique<Index>(flavor_);
    index->name = name;
    index->uuid = randomToken(22);
    index->creation_date_ms = nowMillis();
    index->last_refresh = Clock::now();
    if (!body.empty()) {
        if (!request.IsObject()) return failed(parsingException("Failed to parse content to map"));
        static const std::set<std::string> sections = {"settings", "mappings", "aliases"};
        for (const auto& member : request.GetObject()) {
            std::string key = member.name.GetString();
            if (sections.count(key) == 0)
                return failed(parsingException("unknown key [" + key + "] for create index"));
        }
        if (!applySettings(*index, request.HasMember("settings") ? &request["settings"] : nullptr, error))
            return failed(error);
        if (request.HasMember("mappings") && !index->mapping.create(request["mappings"], error))
            return failed(error);
        if (request.HasMember("aliases")) {
            const Value& aliases = request["aliases"];
            if (!aliases.IsObject()) return failed(illegalArgument("Malformed [aliases] section"));
            for (const auto& member : aliases.GetObject()) {
                std::string alias = member.name.GetString();
                if (findIndex(alias) != nullptr || alias == name) return failed(invalidAlias(alias));
                AliasOptions options;
                readAliasOptions(member.value, options);
                index->aliases[alias] = options;
            }
        }
    }
    indices_[name] = std::move(index);
    JsonWriter out;
    out.beginObject()
        .key("acknowledged")
        .boolean(true)
        .key("shards_acknowledged")
        .boolean(true)
        .key("index")
        .str(name)
        .endObject();
    return ok(out);
}

bool Cluster::resolve(const std::string& expression, std::vector<Index*>& out, Failure& error,
                      bool allow_missing_wildcards) {
    std::set<std::string> names;
    auto parts = splitCommas(expression);
    if (parts.empty() || expression == "_all") parts = {"*"};
    for (const auto& part : parts) {
        bool wildcard = part.find('*') != std::string::npos;
        bool matched = false;
        for (const auto& [name, index] : indices_) {
            if (wildcard ? globMatch(part, name) : name == part) {
                names.insert(name);
                matched = true;
            }
            for (const auto& [alias, options] : index->aliases) {
                if (wildcard ? globMatch(part, alias) : alias == part) {
                    names.insert(name);
                    matched = true;
                }
            }
        }
        if (!matched && (!wildcard || !allow_missing_wildcards)) {
            error = indexNotFound(part);
            return false;
        }
    }
    for (const auto& name : names) out.push_back(indices_[name].get());
    return true;
}

std::optional<Response> Cluster::resolveOrFail(const std::string& expression, std::vector<Index*>& targets) {
    Failure error;
    if (resolve(expression, targets, error)) return std::nullopt;
    return failed(error);
}

Cluster::Index* Cluster::autoCreate(const std::string& name, Failure& error) {
    if (!validIndexName(name, error)) return nullptr;
    auto index = std::make_unique<Index>(flavor_);
    index->name = name;
    index->uuid = randomToken(22);
    index->creation_date_ms = nowMillis();
    index->last_refresh = Clock::now();
    Index* created = index.get();
    indices_[name] = std::move(index);
    return created;
}

Cluster::Index* Cluster::writeTarget(const std::string& name, bool require_alias, bool auto_create,
                                     Failure& error) {
    std::vector<std::pair<Index*, const AliasOptions*>> via_alias;
    for (const auto& [index_name, index] : indices_) {
        auto alias = index->aliases.find(name);
        if (alias != index->aliases.end()) via_alias.emplace_back(index.get(), &alias->second);
    }
    if (via_alias.empty()) {
        if (require_alias) {
            error = indexNotFound(name);
            error.reason = "no such index [" + name + "] and [require_alias] request flag is [true] and [" +
                           name + "] is not an alias";
            return nullptr;
        }
        if (Index* index = findIndex(name)) return index;
        if (!auto_create) {
            error = indexNotFound(name);
            return nullptr;
        }
        return autoCreate(name, error);
    }
    for (const auto& [index, options] : via_alias) {
        if (options->is_write_index.value_or(false)) return index;
    }
    if (via_alias.size() == 1 && !via_alias.front().second->is_write_index.has_value())
        return via_alias.front().first;
    error = illegalArgument(
        "no write index is defined for alias [" + name +
        "]. The write index may be explicitly disabled using is_write_index=false or the alias "
        "points to multiple indices without one being designated as a write index");
    return nullptr;
}

Response Cluster::deleteIndex(const std::string& expression) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> doomed;
    for (const auto& part : splitCommas(expression)) {
        bool wildcard = part.find('*') != std::string::npos || part == "_all";
        if (wildcard && flavor_ == Flavor::kElasticsearch)
            return failed(illegalArgument("Wildcard expressions or all indices are not allowed"));
        if (wildcard) {
            for (const auto& [name, index] : indices_)
                if (part == "_all" || globMatch(part, name)) doomed.push_back(name);
            continue;
        }
        if (findIndex(part) == nullptr) {
            for (const auto& [name, index] : indices_) {
                if (index->aliases.count(part) != 0)
                    return failed(illegalArgument(
                        "The provided expression [" + part +
                        "] matches an alias, specify the corresponding concrete indices instead."));
            }
            return failed(indexNotFound(part));
        }
        doomed.push_back(part);
    }
    for (const auto& name : doomed) indices_.erase(name);
    return acknowledged();
}

void Cluster::writeIndexSummary(JsonWriter& out, const Index& index) {
    std::map<std::string, std::string> settings = index.settings;
    settings.emplace("index.number_of_shards", std::to_string(index.shards));
    settings.emplace("index.number_of_replicas", std::to_string(index.replicas));
    settings["index.uuid"] = index.uuid;
    settings["index.creation_date"] = std::to_string(index.creation_date_ms);
    settings["index.provided_name"] = index.name;
    settings["index.version.created"] = flavor_ == Flavor::kOpenSearch ? "136327827" : "8503000";
    writeNestedSettings(out, settings);
}

Response Cluster::getIndex(const std::string& expression) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<Index*> targets;
    if (auto failure = resolveOrFail(expression, targets)) return *failure;
    JsonWriter out;
    out.beginObject();
    for (Index* index : targets) {
        out.key(index->name).beginObject();
        out.key("aliases").beginObject();
        for (const auto& [alias, options] : index->aliases) {
            out.key(alias);
            writeAliasOptions(out, options);
        }
        out.endObject();
        out.key("mappings").value(index->mapping.json());
        out.key("settings");
        writeIndexSummary(out, *index);
        out.endObject();
    }
    out.endObject();
    return ok(out);
}

Response Cluster::indexExists(const std::string& expression) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<Index*> targets;
    Failure error;
    // HEAD answers 404 for a wildcard that matches nothing as well.
    if (!resolve(expression, targets, error, false) || targets.empty()) return {404, ""};
    return {200, ""};
}

Response Cluster::putMapping(const std::string& expression, const std::string& body) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<Index*> targets;
    if (auto failure = resolveOrFail(expression, targets)) return *failure;
    Failure error;
    rapidjson::Document request;
    if (!parseJson(body, request, error))
        return failed(mapperParsing("Failed to parse mapping").causedBy(error));
    for (Index* index : targets) {
        if (!index->mapping.update(request, error)) return failed(error);
    }
    return acknowledged();
}

Response Cluster::getMapping(const std::string& expression) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<Index*> targets;
    if (auto failure = resolveOrFail(expression, targets)) return *failure;
    JsonWriter out;
    out.beginObject();
    for (Index* index : targets)
        out.key(index->name).beginObject().key("mappings").value(index->mapping.json()).endObject();
    out.endObject();
    return ok(out);
}

Response Cluster::getSettings(const std::string& expression) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<Index*> targets;
    if (auto failure = resolveOrFail(expression, targets)) return *failure;
    JsonWriter out;
    out.beginObject();
    for (Index* index : targets) {
        out.key(index->name).beginObject().key("settings");
        writeIndexSummary(out, *index);
        out.endObject();
    }
    out.endObject();
    return ok(out);
}

void Cluster::refreshIndex(Index& index) {
    // Each id written since the last refresh gets the live state it has now. Each one is first tried just
    // after the one before: ids written in sequence (a table's rows by key) usually follow each other in the
    // id order too, and a right hint saves the dozen or so comparisons of a search from the root.
    // A write that is not superseded is its id's live document; a superseded one was replaced or deleted
    // since, by a write or delete that is in these lists too and brings the id's live state.
    auto hint = index.searchable.end();
    for (const DocPtr& doc : index.unrefreshed_writes)
        if (!doc->superseded) hint = std::next(putDocumentNear(index.searchable, hint, doc));
    for (const std::string& id : index.unrefreshed_deletes) {
        auto live = index.live.find(DocKey(id));
        if (live == index.live.end()) {
            index.searchable.erase(id);
            hint = index.searchable.end();  // the erased entry may have been the hint
        } else {
            hint = std::next(putDocumentNear(index.searchable, hint, live->second));
        }
    }
    index.unrefreshed_writes.clear();
    index.unrefreshed_deletes.clear();
    index.last_refresh = Clock::now();
}

Response Cluster::refresh(const std::string& expression) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<Index*> targets;
    if (auto failure = resolveOrFail(expression, targets)) return *failure;
    int total = 0, successful = 0;
    for (Index* index : targets) {
        refreshIndex(*index);
        total += index->shards * (1 + index->replicas);
        successful += index->shards;
    }
    JsonWriter out;
    out.beginObject();
    writeShards(out, total, successful);
    out.endObject();
    return ok(out);
}

std::chrono::milliseconds Cluster::refreshDue() {
    std::lock_guard<std::mutex> lock(mutex_);
    auto now = Clock::now();
    auto next = std::chrono::milliseconds(1000);
    for (auto& [name, index] : indices_) {
        if (index->refresh_interval_ms <= 0) continue;
        auto interval = std::chrono::milliseconds(index->refresh_interval_ms);
        auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now - index->last_refresh);
        if (elapsed >= interval) {
            refreshIndex(*index);
            elapsed = std::chrono::milliseconds(0);
        }
        next = std::min(next, interval - elapsed);
    }
    return std::max(next, std::chrono::milliseconds(5));
}

Response Cluster::health() {
    std::lock_guard<std::mutex> lock(mutex_);
    int primaries = 0, unassigned = 0;
    for (const auto& [name, index] : indices_) {
        primaries += index->shards;
        unassigned += index->shards * index->replicas;  // one node: replicas never get assigned
    }
    JsonWriter out;
    out.beginObject().key("cluster_name").str("pgstream-search-mock");
    out.key("status").str(unassigned > 0 ? "yellow" : "green").key("timed_out").boolean(false);
    out.key("number_of_nodes").num(1).key("number_of_data_nodes").num(1);
    out.key("active_primary_shards").num(primaries).key("active_shards").num(primaries);
    out.key("relocating_shards")
        .num(0)
        .key("initializing_shards")
        .num(0)
        .key("unassigned_shards")
        .num(unassigned);
    out.key("delayed_unassigned_shards").num(0).key("number_of_pending_tasks").num(0);
    out.key("number_of_in_flight_fetch").num(0).key("task_max_waiting_in_queue_millis").num(0);
    double active = primaries + unassigned == 0 ? 100.0 : 100.0 * primaries / (primaries + unassigned);
    out.key("active_shards_percent_as_number").dbl(active).endObject();
    return ok(out);
}

void Cluster::reset() {
    std::lock_guard<std::mutex> lock(mutex_);
    indices_.clear();
}

// ---------------------------------------------------------------------------------------------------------
// Documents and versioning
// ---------------------------------------------------------------------------------------------------------

// A write's version_type as given ("internal" when none): a view of a constant for the three types the engine
// takes (copying the word from each _bulk action line into a std::string cost some 70 instructions per item),
// else its own copy of the text.
class VersionTypeText {
  public:
    VersionTypeText& operator=(std::string_view text) {
        for (std::string_view known :
             {std::string_view("internal"), std::string_view("external"), std::string_view("external_gte")}) {
            if (sameBytes(text, known)) {
                known_ = known;
                other_.clear();
                return *this;
            }
        }
        known_ = std::string_view();
        other_.assign(text);
        return *this;
    }
    operator std::string_view() const { return known_.data() != nullptr ? known_ : std::string_view(other_); }

  private:
    std::string_view known_ = "internal";  // null data: the type is other_
    std::string other_;
};

struct Cluster::WriteRequest {
    enum class Op { kIndex, kCreate, kDelete } op = Op::kIndex;
    std::string index;
    std::optional<std::string> id;
    std::string source;
    std::optional<int64_t> version;
    VersionTypeText version_type;
    std::optional<int64_t> if_seq_no, if_primary_term;
    bool require_alias = false;
    // The source as _bulk scanned it before taking the lock (kUnsupported: not scanned).
    ScannedLine scanned_source;
};

struct Cluster::WriteResult {
    bool ok = false;
    Failure failure;
    // Views, so that nothing is copied once more per item: they outlive the result (the caller keeps the
    // request; the cluster keeps the index and the index the document, and nothing else writes while the
    // caller holds the cluster's lock).
    std::string_view index;  // the concrete index's name, or the requested name when resolution failed
    std::string_view id;     // the request's id, or the stored document's once the write has moved it there
    int64_t version = 0, seq_no = 0;
    std::string_view result;  // created, updated, deleted, not_found (constants)
    int status = 200;
    Index* target = nullptr;
};

namespace {

// Problems that fail the whole request (action_request_validation_exception) before anything runs.
std::vector<std::string> validateWrite(const Cluster::WriteRequest& request) {
    using Op = Cluster::WriteRequest::Op;
    std::vector<std::string> problems;
    if (request.op == Op::kDelete && !request.id) problems.push_back("id is missing");
    if (request.id && request.id->size() > kMaxIdBytes)
        problems.push_back(
            "id [" + *request.id +
            "] is too long, must be no longer than 512 bytes but was: " + std::to_string(request.id->size()));
    // A view: its comparisons with the literals are inline (a std::string's are library calls, per item).
    std::string_view type = request.version_type;
    if (type != "internal" && type != "external" && type != "external_gte") {
        problems.push_back("version type [" + std::string(type) + "] is not supported");
        return problems;
    }
    if (type == "internal" && request.version)
        problems.push_back(
            "internal versioning can not be used for optimistic concurrency control. Please use "
            "`if_seq_no` and `if_primary_term` instead");
    if (type != "internal") {
        if (!request.version || *request.version < 0)
            problems.push_back("illegal version value [" + std::to_string(request.version.value_or(-3)) +
                               "] for version type [" + (type == "external" ? "EXTERNAL" : "EXTERNAL_GTE") +
                               "]");
        if (request.op == Op::kCreate)
            problems.push_back("create operations only support internal versioning. use index instead");
    }
    if (request.if_seq_no && request.version)
        problems.push_back("compare and write operations can not use versioning");
    if (request.if_seq_no && !request.if_primary_term)
        problems.push_back("ifSeqNo is set, but primary term is [0]");
    if (request.if_seq_no && *request.if_seq_no < 0)
        problems.push_back("sequence numbers must be non negative. got [" +
                           std::to_string(*request.if_seq_no) + "].");
    return problems;
}

}  // namespace

struct Cluster::WriteTargetMemo {
    std::string name;
    bool require_alias = false;
    Index* index = nullptr;  // nullptr: nothing resolved yet
};

Cluster::WriteResult Cluster::applyWrite(WriteRequest& request, WriteTargetMemo* memo) {
    using Op = WriteRequest::Op;
    WriteResult result;
    // result.index is the requested name when the write fails before finding its index, else the index's.
    if (request.id) result.id = *request.id;
    if (request.id && request.id->empty()) {
        result.index = request.index;
        result.failure = illegalArgument("if _id is specified it must not be empty");
        return result;
    }
    std::string_view version_type = request.version_type;  // inline comparisons, as in validateWrite
    bool external = version_type != "internal";
    bool auto_create = request.op != Op::kDelete || external;
    Index* index = nullptr;
    if (memo != nullptr && memo->index != nullptr && memo->name == request.index &&
        memo->require_alias == request.require_alias) {
        index = memo->index;
    } else {
        index = writeTarget(request.index, request.require_alias, auto_create, result.failure);
        if (index == nullptr) {
            result.index = request.index;
            return result;
        }
        if (memo != nullptr) *memo = WriteTargetMemo{request.index, request.require_alias, index};
    }
    result.index = index->name;
    result.target = index;

    IndexedFields fields;
    std::shared_ptr<const FieldMapping> deferred_terms;
    if (request.op != Op::kDelete) {
        if (!request.id) {
            // Auto-generated ids: 20 URL-safe characters, like the engine's time-based UUIDs.
            request.id = randomToken(20);
            result.id = *request.id;
        }
        // The common document (known top-level leaves, scalar values) is checked straight from its text (its
        // terms are built when a query first needs them); the rest is parsed into a DOM and goes through the
        // mapping's general walk. The DOM, its allocator and the parse error are only made for the rest
        // (made for every document, they cost some 50 instructions per item).
        if (!index->mapping.checkKnownLeaves(request.source, &request.scanned_source, *request.id,
                                             deferred_terms)) {
            // The parsed source is only read here: its values start in a buffer on the stack.
            char source_buffer[8192];
            rapidjson::MemoryPoolAllocator<> source_pool(source_buffer, sizeof source_buffer);
            rapidjson::Document source(&source_pool);
            Failure parse_error;
            if (!parseJson(request.source, source, parse_error)) {
                if (flavor_ == Flavor::kOpenSearch) {
                    result.failure = mapperParsing("failed to parse").causedBy(parse_error);
                } else {
                    result.failure.type = "document_parsing_exception";
                    result.failure.reason = "[1:1] failed to parse: " + parse_error.reason;
                    result.failure.causedBy(parse_error);
                }
                return result;
            }
            if (!index->mapping.indexDocument(source, *request.id, request.source, fields, result.failure,
                                              &deferred_terms))
                return result;
        }
    }

    const std::string& id = *request.id;
    DocKey key(id);  // hashed once: for the lookup and for storing the document
    auto live = index->live.find(key);
    std::optional<int64_t> current;  // the version a conflict check sees: live doc or unexpired tombstone
    auto tombstone = index->tombstones.find(id);
    if (tombstone != index->tombstones.end() &&
        Clock::now() - tombstone->second.deleted_at > std::chrono::milliseconds(index->gc_deletes_ms)) {
        index->tombstones.erase(tombstone);
        tombstone = index->tombstones.end();
    }
    if (live != index->live.end())
        current = live->second->version;
    else if (tombstone != index->tombstones.end())
        current = tombstone->second.version;

    // Every path returns `result` itself, so that it is built in the caller's object (no move per item).
    auto conflict = [&](const std::string& explanation) {
        result.failure = versionConflict(index->name, index->uuid, id, explanation);
    };
    int64_t new_version = current ? *current + 1 : 1;
    if (request.if_seq_no) {
        std::string required = "required seqNo [" + std::to_string(*request.if_seq_no) + "], primary term [" +
                               std::to_string(*request.if_primary_term) + "]";
        if (live == index->live.end()) {
            conflict(required + " but no document was found");
            return result;
        }
        if (live->second->seq_no != *request.if_seq_no || *request.if_primary_term != kPrimaryTerm) {
            conflict(required + ". current document has seqNo [" + std::to_string(live->second->seq_no) +
                     "] and primary term [" + std::to_string(kPrimaryTerm) + "]");
            return result;
        }
    } else if (version_type == "external") {
        if (current && *current >= *request.version) {
            conflict("current version [" + std::to_string(*current) +
                     "] is higher or equal to the one provided [" + std::to_string(*request.version) + "]");
            return result;
        }
        new_version = *request.version;
    } else if (version_type == "external_gte") {
        if (current && *current > *request.version) {
            conflict("current version [" + std::to_string(*current) + "] is higher than the one provided [" +
                     std::to_string(*request.version) + "]");
            return result;
        }
        new_version = *request.version;
    } else if (request.op == Op::kCreate && live != index->live.end()) {
        conflict("document already exists (current version [" + std::to_string(live->second->version) + "])");
        return result;
    }

    result.ok = true;
    result.version = new_version;
    result.seq_no = index->next_seq_no++;
    if (request.op == Op::kDelete) {
        bool existed = live != index->live.end();
        if (existed) {
            live->second->superseded = true;
            index->live.erase(live);
        }
        index->tombstones[id] = Tombstone{new_version, result.seq_no, Clock::now()};
        index->unrefreshed_deletes.push_back(id);
        result.result = existed ? "deleted" : "not_found";
        result.status = existed ? 200 : 404;
        return result;
    }
    bool existed = live != index->live.end();
    if (existed) live->second->superseded = true;
    // request.id is moved into the document and not read past this point (`id` and key.id included): callers
    // keep only result.id, which views the stored id.
    auto doc = std::allocate_shared<StoredDoc>(
        NodeAllocator<StoredDoc>(&index->doc_nodes), std::move(*request.id), std::move(request.source),
        deferred_terms ? DocTerms(flavor_, std::move(deferred_terms)) : DocTerms(std::move(fields)),
        new_version, result.seq_no);
    result.id = doc->id;
    // The entry keys a view of the stored document's own id. A replaced entry (still at `live`, which nothing
    // has moved since the lookup) is re-keyed to the new document's id: the old key views the old document,
    // which may be freed once the entry lets it go.
    if (existed) {
        auto node = index->live.extract(live);
        node.key() = DocKey(doc->id, key.hash);
        node.mapped() = doc;
        index->live.insert(std::move(node));
    } else {
        index->live.try_emplace(DocKey(doc->id, key.hash), doc);
    }
    index->unrefreshed_writes.push_back(std::move(doc));
    if (tombstone != index->tombstones.end()) index->tombstones.erase(tombstone);
    result.result = existed ? "updated" : "created";
    result.status = existed ? 200 : 201;
    return result;
}

namespace {

bool readLong(const std::string& text, int64_t& out) {
    try {
        size_t used = 0;
        out = std::stoll(text, &used);
        return used == text.size();
    } catch (const std::exception&) {
        return false;
    }
}

// ?version=, ?version_type=, ?if_seq_no=, ?if_primary_term= of single-document requests.
bool readVersioning(const Params& params, Cluster::WriteRequest& request, Failure& error) {
    int64_t number = 0;
    if (auto text = param(params, "version")) {
        if (!readLong(*text, number)) {
            error = illegalArgument("Failed to parse long parameter [version] with value [" + *text + "]");
            return false;
        }
        request.version = number;
    }
    if (auto text = param(params, "version_type")) request.version_type = *text;
    if (std::string_view(request.version_type) == "force") {
        error = illegalArgument("version type [force] may no longer be used");
        return false;
    }
    if (auto text = param(params, "if_seq_no")) {
        if (!readLong(*text, number)) {
            error = illegalArgument("Failed to parse long parameter [if_seq_no] with value [" + *text + "]");
            return false;
        }
        request.if_seq_no = number;
    }
    if (auto text = param(params, "if_primary_term")) {
        if (!readLong(*text, number)) {
            error = illegalArgument("Failed to parse long parameter [if_primary_term] with value [" + *text +
                                    "]");
            return false;
        }
        request.if_primary_term = number;
    }
    return true;
}

// ?refresh: "true"/"" forces a refresh, "wait_for" waits for one (the mock refreshes at once), "false" none.
bool readRefresh(const Params& params, bool& refresh, bool& forced, Failure& error) {
    refresh = forced = false;
    auto value = param(params, "refresh");
    if (!value || *value == "false") return true;
    if (value->empty() || *value == "true") {
        refresh = forced = true;
        return true;
    }
    if (*value == "wait_for") {
        refresh = true;
        return true;
    }
    error = illegalArgument("Unknown value for refresh: [" + *value + "].");
    return false;
}

}  // namespace

Response Cluster::singleWrite(WriteRequest& request, const Params& params) {
    Failure error;
    bool refresh = false, forced = false;
    if (!readVersioning(params, request, error) || !readRefresh(params, refresh, forced, error))
        return failed(error);
    auto problems = validateWrite(request);
    if (!problems.empty()) return failed(validationFailed(problems));
    if (request.op != WriteRequest::Op::kDelete && request.source.empty())
        return failed(validationFailed({"source is missing", "content type is missing"}));
    WriteResult result = applyWrite(request);
    if (!result.ok) return failed(result.failure);
    if (refresh) refreshIndex(*result.target);
    JsonWriter out;
    out.beginObject();
    out.key("_index").str(result.index).key("_id").str(result.id).key("_version").num(result.version);
    out.key("result").str(result.result);
    if (forced) out.key("forced_refresh").boolean(true);
    writeShards(out, 1 + result.target->replicas, 1);
    out.key("_seq_no").num(result.seq_no).key("_primary_term").num(kPrimaryTerm);
    out.endObject();
    return ok(out, result.status);
}

Response Cluster::indexDocument(const std::string& index, const std::optional<std::string>& id,
                                const std::string& body, const Params& params, bool create_only) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto op_type = param(params, "op_type");
    if (op_type && *op_type != "create" && *op_type != "index")
        return failed(illegalArgument("opType must be 'create' or 'index', found: [" + *op_type + "]"));
    WriteRequest request;
    request.op = create_only || op_type == std::optional<std::string>("create") ? WriteRequest::Op::kCreate
                                                                                : WriteRequest::Op::kIndex;
    request.index = index;
    request.id = id;
    request.source = body;
    request.require_alias = isTrue(params, "require_alias");
    return singleWrite(request, params);
}

Response Cluster::deleteDocument(const std::string& index, const std::string& id, const Params& params) {
    std::lock_guard<std::mutex> lock(mutex_);
    WriteRequest request;
    request.op = WriteRequest::Op::kDelete;
    request.index = index;
    request.id = id;
    return singleWrite(request, params);
}

namespace {

// _source filtering: true/false, a field list or {"includes":[...],"excludes":[...]}; '*' wildcards.
struct SourceFilter {
    bool enabled = true;
    std::vector<std::string> includes, excludes;

    bool filtering() const { return !includes.empty() || !excludes.empty(); }

    bool keep(const std::string& path, bool is_object) const {
        for (const auto& pattern : excludes)
            if (globMatch(pattern, path)) return false;
        if (includes.empty()) return true;
        for (const auto& pattern : includes) {
            if (globMatch(pattern, path)) return true;
            // An object is kept when something below it may be included.
            if (is_object && pattern.compare(0, path.size() + 1, path + ".") == 0) return true;
        }
        return false;
    }

    void filter(const Value& object, const std::string& prefix, JsonWriter& out, bool parent_included) const {
        out.beginObject();
        for (const auto& member : object.GetObject()) {
            std::string path =
                prefix.empty() ? member.name.GetString() : prefix + "." + member.name.GetString();
            bool excluded = false;
            for (const auto& pattern : excludes)
                if (globMatch(pattern, path)) excluded = true;
            if (excluded) continue;
            bool included = parent_included;
            if (!included && !includes.empty()) {
                for (const auto& pattern : includes)
                    if (globMatch(pattern, path)) included = true;
            }
            if (includes.empty()) included = true;
            if (member.value.IsObject()) {
                if (included || keep(path, true)) {
                    out.key(member.name.GetString());
                    filter(member.value, path, out, included);
                }
            } else if (included) {
                out.key(member.name.GetString()).value(member.value);
            }
        }
        out.endObject();
    }

    void write(JsonWriter& out, const std::string& source) const {
        if (!filtering()) {
            out.raw(source);
            return;
        }
        rapidjson::Document parsed;
        parsed.Parse(source.c_str(), source.size());
        if (parsed.HasParseError() || !parsed.IsObject()) {
            out.raw(source);
            return;
        }
        filter(parsed, "", out, false);
    }
};

void readPatternList(const Value& value, std::vector<std::string>& into) {
    if (value.IsString()) into.push_back(value.GetString());
    if (value.IsArray())
        for (const auto& item : value.GetArray())
            if (item.IsString()) into.push_back(item.GetString());
}

SourceFilter sourceFilterFromParams(const Params& params) {
    SourceFilter filter;
    if (auto source = param(params, "_source")) {
        if (*source == "false")
            filter.enabled = false;
        else if (*source != "true" && !source->empty())
            filter.includes = splitCommas(*source);
    }
    if (auto includes = param(params, "_source_includes")) filter.includes = splitCommas(*includes);
    if (auto excludes = param(params, "_source_excludes")) filter.excludes = splitCommas(*excludes);
    return filter;
}

}  // namespace

Response Cluster::getDocument(const std::string& index_name, const std::string& id, const Params& params,
                              bool head) {
    std::lock_guard<std::mutex> lock(mutex_);
    Failure error;
    std::vector<Index*> targets;
    if (!resolve(index_name, targets, error, false)) return head ? Response{404, ""} : failed(error);
    if (targets.size() != 1) {
        std::string names;
        for (Index* index : targets) names += (names.empty() ? "" : ", ") + index->name;
        Failure failure =
            illegalArgument("alias [" + index_name + "] has more than one index associated with it [" +
                            names + "], can't execute a single index op");
        return head ? Response{400, ""} : failed(failure);
    }
    Index& index = *targets.front();
    // Realtime by default: the live document, refreshed or not.
    auto found = index.live.find(DocKey(id));
    if (found == index.live.end()) {
        if (head) return {404, ""};
        JsonWriter out;
        out.beginObject()
            .key("_index")
            .str(index.name)
            .key("_id")
            .str(id)
            .key("found")
            .boolean(false)
            .endObject();
        return ok(out, 404);
    }
    const StoredDoc& doc = *found->second;
    if (auto version = param(params, "version")) {
        int64_t wanted = 0;
        if (!readLong(*version, wanted))
            return failed(
                illegalArgument("Failed to parse long parameter [version] with value [" + *version + "]"));
        if (doc.version != wanted) {
            Failure conflict =
                versionConflict(index.name, index.uuid, id,
                                "current version [" + std::to_string(doc.version) +
                                    "] is different than the one provided [" + std::to_string(wanted) + "]");
            return head ? Response{409, ""} : failed(conflict);
        }
    }
    if (head) return {200, ""};
    SourceFilter filter = sourceFilterFromParams(params);
    JsonWriter out;
    out.beginObject();
    out.key("_index").str(index.name).key("_id").str(id).key("_version").num(doc.version);
    out.key("_seq_no").num(doc.seq_no).key("_primary_term").num(kPrimaryTerm).key("found").boolean(true);
    if (filter.enabled) {
        out.key("_source");
        filter.write(out, doc.source);
    }
    out.endObject();
    return ok(out);
}

// ---------------------------------------------------------------------------------------------------------
// _bulk
// ---------------------------------------------------------------------------------------------------------

namespace {

// The parameters an action line's object may hold.
constexpr std::string_view kActionParameters[] = {
    "_index",        "_id",     "version",  "version_type",      "if_seq_no", "if_primary_term",  "routing",
    "require_alias", "op_type", "pipeline", "retry_on_conflict", "_source",   "dynamic_templates"};
// readActionMember reads the parameters by these positions.
static_assert(kActionParameters[0] == "_index" && kActionParameters[1] == "_id" &&
              kActionParameters[2] == "version" && kActionParameters[3] == "version_type" &&
              kActionParameters[4] == "if_seq_no" && kActionParameters[5] == "if_primary_term" &&
              kActionParameters[7] == "require_alias" && kActionParameters[8] == "op_type");

// The parameter's entry in kActionParameters, or nullptr. The length and first byte are tested inline before
// the bytes are compared (std::find called the string_view comparison for each entry: some 140 instructions
// per name), and the bytes inline too (memcmp was a call per name).
const std::string_view* actionParameter(std::string_view name) {
    if (name.empty()) return nullptr;  // no parameter is empty
    for (const std::string_view& parameter : kActionParameters)
        if (parameter.size() == name.size() && parameter.front() == name.front() &&
            sameBytes(parameter, name))
            return &parameter;
    return nullptr;
}

// Applies one member (a known parameter: its entry in kActionParameters) of an action line's object to the
// request. Chosen by the entry's position (comparing the name with each parameter cost some 35 instructions
// per member); strings are read up to their first NUL, as a std::string made from GetString() reads them.
void readActionMember(const std::string_view* parameter, const Value& value, Cluster::WriteRequest& request) {
    switch (parameter - kActionParameters) {
        case 0:  // _index
            if (value.IsString()) request.index = value.GetString();
            break;
        case 1:  // _id
            if (value.IsString()) request.id = value.GetString();
            if (value.IsNumber()) request.id = toJson(value);
            break;
        case 2:  // version
            if (value.IsInt64()) request.version = value.GetInt64();
            break;
        case 3:  // version_type
            if (value.IsString()) request.version_type = std::string_view(value.GetString());
            break;
        case 4:  // if_seq_no
            if (value.IsInt64()) request.if_seq_no = value.GetInt64();
            break;
        case 5:  // if_primary_term
            if (value.IsInt64()) request.if_primary_term = value.GetInt64();
            break;
        case 7:  // require_alias
            if (value.IsBool()) request.require_alias = value.GetBool();
            break;
        case 8:  // op_type
            if (value.IsString() && std::strcmp(value.GetString(), "create") == 0)
                request.op = Cluster::WriteRequest::Op::kCreate;
            break;
        default:  // routing, pipeline, retry_on_conflict, _source, dynamic_templates: accepted, not used
            break;
    }
}

// The action's name as a view of a constant (it outlives the request's body).
std::string_view actionWord(std::string_view name) {
    return name == "delete" ? "delete" : name == "create" ? "create" : name == "update" ? "update" : "index";
}

// An action line through a DOM: every shape, with the engine's errors. Returns the failure of a malformed
// line.
std::optional<Failure> readActionLine(std::string_view line, int action_line, std::string_view& action,
                                      Cluster::WriteRequest& request) {
    using Op = Cluster::WriteRequest::Op;
    // An action line is small: its values live in a buffer on the stack (no allocation per item).
    char action_buffer[1024];
    rapidjson::MemoryPoolAllocator<> action_pool(action_buffer, sizeof action_buffer);
    rapidjson::Document json(&action_pool);
    Failure parse_error;
    if (!parseJson(line, json, parse_error) || !json.IsObject())
        return illegalArgument("Malformed action/metadata line [" + std::to_string(action_line) +
                               "], expected START_OBJECT or END_OBJECT but found [VALUE_STRING]");
    if (json.MemberCount() == 0)
        return illegalArgument("Malformed action/metadata line [" + std::to_string(action_line) +
                               "], expected FIELD_NAME but found [END_OBJECT]");
    const auto& entry = *json.MemberBegin();
    std::string action_name = entry.name.GetString();
    if (action_name != "index" && action_name != "create" && action_name != "delete" &&
        action_name != "update")
        return illegalArgument("Malformed action/metadata line [" + std::to_string(action_line) +
                               "], expected one of [create, delete, index, update] but found [" +
                               action_name + "]");
    action = actionWord(action_name);
    if (!entry.value.IsObject())
        return illegalArgument("Malformed action/metadata line [" + std::to_string(action_line) +
                               "], expected START_OBJECT but found [" + toJson(entry.value) + "]");
    request.op = action == "delete" ? Op::kDelete : action == "create" ? Op::kCreate : Op::kIndex;
    for (const auto& member : entry.value.GetObject()) {
        std::string_view name(member.name.GetString(), member.name.GetStringLength());
        const std::string_view* parameter = actionParameter(name);
        if (parameter == nullptr)
            return illegalArgument("Action/metadata line [" + std::to_string(action_line) +
                                   "] contains an unknown parameter [" + std::string(name) + "]");
        readActionMember(parameter, member.value, request);
    }
    return std::nullopt;
}

// The common action line ({"index":{"_index":...,"_id":...,"version":...,"version_type":...}}) read straight
// from the parser's events, without a DOM (parsing every action line into one cost a few thousand
// instructions per item). Each scalar becomes the same rapidjson::Value the DOM would hold and goes through
// readActionMember, so what is read is what the DOM path reads. It gives up (false) on everything else: a
// second top-level member, an action other than index, create or delete, an unknown parameter, an object or
// array value (_source, dynamic_templates); the caller then takes the DOM path.
class ActionLineReader : public ScalarsAsValues<ActionLineReader> {
    friend class ScalarsAsValues<ActionLineReader>;  // calls scalar()

  public:
    ActionLineReader(std::string_view& action, Cluster::WriteRequest& request)
        : action_(action), request_(request) {}

    bool Default() { return false; }  // every event not handled below
    bool StartObject() {
        if (expect_ == Expect::kRoot) return (expect_ = Expect::kAction), true;
        if (expect_ == Expect::kActionObject) return (expect_ = Expect::kName), true;
        return false;
    }
    bool Key(const char* text, rapidjson::SizeType length, bool) {
        using Op = Cluster::WriteRequest::Op;
        std::string_view name(text, length);
        if (expect_ == Expect::kAction) {
            if (name != "index" && name != "create" && name != "delete") return false;
            action_ = actionWord(name);
            request_.op = name == "delete" ? Op::kDelete : name == "create" ? Op::kCreate : Op::kIndex;
            expect_ = Expect::kActionObject;
            return true;
        }
        if (expect_ != Expect::kName) return false;
        // Kept as its entry in kActionParameters, which also tells the name is known.
        name_ = actionParameter(name);
        if (name_ == nullptr) return false;
        expect_ = Expect::kValue;
        return true;
    }
    bool EndObject(rapidjson::SizeType) {
        if (expect_ == Expect::kName) return (expect_ = Expect::kEnd), true;
        if (expect_ == Expect::kEnd) return (expect_ = Expect::kDone), true;
        return false;
    }

  private:
    enum class Expect { kRoot, kAction, kActionObject, kName, kValue, kEnd, kDone };

    bool scalar(const Value& value) {
        if (expect_ != Expect::kValue) return false;
        expect_ = Expect::kName;
        readActionMember(name_, value, request_);
        return true;
    }

    std::string_view& action_;
    Cluster::WriteRequest& request_;
    Expect expect_ = Expect::kRoot;
    const std::string_view* name_ = nullptr;  // the parameter whose value comes next
};

}  // namespace

namespace {

// Whether rapidjson::Writer writes the string as it is, between quotes (nothing to escape): no control
// character, quote or backslash. Sixteen bytes at a step (SSE2, as rapidjson's own scans), the last step
// overlapping the one before: a byte at a time cost some ten instructions per character of every item's id.
bool plainJsonString(std::string_view text) {
    auto plainByte = [](unsigned char c) { return c >= 0x20 && c != '"' && c != '\\'; };
    if (text.size() < 16) {
        for (unsigned char c : text)
            if (!plainByte(c)) return false;
        return true;
    }
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i last_control = _mm_set1_epi8(0x1F);
    auto plainBlock = [&](const char* at) {
        __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
        // A byte is a control character when its unsigned minimum with 0x1F is itself.
        __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(block, last_control), block);
        __m128i escaped = _mm_or_si128(_mm_cmpeq_epi8(block, quote), _mm_cmpeq_epi8(block, backslash));
        return _mm_movemask_epi8(_mm_or_si128(control, escaped)) == 0;
    };
    size_t at = 0;
    for (; at + 16 <= text.size(); at += 16)
        if (!plainBlock(text.data() + at)) return false;
    return at == text.size() || plainBlock(text.data() + text.size() - 16);
}

void appendJsonNumber(std::string& out, int64_t value) {
    char digits[24];
    auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;  // the writer's digits too
    out.append(digits, end);
}

// A successful bulk item's answer under filter_path=errors,items.*.status,items.*.error:
// {"<action>":{"status":<status>}}, composed on the stack and appended at once (its five appends and the
// number's to_chars cost some 400 instructions per item). `action` is index, create or delete: nothing to
// escape.
void appendStatusItem(std::string& out, std::string_view action, int status) {
    char item[64];
    char* p = item;
    auto putConstant = [&p](const auto& text) {
        constexpr size_t length = sizeof text - 1;
        std::memcpy(p, text, length);
        p += length;
    };
    putConstant("{\"");
    std::memcpy(p, action.data(), action.size());  // at most six bytes
    p += action.size();
    putConstant("\":{\"status\":");
    if (status >= 100 && status <= 999) {  // an HTTP status: three digits, written without a call
        *p++ = static_cast<char>('0' + status / 100);
        *p++ = static_cast<char>('0' + status / 10 % 10);
        *p++ = static_cast<char>('0' + status % 10);
    } else {
        p = std::to_chars(p, p + 12, status).ptr;
    }
    putConstant("}}");
    out.append(item, static_cast<size_t>(p - item));
}

// A successful bulk item's answer: the bytes JsonWriter writes for it (writeShards included), composed in
// place at the end of `out` when no string needs escaping (the usual index names and ids), else through the
// writer. The writer spent a few thousand instructions per item, mostly checking constant keys for characters
// to escape, and an append per piece most of another thousand. `action` and `result.result` are always among
// the engine's words (index, create, delete; created, updated, deleted, not_found), which need no escaping;
// `index_is_plain` tells whether plainJsonString(result.index) holds (the caller checks each index once).
void appendWrittenItem(std::string& out, std::string_view action, const Cluster::WriteResult& result,
                       bool with_id, bool forced_refresh, bool index_is_plain) {
    if (!index_is_plain || !plainJsonString(result.id)) {
        JsonWriter entry;
        entry.beginObject().key(action).beginObject().key("_index").str(result.index);
        if (with_id) entry.key("_id").str(result.id);
        entry.key("_version").num(result.version).key("result").str(result.result);
        if (forced_refresh) entry.key("forced_refresh").boolean(true);
        writeShards(entry, 1 + result.target->replicas, 1);
        entry.key("_seq_no").num(result.seq_no).key("_primary_term").num(kPrimaryTerm);
        entry.key("status").num(result.status).endObject().endObject();
        out += entry.text();
        return;
    }
    // The constant text is under 200 bytes and each of the five numbers under 21.
    size_t start = out.size();
    out.resize(start + action.size() + result.index.size() + result.id.size() + result.result.size() + 320);
    char* p = out.data() + start;
    auto put = [&p](std::string_view text) {
        std::memcpy(p, text.data(), text.size());
        p += text.size();
    };
    // The constant pieces: their length is known when compiled, so each copy is a few moves, not a call.
    auto putConstant = [&p](const auto& text) {
        constexpr size_t length = sizeof text - 1;
        std::memcpy(p, text, length);
        p += length;
    };
    auto number = [&p](int64_t value) {
        if (value >= 0 && value <= 9)  // the shard count and the primary term: one digit, no to_chars call
            *p++ = static_cast<char>('0' + value);
        else
            p = std::to_chars(p, p + 21, value).ptr;
    };
    putConstant("{\"");
    put(action);
    putConstant("\":{\"_index\":\"");
    put(result.index);
    if (with_id) {
        putConstant("\",\"_id\":\"");
        put(result.id);
    }
    putConstant("\",\"_version\":");
    number(result.version);
    putConstant(",\"result\":\"");
    put(result.result);
    putConstant("\",");
    if (forced_refresh) putConstant("\"forced_refresh\":true,");
    putConstant("\"_shards\":{\"total\":");
    number(1 + result.target->replicas);
    putConstant(",\"successful\":1,\"failed\":0},\"_seq_no\":");
    number(result.seq_no);
    putConstant(",\"_primary_term\":");
    number(kPrimaryTerm);
    putConstant(",\"status\":");
    number(result.status);
    putConstant("}}");
    out.resize(static_cast<size_t>(p - out.data()));
}

}  // namespace

Response Cluster::bulk(const std::optional<std::string>& default_index, const std::string& body,
                       const Params& params, const ItemRejector& reject) {
    auto started = Clock::now();
    // Reading the request (its parameters, lines, action lines and the validation of each item) uses no
    // cluster state: it runs before the cluster's lock is taken, so that two _bulk requests in flight read
    // their bodies at the same time. The checks, and so the errors and their order, are the same as before.
    Failure error;
    bool refresh = false, forced = false;
    if (!readRefresh(params, refresh, forced, error)) return failed(error);
    if (body.empty()) return failed(validationFailed({"no requests added"}));
    if (body.back() != '\n')
        return failed(illegalArgument("The bulk request must be terminated by a newline [\\n]"));
    bool require_alias_default = isTrue(params, "require_alias");
    // filter_path=errors,items.*.status,items.*.error (what Logstash sends, in any order): the answer is
    // written filtered as it is built, {"errors":..,"items":[{"index":{"status":201}},..]} with an item's
    // "error" as unfiltered, instead of being written whole and then filtered (the server's
    // FilterPath::apply, whose output this is byte for byte: the search_mock tests compare them).
    bool status_and_errors = false;
    if (auto given = params.find("filter_path"); given != params.end()) {
        std::string refusal;
        auto filter = FilterPath::parse(given->second, refusal);
        status_and_errors = filter && filter->isBulkStatusAndErrors();
    }

    struct Item {
        std::string_view action;  // index, create, delete or update (actionWord)
        WriteRequest request;
        size_t source_events = 0;  // where the scanned source's events start in `events`
    };
    // The lines are scanned (scanLine) in copies at their offsets in a buffer as long as the body, each ended
    // by a NUL, with the 16 bytes the scanner may read past a line's end after the last one (the buffer is
    // only grown, so every byte of it is written). A line is copied when it is scanned: one copy of the
    // whole body was a `rep movsb`, counted by callgrind a byte at a time (some 330 instructions per item).
    // A thread's buffers are kept from request to request: the whole request, scanned events included, is
    // handled on one thread.
    thread_local std::vector<char> text;
    thread_local std::vector<LineEvent> events;
    if (text.size() < body.size() + 17) text.resize(body.size() + 17);
    events.clear();
    events.reserve(body.size() / 16);
    std::vector<Item> items;
    // Room for the items of a body like the indexer's (some 330 bytes per item), so that they are seldom
    // moved as the vector grows; other bodies only grow it as before. Capped, for bodies of large documents.
    items.reserve(std::min<size_t>(body.size() / 256 + 1, 65536));
    std::vector<std::string> problems;
    size_t pos = 0;
    int line_number = 0;
    auto nextLine = [&](std::string_view& line) {
        if (pos >= body.size()) return false;
        size_t end = body.find('\n', pos);
        line = std::string_view(body).substr(pos, end - pos);
        pos = end + 1;
        ++line_number;
        return true;
    };
    std::string_view line;
    while (nextLine(line)) {
        // Blank lines are skipped; a line that starts with anything else is not blank (no scan for it).
        bool starts_blank =
            line.empty() || line.front() == ' ' || line.front() == '\t' || line.front() == '\r';
        if (starts_blank && line.find_first_not_of(" \t\r") == std::string::npos) continue;
        int action_line = line_number;
        Item& item = items.emplace_back();  // filled in place
        item.request.require_alias = require_alias_default;
        if (default_index) item.request.index = *default_index;
        ActionLineReader fast(item.action, item.request);
        // The line's copy: scanned in place (the original stays for rapidjson and the DOM path).
        auto scan = [&](std::string_view of, ScannedLine& scanned) {
            char* copy = text.data() + (of.data() - body.data());
            std::memcpy(copy, of.data(), of.size());
            copy[of.size()] = '\0';
            size_t first = events.size();
            scanned.scan = scanLine(copy, of.size(), events);
            scanned.count = events.size() - first;
            return first;
        };
        ScannedLine action_scan;
        size_t action_events = scan(line, action_scan);
        action_scan.events = events.data() + action_events;
        bool read =
            action_scan.scan != LineScan::kUnsupported ? action_scan.parse(fast) : parseLine(line, fast);
        events.resize(action_events);  // read: not kept
        if (!read) {
            // Anything but the common action line: the DOM path, which also words the errors.
            item = Item();
            item.request.require_alias = require_alias_default;
            if (default_index) item.request.index = *default_index;
            if (auto failure = readActionLine(line, action_line, item.action, item.request))
                return failed(*failure);
        }
        WriteRequest& request = item.request;
        if (request.op != WriteRequest::Op::kDelete) {
            std::string_view source;
            if (!nextLine(source)) return failed(validationFailed({"source is missing"}));
            request.source.assign(source);
            item.source_events = scan(source, request.scanned_source);  // read under the lock
        }
        if (request.index.empty()) problems.push_back("index is missing");
        for (auto& problem : validateWrite(request)) problems.push_back(problem);
    }
    if (items.empty()) return failed(validationFailed({"no requests added"}));
    if (!problems.empty()) return failed(validationFailed(problems));
    for (Item& item : items)  // `events` no longer grows
        item.request.scanned_source.events = events.data() + item.source_events;

    // From here on the items are applied: the cluster's state (indices, mappings, documents) and the fault
    // injector's item rejections are read and written under the lock.
    std::lock_guard<std::mutex> lock(mutex_);
    bool errors = false;
    std::set<Index*> touched;
    WriteTargetMemo write_target;
    // The last index written to (already in `touched`), and whether its name needs no escaping.
    const Index* plain_index_checked = nullptr;
    bool plain_index = false;
    // The answer goes straight into one string, an item's object after the other: a successful write's
    // through appendWrittenItem, the rest through rapidjson's writer (the same bytes either way).
    // Under filter_path=errors,items.*.status,items.*.error the items follow the answer's opening, written
    // first (its errors flag corrected at the end, when an item failed), so that the answer is this string
    // itself instead of a copy of it.
    constexpr std::string_view kStatusAnswerStart = "{\"errors\":false,\"items\":[";
    std::string items_json(status_and_errors ? kStatusAnswerStart : "[");
    const size_t items_start = items_json.size();
    items_json.reserve(items.size() * 256 + 32);  // a successful item's object is some 200 bytes
    for (auto& item : items) {
        if (items_json.size() > items_start) items_json += ',';
        // "op_type": "create" on an index action answers as a create item.
        std::string_view action = item.action == "index" && item.request.op == WriteRequest::Op::kCreate
                                      ? std::string_view("create")
                                      : item.action;
        // The items that fail go through the JSON writer (made only for them: it allocates), up to "error".
        auto failedItem = [&action, status_and_errors](JsonWriter& entry, std::string_view index,
                                                       std::optional<std::string_view> id, int status) {
            entry.beginObject().key(action).beginObject();
            if (!status_and_errors) {
                entry.key("_index").str(index);
                if (id) entry.key("_id").str(*id);
            }
            entry.key("status").num(status).key("error");
        };
        std::optional<std::string_view> request_id;
        if (item.request.id) request_id = *item.request.id;
        if (item.action == "update") {
            errors = true;
            JsonWriter entry;
            failedItem(entry, item.request.index, request_id, 400);
            illegalArgument("update actions are not implemented by pgstream-search-mock").writeBody(entry);
            items_json += entry.endObject().endObject().text();
            continue;
        }
        if (reject && reject()) {
            errors = true;
            JsonWriter entry;
            failedItem(entry, item.request.index, request_id, 429);
            Failure rejected;
            rejected.status = 429;
            rejected.type = flavor_ == Flavor::kOpenSearch ? "rejected_execution_exception"
                                                           : "es_rejected_execution_exception";
            rejected.reason =
                "rejected execution of primary operation [coordinating_and_primary_bytes=0, "
                "replica_bytes=0, all_bytes=0, primary_operation_bytes=" +
                std::to_string(item.request.source.size()) + ", max_coordinating_and_primary_bytes=0]";
            rejected.writeBody(entry);
            items_json += entry.endObject().endObject().text();
            continue;
        }
        WriteResult result = applyWrite(item.request, &write_target);
        bool with_id = !result.id.empty() || item.request.id;
        if (result.ok) {
            if (result.target != plain_index_checked) {  // the items usually all write to one index
                touched.insert(result.target);
                plain_index_checked = result.target;
                plain_index = plainJsonString(result.index);
            }
            if (status_and_errors) {
                appendStatusItem(items_json, action, result.status);
            } else {
                appendWrittenItem(items_json, action, result, with_id, forced, plain_index);
            }
            continue;
        }
        errors = true;
        JsonWriter entry;
        std::optional<std::string_view> result_id;
        if (with_id) result_id = result.id;
        failedItem(entry, result.index, result_id, result.failure.status);
        result.failure.writeBody(entry);
        items_json += entry.endObject().endObject().text();
    }
    items_json += ']';
    if (refresh)
        for (Index* index : touched) refreshIndex(*index);
    if (status_and_errors) {
        constexpr std::string_view kFalse = "false";
        if (errors) items_json.replace(kStatusAnswerStart.find(kFalse), kFalse.size(), "true");
        items_json += '}';
        Response filtered{200, std::move(items_json)};
        filtered.filtered = true;
        return filtered;
    }
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    std::string answer = "{\"took\":";
    answer.reserve(items_json.size() + 48);
    appendJsonNumber(answer, took);
    answer += errors ? ",\"errors\":true,\"items\":" : ",\"errors\":false,\"items\":";
    answer += items_json;
    answer += '}';
    return {200, std::move(answer)};
}

// ---------------------------------------------------------------------------------------------------------
// _search, _count, _delete_by_query
// ---------------------------------------------------------------------------------------------------------

namespace {

struct Hit {
    const Cluster::Index* index;
    size_t index_order;
    const StoredDoc* doc;
    std::vector<SortValue> sort;
};

std::string tokenKind(const Value& value) {
    if (value.IsObject()) return "START_OBJECT";
    if (value.IsArray()) return "START_ARRAY";
    if (value.IsString()) return "VALUE_STRING";
    if (value.IsBool()) return "VALUE_BOOLEAN";
    if (value.IsNull()) return "VALUE_NULL";
    return "VALUE_NUMBER";
}

bool readSize(const Value& value, const std::string& name, int64_t& out, Failure& error) {
    if (value.IsInt64()) {
        out = value.GetInt64();
        return true;
    }
    if (value.IsString()) {
        int64_t number = 0;
        if (readLong(value.GetString(), number)) {
            out = number;
            return true;
        }
    }
    error = parsingException("[" + name + "] failed to parse field [" + name + "]");
    return false;
}

}  // namespace

Response Cluster::search(const std::string& expression, const std::string& body, const Params& params) {
    std::lock_guard<std::mutex> lock(mutex_);
    return searchLocked(expression, body, params, false);
}

Response Cluster::count(const std::string& expression, const std::string& body, const Params& params) {
    std::lock_guard<std::mutex> lock(mutex_);
    return searchLocked(expression, body, params, true);
}

Response Cluster::searchLocked(const std::string& expression, const std::string& body, const Params& params,
                               bool count_only) {
    auto started = Clock::now();
    Failure error;
    rapidjson::Document request;
    request.SetObject();
    if (!body.empty() && body.find_first_not_of(" \t\r\n") != std::string::npos) {
        if (!parseJson(body, request, error)) return failed(parsingException(error.reason));
        if (!request.IsObject())
            return failed(parsingException("Expected [START_OBJECT] but found [" + tokenKind(request) + "]"));
    }
    static const std::set<std::string> search_keys = {"query",         "size",
                                                      "from",          "sort",
                                                      "_source",       "track_total_hits",
                                                      "track_scores",  "timeout",
                                                      "version",       "seq_no_primary_term",
                                                      "stored_fields", "explain",
                                                      "min_score",     "terminate_after"};
    for (const auto& member : request.GetObject()) {
        std::string key = member.name.GetString();
        if (count_only ? key != "query" : search_keys.count(key) == 0) {
            if (count_only) return failed(parsingException("request does not support [" + key + "]"));
            return failed(
                parsingException("Unknown key for a " + tokenKind(member.value) + " in [" + key + "]."));
        }
    }
    int64_t size = 10, from = 0;
    if (request.HasMember("size") && !readSize(request["size"], "size", size, error)) return failed(error);
    if (request.HasMember("from") && !readSize(request["from"], "from", from, error)) return failed(error);
    if (auto text = param(params, "size"); text && !readLong(*text, size))
        return failed(illegalArgument("Failed to parse int parameter [size] with value [" + *text + "]"));
    if (auto text = param(params, "from"); text && !readLong(*text, from))
        return failed(illegalArgument("Failed to parse int parameter [from] with value [" + *text + "]"));
    if (size < 0)
        return failed(
            illegalArgument("[size] parameter cannot be negative, found [" + std::to_string(size) + "]"));
    if (from < 0)
        return failed(
            illegalArgument("[from] parameter cannot be negative, found [" + std::to_string(from) + "]"));

    // track_total_hits: true (exact), false (no total), or a threshold (default 10,000).
    int64_t track = 10000;
    bool track_disabled = false;
    auto readTrack = [&](const std::string& text) {
        if (text == "true")
            track = INT64_MAX;
        else if (text == "false")
            track_disabled = true;
        else if (!readLong(text, track))
            return false;
        return true;
    };
    if (request.HasMember("track_total_hits")) {
        const Value& value = request["track_total_hits"];
        if (value.IsBool())
            readTrack(value.GetBool() ? "true" : "false");
        else if (value.IsInt64())
            track = value.GetInt64();
    }
    if (auto text = param(params, "track_total_hits"); text && !readTrack(*text))
        return failed(illegalArgument("Failed to parse track_total_hits [" + *text + "]"));
    if (!track_disabled && track < -1)
        return failed(illegalArgument("[track_total_hits] parameter must be positive or equals to -1, got " +
                                      std::to_string(track)));
    if (track == -1) track = INT64_MAX;
    bool total_as_int = isTrue(params, "rest_total_hits_as_int");
    if (total_as_int && !track_disabled && track != INT64_MAX && param(params, "track_total_hits"))
        return failed(illegalArgument(
            "[rest_total_hits_as_int] cannot be used if the tracking of total hits is not accurate, got " +
            std::to_string(track)));
    if (total_as_int && !track_disabled) track = INT64_MAX;

    SourceFilter filter = sourceFilterFromParams(params);
    if (request.HasMember("_source")) {
        const Value& source = request["_source"];
        if (source.IsBool())
            filter.enabled = source.GetBool();
        else if (source.IsObject()) {
            if (source.HasMember("includes")) readPatternList(source["includes"], filter.includes);
            if (source.HasMember("excludes")) readPatternList(source["excludes"], filter.excludes);
        } else {
            readPatternList(source, filter.includes);
        }
    }

    std::vector<Index*> targets;
    if (!resolve(expression, targets, error)) return failed(error);

    // URL sort ("field:desc,other") becomes a body sort.
    rapidjson::Document url_sort;
    const Value* sort_json = request.HasMember("sort") ? &request["sort"] : nullptr;
    if (auto text = param(params, "sort")) {
        url_sort.SetArray();
        for (const auto& part : splitCommas(*text)) {
            size_t colon = part.rfind(':');
            Value entry(rapidjson::kObjectType);
            std::string field = colon == std::string::npos ? part : part.substr(0, colon);
            std::string order = colon == std::string::npos ? "asc" : part.substr(colon + 1);
            entry.AddMember(Value(field.c_str(), url_sort.GetAllocator()),
                            Value(order.c_str(), url_sort.GetAllocator()), url_sort.GetAllocator());
            url_sort.PushBack(entry, url_sort.GetAllocator());
        }
        sort_json = &url_sort;
    }

    std::vector<Hit> hits;
    std::vector<SortKey> first_keys;
    int total_shards = 0, failed_shards = 0;
    std::vector<std::pair<const Index*, Failure>> failures;
    std::vector<std::unique_ptr<Query>> keep_queries;
    for (size_t order = 0; order < targets.size(); ++order) {
        Index* index = targets[order];
        total_shards += index->shards;
        QueryError kind = QueryError::kNone;
        auto query = compileQuery(request.HasMember("query") ? &request["query"] : nullptr, index->mapping,
                                  error, kind);
        std::vector<SortKey> keys;
        if (query && !count_only) compileSort(sort_json, index->mapping, keys, error, kind);
        if (kind == QueryError::kRequest) return failed(error);
        if (kind == QueryError::kShard) {
            failed_shards += index->shards;
            failures.emplace_back(index, error);
            continue;
        }
        if (first_keys.empty()) first_keys = keys;
        for (const auto& [id, doc] : index->searchable) {
            if (!query->matches(*doc)) continue;
            Hit hit{index, order, doc.get(), {}};
            for (const auto& key : keys) hit.sort.push_back(sortValue(key, *doc));
            hits.push_back(std::move(hit));
        }
    }
    if (!failures.empty() && failed_shards == total_shards) {
        const auto& [index, failure] = failures.front();
        return failed(searchPhaseFailure(index->name, index->uuid, failure));
    }
    int64_t window_limit = targets.empty() ? 10000 : targets.front()->max_result_window;
    if (!count_only && !targets.empty() && from + size > window_limit) {
        Failure window =
            illegalArgument("Result window is too large, from + size must be less than or equal to: [" +
                            std::to_string(window_limit) + "] but was [" + std::to_string(from + size) +
                            "]. See the scroll api for a more efficient way to request large data sets. This "
                            "limit can be set by "
                            "changing the [index.max_result_window] index level setting.");
        return failed(searchPhaseFailure(targets.front()->name, targets.front()->uuid, window));
    }
    bool sorted = !first_keys.empty();
    bool score_only = !sorted || (first_keys.size() == 1 && first_keys.front().kind == SortKey::Kind::kScore);
    // Every hit scores 1.0 (no relevance model): score order is index order, then document order.
    std::stable_sort(hits.begin(), hits.end(), [&](const Hit& a, const Hit& b) {
        for (size_t k = 0; k < first_keys.size(); ++k) {
            const SortKey& key = first_keys[k];
            if (key.kind == SortKey::Kind::kScore) continue;
            if (key.kind == SortKey::Kind::kDoc) {
                if (a.index_order != b.index_order) return (a.index_order < b.index_order) != key.descending;
                if (a.doc->seq_no != b.doc->seq_no) return (a.doc->seq_no < b.doc->seq_no) != key.descending;
                continue;
            }
            int order = compareSortValues(key, a.sort[k], b.sort[k]);
            if (order != 0) return order < 0;
        }
        if (a.index_order != b.index_order) return a.index_order < b.index_order;
        return a.doc->seq_no < b.doc->seq_no;
    });

    JsonWriter out;
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    if (count_only) {
        out.beginObject().key("count").num(static_cast<int64_t>(hits.size()));
        out.key("_shards")
            .beginObject()
            .key("total")
            .num(total_shards)
            .key("successful")
            .num(total_shards - failed_shards);
        out.key("skipped").num(0).key("failed").num(failed_shards).endObject().endObject();
        return ok(out);
    }
    out.beginObject().key("took").num(took).key("timed_out").boolean(false);
    out.key("_shards")
        .beginObject()
        .key("total")
        .num(total_shards)
        .key("successful")
        .num(total_shards - failed_shards);
    out.key("skipped").num(0).key("failed").num(failed_shards);
    if (!failures.empty()) {
        out.key("failures").beginArray();
        for (const auto& [index, failure] : failures) {
            out.beginObject()
                .key("shard")
                .num(0)
                .key("index")
                .str(index->name)
                .key("node")
                .str(index->uuid.substr(0, 22));
            out.key("reason");
            failure.writeBody(out);
            out.endObject();
        }
        out.endArray();
    }
    out.endObject();
    out.key("hits").beginObject();
    int64_t total = static_cast<int64_t>(hits.size());
    if (!track_disabled) {
        if (total_as_int) {
            out.key("total").num(total);
        } else {
            bool capped = total > track;
            out.key("total").beginObject().key("value").num(capped ? track : total);
            out.key("relation").str(capped ? "gte" : "eq").endObject();
        }
    } else if (total_as_int) {
        out.key("total").num(-1);
    }
    bool scores = score_only || (request.HasMember("track_scores") && request["track_scores"].IsTrue());
    if (scores && !hits.empty())
        out.key("max_score").dbl(1.0);
    else
        out.key("max_score").null();
    out.key("hits").beginArray();
    bool with_version =
        (request.HasMember("version") && request["version"].IsTrue()) || isTrue(params, "version");
    bool with_seq_no =
        (request.HasMember("seq_no_primary_term") && request["seq_no_primary_term"].IsTrue()) ||
        isTrue(params, "seq_no_primary_term");
    for (int64_t i = from; i < static_cast<int64_t>(hits.size()) && i < from + size; ++i) {
        const Hit& hit = hits[static_cast<size_t>(i)];
        out.beginObject().key("_index").str(hit.index->name).key("_id").str(hit.doc->id);
        if (with_version) out.key("_version").num(hit.doc->version);
        if (with_seq_no) out.key("_seq_no").num(hit.doc->seq_no).key("_primary_term").num(kPrimaryTerm);
        out.key("_score");
        if (scores)
            out.dbl(1.0);
        else
            out.null();
        if (filter.enabled) {
            out.key("_source");
            filter.write(out, hit.doc->source);
        }
        if (sorted && !score_only) {
            out.key("sort").beginArray();
            for (size_t k = 0; k < first_keys.size(); ++k) {
                if (first_keys[k].kind == SortKey::Kind::kScore)
                    out.dbl(1.0);
                else if (first_keys[k].kind == SortKey::Kind::kDoc)
                    out.num(hit.doc->seq_no);
                else
                    writeSortValue(out, first_keys[k], hit.sort[k]);
            }
            out.endArray();
        }
        out.endObject();
    }
    out.endArray().endObject().endObject();
    return ok(out);
}

Response Cluster::deleteByQuery(const std::string& expression, const std::string& body,
                                const Params& params) {
    auto started = Clock::now();
    std::lock_guard<std::mutex> lock(mutex_);
    Failure error;
    rapidjson::Document request;
    request.SetObject();
    if (!body.empty() && !parseJson(body, request, error)) return failed(parsingException(error.reason));
    if (!request.IsObject()) return failed(parsingException("Expected [START_OBJECT]"));
    for (const auto& member : request.GetObject()) {
        std::string key = member.name.GetString();
        if (key != "query" && key != "max_docs" && key != "size" && key != "slice")
            return failed(
                parsingException("[" + std::string("delete_by_query") + "] unknown field [" + key + "]"));
    }
    if (!request.HasMember("query")) return failed(validationFailed({"query is missing"}));
    if (param(params, "wait_for_completion") == std::optional<std::string>("false"))
        return failed(
            illegalArgument("wait_for_completion=false is not implemented by pgstream-search-mock"));
    std::string conflicts = param(params, "conflicts").value_or("abort");
    if (conflicts != "abort" && conflicts != "proceed")
        return failed(
            illegalArgument("conflicts may only be \"proceed\" or \"abort\" but was [" + conflicts + "]"));
    int64_t max_docs = -1, scroll_size = 1000;
    if (request.HasMember("max_docs") && request["max_docs"].IsInt64())
        max_docs = request["max_docs"].GetInt64();
    if (auto text = param(params, "max_docs")) readLong(*text, max_docs);
    if (auto text = param(params, "size")) readLong(*text, max_docs);
    if (auto text = param(params, "scroll_size")) readLong(*text, scroll_size);
    bool refresh = isTrue(params, "refresh");

    std::vector<Index*> targets;
    if (!resolve(expression, targets, error)) return failed(error);
    // Matches come from the searchable (last refreshed) view, as the engine's scroll does; each delete then
    // checks the seq_no it saw against the live document.
    struct Match {
        Index* index;
        DocPtr doc;
    };
    std::vector<Match> matches;
    for (Index* index : targets) {
        QueryError kind = QueryError::kNone;
        auto query = compileQuery(&request["query"], index->mapping, error, kind);
        if (kind == QueryError::kRequest) return failed(error);
        if (kind == QueryError::kShard) return failed(searchPhaseFailure(index->name, index->uuid, error));
        for (const auto& [id, doc] : index->searchable)
            if (query->matches(*doc)) matches.push_back({index, doc});
    }
    if (max_docs >= 0 && static_cast<int64_t>(matches.size()) > max_docs)
        matches.resize(static_cast<size_t>(max_docs));
    int64_t deleted = 0, version_conflicts = 0;
    JsonWriter failure_list;
    failure_list.beginArray();
    bool aborted = false;
    for (const auto& match : matches) {
        WriteRequest del;
        del.op = WriteRequest::Op::kDelete;
        del.index = match.index->name;
        del.id = match.doc->id;
        del.if_seq_no = match.doc->seq_no;
        del.if_primary_term = kPrimaryTerm;
        WriteResult result = applyWrite(del);
        if (result.ok) {
            ++deleted;
            continue;
        }
        ++version_conflicts;
        if (conflicts == "abort") {
            failure_list.beginObject().key("index").str(match.index->name).key("id").str(match.doc->id);
            failure_list.key("cause");
            result.failure.writeBody(failure_list);
            failure_list.key("status").num(409).endObject();
            aborted = true;
            break;
        }
    }
    failure_list.endArray();
    if (refresh)
        for (Index* index : targets) refreshIndex(*index);
    int64_t total = static_cast<int64_t>(matches.size());
    int64_t batches = scroll_size > 0 ? std::max<int64_t>(1, (total + scroll_size - 1) / scroll_size) : 1;
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    JsonWriter out;
    out.beginObject().key("took").num(took).key("timed_out").boolean(false).key("total").num(total);
    out.key("deleted")
        .num(deleted)
        .key("batches")
        .num(batches)
        .key("version_conflicts")
        .num(version_conflicts);
    out.key("noops").num(0).key("retries").beginObject().key("bulk").num(0).key("search").num(0).endObject();
    out.key("throttled_millis")
        .num(0)
        .key("requests_per_second")
        .dbl(-1.0)
        .key("throttled_until_millis")
        .num(0);
    out.key("failures").raw(failure_list.text()).endObject();
    return ok(out, aborted ? 409 : 200);
}

// ---------------------------------------------------------------------------------------------------------
// Aliases
// ---------------------------------------------------------------------------------------------------------

Response Cluster::updateAliases(const std::string& body) {
    std::lock_guard<std::mutex> lock(mutex_);
    Failure error;
    rapidjson::Document request;
    if (!parseJson(body, request, error)) return failed(parsingException(error.reason));
    if (!request.IsObject() || !request.HasMember("actions") || !request["actions"].IsArray())
        return failed(validationFailed({"no alias actions"}));
    // All actions are checked before any is applied: the update is atomic.
    struct Action {
        std::string kind;
        std::vector<Index*> indices;
        std::vector<std::string> aliases;
        AliasOptions options;
    };
    std::vector<Action> actions;
    for (const auto& entry : request["actions"].GetArray()) {
        if (!entry.IsObject() || entry.MemberCount() != 1)
            return failed(parsingException("[aliases] failed to parse field [actions]"));
        const auto& member = *entry.MemberBegin();
        Action action;
        action.kind = member.name.GetString();
        if (action.kind != "add" && action.kind != "remove" && action.kind != "remove_index")
            return failed(parsingException("[aliases] unknown field [" + action.kind + "]"));
        const Value& spec = member.value;
        if (!spec.IsObject()) return failed(parsingException("[aliases] failed to parse field [actions]"));
        auto index_names = stringList(spec, "index", "indices");
        if (index_names.empty()) return failed(validationFailed({"One of [index] or [indices] is required"}));
        for (const auto& name : index_names) {
            std::vector<Index*> resolved;
            if (name.find('*') == std::string::npos && findIndex(name) == nullptr)
                return failed(indexNotFound(name));
            if (!resolve(name, resolved, error)) return failed(error);
            action.indices.insert(action.indices.end(), resolved.begin(), resolved.end());
        }
        if (action.kind != "remove_index") {
            action.aliases = stringList(spec, "alias", "aliases");
            if (action.aliases.empty())
                return failed(validationFailed({"One of [alias] or [aliases] is required"}));
        }
        if (action.kind == "add") {
            readAliasOptions(spec, action.options);
            for (const auto& alias : action.aliases)
                if (findIndex(alias) != nullptr) return failed(invalidAlias(alias));
        }
        if (action.kind == "remove") {
            std::vector<std::string> missing;
            for (const auto& alias : action.aliases) {
                bool found = false;
                for (Index* index : action.indices)
                    for (const auto& [name, options] : index->aliases)
                        if (globMatch(alias, name)) found = true;
                if (!found && !(spec.HasMember("must_exist") && spec["must_exist"].IsFalse()))
                    missing.push_back(alias);
            }
            if (!missing.empty()) return failed(aliasesMissing(missing));
        }
        actions.push_back(std::move(action));
    }
    for (auto& action : actions) {
        for (Index* index : action.indices) {
            if (action.kind == "add")
                for (const auto& alias : action.aliases) index->aliases[alias] = action.options;
            if (action.kind == "remove") {
                for (const auto& alias : action.aliases) {
                    for (auto it = index->aliases.begin(); it != index->aliases.end();)
                        it = globMatch(alias, it->first) ? index->aliases.erase(it) : std::next(it);
                }
            }
        }
        if (action.kind == "remove_index")
            for (Index* index : action.indices) indices_.erase(index->name);
    }
    return acknowledged();
}

Response Cluster::putAlias(const std::string& index_expression, const std::string& alias,
                           const std::string& body) {
    std::lock_guard<std::mutex> lock(mutex_);
    Failure error;
    std::vector<Index*> targets;
    if (!resolve(index_expression, targets, error)) return failed(error);
    if (findIndex(alias) != nullptr) return failed(invalidAlias(alias));
    AliasOptions options;
    if (!body.empty()) {
        rapidjson::Document spec;
        if (!parseJson(body, spec, error)) return failed(parsingException(error.reason));
        readAliasOptions(spec, options);
    }
    for (Index* index : targets) index->aliases[alias] = options;
    return acknowledged();
}

Response Cluster::deleteAlias(const std::string& index_expression, const std::string& alias_expression) {
    std::lock_guard<std::mutex> lock(mutex_);
    Failure error;
    std::vector<Index*> targets;
    if (!resolve(index_expression, targets, error)) return failed(error);
    std::vector<std::string> missing;
    for (const auto& pattern : splitCommas(alias_expression)) {
        bool found = false;
        for (Index* index : targets) {
            for (auto it = index->aliases.begin(); it != index->aliases.end();) {
                if (pattern == "_all" || globMatch(pattern, it->first)) {
                    found = true;
                    it = index->aliases.erase(it);
                } else {
                    ++it;
                }
            }
        }
        if (!found) missing.push_back(pattern);
    }
    if (!missing.empty()) return failed(aliasesMissing(missing));
    return acknowledged();
}

Response Cluster::getAliases(const std::string& index_expression, const std::string& alias_expression) {
    std::lock_guard<std::mutex> lock(mutex_);
    Failure error;
    std::vector<Index*> targets;
    if (!resolve(index_expression.empty() ? "_all" : index_expression, targets, error)) return failed(error);
    auto patterns = splitCommas(alias_expression);
    std::set<std::string> seen;
    JsonWriter out;
    out.beginObject();
    for (Index* index : targets) {
        std::vector<std::pair<std::string, const AliasOptions*>> chosen;
        for (const auto& [name, options] : index->aliases) {
            bool wanted = patterns.empty();
            for (const auto& pattern : patterns)
                if (pattern == "_all" || globMatch(pattern, name)) wanted = true;
            if (wanted) {
                chosen.emplace_back(name, &options);
                seen.insert(name);
            }
        }
        if (chosen.empty() && !patterns.empty()) continue;
        out.key(index->name).beginObject().key("aliases").beginObject();
        for (const auto& [name, options] : chosen) {
            out.key(name);
            writeAliasOptions(out, *options);
        }
        out.endObject().endObject();
    }
    std::vector<std::string> missing;
    for (const auto& pattern : patterns)
        if (pattern.find('*') == std::string::npos && pattern != "_all" && seen.count(pattern) == 0)
            missing.push_back(pattern);
    if (!missing.empty()) {
        // The engine answers a missing alias with a bare message next to whatever it did find.
        std::string list;
        for (const auto& name : missing) list += (list.empty() ? "" : ",") + name;
        JsonWriter partial;
        partial.beginObject();
        partial.key("error").str((missing.size() == 1 ? "alias [" : "aliases [") + list + "] missing");
        partial.key("status").num(404);
        partial.endObject();
        return {404, partial.text()};
    }
    out.endObject();
    return ok(out);
}

Response Cluster::aliasExists(const std::string& index_expression, const std::string& alias_expression) {
    Response response = getAliases(index_expression, alias_expression);
    if (response.status != 200) return {404, ""};
    return {response.body == "{}" ? 404 : 200, ""};
}

}  // namespace search_mock
