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

namespace {
constexpr char kBase64Alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

bool is_json_text(std::string_view bytes) {
    size_t i = 0, n = bytes.size();
    while (i < n) {
        unsigned char c = static_cast<unsigned char>(bytes[i]);
        if (c == 0) return false;
        if (c < 0x80) {
            ++i;
            continue;
        }
        size_t length = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
        if (length == 0 || c > 0xF4 || i + length > n) return false;
        unsigned char second = static_cast<unsigned char>(bytes[i + 1]);
        // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
        if ((c == 0xE0 && second < 0xA0) || (c == 0xED && second > 0x9F) || (c == 0xF0 && second < 0x90) ||
            (c == 0xF4 && second > 0x8F))
            return false;
        for (size_t k = 1; k < length; ++k)
            if ((static_cast<unsigned char>(bytes[i + k]) & 0xC0) != 0x80) return false;
        i += length;
    }
    return true;
}

std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) |
                     uint8_t(bytes[i + 2]);
        for (int shift : {18, 12, 6, 0}) out += kBase64Alphabet[(v >> shift) & 63];
    }
    if (size_t rest = bytes.size() - i) {
        uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
        if (rest == 2) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
        out += kBase64Alphabet[(v >> 18) & 63];
        out += kBase64Alphabet[(v >> 12) & 63];
        out += rest == 2 ? kBase64Alphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::string base64_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size() / 4 * 3);
    uint32_t bits = 0;
    int count = 0;
    size_t padding = 0;
    for (char c : text) {
        if (c == '=') {
            ++padding;
            continue;
        }
        const char* at = c ? std::strchr(kBase64Alphabet, c) : nullptr;
        if (!at || padding) throw JsonError("message content is not base64");
        bits = (bits << 6) | uint32_t(at - kBase64Alphabet);
        if (++count == 4) {
            out += char(bits >> 16);
            out += char(bits >> 8);
            out += char(bits);
            bits = 0;
            count = 0;
        }
    }
    if (count == 1 || padding > 2) throw JsonError("message content is not base64");
    if (count >= 2) out += char(bits >> (count == 2 ? 4 : 10));
    if (count == 3) out += char(bits >> 2);
    return out;
}

std::string message_content(std::string content, std::string_view encoding) {
    if (encoding == "base64") return base64_decode(content);
    if (!encoding.empty()) throw JsonError("unknown content_encoding \"" + std::string(encoding) + "\"");
    return content;
}

void append_message_content(std::string& out, std::string_view bytes) {
    out += ",\"content\":";
    if (is_json_text(bytes)) {
        append_json_string(out, bytes);
        return;
    }
    out += '"';
    out += base64_encode(bytes);
    out += "\",\"content_encoding\":\"base64\"";
}

}  // namespace pgstream
