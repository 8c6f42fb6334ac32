// Internal to wal/json*.cpp: the SAX handler that builds a JsonValue tree, and the rare path for numbers
// RapidJSON cannot take as they are (kept in a file of its own so that the common path's code is not
// touched).
#pragma once

#include <rapidjson/reader.h>

#include <string_view>
#include <vector>

#include "wal/json.h"

namespace pgstream::json_detail {

inline constexpr unsigned kTreeParseFlags =
    rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseStopWhenDoneFlag;

// Builds a JsonValue tree from SAX events. Containers are completed in place on a stack of pointers.
class TreeBuilder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, TreeBuilder> {
  public:
    explicit TreeBuilder(JsonValue& root) : root_(root) {}

    bool Null() { return add(JsonValue::Kind::Null, {}); }
    bool Bool(bool b) { return add(JsonValue::Kind::Bool, b ? "true" : "false"); }
    bool RawNumber(const char* str, rapidjson::SizeType length, bool) {
        return add(JsonValue::Kind::Number, std::string_view(str, length));
    }
    bool String(const char* str, rapidjson::SizeType length, bool) {
        return add(JsonValue::Kind::String, std::string_view(str, length));
    }
    bool StartObject() { return open(JsonValue::Kind::Object); }
    bool Key(const char* str, rapidjson::SizeType length, bool) {
        stack_.back()->members.emplace_back(std::string(str, length), JsonValue{});
        return true;
    }
    bool EndObject(rapidjson::SizeType) {
        stack_.pop_back();
        return true;
    }
    bool StartArray() { return open(JsonValue::Kind::Array); }
    bool EndArray(rapidjson::SizeType) {
        stack_.pop_back();
        return true;
    }

  protected:
    JsonValue& slot() {
        if (stack_.empty()) return root_;
        JsonValue* parent = stack_.back();
        if (parent->kind == JsonValue::Kind::Object) return parent->members.back().second;
        parent->items.emplace_back();
        return parent->items.back();
    }
    bool add(JsonValue::Kind kind, std::string_view text) {
        JsonValue& value = slot();
        value.kind = kind;
        value.text.assign(text.data(), text.size());
        value.escape_free = false;  // RapidJSON decoded the escapes
        return true;
    }
    bool open(JsonValue::Kind kind) {
        JsonValue& value = slot();
        value.kind = kind;
        // Records are objects of about ten members and columns of four; growing from zero reallocates often.
        if (kind == JsonValue::Kind::Object) value.members.reserve(stack_.empty() ? 12 : 4);
        stack_.push_back(&value);
        return true;
    }

  private:
    JsonValue& root_;
    std::vector<JsonValue*> stack_;
};

// RapidJSON 1.1 converts every number to a double even when it is to be kept as text, and rejects those
// beyond a double's range (kParseErrorNumberTooBig: a numeric of 310 integer digits). Parses `text` again
// with each number stood in for by a 0 at the same offset and the numbers' texts taken from the original;
// `end` is where the reader stopped. Offsets in errors are those of `text`.
rapidjson::ParseResult parse_with_masked_numbers(std::string_view text, JsonValue& root, size_t& end);

}  // namespace pgstream::json_detail
