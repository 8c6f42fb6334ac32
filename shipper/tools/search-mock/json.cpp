#include "json.h"

#include <rapidjson/error/en.h>

#include <cmath>
#include <set>

namespace search_mock {

JsonWriter& JsonWriter::dbl(double value) {
    // The cluster prints whole doubles with a fraction ("1.0"), which Writer::Double does too; infinities
    // (missing values in a descending double sort) are printed as strings by Jackson's lenient mode.
    if (std::isinf(value)) return str(value > 0 ? "Infinity" : "-Infinity");
    writer_.Double(value);
    return *this;
}

std::string jsonString(std::string_view text) {
    JsonWriter out;
    out.str(text);
    return out.text();
}

std::string toJson(const rapidjson::Value& value) {
    JsonWriter out;
    out.value(value);
    return out.text();
}

bool isJdkException(const std::string& type) {
    static const std::set<std::string> jdk = {"illegal_argument_exception", "number_format_exception",
                                              "date_time_parse_exception",  "json_parse_exception",
                                              "illegal_state_exception",    "arithmetic_exception"};
    return jdk.count(type) != 0;
}

void Failure::writeBody(JsonWriter& out) const {
    out.beginObject();
    writeMembers(out);
    out.endObject();
}

void Failure::writeMembers(JsonWriter& out) const {
    out.key("type").str(type);
    out.key("reason").str(reason);
    for (const auto& [name, value] : extra) out.key(name).raw(value);
    if (cause) {
        out.key("caused_by");
        cause->writeBody(out);
    }
}

std::string Failure::responseBody() const {
    // The root cause is the innermost search engine exception; a JDK exception only when nothing wraps it.
    // search_phase_execution_exception reports its shard failure as the root cause, whatever its type.
    const Failure* root = this;
    if (type == "search_phase_execution_exception" && cause) root = cause.get();
    for (const Failure* inner = root->cause.get(); inner != nullptr; inner = inner->cause.get()) {
        if (!isJdkException(inner->type)) root = inner;
    }
    JsonWriter out;
    out.beginObject().key("error").beginObject();
    out.key("root_cause").beginArray();
    Failure root_only = *root;
    root_only.cause.reset();
    root_only.writeBody(out);
    out.endArray();
    writeMembers(out);
    out.endObject();
    out.key("status").num(status);
    out.endObject();
    return out.text();
}

Failure illegalArgument(std::string reason) {
    Failure failure;
    failure.status = 400;
    failure.type = "illegal_argument_exception";
    failure.reason = std::move(reason);
    return failure;
}

Failure indexNotFound(const std::string& index) {
    Failure failure;
    failure.status = 404;
    failure.type = "index_not_found_exception";
    failure.reason = "no such index [" + index + "]";
    failure.with("index", jsonString(index))
        .with("resource.id", jsonString(index))
        .with("resource.type", jsonString("index_or_alias"))
        .with("index_uuid", jsonString("_na_"));
    return failure;
}

Failure resourceAlreadyExists(const std::string& index, const std::string& uuid) {
    Failure failure;
    failure.status = 400;
    failure.type = "resource_already_exists_exception";
    failure.reason = "index [" + index + "/" + uuid + "] already exists";
    failure.with("index", jsonString(index)).with("index_uuid", jsonString(uuid));
    return failure;
}

Failure invalidIndexName(const std::string& index, const std::string& why) {
    Failure failure;
    failure.status = 400;
    failure.type = "invalid_index_name_exception";
    failure.reason = "Invalid index name [" + index + "], " + why;
    failure.with("index", jsonString(index)).with("index_uuid", jsonString("_na_"));
    return failure;
}

Failure versionConflict(const std::string& index, const std::string& uuid, const std::string& id,
                        const std::string& explanation) {
    Failure failure;
    failure.status = 409;
    failure.type = "version_conflict_engine_exception";
    failure.reason = "[" + id + "]: version conflict, " + explanation;
    failure.with("index", jsonString(index))
        .with("shard", jsonString("0"))
        .with("index_uuid", jsonString(uuid));
    return failure;
}

Failure validationFailed(const std::vector<std::string>& problems) {
    Failure failure;
    failure.status = 400;
    failure.type = "action_request_validation_exception";
    failure.reason = "Validation Failed: ";
    int number = 0;
    for (const auto& problem : problems) failure.reason += std::to_string(++number) + ": " + problem + ";";
    return failure;
}

Failure parsingException(std::string reason, int line, int col) {
    Failure failure;
    failure.status = 400;
    failure.type = "parsing_exception";
    failure.reason = std::move(reason);
    failure.with("line", std::to_string(line)).with("col", std::to_string(col));
    return failure;
}

Failure mapperParsing(std::string reason) {
    Failure failure;
    failure.status = 400;
    failure.type = "mapper_parsing_exception";
    failure.reason = std::move(reason);
    return failure;
}

Failure searchPhaseFailure(const std::string& index, const std::string& uuid, Failure shard_failure) {
    JsonWriter shards;
    shards.beginArray().beginObject();
    shards.key("shard").num(0);
    shards.key("index").str(index);
    shards.key("node").str(uuid.substr(0, 22));
    shards.key("reason");
    shard_failure.writeBody(shards);
    shards.endObject().endArray();
    Failure failure;
    failure.status = shard_failure.status;
    failure.type = "search_phase_execution_exception";
    failure.reason = "all shards failed";
    failure.with("phase", jsonString("query")).with("grouped", "true").with("failed_shards", shards.text());
    failure.causedBy(std::move(shard_failure));
    return failure;
}

bool parseJson(std::string_view text, rapidjson::Document& into, Failure& error) {
    into.Parse<rapidjson::kParseFullPrecisionFlag>(text.data(), text.size());
    if (!into.HasParseError()) return true;
    error = Failure();
    error.status = 400;
    error.type = "json_parse_exception";
    error.reason = std::string(rapidjson::GetParseError_En(into.GetParseError())) + " at offset " +
                   std::to_string(into.GetErrorOffset());
    return false;
}

}  // namespace search_mock
