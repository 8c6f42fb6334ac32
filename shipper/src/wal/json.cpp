#include "wal/json.h"
#include "wal/json_tree.h"

#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

// Objects and arrays; the scalars are json_bound()'s and write_json()'s own (inline, wal/json.h).
size_t JsonValue::composite_json_bound() const {
    size_t bound = 2;
    if (kind == Kind::Object) {
        for (const auto& [key, value] : members)
            bound += json_string_bound(key.size()) + 2 + value.json_bound();
    } else {
        for (const auto& item : items) bound += 1 + item.json_bound();
    }
    return bound;
}

char* JsonValue::write_composite_json(char* out) const {
    bool first = true;
    if (kind == Kind::Object) {
        *out++ = '{';
        for (const auto& [key, value] : members) {
            if (!first) *out++ = ',';
            first = false;
            out = write_json_string(out, key);
            *out++ = ':';
            out = value.write_json(out);
        }
        *out++ = '}';
    } else {
        *out++ = '[';
        for (const auto& item : items) {
            if (!first) *out++ = ',';
            first = false;
            out = item.write_json(out);
        }
        *out++ = ']';
    }
    return out;
}

void JsonValue::append_json(std::string& out) const {
    size_t start = out.size();
    out.resize(start + json_bound());
    out.resize(size_t(write_json(out.data() + start) - out.data()));
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

namespace {

using json_detail::load_word;

// The position of the first byte at or after `from` that a JSON string must escape, `size` when none: eight
// bytes a step, so that plain text costs a few instructions per word and a byte to escape is found without
// looking at the bytes before it one by one.
size_t next_json_special_byte(const char* data, size_t from, size_t size) {
    for (; from + 8 <= size; from += 8)
        if (size_t at = first_json_special_byte(load_word(data + from)); at < 8) return from + at;
    if (from == size) return size;
    if (size >= 8) {
        // The last eight bytes, shifted so that those before `from` drop out (they cannot pass a borrow on)
        // and plain spaces come in at the end.
        constexpr uint64_t kSpaces = 0x2020202020202020ULL;
        size_t seen = 8 - (size - from);  // 1 to 7
        uint64_t word = (load_word(data + size - 8) >> (8 * seen)) | (kSpaces << (8 * (8 - seen)));
        size_t at = first_json_special_byte(word);
        return at < 8 ? from + at : size;
    }
    for (; from < size; ++from)
        if (json_detail::is_json_special(static_cast<unsigned char>(data[from]))) return from;
    return size;
}

// Writes the escape of `c`, a byte that a JSON string must escape, into `sink`, as PostgreSQL's escape_json.
template <class Sink>
void append_json_escape(Sink& sink, unsigned char c) {
    static const char kHex[] = "0123456789abcdef";
    switch (c) {
        case '"':
            sink.append("\\\"", 2);
            return;
        case '\\':
            sink.append("\\\\", 2);
            return;
        case '\b':
            sink.append("\\b", 2);
            return;
        case '\f':
            sink.append("\\f", 2);
            return;
        case '\n':
            sink.append("\\n", 2);
            return;
        case '\r':
            sink.append("\\r", 2);
            return;
        case '\t':
            sink.append("\\t", 2);
            return;
        default: {
            char escape[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
            sink.append(escape, sizeof escape);
        }
    }
}

// Writes `text` escaped like PostgreSQL's escape_json (without the quotes) into `sink` (append(const char*,
// size_t)). Output lines are mostly plain text: runs that need no escaping are copied in one append, not byte
// by byte.
template <class Sink>
void append_json_string_body(Sink& sink, std::string_view text) {
    const char* data = text.data();
    const size_t size = text.size();
    size_t run_start = 0;
    for (size_t i = next_json_special_byte(data, 0, size); i < size;
         i = next_json_special_byte(data, i + 1, size)) {
        sink.append(data + run_start, i - run_start);
        run_start = i + 1;
        append_json_escape(sink, static_cast<unsigned char>(data[i]));
    }
    sink.append(data + run_start, size - run_start);
}

struct StringSink {
    std::string& out;
    void put(char c) { out += c; }
    void append(const char* data, size_t size) { out.append(data, size); }
};

struct PointerSink {
    char* at;
    void put(char c) { *at++ = c; }
    void append(const char* data, size_t size) {
        std::memcpy(at, data, size);
        at += size;
    }
};

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
    StringSink sink{out};
    sink.put('"');
    append_json_string_body(sink, text);
    sink.put('"');
}

char* write_json_string(char* out, std::string_view text) {
    PointerSink sink{out};
    sink.put('"');
#if defined(__SSE2__)
    // Sixteen bytes a step (every event's values, names and ids pass here): each chunk is stored as it is
    // and kept up to its first byte to escape; the scan goes on after that byte. The store never passes the
    // caller's json_string_bound: with at least 16 bytes of text left, at least 6 * 16 bytes of room are.
    while (text.size() >= 16) {
        const __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text.data()));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(sink.at), chunk);
        const unsigned special = json_detail::json_special_bits(chunk);
        if (special == 0) {
            sink.at += 16;
            text.remove_prefix(16);
            continue;
        }
        const unsigned plain = static_cast<unsigned>(__builtin_ctz(special));
        sink.at += plain;
        append_json_escape(sink, static_cast<unsigned char>(text[plain]));
        text.remove_prefix(plain + 1);
    }
#endif
    append_json_string_body(sink, text);
    sink.put('"');
    return sink.at;
}

bool needs_json_escape(std::string_view text) {
    return next_json_special_byte(text.data(), 0, text.size()) < text.size();
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
