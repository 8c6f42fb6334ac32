// format-version 1: one JSON document per transaction ({"change":[...]}), optionally pretty-printed or
// written in chunks (header, each change, trailer as separate messages).
#include "decoding_state.h"

namespace {

// Appends pieces of punctuation: `count` horizontal tabs (empty unless pretty-print).
void append_tabs(StringInfo out, const PluginOptions* opts, int count) {
    if (opts->ht[0] == '\0') return;
    for (int i = 0; i < count; i++) appendStringInfoCharMacro(out, '\t');
}

// `"key":` with the pretty-print indentation and space.
void append_key(StringInfo out, const PluginOptions* opts, int indent, const char* key) {
    append_tabs(out, opts, indent);
    appendStringInfoCharMacro(out, '"');
    appendStringInfoString(out, key);
    APPEND_LITERAL(out, "\":");
    appendStringInfoString(out, opts->sp);
}

void append_separator(StringInfo out, const PluginOptions* opts, bool first) {
    if (first) return;
    appendStringInfoCharMacro(out, ',');
    appendStringInfoString(out, opts->sp);
}

// The columns of one tuple that appear in a v1 array, with their values deformed once and shared by
// the parallel arrays (names, types, ..., values).
struct TupleView {
    Datum* values;
    bool* nulls;
    bool* shown;  // per ColumnInfo index
};

// `identity_only`: restrict to the replica-identity columns (when the relation has an identity index).
// `is_key`: oldkeys arrays, which skip NULL values.
TupleView view_tuple(const RelationInfo* info, TupleDesc tupdesc, HeapTuple tuple, bool identity_only,
                     bool is_key) {
    int natts = tupdesc->natts > 0 ? tupdesc->natts : 1;
    TupleView view;
    view.values = (Datum*)palloc(sizeof(Datum) * natts);
    view.nulls = (bool*)palloc(sizeof(bool) * natts);
    view.shown = (bool*)palloc0(sizeof(bool) * (info->ncolumns > 0 ? info->ncolumns : 1));
    heap_deform_tuple(tuple, tupdesc, view.values, view.nulls);
    for (int c = 0; c < info->ncolumns; c++) {
        const ColumnInfo* col = &info->columns[c];
        if (identity_only && info->has_identity_index && !col->identity_key) continue;
        bool isnull = view.nulls[col->tupdesc_index];
        if (isnull && is_key) continue;
        if (!isnull && col->is_varlena &&
            VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(view.values[col->tupdesc_index])))
            continue;  // unchanged TOAST value: not in the WAL record, left out as in wal2json
        view.shown[c] = true;
    }
    return view;
}

enum ArrayContent {
    ARRAY_NAMES,
    ARRAY_TYPES,
    ARRAY_TYPE_OIDS,
    ARRAY_POSITIONS,
    ARRAY_OPTIONALS,
    ARRAY_DEFAULTS,
    ARRAY_VALUES
};

void append_array_items(StringInfo out, const PluginOptions* opts, const RelationInfo* info,
                        const TupleView& view, ArrayContent content) {
    bool first = true;
    for (int c = 0; c < info->ncolumns; c++) {
        if (!view.shown[c]) continue;
        ColumnInfo* col = &info->columns[c];
        bool was_first = first;
        first = false;
        switch (content) {
            case ARRAY_NAMES:
                append_separator(out, opts, was_first);
                append_bytes(out, col->name_json, col->name_json_len);
                break;
            case ARRAY_TYPES:
                append_separator(out, opts, was_first);
                append_bytes(out, col->type_json, col->type_json_len);
                break;
            case ARRAY_TYPE_OIDS:
                append_separator(out, opts, was_first);
                append_uint32(out, col->type_oid);
                break;
            case ARRAY_POSITIONS:
                append_separator(out, opts, was_first);
                append_int32(out, col->attnum);
                break;
            case ARRAY_OPTIONALS:
                append_separator(out, opts, was_first);
                if (col->not_null)
                    APPEND_LITERAL(out, "false");
                else
                    APPEND_LITERAL(out, "true");
                break;
            case ARRAY_DEFAULTS:
                // wal2json writes nothing at all (not even the separator) for a default it can't find.
                if (col->default_state == DEFAULT_MISSING) break;
                append_separator(out, opts, was_first);
                if (col->default_state == DEFAULT_TEXT)
                    append_bytes(out, col->default_json, col->default_json_len);
                else
                    APPEND_LITERAL(out, "null");
                break;
            case ARRAY_VALUES: {
                append_separator(out, opts, was_first);
                if (view.nulls[col->tupdesc_index])
                    APPEND_LITERAL(out, "null");
                else
                    json_append_value(out, view.values[col->tupdesc_index], col->kind, &col->output_fn,
                                      col->is_varlena, opts->numeric_data_types_as_string);
                break;
            }
        }
    }
}

