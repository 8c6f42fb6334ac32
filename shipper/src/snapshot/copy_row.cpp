#include "snapshot/copy_row.h"

#include <strings.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace pgstream {

namespace {

constexpr uint32_t kBoolOid = 16, kByteaOid = 17, kInt8Oid = 20, kInt2Oid = 21, kInt4Oid = 23, kOidOid = 26,
                   kFloat4Oid = 700, kFloat8Oid = 701, kNumericOid = 1700;

// NaN, Infinity and -Infinity as the plugin (and wal2json) recognise them: a case-insensitive prefix.
bool is_special_number(std::string_view text) {
    // Most numbers start with a digit: one comparison instead of three prefix tests.
    if (text.empty() || (text[0] >= '0' && text[0] <= '9')) return false;
    auto starts = [&](std::string_view prefix) {
        return text.size() >= prefix.size() && strncasecmp(text.data(), prefix.data(), prefix.size()) == 0;
    };
    return starts("NaN") || starts("Infinity") || starts("-Infinity");
}

int octal_digit(char c) {
    return c >= '0' && c <= '7' ? c - '0' : -1;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Undoes one backslash escape: `field[i]` is the character after the backslash; `i` ends on the escape's last
// character.
void append_escape(std::string_view field, size_t& i, std::string& out) {
    char next = field[i];
    switch (next) {
        case 'b':
            out += '\b';
            return;
        case 'f':
            out += '\f';
            return;
        case 'n':
            out += '\n';
            return;
        case 'r':
            out += '\r';
            return;
        case 't':
            out += '\t';
            return;
        case 'v':
            out += '\v';
            return;
        case 'x': {
            int value = 0, digits = 0;
            while (digits < 2 && i + 1 < field.size() && hex_digit(field[i + 1]) >= 0)
                value = value * 16 + hex_digit(field[++i]), ++digits;
            if (digits == 0)
                out += 'x';
            else
                out += char(value);
            return;
        }
        default:
            if (octal_digit(next) >= 0) {
                int value = octal_digit(next), digits = 1;
                while (digits < 3 && i + 1 < field.size() && octal_digit(field[i + 1]) >= 0)
                    value = value * 8 + octal_digit(field[++i]), ++digits;
                out += char(value);
            } else {
                out += next;  // \\ and any escaped delimiter
            }
    }
}

// The field's text with COPY's backslash escapes undone. The text between escapes is copied in runs (most
// fields have no escape at all: one assign), not character by character.
void unescape_field(std::string_view field, std::string& out) {
    size_t backslash = field.find('\\');
    if (backslash == std::string_view::npos) {
        out.assign(field);
        return;
    }
    out.clear();
    out.reserve(field.size());
    size_t copied = 0;
    while (backslash != std::string_view::npos) {
        out.append(field.substr(copied, backslash - copied));
        size_t i = backslash + 1;
        if (i == field.size()) {
            out += '\\';  // a trailing lone backslash stays
            copied = i;
            break;
        }
        append_escape(field, i, out);
        copied = i + 1;
        backslash = field.find('\\', copied);
    }
    out.append(field.substr(copied));
}

struct FieldSpan {
    size_t end;    // the tab after the field, npos when the field ends the line
    bool escaped;  // a backslash within the field
    // A byte within the field that a JSON string escapes (COPY leaves quotes and most control characters as
    // they are): without it the field's text is escape-free.
    bool json_special;
};

// `span.escaped`: whether the field holds a backslash (COPY's escapes and its NULL, \N, start with one).
void render(std::string_view field, const FieldSpan& span, ValueRendering rendering, JsonValue& value) {
    const bool escaped = span.escaped;
    value.members.clear();
    value.items.clear();
    // Numbers' and booleans' output texts need no escape either; bytea's is left to the writer.
    value.escape_free = !span.json_special && rendering != ValueRendering::Bytea;
    if (escaped && field == "\\N") {
        value.kind = JsonValue::Kind::Null;
        value.text.clear();
        return;
    }
    switch (rendering) {
        case ValueRendering::Number:
            // Output texts of numbers need no unescaping.
            if (is_special_number(field)) {
                value.kind = JsonValue::Kind::Null;
                value.text.clear();
            } else {
                value.kind = JsonValue::Kind::Number;
                value.text.assign(field);
            }
            return;
        case ValueRendering::Bool:
            value.kind = JsonValue::Kind::Bool;
            value.text = field == "t" ? "true" : "false";
            return;
        case ValueRendering::Bytea:
            // bytea_output=hex (set by the reader) prints \x<hex>; COPY doubles the backslash.
            value.kind = JsonValue::Kind::String;
            value.text.assign(field.substr(field.size() >= 3 && field.substr(0, 3) == "\\\\x" ? 3 : 0));
            return;
        case ValueRendering::Text:
            value.kind = JsonValue::Kind::String;
            if (escaped)
                unescape_field(field, value.text);
            else
                value.text.assign(field);
            return;
    }
}

// The end of the field that starts at `start`, whether it holds a backslash, and whether it holds a byte JSON
// escapes, in one pass over its bytes (sixteen a step where the line has them) instead of a search for the
// tab, another for a backslash and the event writer's own for the JSON escapes.
FieldSpan scan_field(std::string_view line, size_t start) {
    const char* data = line.data();
    size_t at = start;
    bool escaped = false, json_special = false;
#if defined(__SSE2__)
    const __m128i tab = _mm_set1_epi8('\t'), backslash = _mm_set1_epi8('\\');
    for (; at + 16 <= line.size(); at += 16) {
        const __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + at));
        const unsigned tabs = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, tab)));
        const unsigned backslashes =
            static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, backslash)));
        // The tab and the backslashes are among them.
        const unsigned specials = json_detail::json_special_bits(chunk);
        if (tabs != 0) {
            const unsigned first_tab = static_cast<unsigned>(__builtin_ctz(tabs));
            const unsigned before_tab = (1u << first_tab) - 1;
            return {at + first_tab, escaped || (backslashes & before_tab) != 0,
                    json_special || (specials & before_tab) != 0};
        }
        escaped = escaped || backslashes != 0;
        json_special = json_special || specials != 0;
    }
