// format-version 2: one JSON object per record (B, I, U, D, T, M, C), always compact.
#include "decoding_state.h"

namespace {

enum TupleRole { ROLE_COLUMNS, ROLE_IDENTITY, ROLE_PK };

void append_transaction_members(StringInfo out, DecodingState* state, ReorderBufferTXN* txn) {
    const PluginOptions* opts = &state->opts;
    if (opts->include_xids) {
        APPEND_LITERAL(out, ",\"xid\":");
        append_uint32(out, txn->xid);
    }
    if (opts->include_timestamp) {
        APPEND_LITERAL(out, ",\"timestamp\":");
        append_commit_timestamp(out, state, txn);
    }
    if (opts->include_origin) {
        APPEND_LITERAL(out, ",\"origin\":");
        append_uint32(out, txn->origin_id);
    }
}

void append_relation_members(StringInfo out, const PluginOptions* opts, const RelationInfo* info) {
    if (opts->include_schemas) {
        APPEND_LITERAL(out, ",\"schema\":");
        append_bytes(out, info->schema_json, info->schema_json_len);
    }
    APPEND_LITERAL(out, ",\"table\":");
    append_bytes(out, info->table_json, info->table_json_len);
}

void append_tuple(StringInfo out, const PluginOptions* opts, const RelationInfo* info, TupleDesc tupdesc,
                  HeapTuple tuple, TupleRole role) {
    // The entry was built from this TupleDesc (relation_cache_get compares natts), so the arrays fit.
    Datum* values = info->deform_values;
    bool* nulls = info->deform_nulls;
    heap_deform_tuple(tuple, tupdesc, values, nulls);

    bool need_separator = false;
    for (int c = 0; c < info->ncolumns; c++) {
        ColumnInfo* col = &info->columns[c];
        // Without an identity index (FULL) the identity is the whole row; pk is only written when a
        // primary key exists.
        if (role == ROLE_IDENTITY && info->has_identity_index && !col->identity_key) continue;
        if (role == ROLE_PK && info->has_primary_key && !col->primary_key) continue;
        Datum value = values[col->tupdesc_index];
        bool isnull = nulls[col->tupdesc_index];
        // An unchanged TOAST value is not in the WAL record: the column is left out, as in wal2json.
        if (!isnull && col->is_varlena && VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(value))) continue;

        // Everything before the value: separator, name, type, type OID, value key.
        ReservedWriter head = reserve_output(out, col->v2_head_len + 16);
        if (need_separator) put_char(head, ',');
        need_separator = true;
        put_bytes(head, col->v2_head, col->v2_head_len);
        if (role != ROLE_PK) PUT_LITERAL(head, ",\"value\":");
        commit_output(head);
        if (role != ROLE_PK) {
            if (isnull)
                APPEND_LITERAL(out, "null");
            else
                json_append_value(out, value, col->kind, &col->output_fn, col->is_varlena,
                                  opts->numeric_data_types_as_string);
        }
        if (role == ROLE_COLUMNS) {
            if (opts->include_not_null) {
                if (col->not_null)
                    APPEND_LITERAL(out, ",\"optional\":false");
                else
                    APPEND_LITERAL(out, ",\"optional\":true");
            }
            if (opts->include_column_positions) {
                APPEND_LITERAL(out, ",\"position\":");
                append_int32(out, col->attnum);
            }
            if (opts->include_default) {
                if (col->default_state == DEFAULT_NULL) {
                    APPEND_LITERAL(out, ",\"default\":null");
                } else if (col->default_state == DEFAULT_TEXT) {
                    APPEND_LITERAL(out, ",\"default\":");
                    append_bytes(out, col->default_json, col->default_json_len);
                }
            }
        }
        appendStringInfoCharMacro(out, '}');
    }
}