void append_array(StringInfo out, const PluginOptions* opts, int indent, const char* key,
                  const RelationInfo* info, const TupleView& view, ArrayContent content, bool include_items,
                  const char* tail) {
    append_key(out, opts, indent, key);
    appendStringInfoCharMacro(out, '[');
    if (include_items) append_array_items(out, opts, info, view, content);
    appendStringInfoCharMacro(out, ']');
    appendStringInfoString(out, tail);
    appendStringInfoString(out, opts->nl);
}

void append_new_tuple(StringInfo out, const PluginOptions* opts, const RelationInfo* info, TupleDesc tupdesc,
                      HeapTuple tuple, bool more_follows) {
    TupleView view = view_tuple(info, tupdesc, tuple, false, false);
    append_array(out, opts, 3, "columnnames", info, view, ARRAY_NAMES, true, ",");
    if (opts->include_types) append_array(out, opts, 3, "columntypes", info, view, ARRAY_TYPES, true, ",");
    if (opts->include_type_oids)
        append_array(out, opts, 3, "columntypeoids", info, view, ARRAY_TYPE_OIDS, true, ",");
    if (opts->include_column_positions)
        append_array(out, opts, 3, "columnpositions", info, view, ARRAY_POSITIONS, true, ",");
    // wal2json fills columnoptionals only when types are included.
    if (opts->include_not_null)
        append_array(out, opts, 3, "columnoptionals", info, view, ARRAY_OPTIONALS, opts->include_types, ",");
    if (opts->include_default)
        append_array(out, opts, 3, "columndefaults", info, view, ARRAY_DEFAULTS, true, ",");
    append_array(out, opts, 3, "columnvalues", info, view, ARRAY_VALUES, true, more_follows ? "," : "");
}

void append_old_keys(StringInfo out, const PluginOptions* opts, const RelationInfo* info, TupleDesc tupdesc,
                     HeapTuple tuple, bool identity_only) {
    TupleView view = view_tuple(info, tupdesc, tuple, identity_only, true);
    append_key(out, opts, 3, "oldkeys");
    appendStringInfoCharMacro(out, '{');
    appendStringInfoString(out, opts->nl);
    append_array(out, opts, 4, "keynames", info, view, ARRAY_NAMES, true, ",");
    if (opts->include_types) append_array(out, opts, 4, "keytypes", info, view, ARRAY_TYPES, true, ",");
    if (opts->include_type_oids)
        append_array(out, opts, 4, "keytypeoids", info, view, ARRAY_TYPE_OIDS, true, ",");
    append_array(out, opts, 4, "keyvalues", info, view, ARRAY_VALUES, true, "");
    append_tabs(out, opts, 3);
    appendStringInfoCharMacro(out, '}');
    appendStringInfoString(out, opts->nl);
}

void append_primary_key(StringInfo out, const PluginOptions* opts, const RelationInfo* info,
                        bool more_follows) {
    // Names and types only: every primary-key column, whatever the tuple holds.
    TupleView view;
    view.values = NULL;
    view.nulls = NULL;
    view.shown = (bool*)palloc0(sizeof(bool) * (info->ncolumns > 0 ? info->ncolumns : 1));
    for (int c = 0; c < info->ncolumns; c++) view.shown[c] = info->columns[c].primary_key;
    append_key(out, opts, 3, "pk");
    appendStringInfoCharMacro(out, '{');
    appendStringInfoString(out, opts->nl);
    append_array(out, opts, 4, "pknames", info, view, ARRAY_NAMES, true, ",");
    append_array(out, opts, 4, "pktypes", info, view, ARRAY_TYPES, opts->include_types, "");
    append_tabs(out, opts, 3);
    appendStringInfoCharMacro(out, '}');
    if (more_follows) appendStringInfoCharMacro(out, ',');
    appendStringInfoString(out, opts->nl);
}

