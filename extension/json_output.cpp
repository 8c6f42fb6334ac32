#include "json_output.h"

#include <string.h>

namespace {

// Per byte: whether escape_json() rewrites it (control characters, '"' and '\\'), and how.
struct EscapeTable {
    uint8 needs_escape[256];
    uint8 numeric_char[256];
    char short_form[256];  // 0: written as is; 'u': \u00xx; otherwise the letter after the backslash
    constexpr EscapeTable() : needs_escape(), numeric_char(), short_form() {
        for (int c = 0; c < 0x20; c++) needs_escape[c] = 1;
        needs_escape[(int)'"'] = 1;
        needs_escape[(int)'\\'] = 1;
        for (int c = 0; c < 0x20; c++) short_form[c] = 'u';
        short_form[(int)'\b'] = 'b';
        short_form[(int)'\f'] = 'f';
        short_form[(int)'\n'] = 'n';
        short_form[(int)'\r'] = 'r';
        short_form[(int)'\t'] = 't';
        short_form[(int)'"'] = '"';
        short_form[(int)'\\'] = '\\';
        const char* numeric = "0123456789+-eE.";
        for (const char* p = numeric; *p; p++) numeric_char[(uint8)*p] = 1;
    }
};
constexpr EscapeTable kTables;

const char kHexDigits[] = "0123456789abcdef";

// Writes `c` at `w`, escaped as escape_json() does (room for 6 bytes is guaranteed); returns the new end.
inline char* put_escaped_byte(char* w, uint8 c) {
    char short_form = kTables.short_form[c];
    if (likely(short_form == 0)) {
        *w = (char)c;
        return w + 1;
    }
    w[0] = '\\';
    if (short_form != 'u') {
        w[1] = short_form;
        return w + 2;
    }
    w[1] = 'u';
    w[2] = '0';
    w[3] = '0';
    w[4] = kHexDigits[c >> 4];
    w[5] = kHexDigits[c & 0xf];
    return w + 6;
}

// Eight bytes at a time: true if any byte is below 0x20, '"' or '\\' (exact, no false negatives or
// positives for the word as a whole).
inline bool word_needs_escape(uint64 word) {
    const uint64 ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64 below_space = (word - ones * 0x20) & ~word & highs;
    uint64 quote = word ^ (ones * '"');
    uint64 backslash = word ^ (ones * '\\');
    uint64 has_quote = (quote - ones) & ~quote & highs;
    uint64 has_backslash = (backslash - ones) & ~backslash & highs;
    return (below_space | has_quote | has_backslash) != 0;
}

bool is_plain_number(const char* s) {
    for (const char* p = s; *p; p++)
        if (!kTables.numeric_char[(uint8)*p]) return false;
    return true;
}

// NaN, Infinity and -Infinity as wal2json recognises them: a case-insensitive prefix.
bool is_special_number(const char* s) {
    return pg_strncasecmp(s, "NaN", 3) == 0 || pg_strncasecmp(s, "Infinity", 8) == 0 ||
           pg_strncasecmp(s, "-Infinity", 9) == 0;
}

// bytea is written as its hex digits whatever bytea_output says: what wal2json prints under the
// default bytea_output=hex, without the corruption it shows under bytea_output=escape.
void append_bytea_hex(StringInfo out, const bytea* value) {
    const uint8* bytes = (const uint8*)VARDATA_ANY(value);
    size_t len = VARSIZE_ANY_EXHDR(value);
    // Same limit as byteaout()'s hex text, which wal2json would have hit first.
    if (len > (MaxAllocSize - 3) / 2)
        ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                        errmsg("bytea value of %zu bytes is too large to write as hex", len)));
    reserve_room(out, (int)(len * 2 + 2));
    char* w = out->data + out->len;
    *w++ = '"';
    for (size_t i = 0; i < len; i++) {
        *w++ = kHexDigits[bytes[i] >> 4];
        *w++ = kHexDigits[bytes[i] & 0xf];
    }
    *w++ = '"';
    out->len = (int)(w - out->data);
    out->data[out->len] = '\0';
}

}  // namespace

ValueKind value_kind_for_type(Oid type_oid) {
    switch (type_oid) {
        case INT2OID:
        case INT4OID:
        case INT8OID:
        case OIDOID:
        case FLOAT4OID:
        case FLOAT8OID:
        case NUMERICOID:
            return VALUE_NUMBER;
        case BOOLOID:
            return VALUE_BOOL;
        case BYTEAOID:
            return VALUE_BYTEA;
        default:
            return VALUE_STRING;
    }
}

