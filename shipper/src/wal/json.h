// A small JSON document model that keeps numbers as the exact text they were written with (a bigint or a
// numeric(40,20) must leave the shipper digit for digit), parsed with RapidJSON's SAX reader.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgstream {

class JsonError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct JsonValue {
    enum class Kind { Null, Bool, Number, String, Object, Array };

    Kind kind = Kind::Null;
    // Number: the literal digits as written. String: the decoded text. Bool: "true"/"false".
    std::string text;
    std::vector<std::pair<std::string, JsonValue>> members;  // Object, in document order
    std::vector<JsonValue> items;                            // Array

    bool is_null() const { return kind == Kind::Null; }
    bool is_string() const { return kind == Kind::String; }
    bool is_number() const { return kind == Kind::Number; }
    bool is_bool() const { return kind == Kind::Bool; }
    bool is_object() const { return kind == Kind::Object; }
    bool is_array() const { return kind == Kind::Array; }
    bool as_bool() const { return kind == Kind::Bool && text == "true"; }

    // Object member lookup; nullptr when absent or when this is not an object.
    const JsonValue* find(std::string_view key) const;
    // The value serialised back to compact JSON (strings escaped like PostgreSQL's escape_json).
    std::string to_json() const;
    void append_json(std::string& out) const;
};

// Throws JsonError (with the offset) on malformed input.
JsonValue parse_json(std::string_view text);

// Appends `text` as a JSON string literal, escaped exactly like PostgreSQL's escape_json (which is what
// wal2json uses), so re-serialised strings are byte-identical to the plugin's.
void append_json_string(std::string& out, std::string_view text);
std::string json_quote(std::string_view text);

// Logical message content is bytes: it travels as a JSON string when it is valid UTF-8 without NUL bytes,
// else as base64 next to "content_encoding":"base64" (the form the pgstream plugin writes with
// pgstream-lossless-message-content, and the shipper's own event JSON).
bool is_json_text(std::string_view bytes);
std::string base64_encode(std::string_view bytes);
// Throws JsonError when `text` is not base64.
std::string base64_decode(std::string_view text);
// The message content of a record or event: `content` as is, or decoded when `encoding` is "base64".
std::string message_content(std::string content, std::string_view encoding);
// Appends ,"content":...[,"content_encoding":"base64"] for `bytes`.
void append_message_content(std::string& out, std::string_view bytes);

}  // namespace pgstream