// wal2json 2.5's v1 rejections, with its warnings (which name the table without its schema).
bool change_is_writable(const RelationInfo* info, ReorderBufferChange* change) {
    bool identifiable = info->has_identity_index || info->replica_identity == REPLICA_IDENTITY_FULL;
    switch (change->action) {
        case REORDER_BUFFER_CHANGE_INSERT:
            if (change->data.tp.newtuple != NULL) return true;
            elog(WARNING, "no tuple data for INSERT in table \"%s\"", info->table_name);
            return false;
        case REORDER_BUFFER_CHANGE_UPDATE:
        case REORDER_BUFFER_CHANGE_DELETE: {
            bool is_update = change->action == REORDER_BUFFER_CHANGE_UPDATE;
            if (!identifiable) {
                elog(WARNING, "table \"%s\" without primary key or replica identity is nothing",
                     info->table_name);
                return false;
            }
            if ((is_update ? change->data.tp.newtuple : change->data.tp.oldtuple) == NULL) {
                elog(WARNING, "no tuple data for %s in table \"%s\"", is_update ? "UPDATE" : "DELETE",
                     info->table_name);
                return false;
            }
            return true;
        }
        default:
            return false;
    }
}

// Starts an element of the change array: newline (unless in chunks), indentation, separating comma.
void begin_change_element(StringInfo out, DecodingState* state) {
    const PluginOptions* opts = &state->opts;
    state->v1_objects_in_txn++;
    if (!opts->write_in_chunks) appendStringInfoString(out, opts->nl);
    append_tabs(out, opts, 2);
    if (state->v1_objects_in_txn > 1) appendStringInfoCharMacro(out, ',');
    appendStringInfoCharMacro(out, '{');
    appendStringInfoString(out, opts->nl);
}

}  // namespace

void v1_begin(LogicalDecodingContext* ctx, DecodingState* state, ReorderBufferTXN* txn) {
    const PluginOptions* opts = &state->opts;
    state->v1_objects_in_txn = 0;
    OutputPluginPrepareWrite(ctx, true);
    StringInfo out = ctx->out;
    appendStringInfoCharMacro(out, '{');
    appendStringInfoString(out, opts->nl);
    if (opts->include_xids) {
        append_key(out, opts, 1, "xid");
        append_uint32(out, txn->xid);
        appendStringInfoCharMacro(out, ',');
        appendStringInfoString(out, opts->nl);
    }
    if (opts->include_lsn) {
        append_key(out, opts, 1, "nextlsn");
        json_append_lsn(out, txn->end_lsn);
        appendStringInfoCharMacro(out, ',');
        appendStringInfoString(out, opts->nl);
    }
    if (opts->include_timestamp) {
        append_key(out, opts, 1, "timestamp");
        append_commit_timestamp(out, state, txn);
        appendStringInfoCharMacro(out, ',');
        appendStringInfoString(out, opts->nl);
    }
    if (opts->include_origin) {
        append_key(out, opts, 1, "origin");
        append_uint32(out, txn->origin_id);
        appendStringInfoCharMacro(out, ',');
        appendStringInfoString(out, opts->nl);
    }
    append_key(out, opts, 1, "change");
    appendStringInfoCharMacro(out, '[');
    if (opts->write_in_chunks) OutputPluginWrite(ctx, true);
}

void v1_commit(LogicalDecodingContext* ctx, DecodingState* state, ReorderBufferTXN* txn,
               XLogRecPtr commit_lsn) {
    const PluginOptions* opts = &state->opts;
    if (opts->write_in_chunks)
        OutputPluginPrepareWrite(ctx, true);
    else
        appendStringInfoString(ctx->out, opts->nl);
    append_tabs(ctx->out, opts, 1);
    appendStringInfoCharMacro(ctx->out, ']');
    appendStringInfoString(ctx->out, opts->nl);
    appendStringInfoCharMacro(ctx->out, '}');
    OutputPluginWrite(ctx, true);
}