namespace {

// Appends `len` bytes escaped as escape_json() does, without the surrounding quotes.
void append_escaped_run(StringInfo out, const char* s, size_t len) {
    // Room for the worst case (every byte a 6-byte \u00xx) is reserved per chunk, so the loops below
    // never check bounds; chunking keeps that reservation small for huge values.
    const size_t kChunk = 4096;
    const char* p = s;
    const char* end = s + len;
    while (p < end) {
        const char* chunk_end = end - p > (ptrdiff_t)kChunk ? p + kChunk : end;
        reserve_room(out, (int)(chunk_end - p) * 6);
        char* w = out->data + out->len;
        // Plain text moves eight bytes at a time; a word holding something to escape goes byte by byte.
        while (chunk_end - p >= 8) {
            uint64 word;
            memcpy(&word, p, 8);
            if (likely(!word_needs_escape(word))) {
                memcpy(w, p, 8);
                w += 8;
                p += 8;
                continue;
            }
            for (int i = 0; i < 8; i++) w = put_escaped_byte(w, (uint8)*p++);
        }
        while (p < chunk_end) w = put_escaped_byte(w, (uint8)*p++);
        out->len = (int)(w - out->data);
        *w = '\0';
    }
}

}  // namespace

void json_append_escaped(StringInfo out, const char* s, size_t len) {
    reserve_room(out, 1);
    out->data[out->len++] = '"';
    append_escaped_run(out, s, len);
    reserve_room(out, 1);
    out->data[out->len++] = '"';
    out->data[out->len] = '\0';
}

namespace {

// Appends `s` as it appears when escape_json()'s output for it ("...") is itself escaped: the text of
// a jsonb string inside the JSON string that carries the whole jsonb value.
void append_double_escaped_string(StringInfo out, const char* s, size_t len) {
    const size_t kChunk = 4096;
    APPEND_LITERAL(out, "\\\"");
    const char* p = s;
    const char* end = s + len;
    while (p < end) {
        const char* chunk_end = end - p > (ptrdiff_t)kChunk ? p + kChunk : end;
        // One byte becomes at most 6 (\u00xx), each of whose bytes at most 2 when escaped again.
        reserve_room(out, (int)(chunk_end - p) * 12);
        char* w = out->data + out->len;
        while (p < chunk_end) {
            uint8 c = (uint8)*p++;
            if (likely(kTables.short_form[c] == 0)) {
                *w++ = (char)c;
                continue;
            }
            char once[6];
            int once_len = (int)(put_escaped_byte(once, c) - once);
            for (int i = 0; i < once_len; i++) w = put_escaped_byte(w, (uint8)once[i]);
        }
        out->len = (int)(w - out->data);
        *w = '\0';
    }
    APPEND_LITERAL(out, "\\\"");
}

// A jsonb scalar as jsonb_out's jsonb_put_escaped_value() writes it, escaped once more.
void append_jsonb_scalar(StringInfo out, const JsonbValue* value) {
    switch (value->type) {
        case jbvNull:
            APPEND_LITERAL(out, "null");
            break;
        case jbvString:
            append_double_escaped_string(out, value->val.string.val, value->val.string.len);
            break;
        case jbvNumeric: {
            char* digits =
                DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(value->val.numeric)));
            append_escaped_run(out, digits, strlen(digits));
            break;
        }
        case jbvBool:
            if (value->val.boolean)
                APPEND_LITERAL(out, "true");
            else
                APPEND_LITERAL(out, "false");
            break;
        default:
            elog(ERROR, "unknown jsonb scalar type");
    }
}

