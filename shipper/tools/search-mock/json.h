// JSON output and the search engine's error model for pgstream-search-mock.
//
// Every failure is a `Failure`: the exception type name, its reason, extra fields in the order the real
// cluster prints them and an optional cause. The same value renders as a whole error response
// ({"error":{"root_cause":[...],...},"status":N}) or as a bulk item's "error" object (no root_cause).
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace search_mock {

// Whether two short strings (keys, parameter names) have the same bytes, compared inline a word at a time:
// memcmp was a call, some 19 instructions, per key of a _bulk line. Reads nothing outside either string.
inline bool sameBytes(std::string_view a, std::string_view b) {
    size_t size = a.size();
    if (size != b.size()) return false;
    const char* x = a.data();
    const char* y = b.data();
    if (size >= 8) {
        auto word = [](const char* at) {
            uint64_t value;
            std::memcpy(&value, at, 8);
            return value;
        };
        // Eight bytes at a step, the last step overlapping the one before.
        for (size_t at = 0; at + 8 < size; at += 8)
            if (word(x + at) != word(y + at)) return false;
        return word(x + size - 8) == word(y + size - 8);
    }
    if (size >= 4) {
        auto word = [](const char* at) {
            uint32_t value;
            std::memcpy(&value, at, 4);
            return value;
        };
        return word(x) == word(y) && word(x + size - 4) == word(y + size - 4);
    }
    for (size_t at = 0; at < size; ++at)
        if (x[at] != y[at]) return false;
    return true;
}

// The engine's wildcard match (Glob.globMatch, Regex.simpleMatch): '*' matches any run of characters, none
// included; nothing else is special. For index and alias expressions, source filters and filter_path names.
bool globMatch(std::string_view pattern, std::string_view text);

// A streaming JSON writer with the few value kinds the responses need.
class JsonWriter {
  public:
    JsonWriter& beginObject() {
        writer_.StartObject();
        return *this;
    }
    JsonWriter& endObject() {
        writer_.EndObject();
        return *this;
    }
    JsonWriter& beginArray() {
        writer_.StartArray();
        return *this;
    }
    JsonWriter& endArray() {
        writer_.EndArray();
        return *this;
    }
    JsonWriter& key(std::string_view name) {
        writer_.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
        return *this;
    }
    JsonWriter& str(std::string_view value) {
        writer_.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
        return *this;
    }
    JsonWriter& num(int64_t value) {
        writer_.Int64(value);
        return *this;
    }
    JsonWriter& dbl(double value);
    JsonWriter& boolean(bool value) {
        writer_.Bool(value);
        return *this;
    }
    JsonWriter& null() {
        writer_.Null();
        return *this;
    }
    // Already serialised JSON (a stored _source, a value kept from a request).
    JsonWriter& raw(std::string_view json) {
        writer_.RawValue(json.data(), json.size(), rapidjson::kObjectType);
        return *this;
    }
    JsonWriter& value(const rapidjson::Value& value) {
        value.Accept(writer_);
        return *this;
    }
    std::string text() const { return std::string(buffer_.GetString(), buffer_.GetSize()); }

  private:
    rapidjson::StringBuffer buffer_;
    rapidjson::Writer<rapidjson::StringBuffer> writer_{buffer_};
};

std::string jsonString(std::string_view text);  // a quoted, escaped JSON string
std::string toJson(const rapidjson::Value& value);

struct Failure {
    int status = 400;
    std::string type;
    std::string reason;
    // Extra members after type and reason, values already serialised as JSON.
    std::vector<std::pair<std::string, std::string>> extra;
    std::shared_ptr<Failure> cause;

    Failure& with(std::string name, std::string json_value) {
        extra.emplace_back(std::move(name), std::move(json_value));
        return *this;
    }
    Failure& causedBy(Failure inner) {
        cause = std::make_shared<Failure>(std::move(inner));
        return *this;
    }
    void writeBody(JsonWriter& out) const;     // {type, reason, extras..., caused_by}
    void writeMembers(JsonWriter& out) const;  // the same members, without the braces
    std::string responseBody() const;          // {"error":{"root_cause":[...],...},"status":N}
};

// The exception types the engine uses. JDK exceptions (illegal_argument_exception, number_format_exception,
// ...) never become the root cause when a search engine exception wraps them, as on the real cluster.
Failure illegalArgument(std::string reason);
Failure indexNotFound(const std::string& index);
Failure resourceAlreadyExists(const std::string& index, const std::string& uuid);
Failure invalidIndexName(const std::string& index, const std::string& why);
Failure versionConflict(const std::string& index, const std::string& uuid, const std::string& id,
                        const std::string& explanation);
Failure validationFailed(const std::vector<std::string>& problems);  // action_request_validation_exception
Failure parsingException(std::string reason, int line = 1, int col = 1);
Failure mapperParsing(std::string reason);
// A shard-level failure of a search as the coordinating node reports it (search_phase_execution_exception).
Failure searchPhaseFailure(const std::string& index, const std::string& uuid, Failure shard_failure);

bool isJdkException(const std::string& type);

// Parses a request body; a syntax error becomes the cluster's parse error (400).
bool parseJson(std::string_view text, rapidjson::Document& into, Failure& error);

// The events of a scanned JSON line (scanLine), as rapidjson's reader delivers them to a SAX handler.
struct LineEvent {
    enum class Kind : uint8_t {
        kStartObject,
        kEndObject,
        kStartArray,
        kEndArray,
        kKey,
        kString,
        kNull,
        kBool,
        kInt,
        kUint,
        kInt64,
        kUint64
    };
    Kind kind;
    uint32_t length;  // a key's or string's length; the member or element count of an end
    union {
        const char* text;  // a key or string, decoded in place and NUL-terminated (rapidjson's in situ parse)
        int64_t int_value;
        uint64_t uint_value;
        bool bool_value;
    };
};

// What scanLine found in a line.
enum class LineScan : uint8_t {
    kUnsupported,    // outside the scanner's subset (or malformed): the line is left to rapidjson
    kValue,          // one object, then only spaces, tabs and CRs
    kValueThenMore,  // one object followed by something else: parseLine's answer is false
};

// A tokenizer for the common lines of a _bulk body, cheaper than rapidjson's reader (which scans each string
// a byte at a time up to a 16-byte boundary, then pushes every token through a stack): it records the events
// rapidjson's reader would deliver for the line, for replayLine. It reads only a subset of JSON: an object
// (objects and arrays within it) of strings without escapes, integers of up to 18 digits without fraction or
// exponent, true, false and null; for anything else it returns kUnsupported, possibly after writing into
// `text`, and the caller goes to rapidjson with the line's original text. The subset is valid JSON, which
// rapidjson reads with exactly these events (the same integer kinds: Uint up to 2^32-1, Int down to -2^31,
// else Uint64/Int64), and its strings are decoded in place as rapidjson's in situ parse leaves them.
//
// text[0, size) is the line, decoded in place; text[size] must be a NUL and 16 more readable bytes must
// follow (strings are scanned 16 bytes at a time). The events are appended to `events`.
LineScan scanLine(char* text, size_t size, std::vector<LineEvent>& events);

// Delivers scanned events to a SAX handler as rapidjson's reader would; false when the handler stops.
template <typename Handler>
bool replayLine(const LineEvent* event, size_t count, Handler& handler) {
    using Kind = LineEvent::Kind;
    for (const LineEvent* end = event + count; event != end; ++event) {
        bool more = true;
        switch (event->kind) {
            case Kind::kStartObject:
                more = handler.StartObject();
                break;
            case Kind::kEndObject:
                more = handler.EndObject(event->length);
                break;
            case Kind::kStartArray:
                more = handler.StartArray();
                break;
            case Kind::kEndArray:
                more = handler.EndArray(event->length);
                break;
            case Kind::kKey:
                more = handler.Key(event->text, event->length, false);
                break;
            case Kind::kString:
                more = handler.String(event->text, event->length, false);
                break;
            case Kind::kNull:
                more = handler.Null();
                break;
            case Kind::kBool:
                more = handler.Bool(event->bool_value);
                break;
            case Kind::kInt:
                more = handler.Int(static_cast<int>(event->int_value));
                break;
            case Kind::kUint:
                more = handler.Uint(static_cast<unsigned>(event->uint_value));
                break;
            case Kind::kInt64:
                more = handler.Int64(event->int_value);
                break;
            case Kind::kUint64:
                more = handler.Uint64(event->uint_value);
                break;
        }
        if (!more) return false;
    }
    return true;
}

// A line of a _bulk body scanned before it is needed (the document lines are scanned before the cluster's
// lock is taken, and read against the mapping under it).
struct ScannedLine {
    LineScan scan = LineScan::kUnsupported;
    const LineEvent* events = nullptr;
    size_t count = 0;

    // parseLine's answer for a scanned line: the events replayed, then the end checked.
    template <typename Handler>
    bool parse(Handler& handler) const {
        return replayLine(events, count, handler) && scan == LineScan::kValue;
    }
};

// Feeds one line of a _bulk body to a SAX handler, for the fast paths that read the common lines without
// building a DOM. True only when the line holds exactly one JSON value (then trailing spaces, tabs and CRs),
// which parseJson would accept with the same events, and the handler took every event. False for anything
// else (a syntax error, a handler that gave up): the caller then takes its DOM path with parseJson, which
// decides and words everything as before.
//
// The line is parsed in situ from a NUL-terminated copy: its strings are decoded in place (parseJson's
// length-bounded stream copies each one onto the parser's stack, a character at a time), with SSE2 scans.
// The copy ends where the line does and both streams read a NUL as the end of the input, so both see the
// same characters; the handler's strings stay valid until the next line.
template <typename Handler>
bool parseLine(std::string_view line, Handler& handler) {
    thread_local rapidjson::Reader reader;  // keeps its parse stack from line to line
    thread_local std::string copy;          // keeps its buffer from line to line
    copy.assign(line);
    rapidjson::InsituStringStream stream(copy.data());
    constexpr unsigned kFlags =
        rapidjson::kParseInsituFlag | rapidjson::kParseFullPrecisionFlag | rapidjson::kParseStopWhenDoneFlag;
    if (reader.Parse<kFlags>(stream, handler).IsError()) return false;
    for (size_t i = stream.Tell(); i < line.size(); ++i)
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r') return false;
    return true;
}

// A SAX handler base whose scalar events each become the rapidjson::Value the DOM would hold, handed to
// Derived::scalar(const rapidjson::Value&): for the readers of the common _bulk lines, which take scalars as
// the DOM path does so that both paths check them alike.
template <class Derived>
class ScalarsAsValues : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, Derived> {
  public:
    bool Null() { return self().scalar(rapidjson::Value()); }
    bool Bool(bool value) { return self().scalar(rapidjson::Value(value)); }
    bool Int(int value) { return self().scalar(rapidjson::Value(value)); }
    bool Uint(unsigned value) { return self().scalar(rapidjson::Value(value)); }
    bool Int64(int64_t value) { return self().scalar(rapidjson::Value(value)); }
    bool Uint64(uint64_t value) { return self().scalar(rapidjson::Value(value)); }
    bool Double(double value) { return self().scalar(rapidjson::Value(value)); }
    bool String(const char* text, rapidjson::SizeType length, bool) {
        return self().scalar(rapidjson::Value(rapidjson::StringRef(text, length)));
    }

  private:
    Derived& self() { return static_cast<Derived&>(*this); }
};

}  // namespace search_mock
