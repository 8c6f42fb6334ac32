// pgstream's logical decoding output plugin: registration and the guarded boundary between
// PostgreSQL's callbacks and the formatters.
//
// PostgreSQL reports errors with longjmp, C++ with exceptions; neither may cross the other. The code
// behind this boundary uses plain structs, palloc and memory contexts only (no object with a
// destructor lives across a call that can ereport), and every callback body runs inside guarded(),
// which turns a stray C++ exception into an ERROR raised after the try block has been left.
#include <exception>

#include "decoding_state.h"

extern "C" {
PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
PGDLLEXPORT void _PG_output_plugin_init(OutputPluginCallbacks* cb);
}

namespace {

template <typename Body>
void guarded(const char* callback, Body body) {
    char message[256];
    bool failed = false;
    try {
        body();
    } catch (const std::exception& e) {
        strlcpy(message, e.what(), sizeof(message));
        failed = true;
    } catch (...) {
        strlcpy(message, "unknown exception", sizeof(message));
        failed = true;
    }
    if (failed)
        ereport(ERROR,
                (errcode(ERRCODE_INTERNAL_ERROR),
                 errmsg("pgstream output plugin: C++ exception in %s callback: %s", callback, message)));
}

DecodingState* state_of(LogicalDecodingContext* ctx) {
    return (DecodingState*)ctx->output_plugin_private;
}

// Runs `body` in the per-change memory context and empties it afterwards (like wal2json's private
// context): values, detoasted datums and output-function strings never outlive one change.
template <typename Body>
void in_change_context(DecodingState* state, Body body) {
    MemoryContext old = MemoryContextSwitchTo(state->change_context);
    body();
    MemoryContextSwitchTo(old);
    MemoryContextReset(state->change_context);
}

void on_startup(LogicalDecodingContext* ctx, OutputPluginOptions* opt, bool is_init) {
    guarded("startup", [&] {
        DecodingState* state = (DecodingState*)palloc0(sizeof(DecodingState));
        parse_plugin_options(ctx->output_plugin_options, &state->opts);
        state->change_context =
            AllocSetContextCreate(ctx->context, "pgstream change", ALLOCSET_DEFAULT_SIZES);
        state->relations = relation_cache_create(ctx->context, &state->opts);
        initStringInfo(&state->spill);
        ctx->output_plugin_private = state;
        opt->output_type = OUTPUT_PLUGIN_TEXTUAL_OUTPUT;
    });
}

void on_shutdown(LogicalDecodingContext* ctx) {
    guarded("shutdown", [&] {
        DecodingState* state = state_of(ctx);
        if (state == NULL) return;
        MemoryContextDelete(state->change_context);
        state->change_context = NULL;
    });
}

bool on_filter_by_origin(LogicalDecodingContext* ctx, RepOriginId origin_id) {
    bool filtered = false;
    guarded("filter_by_origin", [&] { filtered = origin_is_filtered(&state_of(ctx)->opts, origin_id); });
    return filtered;
}

void on_begin(LogicalDecodingContext* ctx, ReorderBufferTXN* txn) {
    guarded("begin", [&] {
        DecodingState* state = state_of(ctx);
        in_change_context(state, [&] {
            if (state->opts.format_version == 2)
                v2_begin(ctx, state, txn);
            else
                v1_begin(ctx, state, txn);
        });
    });
}

void on_commit(LogicalDecodingContext* ctx, ReorderBufferTXN* txn, XLogRecPtr commit_lsn) {
    guarded("commit", [&] {
        DecodingState* state = state_of(ctx);
        report_progress(ctx, state);
        in_change_context(state, [&] {
            if (state->opts.format_version == 2)
                v2_commit(ctx, state, txn, commit_lsn);
            else
                v1_commit(ctx, state, txn, commit_lsn);
        });
    });
}

void on_change(LogicalDecodingContext* ctx, ReorderBufferTXN* txn, Relation rel,
               ReorderBufferChange* change) {
    guarded("change", [&] {
        DecodingState* state = state_of(ctx);
        report_progress(ctx, state);
        in_change_context(state, [&] {
            if (state->opts.format_version == 2)
                v2_change(ctx, state, txn, rel, change);
            else
                v1_change(ctx, state, txn, rel, change);
        });
    });
}

void on_message(LogicalDecodingContext* ctx, ReorderBufferTXN* txn, XLogRecPtr lsn, bool transactional,
                const char* prefix, Size content_size, const char* content) {
    guarded("message", [&] {
        DecodingState* state = state_of(ctx);
        report_progress(ctx, state);
        if (message_prefix_is_skipped(&state->opts, prefix)) return;
        in_change_context(state, [&] {
            if (state->opts.format_version == 2)
                v2_message(ctx, state, txn, lsn, transactional, prefix, content_size, content);
            else
                v1_message(ctx, state, txn, lsn, transactional, prefix, content_size, content);
        });
    });
}

void on_truncate(LogicalDecodingContext* ctx, ReorderBufferTXN* txn, int nrelations, Relation relations[],
                 ReorderBufferChange* change) {
    guarded("truncate", [&] {
        DecodingState* state = state_of(ctx);
        report_progress(ctx, state);
        // Format 1 never shows TRUNCATE (wal2json's v1 truncate is compiled out).
        if (state->opts.format_version != 2) return;
        in_change_context(state, [&] { v2_truncate(ctx, state, txn, nrelations, relations, change); });
    });
}

}  // namespace