const char* action_member(ReorderBufferChangeType action) {
    switch (action) {
        case REORDER_BUFFER_CHANGE_INSERT:
            return "{\"action\":\"I\"";
        case REORDER_BUFFER_CHANGE_UPDATE:
            return "{\"action\":\"U\"";
        default:
            return "{\"action\":\"D\"";
    }
}

const char* action_name(ReorderBufferChangeType action) {
    switch (action) {
        case REORDER_BUFFER_CHANGE_INSERT:
            return "INSERT";
        case REORDER_BUFFER_CHANGE_UPDATE:
            return "UPDATE";
        default:
            return "DELETE";
    }
}

// wal2json's v2 rejections: a change without the tuple it needs is dropped with a WARNING.
bool change_is_writable(const RelationInfo* info, ReorderBufferChange* change) {
    bool has_new = change->data.tp.newtuple != NULL;
    bool has_old = change->data.tp.oldtuple != NULL;
    bool identifiable = info->has_identity_index || info->replica_identity == REPLICA_IDENTITY_FULL;
    const char* what = action_name(change->action);
    switch (change->action) {
        case REORDER_BUFFER_CHANGE_INSERT:
        case REORDER_BUFFER_CHANGE_UPDATE:
            if (!has_new) {
                elog(WARNING, "no tuple data for %s in table \"%s\".\"%s\"", what, info->schema_name,
                     info->table_name);
                return false;
            }
            if (change->action == REORDER_BUFFER_CHANGE_INSERT || has_old || identifiable) return true;
            break;
        case REORDER_BUFFER_CHANGE_DELETE:
            if (has_old || identifiable) return true;
            break;
        default:
            return false;
    }
    elog(WARNING, "no tuple identifier for %s in table \"%s\".\"%s\"", what, info->schema_name,
         info->table_name);
    return false;
}

}  // namespace

namespace {

void open_pack(LogicalDecodingContext* ctx, DecodingState* state) {
    OutputPluginPrepareWrite(ctx, true);
    state->pack_open = true;
    state->pack_header_len = ctx->out->len;
    state->pack_records = 0;
    state->pack_lsn = ctx->write_location;
    state->pack_xid = ctx->write_xid;
}

// Sends the packed message under its first record's position: the walsender's message header already
// holds it (written by OutputPluginPrepareWrite), and the SQL functions' lsn/xid columns take it from
// the context at write time.
void write_pack(LogicalDecodingContext* ctx, DecodingState* state) {
    XLogRecPtr current_lsn = ctx->write_location;
    TransactionId current_xid = ctx->write_xid;
    ctx->write_location = state->pack_lsn;
    ctx->write_xid = state->pack_xid;
    OutputPluginWrite(ctx, true);
    ctx->write_location = current_lsn;
    ctx->write_xid = current_xid;
    state->pack_open = false;
    state->pack_records = 0;
}

}  // namespace

void v2_record_begin(LogicalDecodingContext* ctx, DecodingState* state) {
    if (state->opts.pack_bytes <= 0) {
        OutputPluginPrepareWrite(ctx, true);
        return;
    }
    if (!state->pack_open) {
        open_pack(ctx, state);
    } else {
        appendStringInfoCharMacro(ctx->out, '\n');
    }
    state->record_start = ctx->out->len;
}

void v2_record_end(LogicalDecodingContext* ctx, DecodingState* state) {
    if (state->opts.pack_bytes <= 0) {
        OutputPluginWrite(ctx, true);
        return;
    }
    StringInfo out = ctx->out;
    if (state->pack_records > 0 && out->len - state->pack_header_len > state->opts.pack_bytes) {
        // The new record would overflow the message: send what was there before it, then start the next
        // message with it.
        resetStringInfo(&state->spill);
        append_bytes(&state->spill, out->data + state->record_start, out->len - state->record_start);
        out->len = state->record_start - 1;  // drop the separator too
        out->data[out->len] = '\0';
        write_pack(ctx, state);
        open_pack(ctx, state);
        state->record_start = out->len;
        append_bytes(out, state->spill.data, state->spill.len);
    }
    state->pack_records++;
    if (out->len - state->pack_header_len >= state->opts.pack_bytes) v2_flush_pack(ctx, state);
}

