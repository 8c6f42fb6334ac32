// The one JSON escaper and the one value renderer, shared by format-version 1 and 2.
#pragma once

#include "pg_headers.h"

// How a column value is written, decided from the type OID the way wal2json does: int2/int4/int8/oid/
// float4/float8/numeric are bare numbers, bool is true/false, bytea is hex text, everything else is a
// JSON string of the type's text output (domains included, whatever their base type).
enum ValueKind : uint8 { VALUE_NUMBER, VALUE_BOOL, VALUE_BYTEA, VALUE_STRING };

ValueKind value_kind_for_type(Oid type_oid);

// Appends `s` (len bytes, no NUL inside) as a quoted JSON string, escaped exactly like PostgreSQL's
// escape_json(): \" \\ \b \f \n \r \t, other bytes below 0x20 as \u00xx, everything else raw.
void json_append_escaped(StringInfo out, const char* s, size_t len);

inline void json_append_escaped_cstring(StringInfo out, const char* s) {
    json_append_escaped(out, s, strlen(s));
}

// The quoted, escaped form of `s` as a palloc'd string (for names cached once per relation).
char* json_quote(const char* s, int* quoted_len);

// Appends a non-null column value. `output_fn` is the type's text output function; `is_varlena`
// says whether the datum may be toasted (it is detoasted first). With numbers_as_strings
// (numeric-data-types-as-string) numbers are quoted and NaN/Infinity kept; otherwise they become null.
void json_append_value(StringInfo out, Datum value, ValueKind kind, FmgrInfo* output_fn, bool is_varlena,
                       bool numbers_as_strings);

// A type name (format_type text or pg_type.typname) as written in "type", columntypes, keytypes and
// pktypes. wal2json pastes a name starting with '"' raw (columntypes/keytypes/v2: unless it ends in
// ']'), relying on the identifier quotes to double as JSON quotes. Where that raw text is exactly one
// valid JSON string it is pasted raw here too, byte-identical to wal2json; otherwise (schema-qualified
// quoted names, embedded "", quoted arrays) it is JSON-escaped instead of wal2json's invalid JSON.
// Both wal2json rules agree on every name that is a single JSON string, so one form serves all arrays.
char* json_type_name(const char* name, int* quoted_len);

// "X/Y" as pg_lsn_out prints it.
void json_append_lsn(StringInfo out, XLogRecPtr lsn);

void append_uint32(StringInfo out, uint32 value);
void append_int32(StringInfo out, int32 value);

// Makes room for `len` more bytes (plus the terminator); the common case is an inline comparison, not
// a call into enlargeStringInfo.
inline void reserve_room(StringInfo out, int len) {
    if (unlikely((size_t)out->len + len + 1 > (size_t)out->maxlen)) enlargeStringInfo(out, len);
}

// appendBinaryStringInfo without the call: for the many short pieces of a record.
inline void append_bytes(StringInfo out, const char* s, int len) {
    reserve_room(out, len);
    memcpy(out->data + out->len, s, len);
    out->len += len;
    out->data[out->len] = '\0';
}

#define APPEND_LITERAL(out, literal) append_bytes((out), literal, sizeof(literal) - 1)

// Writes into a StringInfo whose room was reserved up front: one enlargeStringInfo for a group of
// small appends instead of one bounds check and call per piece. Trivially destructible on purpose.
struct ReservedWriter {
    StringInfo out;
    char* w;
};

inline ReservedWriter reserve_output(StringInfo out, int max_bytes) {
    reserve_room(out, max_bytes);
    return ReservedWriter{out, out->data + out->len};
}

inline void put_bytes(ReservedWriter& writer, const char* s, int len) {
    memcpy(writer.w, s, len);
    writer.w += len;
}

inline void put_char(ReservedWriter& writer, char c) {
    *writer.w++ = c;
}

// Ends the reserved group: the StringInfo's length and terminator are brought up to date.
inline void commit_output(ReservedWriter& writer) {
    writer.out->len = (int)(writer.w - writer.out->data);
    *writer.w = '\0';
}

#define PUT_LITERAL(writer, literal) put_bytes((writer), literal, sizeof(literal) - 1)