// Writes jsonb_out()'s text for `jsonb` as a JSON string in one pass, instead of building that text
// and escaping it afterwards. Follows JsonbToCStringWorker() without indentation token by token:
// ", " between items, ": " after keys, a raw scalar without brackets.
void append_jsonb_as_json_string(StringInfo out, Jsonb* jsonb) {
    APPEND_LITERAL(out, "\"");
    JsonbIterator* it = JsonbIteratorInit(&jsonb->root);
    JsonbValue value;
    JsonbIteratorToken type = WJB_DONE;
    bool first = true;
    bool raw_scalar = false;
    bool redo_switch = false;
    while (redo_switch || (type = JsonbIteratorNext(&it, &value, false)) != WJB_DONE) {
        redo_switch = false;
        switch (type) {
            case WJB_BEGIN_ARRAY:
                if (!first) APPEND_LITERAL(out, ", ");
                if (!value.val.array.rawScalar)
                    APPEND_LITERAL(out, "[");
                else
                    raw_scalar = true;
                first = true;
                break;
            case WJB_BEGIN_OBJECT:
                if (!first) APPEND_LITERAL(out, ", ");
                APPEND_LITERAL(out, "{");
                first = true;
                break;
            case WJB_KEY:
                if (!first) APPEND_LITERAL(out, ", ");
                first = true;
                append_jsonb_scalar(out, &value);
                APPEND_LITERAL(out, ": ");
                type = JsonbIteratorNext(&it, &value, false);
                if (type == WJB_VALUE) {
                    first = false;
                    append_jsonb_scalar(out, &value);
                } else {
                    redo_switch = true;  // a nested container: handled by the next round
                }
                break;
            case WJB_ELEM:
                if (!first) APPEND_LITERAL(out, ", ");
                first = false;
                append_jsonb_scalar(out, &value);
                break;
            case WJB_END_ARRAY:
                if (!raw_scalar) APPEND_LITERAL(out, "]");
                first = false;
                break;
            case WJB_END_OBJECT:
                APPEND_LITERAL(out, "}");
                first = false;
                break;
            default:
                elog(ERROR, "unknown jsonb iterator token type");
        }
    }
    APPEND_LITERAL(out, "\"");
}

// True where array_out() must put a text[] element in double quotes: empty, NULL in any case, or
// containing '"', '\\', '{', '}', the ',' delimiter or array_isspace() white space.
bool array_element_needs_quotes(const char* s, size_t len) {
    if (len == 0) return true;
    if (len == 4 && pg_strncasecmp(s, "NULL", 4) == 0) return true;
    for (size_t i = 0; i < len; i++) {
        switch (s[i]) {
            case '"':
            case '\\':
            case '{':
            case '}':
            case ',':
            case ' ':
            case '\t':
            case '\n':
            case '\r':
            case '\v':
            case '\f':
                return true;
            default:
                break;
        }
    }
    return false;
}

// Writes array_out()'s text for a one-dimensional text[] with lower bound 1 (or an empty array) as a
// JSON string in one pass; returns false, having written nothing, for any other shape.
bool append_text_array_as_json_string(StringInfo out, ArrayType* array) {
    int ndim = ARR_NDIM(array);
    if (ARR_ELEMTYPE(array) != TEXTOID || ndim > 1 || (ndim == 1 && ARR_LBOUND(array)[0] != 1)) return false;
    Datum* elements;
    bool* nulls;
    int count;
    deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elements, &nulls, &count);
    APPEND_LITERAL(out, "\"{");
    for (int i = 0; i < count; i++) {
        if (i > 0) APPEND_LITERAL(out, ",");
        if (nulls[i]) {
            APPEND_LITERAL(out, "NULL");
            continue;
        }
        const text* element = (const text*)DatumGetPointer(elements[i]);
        const char* p = VARDATA_ANY(element);
        size_t len = VARSIZE_ANY_EXHDR(element);
        if (!array_element_needs_quotes(p, len)) {
            append_escaped_run(out, p, len);
            continue;
        }
        // array_out's quotes become \" and its backslash escapes (\" and \\) are escaped again.
        APPEND_LITERAL(out, "\\\"");
        const char* end = p + len;
        while (p < end) {
            const char* run = p;
            while (p < end && *p != '"' && *p != '\\') p++;
            append_escaped_run(out, run, p - run);
            if (p == end) break;
            if (*p == '"')
                APPEND_LITERAL(out, "\\\\\\\"");
            else
                APPEND_LITERAL(out, "\\\\\\\\");
            p++;
        }
        APPEND_LITERAL(out, "\\\"");
    }
    APPEND_LITERAL(out, "}\"");
    return true;
}

}  // namespace

char* json_quote(const char* s, int* quoted_len) {
    StringInfoData buf;
    initStringInfo(&buf);
    json_append_escaped_cstring(&buf, s);
    if (quoted_len) *quoted_len = buf.len;
    return buf.data;
}

namespace {

// True if `s` is one JSON string literal without escapes: "...", no '"', '\\' or control byte inside.
bool is_plain_json_string(const char* s, size_t len) {
    if (len < 2 || s[0] != '"' || s[len - 1] != '"') return false;
    for (size_t i = 1; i + 1 < len; i++)
        if (kTables.needs_escape[(uint8)s[i]]) return false;
    return true;
}

}  // namespace