void v2_flush_pack(LogicalDecodingContext* ctx, DecodingState* state) {
    if (state->pack_open) write_pack(ctx, state);
}

void v2_begin(LogicalDecodingContext* ctx, DecodingState* state, ReorderBufferTXN* txn) {
    const PluginOptions* opts = &state->opts;
    if (!opts->include_transaction) return;
    v2_record_begin(ctx, state);
    StringInfo out = ctx->out;
    APPEND_LITERAL(out, "{\"action\":\"B\"");
    append_transaction_members(out, state, txn);
    if (opts->include_lsn) {
        APPEND_LITERAL(out, ",\"lsn\":");
        json_append_lsn(out, txn->final_lsn);
        APPEND_LITERAL(out, ",\"nextlsn\":");
        json_append_lsn(out, txn->end_lsn);
    }
    appendStringInfoCharMacro(out, '}');
    v2_record_end(ctx, state);
}

void v2_commit(LogicalDecodingContext* ctx, DecodingState* state, ReorderBufferTXN* txn,
               XLogRecPtr commit_lsn) {
    const PluginOptions* opts = &state->opts;
    if (opts->include_transaction) {
        v2_record_begin(ctx, state);
        StringInfo out = ctx->out;
        APPEND_LITERAL(out, "{\"action\":\"C\"");
        append_transaction_members(out, state, txn);
        if (opts->include_lsn) {
            APPEND_LITERAL(out, ",\"lsn\":");
            json_append_lsn(out, commit_lsn);
            APPEND_LITERAL(out, ",\"nextlsn\":");
            json_append_lsn(out, txn->end_lsn);
        }
        appendStringInfoCharMacro(out, '}');
        v2_record_end(ctx, state);
    }
    v2_flush_pack(ctx, state);
}

void v2_change(LogicalDecodingContext* ctx, DecodingState* state, ReorderBufferTXN* txn, Relation rel,
               ReorderBufferChange* change) {
    const PluginOptions* opts = &state->opts;
    if (!action_is_selected(opts, change->action)) return;
    RelationInfo* info = relation_cache_get(state->relations, rel);
    if (info->excluded) return;
    if (!change_is_writable(info, change)) return;
    if (opts->include_default) relation_cache_load_defaults(state->relations, info, rel);

    TupleDesc tupdesc = RelationGetDescr(rel);
    HeapTuple new_tuple = change->data.tp.newtuple ? &change->data.tp.newtuple->tuple : NULL;
    HeapTuple old_tuple = change->data.tp.oldtuple ? &change->data.tp.oldtuple->tuple : NULL;

    v2_record_begin(ctx, state);
    StringInfo out = ctx->out;
    appendStringInfoString(out, action_member(change->action));
    if (!opts->transaction_fields_once) append_transaction_members(out, state, txn);
    if (opts->include_lsn) {
        APPEND_LITERAL(out, ",\"lsn\":");
        json_append_lsn(out, change->lsn);
    }
    append_relation_members(out, opts, info);

    if (new_tuple) {
        APPEND_LITERAL(out, ",\"columns\":[");
        append_tuple(out, opts, info, tupdesc, new_tuple, ROLE_COLUMNS);
        appendStringInfoCharMacro(out, ']');
    }
    if (old_tuple) {
        APPEND_LITERAL(out, ",\"identity\":[");
        append_tuple(out, opts, info, tupdesc, old_tuple, ROLE_IDENTITY);
        appendStringInfoCharMacro(out, ']');
    } else if (change->action == REORDER_BUFFER_CHANGE_UPDATE) {
        // The key did not change, so the new tuple carries the identity.
        if (info->has_primary_key || info->has_identity_index) {
            APPEND_LITERAL(out, ",\"identity\":[");
            append_tuple(out, opts, info, tupdesc, new_tuple, ROLE_IDENTITY);
            appendStringInfoCharMacro(out, ']');
        } else {
            elog(WARNING, "no old tuple data for UPDATE in table \"%s\".\"%s\"", info->schema_name,
                 info->table_name);
        }
    } else if (change->action == REORDER_BUFFER_CHANGE_DELETE) {
        elog(WARNING, "no old tuple data for DELETE in table \"%s\".\"%s\"", info->schema_name,
             info->table_name);
    }
    if (opts->include_pk) {
        APPEND_LITERAL(out, ",\"pk\":[");
        if (info->has_primary_key)
            append_tuple(out, opts, info, tupdesc, old_tuple ? old_tuple : new_tuple, ROLE_PK);
        appendStringInfoCharMacro(out, ']');
    }
    appendStringInfoCharMacro(out, '}');
    v2_record_end(ctx, state);
}