void report_progress(LogicalDecodingContext* ctx, DecodingState* state) {
    const int kChangesBetweenReports = 100;
    if (ctx->end_xact || ++state->changes_since_progress >= kChangesBetweenReports) {
        OutputPluginUpdateProgress(ctx, false);
        state->changes_since_progress = 0;
    }
}

bool message_content_in_base64(const PluginOptions* opts, const char* content, Size content_size) {
    if (!opts->lossless_message_content) return false;
    // The verifier stops at a NUL byte as at an invalid sequence.
    return pg_encoding_verifymbstr(PG_UTF8, content, (int)content_size) != (int)content_size;
}

void append_message_content(StringInfo out, const char* content, Size content_size, bool base64) {
    if (!base64) {
        json_append_escaped(out, content, strnlen(content, content_size));
        return;
    }
    int room = pg_b64_enc_len((int)content_size);
    appendStringInfoCharMacro(out, '"');
    enlargeStringInfo(out, room + 1);
    int written = pg_b64_encode(content, (int)content_size, out->data + out->len, room);
    if (written < 0) elog(ERROR, "pgstream: base64 encoding of a message's content failed");
    out->len += written;
    out->data[out->len] = '\0';
    appendStringInfoCharMacro(out, '"');
}

bool action_is_selected(const PluginOptions* opts, ReorderBufferChangeType action) {
    switch (action) {
        case REORDER_BUFFER_CHANGE_INSERT:
            return opts->actions.insert;
        case REORDER_BUFFER_CHANGE_UPDATE:
            return opts->actions.update;
        case REORDER_BUFFER_CHANGE_DELETE:
            return opts->actions.remove;
        default:
            return true;
    }
}

void append_commit_timestamp(StringInfo out, DecodingState* state, ReorderBufferTXN* txn) {
    const TimestampTz commit_time = txn->xact_time.commit_time;
    if (!state->commit_text_valid || state->commit_text_time != commit_time ||
        state->commit_text_zone != session_timezone) {
        const char* text = timestamptz_to_str(commit_time);
        state->commit_text_len = (int)strlcpy(state->commit_text, text, sizeof state->commit_text);
        state->commit_text_time = commit_time;
        state->commit_text_zone = session_timezone;
        state->commit_text_valid = true;
    }
    appendStringInfoCharMacro(out, '"');
    appendBinaryStringInfo(out, state->commit_text, state->commit_text_len);
    appendStringInfoCharMacro(out, '"');
}

void _PG_init(void) {}

void _PG_output_plugin_init(OutputPluginCallbacks* cb) {
    cb->startup_cb = on_startup;
    cb->begin_cb = on_begin;
    cb->change_cb = on_change;
    cb->commit_cb = on_commit;
    cb->shutdown_cb = on_shutdown;
    cb->filter_by_origin_cb = on_filter_by_origin;
    cb->message_cb = on_message;
    cb->truncate_cb = on_truncate;
}