char* json_type_name(const char* name, int* quoted_len) {
    size_t len = strlen(name);
    if (is_plain_json_string(name, len)) {
        if (quoted_len) *quoted_len = (int)len;
        return pstrdup(name);
    }
    return json_quote(name, quoted_len);
}

namespace {

// Writes an output-function text according to the value kind.
void append_rendered_text(StringInfo out, const char* text, size_t len, ValueKind kind,
                          bool numbers_as_strings) {
    switch (kind) {
        case VALUE_NUMBER:
            // A plain number never starts like NaN or Infinity, so testing it first changes nothing.
            if (is_plain_number(text)) {
                if (numbers_as_strings)
                    json_append_escaped(out, text, len);
                else
                    append_bytes(out, text, (int)len);
            } else if (is_special_number(text)) {
                if (numbers_as_strings)
                    json_append_escaped(out, text, len);
                else
                    append_bytes(out, "null", 4);
            } else {
                elog(ERROR, "%s is not a number", text);
            }
            break;
        case VALUE_BOOL:
            if (text[0] == 't' && text[1] == '\0')
                append_bytes(out, "true", 4);
            else
                append_bytes(out, "false", 5);
            break;
        default:
            json_append_escaped(out, text, len);
            break;
    }
}

}  // namespace

void json_append_value(StringInfo out, Datum value, ValueKind kind, FmgrInfo* output_fn, bool is_varlena,
                       bool numbers_as_strings) {
    // Short (1-byte header) values are used in place: the text paths read them with VARDATA_ANY and
    // output functions accept them; only compressed or out-of-line values need a copy.
    if (is_varlena) value = PointerGetDatum(PG_DETOAST_DATUM_PACKED(value));

    if (kind == VALUE_BYTEA) {
        append_bytea_hex(out, DatumGetByteaPP(value));
        return;
    }

    // Output functions whose text is cheap to produce here, byte for byte what they would return,
    // without their palloc and the strlen that follows.
    char digits[MAXINT8LEN + 1];
    int len;
    switch (output_fn->fn_oid) {
        case F_INT2OUT:
            len = pg_itoa(DatumGetInt16(value), digits);
            append_rendered_text(out, digits, len, kind, numbers_as_strings);
            return;
        case F_INT4OUT:
            len = pg_ltoa(DatumGetInt32(value), digits);
            append_rendered_text(out, digits, len, kind, numbers_as_strings);
            return;
        case F_INT8OUT:
            len = pg_lltoa(DatumGetInt64(value), digits);
            append_rendered_text(out, digits, len, kind, numbers_as_strings);
            return;
        case F_BOOLOUT:
            append_rendered_text(out, DatumGetBool(value) ? "t" : "f", 1, kind, numbers_as_strings);
            return;
        case F_JSONB_OUT:
            if (kind == VALUE_STRING) {
                append_jsonb_as_json_string(out, DatumGetJsonbP(value));
                return;
            }
            break;
        case F_ARRAY_OUT:
            if (kind == VALUE_STRING && append_text_array_as_json_string(out, DatumGetArrayTypeP(value)))
                return;
            break;
        case F_TEXTOUT:
        case F_VARCHAROUT:
        case F_BPCHAROUT:
            if (kind == VALUE_STRING) {
                // text cannot contain NUL bytes: its payload is the output text
                text* t = (text*)DatumGetPointer(value);
                json_append_escaped(out, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
                return;
            }
            break;
        default:
            break;
    }

    // Not freed: the per-change memory context is reset after the change anyway.
    char* text = OutputFunctionCall(output_fn, value);
    append_rendered_text(out, text, strlen(text), kind, numbers_as_strings);
}

void json_append_lsn(StringInfo out, XLogRecPtr lsn) {
    appendStringInfo(out, "\"%X/%X\"", (uint32)(lsn >> 32), (uint32)lsn);
}

void append_uint32(StringInfo out, uint32 value) {
    char digits[16];
    int n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    reserve_room(out, n);
    while (n > 0) out->data[out->len++] = digits[--n];
    out->data[out->len] = '\0';
}

void append_int32(StringInfo out, int32 value) {
    if (value < 0) {
        appendStringInfoCharMacro(out, '-');
        append_uint32(out, (uint32)(-(int64)value));
    } else {
        append_uint32(out, (uint32)value);
    }
}
