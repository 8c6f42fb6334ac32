#include "wal/json.h"

#include <cstdint>
#include <cstring>

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

namespace pgstream {

namespace {

// Builds a JsonValue tree from SAX events. Containers are completed in place on a stack of pointers.
class TreeBuilder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, TreeBuilder> {
  public:
    // `numbers`: the original texts of the numbers of a document parsed with stand-ins (see
    // mask_number_tokens), in document order; nullptr when the numbers are read as they are.
    TreeBuilder(JsonValue& root, const std::vector<std::string_view>* numbers)
        : root_(root), numbers_(numbers) {}

    bool Null() { return add(JsonValue::Kind::Null, {}); }
    bool Bool(bool b) { return add(JsonValue::Kind::Bool, b ? "true" : "false"); }
    bool RawNumber(const char* str, rapidjson::SizeType length, bool) {
        if (numbers_) {
            if (next_number_ >= numbers_->size()) return false;  // cannot happen: the lexer saw every number
            return add(JsonValue::Kind::Number, (*numbers_)[next_number_++]);
        }
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

  private:
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

    JsonValue& root_;
    std::vector<JsonValue*> stack_;
    const std::vector<std::string_view>* numbers_;
    size_t next_number_ = 0;
};

// Length of the JSON number (RFC 8259 grammar) at the start of `text`, 0 when there is none.
size_t number_token_length(std::string_view text) {
    auto digit = [&](size_t i) { return i < text.size() && text[i] >= '0' && text[i] <= '9'; };
    size_t i = 0;
    if (i < text.size() && text[i] == '-') ++i;
    if (!digit(i)) return 0;
    if (text[i] == '0')
        ++i;
    else
        while (digit(i)) ++i;
    if (i < text.size() && text[i] == '.') {
        if (!digit(i + 1)) return 0;
        ++i;
        while (digit(i)) ++i;
    }
    if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
        size_t exponent = i + 1;
        if (exponent < text.size() && (text[exponent] == '+' || text[exponent] == '-')) ++exponent;
        if (!digit(exponent)) return 0;
        i = exponent;
        while (digit(i)) ++i;
    }
    return i;
}

// Overwrites, in `masked` (a copy of `text`, same offsets), every number token outside strings with a 0
// padded with spaces, and returns the numbers' original texts in document order (views into `text`). The
// reader reports numbers in document order, so its k-th number is the k-th token.
std::vector<std::string_view> mask_number_tokens(std::string_view text, char* masked) {
    std::vector<std::string_view> numbers;
    size_t i = 0;
    while (i < text.size()) {
        char c = text[i];
        if (c == '"') {  // a string (or key): numbers inside it are text
            for (++i; i < text.size() && text[i] != '"'; ++i)
                if (text[i] == '\\') ++i;
            ++i;
            continue;
        }
        if (c != '-' && !(c >= '0' && c <= '9')) {
            ++i;
            continue;
        }
        size_t length = number_token_length(text.substr(i));
        if (length == 0) {  // not a number: the reader reports it
            ++i;
            continue;
        }
        numbers.push_back(text.substr(i, length));
        masked[i] = '0';
        for (size_t j = 1; j < length; ++j) masked[i + j] = ' ';
        i += length;
    }
    return numbers;
}

}  // namespace

const JsonValue* JsonValue::find(std::string_view key) const {
    if (kind != Kind::Object) return nullptr;
    for (const auto& member : members)
        if (member.first == key) return &member.second;
    return nullptr;
}

void JsonValue::append_json(std::string& out) const {
    switch (kind) {
        case Kind::Null:
            out += "null";
            break;
        case Kind::Bool:
        case Kind::Number:
            out += text;
            break;
        case Kind::String:
            append_json_string(out, text);
            break;
        case Kind::Object: {
            out += '{';
            bool first = true;
            for (const auto& [key, value] : members) {
                if (!first) out += ',';
                first = false;
                append_json_string(out, key);
                out += ':';
                value.append_json(out);
            }
            out += '}';
            break;
        }
        case Kind::Array: {
            out += '[';
            bool first = true;
            for (const auto& item : items) {
                if (!first) out += ',';
                first = false;
                item.append_json(out);
            }
            out += ']';
            break;
        }
    }
}

std::string JsonValue::to_json() const {
    std::string out;
    append_json(out);
    return out;
}

namespace {

rapidjson::ParseResult parse_tree(std::string_view text, JsonValue& root, size_t& end,
                                  const std::vector<std::string_view>* numbers) {
    TreeBuilder builder(root, numbers);
    rapidjson::Reader reader;
    rapidjson::MemoryStream stream(text.data(), text.size());
    constexpr unsigned kFlags = rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseStopWhenDoneFlag;
    rapidjson::ParseResult result = reader.Parse<kFlags>(stream, builder);
    end = stream.Tell();
    return result;
}

}  // namespace

JsonValue parse_json(std::string_view text) {
    JsonValue root;
    size_t end = 0;
    rapidjson::ParseResult result = parse_tree(text, root, end, nullptr);
    if (result.Code() == rapidjson::kParseErrorNumberTooBig) {
        // RapidJSON 1.1 converts every number to a double even when it is to be kept as text, and rejects
        // those beyond a double's range (a numeric of 310 integer digits). Parse again with each number
        // stood in for by a 0 at the same offset, and take the numbers' texts from the original.
        std::string masked(text);
        std::vector<std::string_view> numbers = mask_number_tokens(text, masked.data());
        root = JsonValue();
        result = parse_tree(masked, root, end, &numbers);
    }
    if (!result) {
        throw JsonError(std::string("invalid JSON at offset ") + std::to_string(result.Offset()) + ": " +
                        rapidjson::GetParseError_En(result.Code()));
    }
    // kParseStopWhenDoneFlag stops after one value; anything but trailing whitespace is an error.
    for (size_t i = end; i < text.size(); ++i) {
        char c = text[i];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t')
            throw JsonError("invalid JSON at offset " + std::to_string(i) + ": trailing characters");
    }
    return root;
}

void append_json_string(std::string& out, std::string_view text) {
    static const char kHex[] = "0123456789abcdef";
    // Output lines are mostly plain text: copy runs that need no escaping in one append, not byte by byte.
    out += '"';
    const char* data = text.data();
    size_t size = text.size(), run_start = 0;
    for (size_t i = 0; i < size; ++i) {
        // Skip eight plain bytes at a time: a word needs a closer look only if one of its bytes is below
        // 0x20, a quote or a backslash (classic "has zero byte" bit tricks on the word and its XORs).
        while (i + 8 <= size) {
            uint64_t word;
            std::memcpy(&word, data + i, 8);
            constexpr uint64_t kOnes = 0x0101010101010101ULL, kHighs = 0x8080808080808080ULL;
            uint64_t quote = word ^ (kOnes * '"'), backslash = word ^ (kOnes * '\\');
            uint64_t special =
                ((word - kOnes * 0x20) | (quote - kOnes) | (backslash - kOnes)) & ~word & kHighs;
            if (special) break;
            i += 8;
        }
        if (i >= size) break;
        unsigned char c = static_cast<unsigned char>(data[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(data + run_start, i - run_start);
        run_start = i + 1;
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default: {
                char escape[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
                out.append(escape, sizeof escape);
            }
        }
    }
    out.append(data + run_start, size - run_start);
    out += '"';
}

std::string json_quote(std::string_view text) {
    std::string out;
    append_json_string(out, text);
    return out;
}

}  // namespace pgstream
