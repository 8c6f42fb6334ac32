#include "json_output.h"

#include <string.h>

namespace {

// 1 for bytes escape_json() rewrites: control characters, '"' and '\\'.
struct EscapeTable {
    uint8 needs_escape[256];
    uint8 numeric_char[256];
    constexpr EscapeTable() : needs_escape(), numeric_char() {
        for (int c = 0; c < 0x20; c++) needs_escape[c] = 1;
        needs_escape[(int)'"'] = 1;
        needs_escape[(int)'\\'] = 1;
        const char* numeric = "0123456789+-eE.";
        for (const char* p = numeric; *p; p++) numeric_char[(uint8)*p] = 1;
    }
};
constexpr EscapeTable kTables;

const char kHexDigits[] = "0123456789abcdef";

void append_escape_sequence(StringInfo out, uint8 c) {
    switch (c) {
        case '\b': appendBinaryStringInfo(out, "\\b", 2); break;
        case '\f': appendBinaryStringInfo(out, "\\f", 2); break;
        case '\n': appendBinaryStringInfo(out, "\\n", 2); break;
        case '\r': appendBinaryStringInfo(out, "\\r", 2); break;
        case '\t': appendBinaryStringInfo(out, "\\t", 2); break;
        case '"': appendBinaryStringInfo(out, "\\\"", 2); break;
        case '\\': appendBinaryStringInfo(out, "\\\\", 2); break;
        default: {
            char seq[6] = {'\\', 'u', '0', '0', kHexDigits[c >> 4], kHexDigits[c & 0xf]};
            appendBinaryStringInfo(out, seq, 6);
        }
    }
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
    enlargeStringInfo(out, (int)(len * 2 + 2));
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
        case NUMERICOID: return VALUE_NUMBER;
        case BOOLOID: return VALUE_BOOL;
        case BYTEAOID: return VALUE_BYTEA;
        default: return VALUE_STRING;
    }
}

void json_append_escaped(StringInfo out, const char* s, size_t len) {
    enlargeStringInfo(out, (int)len + 2);
    appendStringInfoCharMacro(out, '"');
    const char* run = s;
    const char* end = s + len;
    for (const char* p = s; p < end; p++) {
        if (likely(!kTables.needs_escape[(uint8)*p])) continue;
        if (p > run) appendBinaryStringInfo(out, run, (int)(p - run));
        append_escape_sequence(out, (uint8)*p);
        run = p + 1;
    }
    if (end > run) appendBinaryStringInfo(out, run, (int)(end - run));
    appendStringInfoCharMacro(out, '"');
}

char* json_quote(const char* s, int* quoted_len) {
    StringInfoData buf;
    initStringInfo(&buf);
    json_append_escaped_cstring(&buf, s);
    if (quoted_len) *quoted_len = buf.len;
    return buf.data;
}

void json_append_value(StringInfo out, Datum value, ValueKind kind, FmgrInfo* output_fn, bool is_varlena,
                       bool numbers_as_strings) {
    if (is_varlena) value = PointerGetDatum(PG_DETOAST_DATUM(value));

    if (kind == VALUE_BYTEA) {
        append_bytea_hex(out, DatumGetByteaPP(value));
        return;
    }

    char* text = OutputFunctionCall(output_fn, value);
    switch (kind) {
        case VALUE_NUMBER:
            if (numbers_as_strings) {
                if (!is_plain_number(text) && !is_special_number(text)) elog(ERROR, "%s is not a number", text);
                json_append_escaped_cstring(out, text);
            } else if (is_special_number(text)) {
                appendBinaryStringInfo(out, "null", 4);
            } else if (is_plain_number(text)) {
                appendStringInfoString(out, text);
            } else {
                elog(ERROR, "%s is not a number", text);
            }
            break;
        case VALUE_BOOL:
            if (text[0] == 't' && text[1] == '\0')
                appendBinaryStringInfo(out, "true", 4);
            else
                appendBinaryStringInfo(out, "false", 5);
            break;
        default: json_append_escaped_cstring(out, text); break;
    }
    pfree(text);
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
    enlargeStringInfo(out, n);
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