#endif
    // The rest eight bytes a step while they hold none of the bytes looked for (the tab is a control
    // character: a word without a byte JSON escapes holds no tab and no backslash either).
    for (; at + 8 <= line.size(); at += 8)
        if (json_detail::json_special_marks(json_detail::load_word(data + at)) != 0) break;
    for (; at < line.size(); ++at) {
        if (data[at] == '\t') return {at, escaped, json_special};
        if (data[at] == '\\') escaped = true;
        if (json_detail::is_json_special(static_cast<unsigned char>(data[at]))) json_special = true;
    }
    return {std::string_view::npos, escaped, json_special};
}

}  // namespace

ValueRendering rendering_for_type(uint32_t type_oid) {
    switch (type_oid) {
        case kInt2Oid:
        case kInt4Oid:
        case kInt8Oid:
        case kOidOid:
        case kFloat4Oid:
        case kFloat8Oid:
        case kNumericOid:
            return ValueRendering::Number;
        case kBoolOid:
            return ValueRendering::Bool;
        case kByteaOid:
            return ValueRendering::Bytea;
        default:
            return ValueRendering::Text;
    }
}

void decode_copy_row(std::string_view line, const std::vector<SnapshotColumn>& columns,
                     std::vector<Column>& out) {
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    out.resize(columns.size());
    size_t start = 0;
    for (size_t i = 0; i < columns.size(); ++i) {
        const FieldSpan span = scan_field(line, start);
        size_t end = span.end;
        bool last = i + 1 == columns.size();
        if (last != (end == std::string_view::npos))
            throw CopyRowError("a COPY row has " + std::string(last ? "more" : "fewer") +
                               " fields than the " + std::to_string(columns.size()) + " columns");
        if (last) end = line.size();
        Column& column = out[i];
        // A reused row (the readers recycle events) may hold the previous row's pgstream id: the translator
        // fills it again.
        column.id.clear();
        // A recycled row usually held a row of the same table: its heads are already these.
        if (!column.name.same_as(columns[i].name)) column.name = columns[i].name;
        if (!column.type.same_as(columns[i].type)) column.type = columns[i].type;
        render(line.substr(start, end - start), span, columns[i].rendering, column.value);
        start = end + 1;
    }
    if (columns.empty() && !line.empty())
        throw CopyRowError("a COPY row has fields but the table has no columns");
}

}  // namespace pgstream