void v1_change(LogicalDecodingContext* ctx, DecodingState* state, ReorderBufferTXN* txn, Relation rel,
               ReorderBufferChange* change) {
    const PluginOptions* opts = &state->opts;
    if (!action_is_selected(opts, change->action)) return;
    RelationInfo* info = relation_cache_get(state->relations, rel);
    if (info->excluded) return;
    if (!change_is_writable(info, change)) return;
    if (opts->include_default) relation_cache_load_defaults(state->relations, info, rel);

    if (opts->write_in_chunks) OutputPluginPrepareWrite(ctx, true);
    StringInfo out = ctx->out;
    TupleDesc tupdesc = RelationGetDescr(rel);
    HeapTuple new_tuple = change->data.tp.newtuple ? &change->data.tp.newtuple->tuple : NULL;
    HeapTuple old_tuple = change->data.tp.oldtuple ? &change->data.tp.oldtuple->tuple : NULL;
    // wal2json 2.5 prints "pk" only for tables identified by their primary key (REPLICA IDENTITY DEFAULT).
    bool show_pk =
        opts->include_pk && info->has_identity_index && info->replica_identity == REPLICA_IDENTITY_DEFAULT;

    begin_change_element(out, state);
    append_key(out, opts, 3, "kind");
    switch (change->action) {
        case REORDER_BUFFER_CHANGE_INSERT:
            APPEND_LITERAL(out, "\"insert\",");
            break;
        case REORDER_BUFFER_CHANGE_UPDATE:
            APPEND_LITERAL(out, "\"update\",");
            break;
        default:
            APPEND_LITERAL(out, "\"delete\",");
            break;
    }
    appendStringInfoString(out, opts->nl);
    if (opts->include_schemas) {
        append_key(out, opts, 3, "schema");
        append_bytes(out, info->schema_json, info->schema_json_len);
        appendStringInfoCharMacro(out, ',');
        appendStringInfoString(out, opts->nl);
    }
    append_key(out, opts, 3, "table");
    append_bytes(out, info->table_json, info->table_json_len);
    appendStringInfoCharMacro(out, ',');
    appendStringInfoString(out, opts->nl);

    switch (change->action) {
        case REORDER_BUFFER_CHANGE_INSERT:
            append_new_tuple(out, opts, info, tupdesc, new_tuple, show_pk);
            if (show_pk) append_primary_key(out, opts, info, false);
            break;
        case REORDER_BUFFER_CHANGE_UPDATE:
            append_new_tuple(out, opts, info, tupdesc, new_tuple, true);
            if (show_pk) append_primary_key(out, opts, info, true);
            // Without an old tuple the key did not change: take it from the new tuple.
            if (old_tuple)
                append_old_keys(out, opts, info, tupdesc, old_tuple, false);
            else
                append_old_keys(out, opts, info, tupdesc, new_tuple, true);
            break;
        default:
            if (show_pk) append_primary_key(out, opts, info, true);
            append_old_keys(out, opts, info, tupdesc, old_tuple, true);
            break;
    }
    append_tabs(out, opts, 2);
    appendStringInfoCharMacro(out, '}');
    if (opts->write_in_chunks) OutputPluginWrite(ctx, true);
}

void v1_message(LogicalDecodingContext* ctx, DecodingState* state, ReorderBufferTXN* txn, XLogRecPtr lsn,
                bool transactional, const char* prefix, Size content_size, const char* content) {
    const PluginOptions* opts = &state->opts;
    // A non-transactional message is a complete document of its own, written at once.
    bool own_message = opts->write_in_chunks || !transactional;
    if (own_message) OutputPluginPrepareWrite(ctx, true);
    StringInfo out = ctx->out;
    if (transactional) {
        begin_change_element(out, state);
    } else {
        // wal2json <= 2.5 also compared the previous transaction's change count here, which put a
        // leading comma in this one-element array (issue #266); a lone element never gets one.
        appendStringInfoCharMacro(out, '{');
        appendStringInfoString(out, opts->nl);
        append_key(out, opts, 1, "change");
        appendStringInfoCharMacro(out, '[');
        appendStringInfoString(out, opts->nl);
        append_tabs(out, opts, 2);
        appendStringInfoCharMacro(out, '{');
        appendStringInfoString(out, opts->nl);
    }
    append_key(out, opts, 3, "kind");
    APPEND_LITERAL(out, "\"message\",");
    appendStringInfoString(out, opts->nl);
    append_key(out, opts, 3, "transactional");
    if (transactional)
        APPEND_LITERAL(out, "true,");
    else
        APPEND_LITERAL(out, "false,");
    appendStringInfoString(out, opts->nl);
    append_key(out, opts, 3, "prefix");
    json_append_escaped_cstring(out, prefix);
    appendStringInfoCharMacro(out, ',');
    appendStringInfoString(out, opts->nl);
    append_key(out, opts, 3, "content");
    const bool base64 = message_content_in_base64(opts, content, content_size);
    append_message_content(out, content, content_size, base64);
    if (base64) {
        appendStringInfoCharMacro(out, ',');
        appendStringInfoString(out, opts->nl);
        append_key(out, opts, 3, "content_encoding");
        APPEND_LITERAL(out, "\"base64\"");
    }
    appendStringInfoString(out, opts->nl);
    append_tabs(out, opts, 2);
    appendStringInfoCharMacro(out, '}');
    if (!transactional) {
        appendStringInfoString(out, opts->nl);
        append_tabs(out, opts, 1);
        appendStringInfoCharMacro(out, ']');
        appendStringInfoString(out, opts->nl);
        appendStringInfoCharMacro(out, '}');
    }
    if (own_message) OutputPluginWrite(ctx, true);
}
