#include "wal/json.h"
#include "wal/json_tree.h"

#include <cstdint>
#include <cstring>

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

namespace pgstream {

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

JsonValue parse_json(std::string_view text) {
    using namespace json_detail;
    JsonValue root;
    TreeBuilder builder(root);
    rapidjson::Reader reader;
    rapidjson::MemoryStream stream(text.data(), text.size());
    rapidjson::ParseResult result = reader.Parse<kTreeParseFlags>(stream, builder);
    size_t end = stream.Tell();
    if (result.Code() == rapidjson::kParseErrorNumberTooBig)
        result = parse_with_masked_numbers(text, root, end);
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
