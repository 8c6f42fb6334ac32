#include "mapping.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <set>

namespace search_mock {

using rapidjson::Value;

bool Term::operator==(const Term& other) const {
    return compare(other) == 0;
}

int Term::compare(const Term& other) const {
    if (kind != other.kind) {
        // Mixed numbers (a long field queried with a double value) compare numerically.
        bool numeric = (kind == Kind::kLong || kind == Kind::kDouble) &&
                       (other.kind == Kind::kLong || other.kind == Kind::kDouble);
        if (!numeric) return kind < other.kind ? -1 : 1;
        double left = kind == Kind::kLong ? static_cast<double>(integer) : real;
        double right = other.kind == Kind::kLong ? static_cast<double>(other.integer) : other.real;
        return left < right ? -1 : (left > right ? 1 : 0);
    }
    switch (kind) {
        case Kind::kString:
            return text.compare(other.text) < 0 ? -1 : (text == other.text ? 0 : 1);
        case Kind::kDouble:
            return real < other.real ? -1 : (real > other.real ? 1 : 0);
        default:
            return integer < other.integer ? -1 : (integer > other.integer ? 1 : 0);
    }
}

namespace {

// ---------------------------------------------------------------------------------------------------------
// Mapping definitions
// ---------------------------------------------------------------------------------------------------------

const std::set<std::string> kNumericTypes = {"long",   "integer", "short",     "byte",
                                             "double", "float",   "half_float"};

std::set<std::string> allowedParameters(const std::string& type, Flavor flavor) {
    std::set<std::string> common = {"type",    "index",  "store",      "doc_values",       "meta",
                                    "copy_to", "fields", "null_value", "ignore_malformed", "boost"};
    auto with = [&common](std::initializer_list<const char*> more) {
        std::set<std::string> result = common;
        for (const char* name : more) result.insert(name);
        return result;
    };
    if (type == "keyword")
        return with({"ignore_above", "normalizer", "eager_global_ordinals", "index_options", "norms",
                     "similarity", "split_queries_on_whitespace"});
    if (type == "text")
        return with({"analyzer", "search_analyzer", "search_quote_analyzer", "fielddata",
                     "fielddata_frequency_filter", "index_options", "index_prefixes", "index_phrases",
                     "norms", "position_increment_gap", "similarity", "term_vector",
                     "eager_global_ordinals"});
    if (kNumericTypes.count(type) != 0) return with({"coerce"});
    if (type == "boolean" || type == "ip" || type == "binary") return common;
    if (type == "date") return with({"format", "locale", "print_format"});
    if (type == "alias") return {"type", "path"};
    if (type == "knn_vector" && flavor == Flavor::kOpenSearch)
        return {"type", "dimension",         "method",     "model_id", "data_type", "space_type",
                "mode", "compression_level", "doc_values", "meta"};
    if (type == "dense_vector" && flavor == Flavor::kElasticsearch)
        return {"type", "dims", "index", "similarity", "index_options", "element_type", "meta"};
    return {};
}

bool isVectorType(const std::string& type) {
    return type == "knn_vector" || type == "dense_vector";
}

std::string dynamicText(const Value& value) {
    if (value.IsBool()) return value.GetBool() ? "true" : "false";
    if (value.IsString()) return value.GetString();
    return "?";
}

// "a.b": {...} in properties means an object "a" with a field "b"; ES stores it that way.
void expandDottedProperties(Value& properties, rapidjson::Document::AllocatorType& alloc) {
    if (!properties.IsObject()) return;
    bool changed = true;
    while (changed) {
        changed = false;
        for (auto member = properties.MemberBegin(); member != properties.MemberEnd(); ++member) {
            std::string name = member->name.GetString();
            size_t dot = name.find('.');
            if (dot == std::string::npos || dot == 0 || dot + 1 == name.size()) continue;
            std::string head = name.substr(0, dot), rest = name.substr(dot + 1);
            Value field(member->value, alloc);
            properties.RemoveMember(member);
            if (!properties.HasMember(head.c_str())) {
                Value object(rapidjson::kObjectType);
                object.AddMember("properties", Value(rapidjson::kObjectType), alloc);
                properties.AddMember(Value(head.c_str(), alloc), object, alloc);
            }
            Value& parent = properties[head.c_str()];
            if (!parent.IsObject()) break;
            if (!parent.HasMember("properties"))
                parent.AddMember("properties", Value(rapidjson::kObjectType), alloc);
            parent["properties"].AddMember(Value(rest.c_str(), alloc), field, alloc);
            changed = true;
            break;
        }
    }
    for (auto& member : properties.GetObject()) {
        if (member.value.IsObject() && member.value.HasMember("properties"))
            expandDottedProperties(member.value["properties"], alloc);
        if (member.value.IsObject() && member.value.HasMember("dynamic") &&
            member.value["dynamic"].IsBool()) {
            bool flag = member.value["dynamic"].GetBool();
            member.value["dynamic"].SetString(flag ? "true" : "false", alloc);
        }
    }
}

void normalizeRoot(Value& root, rapidjson::Document::AllocatorType& alloc) {
    if (!root.IsObject()) return;
    if (root.HasMember("dynamic") && root["dynamic"].IsBool()) {
        bool flag = root["dynamic"].GetBool();
        root["dynamic"].SetString(flag ? "true" : "false", alloc);
    }
    if (root.HasMember("properties")) expandDottedProperties(root["properties"], alloc);
}

struct BuildContext {
    Flavor flavor;
    std::string error_reason;  // the inner mapper_parsing_exception's reason
    bool empty_name = false;   // reported with an illegal_argument_exception cause
};

bool buildField(const std::string& name, const std::string& full_path, const Value& json, FieldMapping& out,
                BuildContext& ctx);

bool buildProperties(const Value& properties, const std::string& prefix, FieldMapping& object,
                     BuildContext& ctx) {
    if (!properties.IsObject()) {
        ctx.error_reason =
            "Expected map for property [properties] on field [" + prefix + "] but got a " +
            std::string(properties.IsArray() ? "class java.util.ArrayList" : "class java.lang.String");
        return false;
    }
    for (const auto& member : properties.GetObject()) {
        std::string name = member.name.GetString();
        if (name.empty()) {
            ctx.error_reason = "name cannot be empty string";
            ctx.empty_name = true;
            return false;
        }
        FieldMapping field;
        std::string full = prefix.empty() ? name : prefix + "." + name;
        if (!member.value.IsObject()) {
            ctx.error_reason =
                "Expected map for property [fields] on field [" + name + "] but got a class java.lang.String";
            return false;
        }
        if (!buildField(name, full, member.value, field, ctx)) return false;
        object.properties.emplace(name, std::move(field));
    }
    return true;
}

bool buildObject(const std::string& name, const std::string& full_path, const Value& json, FieldMapping& out,
                 BuildContext& ctx) {
    out.type = json.HasMember("type") && json["type"].IsString() ? json["type"].GetString() : "object";
    static const std::set<std::string> allowed = {"type",    "properties",        "dynamic",
                                                  "enabled", "include_in_parent", "include_in_root"};
    for (const auto& member : json.GetObject()) {
        std::string key = member.name.GetString();
        if (allowed.count(key) == 0) {
            ctx.error_reason =
                "unknown parameter [" + key + "] on mapper [" + name + "] of type [" + out.type + "]";
            return false;
        }
    }
    if (json.HasMember("dynamic")) {
        out.dynamic = dynamicText(json["dynamic"]);
        if (out.dynamic != "true" && out.dynamic != "false" && out.dynamic != "strict" &&
            out.dynamic != "runtime") {
            ctx.error_reason = "Could not convert [dynamic] to boolean";
            return false;
        }
    }
    if (json.HasMember("enabled")) out.enabled = !json["enabled"].IsBool() || json["enabled"].GetBool();
    if (json.HasMember("properties")) return buildProperties(json["properties"], full_path, out, ctx);
    return true;
}

bool buildField(const std::string& name, const std::string& full_path, const Value& json, FieldMapping& out,
                BuildContext& ctx) {
    if (!json.HasMember("type")) {
        if (json.HasMember("properties") || json.HasMember("dynamic") || json.HasMember("enabled") ||
            json.ObjectEmpty())
            return buildObject(name, full_path, json, out, ctx);
        ctx.error_reason = "No type specified for field [" + name + "]";
        return false;
    }
    if (!json["type"].IsString()) {
        ctx.error_reason = "No type specified for field [" + name + "]";
        return false;
    }
    std::string type = json["type"].GetString();
    if (type == "object" || type == "nested") return buildObject(name, full_path, json, out, ctx);
    std::set<std::string> allowed = allowedParameters(type, ctx.flavor);
    if (allowed.empty()) {
        ctx.error_reason = "No handler for type [" + type + "] declared on field [" + name + "]";
        return false;
    }
    out.type = type;
    for (const auto& member : json.GetObject()) {
        std::string key = member.name.GetString();
        if (allowed.count(key) == 0) {
            ctx.error_reason =
                "unknown parameter [" + key + "] on mapper [" + name + "] of type [" + type + "]";
            return false;
        }
    }
    if (json.HasMember("index") && json["index"].IsBool()) out.index = json["index"].GetBool();
    if (json.HasMember("coerce") && json["coerce"].IsBool()) out.coerce = json["coerce"].GetBool();
    if (json.HasMember("fielddata") && json["fielddata"].IsBool())
        out.fielddata = json["fielddata"].GetBool();
    if (type == "keyword" && json.HasMember("ignore_above")) {
        const Value& limit = json["ignore_above"];
        if (!limit.IsInt64() || limit.GetInt64() < 0) {
            ctx.error_reason = "Failed to parse value [" + toJson(limit) + "] for parameter [ignore_above]";
            return false;
        }
        out.ignore_above = limit.GetInt64();
    }
    if (type == "date") {
        std::string spec = DateFormat::kDefault;
        if (json.HasMember("format")) {
            if (!json["format"].IsString()) {
                ctx.error_reason = "Error parsing [format] on field [" + name + "]: expected a string";
                return false;
            }
            spec = json["format"].GetString();
        }
        std::string why;
        auto format = DateFormat::compile(spec, why);
        if (!format) {
            ctx.error_reason = "Error parsing [format] on field [" + name + "]: " + why;
            return false;
        }
        out.format = std::make_shared<DateFormat>(*format);
    }
    if (type == "alias") {
        if (!json.HasMember("path") || !json["path"].IsString()) {
            ctx.error_reason = "The [path] property must be specified for field [" + name + "].";
            return false;
        }
        out.path = json["path"].GetString();
    }
    if (type == "knn_vector") {
        if (!json.HasMember("dimension") && !json.HasMember("model_id")) {
            ctx.error_reason = "Dimension value missing for vector: " + name;
            return false;
        }
        if (json.HasMember("dimension")) {
            const Value& dimension = json["dimension"];
            if (!dimension.IsInt() || dimension.GetInt() <= 0) {
                ctx.error_reason = "Dimension value must be greater than 0 for vector: " + name;
                return false;
            }
            if (dimension.GetInt() > 16000) {
                ctx.error_reason = "Dimension value cannot be greater than 16000 for vector: " + name;
                return false;
            }
            out.dimension = dimension.GetInt();
        }
    }
    if (type == "dense_vector" && json.HasMember("dims")) {
        const Value& dims = json["dims"];
        if (!dims.IsInt() || dims.GetInt() < 1 || dims.GetInt() > 4096) {
            ctx.error_reason = "The number of dimensions for field [" + name +
                               "] should be in the range [1, 4096] but was [" + toJson(dims) + "]";
            return false;
        }
        out.dimension = dims.GetInt();
    }
    if (json.HasMember("fields")) {
        const Value& fields = json["fields"];
        if (!fields.IsObject()) {
            ctx.error_reason =
                "Expected map for property [fields] on field [" + name + "] but got a " +
                std::string(fields.IsString() ? "class java.lang.String" : "class java.util.ArrayList");
            return false;
        }
        for (const auto& member : fields.GetObject()) {
            std::string sub = member.name.GetString();
            if (!member.value.IsObject()) {
                ctx.error_reason = "Expected map for property [fields] on field [" + sub + "]";
                return false;
            }
            FieldMapping field;
            if (!buildField(sub, full_path + "." + sub, member.value, field, ctx)) return false;
            if (field.isObject() || field.type == "alias") {
                ctx.error_reason = "Type [" + field.type + "] cannot be used in multi field";
                return false;
            }
            out.fields.emplace(sub, std::move(field));
        }
    }
    return true;
}

// Sets the flags that spare a document's fast path the type-name comparisons.
void classify(FieldMapping& field) {
    field.plain_leaf = !field.isObject() && field.type != "alias" && !isVectorType(field.type);
    field.any_scalar = field.type == "keyword" || field.type == "text";
    // convertScalar's ranges (rangeOf) for the types it reads as whole numbers.
    const std::pair<const char*, std::pair<int64_t, int64_t>> integer_types[] = {
        {"long", {INT64_MIN, INT64_MAX}},
        {"integer", {INT32_MIN, INT32_MAX}},
        {"short", {INT16_MIN, INT16_MAX}},
        {"byte", {INT8_MIN, INT8_MAX}}};
    for (const auto& [type, range] : integer_types) {
        if (field.type == type) {
            field.integral = true;
            field.integer_min = range.first;
            field.integer_max = range.second;
        }
    }
    for (auto& [name, child] : field.properties) classify(child);
    for (auto& [name, multi] : field.fields) classify(multi);
}

void flatten(const FieldMapping& object, const std::string& prefix,
             std::map<std::string, const FieldMapping*>& flat) {
    for (const auto& [name, field] : object.properties) {
        std::string full = prefix.empty() ? name : prefix + "." + name;
        flat[full] = &field;
        if (field.isObject()) flatten(field, full, flat);
        for (const auto& [sub, multi] : field.fields) flat[full + "." + sub] = &multi;
    }
}

// Field aliases must point at an existing concrete field: checked once the whole mapping is known.
bool checkAliases(const std::map<std::string, const FieldMapping*>& flat, BuildContext& ctx) {
    for (const auto& [path, field] : flat) {
        if (field->type != "alias") continue;
        std::string name = path.substr(path.rfind('.') == std::string::npos ? 0 : path.rfind('.') + 1);
        auto target = flat.find(field->path);
        std::string prefix = "Invalid [path] value [" + field->path + "] for field alias [" + path + "]: ";
        if (target == flat.end() || target->second->isObject()) {
            ctx.error_reason = prefix + "an alias must refer to an existing field in the mappings.";
            return false;
        }
        if (target->second->type == "alias") {
            ctx.error_reason = prefix + "an alias cannot refer to another alias.";
            return false;
        }
        if (field->path == path) {
            ctx.error_reason = prefix + "an alias cannot refer to itself.";
            return false;
        }
    }
    return true;
}

Failure mappingFailure(Flavor flavor, const BuildContext& ctx) {
    std::string outer =
        (flavor == Flavor::kOpenSearch ? "Failed to parse mapping [_doc]: " : "Failed to parse mapping: ") +
        ctx.error_reason;
    Failure failure = mapperParsing(outer);
    if (ctx.empty_name)
        failure.causedBy(illegalArgument(ctx.error_reason));
    else
        failure.causedBy(mapperParsing(ctx.error_reason));
    return failure;
}

// ---------------------------------------------------------------------------------------------------------
// Mapping updates
// ---------------------------------------------------------------------------------------------------------

const std::set<std::string> kUpdatableParameters = {"ignore_above",
                                                    "meta",
                                                    "fields",
                                                    "search_analyzer",
                                                    "search_quote_analyzer",
                                                    "path",
                                                    "ignore_malformed",
                                                    "properties",
                                                    "dynamic",
                                                    "type",
                                                    "copy_to",
                                                    "boost"};

std::string parameterText(const Value* value) {
    if (value == nullptr) return "default";
    if (value->IsString()) return value->GetString();
    return toJson(*value);
}

bool mergeField(const std::string& path, Value& existing, const Value& update,
                rapidjson::Document::AllocatorType& alloc, Failure& error);

bool mergeProperties(const std::string& prefix, Value& existing, const Value& update,
                     rapidjson::Document::AllocatorType& alloc, Failure& error) {
    for (const auto& member : update.GetObject()) {
        std::string name = member.name.GetString();
        std::string path = prefix.empty() ? name : prefix + "." + name;
        if (!existing.HasMember(member.name)) {
            existing.AddMember(Value(member.name, alloc), Value(member.value, alloc), alloc);
            continue;
        }
        if (!mergeField(path, existing[member.name], member.value, alloc, error)) return false;
    }
    return true;
}

std::string typeOf(const Value& field) {
    if (field.IsObject() && field.HasMember("type") && field["type"].IsString())
        return field["type"].GetString();
    return "object";
}

bool mergeField(const std::string& path, Value& existing, const Value& update,
                rapidjson::Document::AllocatorType& alloc, Failure& error) {
    if (!existing.IsObject() || !update.IsObject()) return true;  // rejected by the rebuild that follows
    std::string old_type = typeOf(existing), new_type = typeOf(update);
    bool old_object = old_type == "object" || old_type == "nested";
    bool new_object = new_type == "object" || new_type == "nested";
    if (old_object != new_object) {
        error = illegalArgument("can't merge a non object mapping [" + path + "] with an object mapping");
        return false;
    }
    if (old_type != new_type) {
        error = illegalArgument("mapper [" + path + "] cannot be changed from type [" + old_type + "] to [" +
                                new_type + "]");
        return false;
    }
    if (old_object) {
        if (update.HasMember("dynamic")) {
            if (existing.HasMember("dynamic")) existing.RemoveMember("dynamic");
            existing.AddMember("dynamic", Value(update["dynamic"], alloc), alloc);
        }
        if (update.HasMember("properties") && update["properties"].IsObject()) {
            if (!existing.HasMember("properties"))
                existing.AddMember("properties", Value(rapidjson::kObjectType), alloc);
            return mergeProperties(path, existing["properties"], update["properties"], alloc, error);
        }
        return true;
    }
    // A leaf: parameters that cannot change must be given again with the same value.
    std::set<std::string> names;
    for (const auto& member : existing.GetObject()) names.insert(member.name.GetString());
    for (const auto& member : update.GetObject()) names.insert(member.name.GetString());
    std::vector<std::string> conflicts;
    for (const auto& name : names) {
        if (kUpdatableParameters.count(name) != 0) continue;
        const Value* before = existing.HasMember(name.c_str()) ? &existing[name.c_str()] : nullptr;
        const Value* after = update.HasMember(name.c_str()) ? &update[name.c_str()] : nullptr;
        if (before != nullptr && after != nullptr && *before == *after) continue;
        conflicts.push_back("Cannot update parameter [" + name + "] from [" + parameterText(before) +
                            "] to [" + parameterText(after) + "]");
    }
    if (!conflicts.empty()) {
        std::string reason = "Mapper for [" + path + "] conflicts with existing mapper:";
        for (const auto& conflict : conflicts) reason += "\n\t" + conflict;
        error = illegalArgument(reason);
        return false;
    }
    Value fields(rapidjson::kObjectType);
    if (existing.HasMember("fields")) fields.CopyFrom(existing["fields"], alloc);
    if (update.HasMember("fields") && update["fields"].IsObject() && fields.IsObject()) {
        if (!mergeProperties(path, fields, update["fields"], alloc, error)) return false;
    }
    existing.CopyFrom(update, alloc);
    if (fields.IsObject() && !fields.ObjectEmpty()) {
        if (existing.HasMember("fields")) existing.RemoveMember("fields");
        existing.AddMember("fields", fields, alloc);
    }
    return true;
}

// ---------------------------------------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------------------------------------

// What Java's Map/List toString prints, as the cluster previews a value that failed to parse.
std::string preview(const Value& value) {
    if (value.IsString()) return value.GetString();
    if (value.IsNull()) return "null";
    if (value.IsObject()) {
        std::string text = "{";
        bool first = true;
        for (const auto& member : value.GetObject()) {
            if (!first) text += ", ";
            first = false;
            text += std::string(member.name.GetString()) + "=" + preview(member.value);
        }
        return text + "}";
    }
    if (value.IsArray()) {
        std::string text = "[";
        bool first = true;
        for (const auto& element : value.GetArray()) {
            if (!first) text += ", ";
            first = false;
            text += preview(element);
        }
        return text + "]";
    }
    return toJson(value);
}

std::string tokenName(const Value& value) {
    if (value.IsObject()) return "START_OBJECT";
    if (value.IsArray()) return "START_ARRAY";
    if (value.IsString()) return "VALUE_STRING";
    if (value.IsBool()) return value.GetBool() ? "VALUE_TRUE" : "VALUE_FALSE";
    if (value.IsNull()) return "VALUE_NULL";
    if (value.IsInt64() || value.IsUint64()) return "VALUE_NUMBER_INT";
    return "VALUE_NUMBER_FLOAT";
}

// Java's Double.toString for the "out of range" messages ("1.0E20").
std::string javaDouble(double value) {
    char buffer[64];
    if (std::fabs(value) >= 1e7 || (value != 0 && std::fabs(value) < 1e-3)) {
        snprintf(buffer, sizeof buffer, "%.16E", value);
        std::string text = buffer;
        size_t e = text.find('E');
        std::string mantissa = text.substr(0, e), exponent = text.substr(e + 1);
        while (mantissa.size() > 3 && mantissa.back() == '0' && mantissa[mantissa.size() - 2] != '.')
            mantissa.pop_back();
        int exp = std::atoi(exponent.c_str());
        return mantissa + "E" + std::to_string(exp);
    }
    snprintf(buffer, sizeof buffer, "%.17g", value);
    std::string text = buffer;
    if (text.find('.') == std::string::npos) text += ".0";
    return text;
}

bool parseWholeDouble(const std::string& text, double& out) {
    if (text.empty() || std::isspace(static_cast<unsigned char>(text.front()))) return false;
    errno = 0;
    char* end = nullptr;
    out = std::strtod(text.c_str(), &end);
    return end == text.c_str() + text.size() && errno != ERANGE;
}

struct IntegerRange {
    int64_t min, max;
    const char* article_name;  // "a long", "an integer", ...
};

IntegerRange rangeOf(const std::string& type) {
    if (type == "integer") return {INT32_MIN, INT32_MAX, "an integer"};
    if (type == "short") return {INT16_MIN, INT16_MAX, "a short"};
    if (type == "byte") return {INT8_MIN, INT8_MAX, "a byte"};
    return {INT64_MIN, INT64_MAX, "a long"};
}

Failure numberFormat(const std::string& text) {
    Failure failure;
    failure.type = "number_format_exception";
    failure.reason = "For input string: \"" + text + "\"";
    return failure;
}

// Converts one scalar to the field's term. Returns false with the cause that the caller wraps in
// "failed to parse field [...]"; sets skip for values the engine ignores (null, "" for numbers).
bool convertScalar(const FieldMapping& field, const Value& value, Term& out, bool& skip, Failure& cause) {
    skip = false;
    const std::string& type = field.type;
    if (value.IsNull()) {
        skip = true;
        return true;
    }
    if (value.IsObject() || value.IsArray()) {
        cause = illegalArgument("Can't get text on a " + tokenName(value));
        return false;
    }
    if (type == "keyword" || type == "text" || type == "ip" || type == "binary") {
        std::string text = value.IsString() ? value.GetString() : toJson(value);
        out = Term::ofString(text);
        return true;
    }
    if (type == "boolean") {
        if (value.IsBool()) {
            out = Term::ofBool(value.GetBool());
            return true;
        }
        if (value.IsString()) {
            std::string text = value.GetString();
            if (text.empty()) {
                skip = true;
                return true;
            }
            if (text == "true" || text == "false") {
                out = Term::ofBool(text == "true");
                return true;
            }
            cause = illegalArgument("Failed to parse value [" + text +
                                    "] as only [true] or [false] are allowed.");
            return false;
        }
        cause = illegalArgument("Current token (" + tokenName(value) + ") not of boolean type");
        return false;
    }
    if (type == "date") {
        std::string text = value.IsString() ? value.GetString() : toJson(value);
        if (value.IsBool()) {
            cause = illegalArgument("Current token (" + tokenName(value) +
                                    ") not numeric, can not use numeric value accessors");
            return false;
        }
        if (auto millis = field.format->parse(text)) {
            out = Term::ofLong(*millis);
            return true;
        }
        cause = illegalArgument("failed to parse date field [" + text + "] with format [" +
                                field.format->spec() + "]");
        Failure inner;
        inner.type = "date_time_parse_exception";
        inner.reason = field.format->failureCause(text);
        cause.causedBy(inner);
        return false;
    }
    if (type == "double" || type == "float" || type == "half_float") {
        double number = 0;
        if (value.IsNumber()) {
            number = value.GetDouble();
        } else if (value.IsString()) {
            std::string text = value.GetString();
            if (text.empty()) {
                skip = true;
                return true;
            }
            if (!field.coerce) {
                cause = illegalArgument("Double value passed as String");
                return false;
            }
            if (!parseWholeDouble(text, number)) {
                cause = numberFormat(text);
                return false;
            }
        } else {
            cause = illegalArgument("Current token (" + tokenName(value) +
                                    ") not numeric, can not use numeric value accessors");
            return false;
        }
        if (type != "double") number = static_cast<double>(static_cast<float>(number));
        if (!std::isfinite(number)) {
            cause = illegalArgument("[" + type + "] supports only finite values, but got [" +
                                    std::string(number > 0   ? "Infinity"
                                                : number < 0 ? "-Infinity"
                                                             : "NaN") +
                                    "]");
            return false;
        }
        out = Term::ofDouble(number);
        return true;
    }
    // long, integer, short, byte
    IntegerRange range = rangeOf(type);
    auto outOfRange = [&](const std::string& shown) {
        cause = illegalArgument("Value [" + shown + "] is out of range for " + range.article_name);
        return false;
    };
    auto fromDouble = [&](double number, const std::string& shown) {
        // 2^63 itself is no longer a long: doubles at or above the next whole value past max are refused.
        double upper = range.max == INT64_MAX ? 9223372036854775808.0 : static_cast<double>(range.max) + 1.0;
        double truncated = std::trunc(number);
        if (!std::isfinite(number) || truncated < static_cast<double>(range.min) || truncated >= upper)
            return outOfRange(shown);
        if (!field.coerce && number != truncated) {
            cause = illegalArgument("Value [" + shown + "] has a decimal part");
            return false;
        }
        out = Term::ofLong(static_cast<int64_t>(truncated));
        return true;
    };
    if (value.IsInt64()) {
        int64_t number = value.GetInt64();
        if (number < range.min || number > range.max) return outOfRange(std::to_string(number));
        out = Term::ofLong(number);
        return true;
    }
    if (value.IsUint64()) return outOfRange(std::to_string(value.GetUint64()));
    if (value.IsDouble()) return fromDouble(value.GetDouble(), javaDouble(value.GetDouble()));
    if (value.IsString()) {
        std::string text = value.GetString();
        if (text.empty()) {
            skip = true;
            return true;
        }
        if (!field.coerce) {
            cause = illegalArgument(std::string(type == "integer" ? "Integer" : "Long") +
                                    " value passed as String");
            return false;
        }
        char* end = nullptr;
        errno = 0;
        long long whole = std::strtoll(text.c_str(), &end, 10);
        if (end == text.c_str() + text.size() && !text.empty() &&
            !std::isspace(static_cast<unsigned char>(text[0]))) {
            if (errno == ERANGE || whole < range.min || whole > range.max) return outOfRange(text);
            out = Term::ofLong(whole);
            return true;
        }
        double number = 0;
        if (!parseWholeDouble(text, number)) {
            if (type == "long") {
                cause = illegalArgument("For input string: \"" + text + "\"");
            } else {
                cause = numberFormat(text);
            }
            return false;
        }
        return fromDouble(number, text);
    }
    cause = illegalArgument("Current token (" + tokenName(value) +
                            ") not numeric, can not use numeric value accessors");
    return false;
}

// Where the value of a field starts in the source, as "[line:column]" (Elasticsearch 8 prefixes document
// errors with it). Found by the field's last name; approximate when the same name occurs twice.
std::string locate(const std::string& source, const std::string& full_path) {
    std::string name =
        full_path.substr(full_path.rfind('.') == std::string::npos ? 0 : full_path.rfind('.') + 1);
    std::string quoted = "\"" + name + "\"";
    size_t at = 0, found = std::string::npos;
    while ((at = source.find(quoted, at)) != std::string::npos) {
        size_t after = at + quoted.size();
        while (after < source.size() && std::isspace(static_cast<unsigned char>(source[after]))) ++after;
        if (after < source.size() && source[after] == ':') {
            ++after;
            while (after < source.size() && std::isspace(static_cast<unsigned char>(source[after]))) ++after;
            found = after;
            break;
        }
        at = after;
    }
    if (found == std::string::npos) found = 0;
    int line = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < found; ++i) {
        if (source[i] == '\n') {
            ++line;
            line_start = i + 1;
        }
    }
    return "[" + std::to_string(line) + ":" + std::to_string(found - line_start + 1) + "] ";
}

// The dynamic mapping of a new field, inferred from its first value (null and [] add nothing).
bool inferMapping(const Value& value, rapidjson::Document::AllocatorType& alloc, Value& out) {
    const Value* sample = &value;
    if (value.IsArray()) {
        sample = nullptr;
        for (const auto& element : value.GetArray()) {
            if (!element.IsNull()) {
                sample = &element;
                break;
            }
        }
        if (sample == nullptr || sample->IsArray()) return false;
    }
    out.SetObject();
    if (sample->IsNull()) return false;
    if (sample->IsObject()) {
        out.AddMember("properties", Value(rapidjson::kObjectType), alloc);
        return true;
    }
    if (sample->IsBool()) {
        out.AddMember("type", "boolean", alloc);
        return true;
    }
    if (sample->IsInt64() || sample->IsUint64()) {
        out.AddMember("type", "long", alloc);
        return true;
    }
    if (sample->IsNumber()) {
        out.AddMember("type", "float", alloc);
        return true;
    }
    std::string ignored;
    static const DateFormat detection = *DateFormat::compile("strict_date_optional_time", ignored);
    static const DateFormat slashes = *DateFormat::compile("yyyy/MM/dd HH:mm:ss||yyyy/MM/dd", ignored);
    std::string text = sample->GetString();
    if (detection.parse(text)) {
        out.AddMember("type", "date", alloc);
        return true;
    }
    if (slashes.parse(text)) {
        out.AddMember("type", "date", alloc);
        out.AddMember("format", "yyyy/MM/dd HH:mm:ss||yyyy/MM/dd", alloc);
        return true;
    }
    out.AddMember("type", "text", alloc);
    Value keyword(rapidjson::kObjectType);
    keyword.AddMember("type", "keyword", alloc);
    keyword.AddMember("ignore_above", 256, alloc);
    Value fields(rapidjson::kObjectType);
    fields.AddMember("keyword", keyword, alloc);
    out.AddMember("fields", fields, alloc);
    return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------

Mapping::Mapping(Flavor flavor) : flavor_(flavor) {
    json_.SetObject();
    auto root = std::make_shared<FieldMapping>();
    root->type = "object";
    root_ = std::move(root);
}

bool Mapping::rebuild(rapidjson::Document& candidate, Failure& error) {
    BuildContext ctx{flavor_, "", false};
    FieldMapping root;
    root.type = "object";
    static const std::set<std::string> root_parameters = {
        "properties",        "dynamic",           "_source", "_routing", "date_detection",
        "numeric_detection", "dynamic_templates", "_meta",   "enabled"};
    std::vector<std::string> unsupported;
    for (const auto& member : candidate.GetObject()) {
        std::string key = member.name.GetString();
        if (root_parameters.count(key) == 0) unsupported.push_back(key + " : " + preview(member.value));
    }
    if (!unsupported.empty()) {
        std::string list;
        for (const auto& entry : unsupported) list += (list.empty() ? "" : ", ") + entry;
        ctx.error_reason = "Root mapping definition has unsupported parameters:  [" + list + "]";
        error = mappingFailure(flavor_, ctx);
        return false;
    }
    if (candidate.HasMember("dynamic")) {
        root.dynamic = dynamicText(candidate["dynamic"]);
        if (root.dynamic != "true" && root.dynamic != "false" && root.dynamic != "strict" &&
            root.dynamic != "runtime") {
            ctx.error_reason = "Could not convert [dynamic] to boolean";
            error = mappingFailure(flavor_, ctx);
            return false;
        }
    }
    if (candidate.HasMember("properties") && !buildProperties(candidate["properties"], "", root, ctx)) {
        error = mappingFailure(flavor_, ctx);
        return false;
    }
    std::map<std::string, const FieldMapping*> flat;
    flatten(root, "", flat);
    if (!checkAliases(flat, ctx)) {
        error = mappingFailure(flavor_, ctx);
        return false;
    }
    json_.Swap(candidate);
    classify(root);
    root_ = std::make_shared<const FieldMapping>(std::move(root));
    flat_.clear();
    flatten(*root_, "", flat_);
    known_leaves_.clear();
    last_leaf_order_.clear();
    for (const auto& [name, field] : root_->properties)
        if (field.plain_leaf && !name.empty() && name.find('.') == std::string::npos)
            known_leaves_.emplace(name, &field);
    return true;
}

namespace {

// Mappings given under a type name (`{"_doc": {"properties": ...}}`) were removed in 7.0.
bool typedMapping(const Value& mappings) {
    if (!mappings.IsObject() || mappings.MemberCount() != 1) return false;
    const auto& only = *mappings.MemberBegin();
    std::string name = only.name.GetString();
    return name == "_doc" && only.value.IsObject();
}

}  // namespace

bool Mapping::create(const Value& mappings, Failure& error) {
    if (!mappings.IsObject()) {
        BuildContext ctx{flavor_, "Expected map for property [mappings] but got a class java.lang.String",
                         false};
        error = mappingFailure(flavor_, ctx);
        return false;
    }
    if (typedMapping(mappings)) {
        error = illegalArgument(
            "The mapping definition cannot be nested under a type [_doc] unless include_type_name "
            "is set to true.");
        return false;
    }
    rapidjson::Document candidate;
    candidate.CopyFrom(mappings, candidate.GetAllocator());
    normalizeRoot(candidate, candidate.GetAllocator());
    return rebuild(candidate, error);
}

bool Mapping::update(const Value& mappings, Failure& error) {
    if (!mappings.IsObject()) {
        error = mapperParsing("Failed to parse mapping: expected an object");
        return false;
    }
    if (typedMapping(mappings)) {
        error = illegalArgument("Types cannot be provided in put mapping requests");
        return false;
    }
    rapidjson::Document incoming;
    incoming.CopyFrom(mappings, incoming.GetAllocator());
    normalizeRoot(incoming, incoming.GetAllocator());
    // Validate the update on its own first: unknown types and parameters are refused as at creation.
    {
        rapidjson::Document copy;
        copy.CopyFrom(incoming, copy.GetAllocator());
        if (copy.HasMember("properties")) {
            // Aliases may point at fields that only the existing mapping has: checked after the merge.
            BuildContext ctx{flavor_, "", false};
            FieldMapping scratch;
            scratch.type = "object";
            if (!buildProperties(copy["properties"], "", scratch, ctx)) {
                error = mappingFailure(flavor_, ctx);
                return false;
            }
        }
    }
    rapidjson::Document candidate;
    candidate.CopyFrom(json_, candidate.GetAllocator());
    auto& alloc = candidate.GetAllocator();
    for (const auto& member : incoming.GetObject()) {
        std::string key = member.name.GetString();
        if (key == "properties" && member.value.IsObject()) {
            if (!candidate.HasMember("properties"))
                candidate.AddMember("properties", Value(rapidjson::kObjectType), alloc);
            if (!mergeProperties("", candidate["properties"], member.value, alloc, error)) return false;
        } else {
            if (candidate.HasMember(member.name)) candidate.RemoveMember(member.name);
            candidate.AddMember(Value(member.name, alloc), Value(member.value, alloc), alloc);
        }
    }
    return rebuild(candidate, error);
}

const FieldMapping* Mapping::resolve(const std::string& path, std::string& target_path) const {
    auto found = flat_.find(path);
    if (found == flat_.end()) return nullptr;
    target_path = path;
    if (found->second->type == "alias") {
        target_path = found->second->path;
        auto target = flat_.find(target_path);
        return target == flat_.end() ? nullptr : target->second;
    }
    return found->second;
}

namespace {

// Walks a document against a (candidate) mapping JSON, adding dynamic fields to it as it goes.
class DocumentParser {
  public:
    DocumentParser(Flavor flavor, rapidjson::Document& mapping, const std::string& id,
                   const std::string& source_text, IndexedFields& out)
        : flavor_(flavor), mapping_(mapping), id_(id), source_text_(source_text), out_(out) {}

    bool parseRoot(const Value& source, Failure& error) {
        if (!source.IsObject()) {
            error = documentError("failed to parse", "",
                                  illegalArgument("the document must be a JSON object"), true);
            return false;
        }
        return parseObject(source, {}, error);
    }

    bool changed() const { return changed_; }

    // Checks values without collecting their terms (the known-leaves path with deferred terms).
    void checkOnly() { check_only_ = true; }

    // The common document: every key a top-level leaf field the mapping already has (no dots, no objects,
    // aliases or vectors), every value valid for its field. Indexes it straight from the typed mapping
    // (`root`), without the per-document copy of the mapping JSON and the per-field rebuild that the general
    // walk needs for dynamic additions. False when the document is anything else, or any value is refused:
    // the caller then runs the general walk, which gives the same terms and the exact error.
    bool parseKnownLeaves(const Value& source, const FieldMapping& root) {
        if (!source.IsObject()) return false;
        std::string key;
        for (const auto& member : source.GetObject()) {
            key.assign(member.name.GetString(), member.name.GetStringLength());
            if (!knownLeaf(root, key, member.value)) return false;
        }
        return true;
    }

    // One member of parseKnownLeaves' document.
    bool knownLeaf(const FieldMapping& root, const std::string& key, const Value& value) {
        if (key.empty() || key.find('.') != std::string::npos) return false;
        auto field = root.properties.find(key);
        if (field == root.properties.end()) return false;
        const FieldMapping& leaf = field->second;
        if (!leaf.plain_leaf) return false;
        return knownLeafValue(leaf, key, value);
    }

    // The value of a known leaf (a plain top-level leaf field named `key`). When only checking, a scalar that
    // the field and each of its multi-fields take as it is (indexScalar's first two tests) is accepted here,
    // as parseLeafValue would accept it, without making the key a string; the rest goes to parseLeafValue.
    bool knownLeafValue(const FieldMapping& leaf, std::string_view key, const Value& value) {
        if (check_only_ && !value.IsArray() && takenAsItIs(leaf, value)) {
            bool all_taken = true;
            for (const auto& [sub, multi] : leaf.fields) all_taken = all_taken && takenAsItIs(multi, value);
            if (all_taken) return true;
        }
        return parseKnownLeafValue(leaf, key, value);
    }

  private:
    // knownLeafValue's general case, out of line: inlined, the key's std::string made every call (five per
    // document) save and restore registers it does not use on the common path.
    __attribute__((noinline)) bool parseKnownLeafValue(const FieldMapping& leaf, std::string_view key,
                                                       const Value& value) {
        if (!ignored_) ignored_.emplace();
        return parseLeafValue(leaf, std::string(key), value, *ignored_);
    }

    // The properties object of the object at path (created on the way when dynamic allows it).
    Value* objectJson(const std::vector<std::string>& path) {
        Value* object = &mapping_;
        for (const auto& name : path) {
            Value& properties = (*object)["properties"];
            object = &properties[name.c_str()];
        }
        return object;
    }

    std::string effectiveDynamic(const std::vector<std::string>& path) {
        std::string dynamic = "true";
        Value* object = &mapping_;
        auto read = [&dynamic](const Value& node) {
            if (node.IsObject() && node.HasMember("dynamic")) dynamic = dynamicText(node["dynamic"]);
        };
        read(*object);
        for (const auto& name : path) {
            object = &(*object)["properties"][name.c_str()];
            read(*object);
        }
        return dynamic;
    }

    static std::string join(const std::vector<std::string>& path, const std::string& last = "") {
        std::string text;
        for (const auto& part : path) text += (text.empty() ? "" : ".") + part;
        if (!last.empty()) text += (text.empty() ? "" : ".") + last;
        return text;
    }

    Failure documentError(const std::string& reason, const std::string& path, Failure cause, bool keep_cause,
                          const std::string& os_type = "mapper_parsing_exception") {
        Failure failure;
        failure.status = 400;
        if (flavor_ == Flavor::kElasticsearch) {
            failure.type =
                os_type == "strict_dynamic_mapping_exception" ? os_type : "document_parsing_exception";
            failure.reason = locate(source_text_, path) + reason;
        } else {
            failure.type = os_type;
            failure.reason = reason;
        }
        if (keep_cause) failure.causedBy(std::move(cause));
        return failure;
    }

    bool parseObject(const Value& object, const std::vector<std::string>& path, Failure& error) {
        for (const auto& member : object.GetObject()) {
            std::string key = member.name.GetString();
            if (key.empty()) {
                error = documentError("field name cannot be an empty string", join(path), Failure(), false);
                return false;
            }
            if (key.front() == '.' || key.back() == '.' || key.find("..") != std::string::npos) {
                error = documentError(
                    "object field starting or ending with a [.] makes object resolution ambiguous: [" + key +
                        "]",
                    join(path), Failure(), false);
                return false;
            }
            std::vector<std::string> parts;
            size_t start = 0, dot;
            while ((dot = key.find('.', start)) != std::string::npos) {
                parts.push_back(key.substr(start, dot - start));
                start = dot + 1;
            }
            std::string last = key.substr(start);
            std::vector<std::string> object_path = path;
            bool skip = false;
            for (const auto& part : parts) {
                if (!ensureObject(object_path, part, skip, error)) return false;
                if (skip) break;
                object_path.push_back(part);
            }
            if (skip) continue;
            if (!parseField(object_path, last, member.value, error)) return false;
        }
        return true;
    }

    // A dotted document key "a.b" walks through object "a", created dynamically if needed.
    bool ensureObject(const std::vector<std::string>& path, const std::string& name, bool& skip,
                      Failure& error) {
        Value* object = objectJson(path);
        if (object->HasMember("properties") && (*object)["properties"].HasMember(name.c_str())) {
            const Value& field = (*object)["properties"][name.c_str()];
            std::string type = typeOf(field);
            if (type != "object" && type != "nested") {
                error = documentError("Could not dynamically add mapping for field [" + join(path, name) +
                                          "]. Existing mapping for [" + join(path, name) +
                                          "] must be of type object but found [" + type + "].",
                                      join(path, name), Failure(), false);
                return false;
            }
            return true;
        }
        Value empty(rapidjson::kObjectType);
        return addDynamic(path, name, empty, skip, error);
    }

    bool addDynamic(const std::vector<std::string>& path, const std::string& name, const Value& sample,
                    bool& skip, Failure& error) {
        skip = false;
        std::string dynamic = effectiveDynamic(path);
        if (dynamic == "strict") {
            error = documentError("mapping set to strict, dynamic introduction of [" + name + "] within [" +
                                      (path.empty() ? "_doc" : join(path)) + "] is not allowed",
                                  join(path, name), Failure(), false, "strict_dynamic_mapping_exception");
            return false;
        }
        auto& alloc = mapping_.GetAllocator();
        Value inferred;
        if (dynamic == "false" || dynamic == "runtime" || !inferMapping(sample, alloc, inferred)) {
            skip = true;
            return true;
        }
        Value* object = objectJson(path);
        if (!object->HasMember("properties"))
            object->AddMember("properties", Value(rapidjson::kObjectType), alloc);
        (*object)["properties"].AddMember(Value(name.c_str(), alloc), inferred, alloc);
        changed_ = true;
        return true;
    }

    bool parseField(const std::vector<std::string>& path, const std::string& name, const Value& value,
                    Failure& error) {
        Value* object = objectJson(path);
        bool known = object->HasMember("properties") && (*object)["properties"].HasMember(name.c_str());
        if (!known) {
            if (value.IsNull() && effectiveDynamic(path) != "strict") return true;
            bool skip = false;
            if (!addDynamic(path, name, value, skip, error)) return false;
            if (skip) return true;
            object = objectJson(path);
        }
        Value& field_json = (*object)["properties"][name.c_str()];
        std::string full = join(path, name);
        std::string type = typeOf(field_json);
        if (type == "alias") {
            error = documentError("Cannot write to a field alias [" + full + "].", full, Failure(), false);
            return false;
        }
        if (type == "object" || type == "nested") {
            if (field_json.HasMember("enabled") && field_json["enabled"].IsBool() &&
                !field_json["enabled"].GetBool())
                return true;
            std::vector<std::string> inner = path;
            inner.push_back(name);
            return parseObjectValue(value, inner, full, name, error);
        }
        // Build the leaf's typed view from its JSON (cheap: one field).
        BuildContext ctx{flavor_, "", false};
        FieldMapping field;
        if (!buildField(name, full, field_json, field, ctx)) {
            error = mapperParsing(ctx.error_reason);
            return false;
        }
        if (isVectorType(type)) return parseVector(field, field_json, full, value, error);
        return parseLeafValue(field, full, value, error);
    }

    bool parseObjectValue(const Value& value, const std::vector<std::string>& inner, const std::string& full,
                          const std::string& name, Failure& error) {
        if (value.IsNull()) return true;
        if (value.IsObject()) return parseObject(value, inner, error);
        if (value.IsArray()) {
            for (const auto& element : value.GetArray()) {
                if (!parseObjectValue(element, inner, full, name, error)) return false;
            }
            return true;
        }
        error = documentError("object mapping for [" + full + "] tried to parse field [" + name +
                                  "] as object, but found a concrete value",
                              full, Failure(), false);
        return false;
    }

    bool parseLeafValue(const FieldMapping& field, const std::string& full, const Value& value,
                        Failure& error) {
        if (value.IsArray()) {
            for (const auto& element : value.GetArray()) {
                if (!parseLeafValue(field, full, element, error)) return false;
            }
            return true;
        }
        if (!indexScalar(field, full, value, error)) return false;
        for (const auto& [sub, multi] : field.fields) {
            if (check_only_ && takesAnyScalar(multi, value)) continue;
            if (!indexScalar(multi, full + "." + sub, value, error)) return false;
        }
        return true;
    }

    // Keyword and text fields take every scalar (convertScalar cannot refuse one): nothing to check.
    static bool takesAnyScalar(const FieldMapping& field, const Value& value) {
        return field.any_scalar && !value.IsObject() && !value.IsArray();
    }

    // A value that convertScalar takes as it is, for the field: any scalar for keyword and text fields, a
    // whole number in an integer field's range.
    static bool takenAsItIs(const FieldMapping& field, const Value& value) {
        return takesAnyScalar(field, value) ||
               (field.integral && value.IsInt64() && value.GetInt64() >= field.integer_min &&
                value.GetInt64() <= field.integer_max);
    }

    bool indexScalar(const FieldMapping& field, const std::string& full, const Value& value, Failure& error) {
        if (check_only_ && takenAsItIs(field, value)) return true;
        Term term;
        bool skip = false;
        Failure cause;
        if (!convertScalar(field, value, term, skip, cause)) {
            error = documentError("failed to parse field [" + full + "] of type [" + field.type +
                                      "] in document with id '" + id_ + "'. Preview of field's value: '" +
                                      preview(value) + "'",
                                  full, std::move(cause), true);
            return false;
        }
        if (skip || !field.index || check_only_) return true;
        auto& terms = out_[full];
        if (field.type == "text") {
            for (auto& token : analyzeText(term.text)) terms.push_back(Term::ofString(std::move(token)));
            // The exists query needs to see a text field even when it has no tokens.
            if (terms.empty()) out_[full];
            return true;
        }
        if (field.type == "keyword" && field.ignore_above >= 0) {
            // ignore_above counts characters, not bytes.
            int64_t characters = 0;
            for (unsigned char c : term.text) characters += (c & 0xC0) != 0x80;
            if (characters > field.ignore_above) {
                if (terms.empty()) out_.erase(full);
                return true;
            }
        }
        terms.push_back(std::move(term));
        return true;
    }

    bool parseVector(const FieldMapping& field, Value& field_json, const std::string& full,
                     const Value& value, Failure& error) {
        if (value.IsNull()) return true;
        size_t given = value.IsArray() ? value.Size() : 1;
        if (value.IsArray()) {
            for (const auto& element : value.GetArray()) {
                if (!element.IsNumber()) {
                    Failure cause = illegalArgument("Current token (" + tokenName(element) +
                                                    ") not numeric, can not use numeric value accessors");
                    error = documentError("failed to parse field [" + full + "] of type [" + field.type +
                                              "] in document with id '" + id_ +
                                              "'. Preview of field's value: '" + preview(element) + "'",
                                          full, std::move(cause), true);
                    return false;
                }
            }
        }
        int dimension = field.dimension;
        if (dimension == 0 && field.type == "dense_vector") {
            // Elasticsearch 8.11+ takes dims from the first document when the mapping leaves it out.
            field_json.AddMember("dims", static_cast<int>(given), mapping_.GetAllocator());
            changed_ = true;
            dimension = static_cast<int>(given);
        }
        if (static_cast<int>(given) != dimension) {
            if (field.type == "knn_vector") {
                std::string message = "Vector dimension mismatch. Expected: " + std::to_string(dimension) +
                                      ", Given: " + std::to_string(given);
                error = documentError("failed to parse field [" + full +
                                          "] of type [knn_vector] in document with id '" + id_ +
                                          "'. Preview of field's value: 'null'",
                                      full, illegalArgument(message), true);
            } else {
                std::string message = "The [dense_vector] field [" + full + "] in doc [document with id '" +
                                      id_ + "'] has a different number of dimensions [" +
                                      std::to_string(given) + "] than defined in the mapping [" +
                                      std::to_string(dimension) + "]";
                error = documentError("failed to parse: " + message, full, illegalArgument(message), true);
            }
            return false;
        }
        out_[full].push_back(Term::ofLong(static_cast<int64_t>(given)));
        return true;
    }

    Flavor flavor_;
    rapidjson::Document& mapping_;
    const std::string& id_;
    const std::string& source_text_;
    IndexedFields& out_;
    bool changed_ = false;
    bool check_only_ = false;
    // The refusals of the known-leaves path, which leaves their wording to the general walk; made only when a
    // value takes that path's general case (made and destroyed with every parser, it cost some 30
    // instructions per document).
    std::optional<Failure> ignored_;
};

}  // namespace

bool Mapping::indexDocument(const Value& source, const std::string& id, const std::string& source_text,
                            IndexedFields& out, Failure& error,
                            std::shared_ptr<const FieldMapping>* deferred) {
    if (deferred != nullptr) deferred->reset();
    {
        DocumentParser known(flavor_, json_, id, source_text, out);
        if (deferred != nullptr) known.checkOnly();
        if (known.parseKnownLeaves(source, *root_)) {
            if (deferred != nullptr) *deferred = root_;
            return true;
        }
        out.clear();
    }
    rapidjson::Document candidate;
    candidate.CopyFrom(json_, candidate.GetAllocator());
    DocumentParser parser(flavor_, candidate, id, source_text, out);
    if (!parser.parseRoot(source, error)) return false;
    if (parser.changed()) return rebuild(candidate, error);
    return true;
}

namespace {

// The events of a known-leaves document (parseKnownLeaves without the DOM): an object of scalar members,
// each found as knownLeaf finds it (in Mapping::known_leaves_) and checked by knownLeafValue on the same
// rapidjson::Value the DOM would hold. Nested objects
// and arrays are left to the DOM path (Default).
class KnownLeavesReader : public ScalarsAsValues<KnownLeavesReader> {
    friend class ScalarsAsValues<KnownLeavesReader>;  // calls scalar()

  public:
    using Leaves = std::unordered_map<std::string_view, const FieldMapping*>;
    using LeafOrder = std::vector<std::pair<std::string, const FieldMapping*>>;
    KnownLeavesReader(DocumentParser& parser, const Leaves& leaves, LeafOrder& last_order)
        : parser_(parser), leaves_(leaves), last_order_(last_order) {}

    bool Default() { return false; }
    bool StartObject() { return !started_ && (started_ = true); }
    bool Key(const char* text, rapidjson::SizeType length, bool) {
        if (expect_value_) return false;
        key_ = std::string_view(text, length);  // decoded in place: valid until the next line
        expect_value_ = true;
        return true;
    }
    bool EndObject(rapidjson::SizeType) { return !expect_value_; }

  private:
    bool scalar(const Value& value) {
        if (!expect_value_) return false;
        expect_value_ = false;
        const FieldMapping* leaf = find();
        ++member_;
        return leaf != nullptr && parser_.knownLeafValue(*leaf, key_, value);
    }

    // The leaf named key_ in leaves_. Documents of a table name the same keys in the same order: the member
    // at this position in the last document is compared first, which costs less than hashing the key.
    const FieldMapping* find() {
        if (member_ < last_order_.size()) {
            const auto& [last_key, last_leaf] = last_order_[member_];
            if (sameBytes(last_key, key_)) return last_leaf;  // inline: memcmp was a call per key
        }
        return findAndRemember();
    }

    // find()'s lookup of a key not where the last document had it, out of line (it kept the common path's
    // registers busy).
    __attribute__((noinline)) const FieldMapping* findAndRemember() {
        auto leaf = leaves_.find(key_);
        if (leaf == leaves_.end()) return nullptr;
        if (member_ >= last_order_.size()) last_order_.resize(member_ + 1);
        last_order_[member_] = {std::string(key_), leaf->second};
        return leaf->second;
    }

    DocumentParser& parser_;
    const Leaves& leaves_;   // Mapping::known_leaves_: what knownLeaf would find
    LeafOrder& last_order_;  // Mapping::last_leaf_order_
    bool started_ = false;
    bool expect_value_ = false;
    std::string_view key_;
    size_t member_ = 0;  // the position of the member whose value comes next
};

}  // namespace

bool Mapping::checkKnownLeaves(std::string_view source_text, const ScannedLine* scanned,
                               const std::string& id, std::shared_ptr<const FieldMapping>& deferred) {
    // The source text is only read for error positions, which this path never words.
    static const std::string no_text;
    IndexedFields unused;
    DocumentParser parser(flavor_, json_, id, no_text, unused);
    parser.checkOnly();
    KnownLeavesReader reader(parser, known_leaves_, last_leaf_order_);
    bool known = scanned != nullptr && scanned->scan != LineScan::kUnsupported
                     ? scanned->parse(reader)
                     : parseLine(source_text, reader);
    if (!known) return false;
    deferred = root_;
    return true;
}

IndexedFields Mapping::deferredTerms(Flavor flavor, const FieldMapping& checked_against,
                                     const std::string& id, const std::string& source_text) {
    IndexedFields out;
    rapidjson::Document source;
    Failure ignored;
    if (!parseJson(source_text, source, ignored)) return out;  // checked when written: cannot happen
    rapidjson::Document unused_mapping;
    DocumentParser parser(flavor, unused_mapping, id, source_text, out);
    parser.parseKnownLeaves(source, checked_against);
    return out;
}

std::vector<std::string> analyzeText(const std::string& text) {
    std::vector<std::string> tokens;
    std::string current;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c >= 0x80 || c == '_') {
            current += static_cast<char>(std::tolower(c));
        } else if (!current.empty()) {
            tokens.push_back(std::move(current));
            current.clear();
        }
    }
    if (!current.empty()) tokens.push_back(std::move(current));
    return tokens;
}

bool queryTerm(const FieldMapping& field, const Value& value, Term& out, Failure& error) {
    bool skip = false;
    Failure cause;
    if (field.type == "text") {
        out = Term::ofString(value.IsString() ? value.GetString() : toJson(value));
        return true;
    }
    if (isVectorType(field.type)) {
        error = illegalArgument("Field [" + field.type + "] does not support term queries");
        return false;
    }
    if (convertScalar(field, value, out, skip, cause) && !skip) return true;
    Failure failure;
    failure.status = 400;
    failure.type = "query_shard_exception";
    failure.reason = "failed to create query: " + (skip ? std::string("empty value") : cause.reason);
    if (!skip) failure.causedBy(cause);
    error = failure;
    return false;
}

}  // namespace search_mock