void v2_message(LogicalDecodingContext* ctx, DecodingState* state, ReorderBufferTXN* txn, XLogRecPtr lsn,
                bool transactional, const char* prefix, Size content_size, const char* content) {
    const PluginOptions* opts = &state->opts;
    v2_record_begin(ctx, state);
    StringInfo out = ctx->out;
    APPEND_LITERAL(out, "{\"action\":\"M\"");
    // A non-transactional message may have no transaction: xid, timestamp and origin are null.
    const bool transaction_members = !(transactional && opts->transaction_fields_once);
    if (transaction_members && opts->include_xids) {
        APPEND_LITERAL(out, ",\"xid\":");
        if (transactional)
            append_uint32(out, txn->xid);
        else
            APPEND_LITERAL(out, "null");
    }
    if (transaction_members && opts->include_timestamp) {
        APPEND_LITERAL(out, ",\"timestamp\":");
        if (transactional)
            append_commit_timestamp(out, state, txn);
        else
            APPEND_LITERAL(out, "null");
    }
    if (transaction_members && opts->include_origin) {
        APPEND_LITERAL(out, ",\"origin\":");
        if (transactional)
            append_uint32(out, txn->origin_id);
        else
            APPEND_LITERAL(out, "null");
    }
    if (opts->include_lsn) {
        APPEND_LITERAL(out, ",\"lsn\":");
        json_append_lsn(out, lsn);
    }
    if (transactional)
        APPEND_LITERAL(out, ",\"transactional\":true,\"prefix\":");
    else
        APPEND_LITERAL(out, ",\"transactional\":false,\"prefix\":");
    json_append_escaped_cstring(out, prefix);
    APPEND_LITERAL(out, ",\"content\":");
    const bool base64 = message_content_in_base64(opts, content, content_size);
    append_message_content(out, content, content_size, base64);
    if (base64) APPEND_LITERAL(out, ",\"content_encoding\":\"base64\"");
    appendStringInfoCharMacro(out, '}');
    v2_record_end(ctx, state);
    if (!transactional) v2_flush_pack(ctx, state);
}

void v2_truncate(LogicalDecodingContext* ctx, DecodingState* state, ReorderBufferTXN* txn, int nrelations,
                 Relation relations[], ReorderBufferChange* change) {
    const PluginOptions* opts = &state->opts;
    if (!opts->actions.truncate) return;
    for (int i = 0; i < nrelations; i++) {
        RelationInfo* info = relation_cache_get(state->relations, relations[i]);
        if (info->excluded) continue;
        v2_record_begin(ctx, state);
        StringInfo out = ctx->out;
        APPEND_LITERAL(out, "{\"action\":\"T\"");
        if (!opts->transaction_fields_once) append_transaction_members(out, state, txn);
        if (opts->include_lsn) {
            APPEND_LITERAL(out, ",\"lsn\":");
            json_append_lsn(out, change->lsn);
        }
        append_relation_members(out, opts, info);
        appendStringInfoCharMacro(out, '}');
        v2_record_end(ctx, state);
    }
}
