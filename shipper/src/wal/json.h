// A small JSON document model that keeps numbers as the exact text they were written with (a bigint or a
// numeric(40,20) must leave the shipper digit for digit), parsed with RapidJSON's SAX reader.
#pragma once

#include <cassert>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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
    // String: `text` holds no byte that a JSON string escapes (no quote, backslash or control character), so
    // writers copy it between the quotes without looking at it. Only set by the decoders that learn it while
    // they read (the plain record reader, the COPY row decoder); whoever else sets a string's text leaves
    // it false, or sets it false when reusing a value.
    bool escape_free = false;
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
    // The most bytes write_json can write (every string byte escaped), and the writing itself into memory
    // sized for it; returns the end of what it wrote. Scalars (what a row's columns hold) are handled inline:
    // one call less per column and row on the event writers' path.
    size_t json_bound() const;
    char* write_json(char* out) const;

  private:
    size_t composite_json_bound() const;
    char* write_composite_json(char* out) const;
};

// Throws JsonError (with the offset) on malformed input.
JsonValue parse_json(std::string_view text);

// Appends `text` as a JSON string literal, escaped exactly like PostgreSQL's escape_json (which is what
// wal2json uses), so re-serialised strings are byte-identical to the plugin's.
void append_json_string(std::string& out, std::string_view text);
std::string json_quote(std::string_view text);
namespace json_detail {
// Eight bytes from `bytes`, the first in memory as the lowest (as little-endian machines load them).
inline uint64_t load_word(const char* bytes) {
    uint64_t word;
    std::memcpy(&word, bytes, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    word = __builtin_bswap64(word);
#endif
    return word;
}
// The high bit of each byte of `word` that is below 0x20, a quote or a backslash (what a JSON string must
// escape): classic "has zero byte" bit tricks on the word and its XORs. A subtraction's borrow only runs from
// a byte that matched towards later bytes, so the first marked byte is a true match (later ones may not be).
inline uint64_t json_special_marks(uint64_t word) {
    constexpr uint64_t kOnes = 0x0101010101010101ULL, kHighs = 0x8080808080808080ULL;
    uint64_t quote = word ^ (kOnes * '"'), backslash = word ^ (kOnes * '\\');
    return ((word - kOnes * 0x20) | (quote - kOnes) | (backslash - kOnes)) & ~word & kHighs;
}
// Whether a JSON string escapes the byte `c`: a control character (below 0x20), a quote or a backslash.
inline bool is_json_special(unsigned char c) {
    return c < 0x20 || c == '"' || c == '\\';
}
#if defined(__SSE2__)
// One bit per byte of `chunk` (as _mm_movemask_epi8 sets them) for the bytes a JSON string escapes.
inline unsigned json_special_bits(__m128i chunk) {
    const __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(chunk, _mm_set1_epi8(0x1f)), chunk);  // byte <= 0x1f
    return static_cast<unsigned>(
        _mm_movemask_epi8(_mm_or_si128(control, _mm_or_si128(_mm_cmpeq_epi8(chunk, _mm_set1_epi8('"')),
                                                             _mm_cmpeq_epi8(chunk, _mm_set1_epi8('\\'))))));
}
#endif
}  // namespace json_detail

// Whether one of the eight bytes at `bytes` is one a JSON string must escape; lets a scan skip plain text a
// word at a time.
inline bool has_json_special_byte(const char* bytes) {
    return json_detail::json_special_marks(json_detail::load_word(bytes)) != 0;
}
// The position (0-7) of the first byte of `word` (loaded by json_detail::load_word) that a JSON string must
// escape, 8 when none.
inline size_t first_json_special_byte(uint64_t word) {
    uint64_t marks = json_detail::json_special_marks(word);
    return marks ? size_t(__builtin_ctzll(marks)) / 8 : 8;
}

// The same into memory the caller sized for the worst case, json_string_bound(text.size()) bytes; returns
// the end of what it wrote.
char* write_json_string(char* out, std::string_view text);
constexpr size_t json_string_bound(size_t text_size) {
    return 2 + 6 * text_size;  // the quotes, and a six-character escape for every byte
}
// Whether `text` holds a byte that a JSON string escapes.
bool needs_json_escape(std::string_view text);
// A string value: copied between the quotes when it is known to need no escape, else escaped.
inline char* write_json_string_value(char* out, const JsonValue& value) {
    if (!value.escape_free) return write_json_string(out, value.text);
    assert(!needs_json_escape(value.text));
    *out++ = '"';
    std::memcpy(out, value.text.data(), value.text.size());
    out += value.text.size();
    *out++ = '"';
    return out;
}

inline size_t JsonValue::json_bound() const {
    switch (kind) {
        case Kind::Null:
            return 4;
        case Kind::Bool:
        case Kind::Number:
            return text.size();
        case Kind::String:
            return json_string_bound(text.size());
        default:
            return composite_json_bound();
    }
}

inline char* JsonValue::write_json(char* out) const {
    switch (kind) {
        case Kind::Null:
            std::memcpy(out, "null", 4);
            return out + 4;
        case Kind::Bool:
        case Kind::Number:
            std::memcpy(out, text.data(), text.size());
            return out + text.size();
        case Kind::String:
            return write_json_string_value(out, *this);
        default:
            return write_composite_json(out);
    }
}

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
