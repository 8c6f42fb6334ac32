// State of one decoding session, shared by the callback boundary and both output formats.
#pragma once

#include "options.h"
#include "relation_cache.h"

struct DecodingState {
    PluginOptions opts;
    MemoryContext change_context;  // reset after every change, message and truncate
    RelationCache* relations;
    uint64 v1_objects_in_txn;  // v1: objects emitted in the current change array (drives the comma)
    int changes_since_progress;

    // pgstream-pack-bytes: several v2 records per message, separated by '\n'.
    bool pack_open;          // ctx->out holds an unsent message
    int pack_header_len;     // bytes the writer put in ctx->out before the first record
    int pack_records;        // records in the unsent message
    int record_start;        // offset of the record being written
    XLogRecPtr pack_lsn;     // position and transaction of the message's first record, which the
    TransactionId pack_xid;  // message is reported under (as if it had been sent alone)
    StringInfoData spill;    // holds the record that did not fit while the rest is sent

    // The last commit time formatted, with what it was formatted from. Every change of a transaction
    // repeats its commit time; formatting it (time zone rules, calendar arithmetic) for each one cost the
    // walsender more than the rest of a small row's record.
    bool commit_text_valid;
    TimestampTz commit_text_time;
    pg_tz* commit_text_zone;
    int commit_text_len;
    char commit_text[MAXDATELEN + 1];
};

// wal2json's update_replication_progress for PostgreSQL 15: report progress at transaction end and
// every 100 changes, so walsenders keep answering keepalives in long filtered transactions.
void report_progress(LogicalDecodingContext* ctx, DecodingState* state);

// v2 record framing: one message per record, or several per message when packing.
void v2_record_begin(LogicalDecodingContext* ctx, DecodingState* state);
void v2_record_end(LogicalDecodingContext* ctx, DecodingState* state);
void v2_flush_pack(LogicalDecodingContext* ctx, DecodingState* state);

void v1_begin(LogicalDecodingContext* ctx, DecodingState* state, ReorderBufferTXN* txn);
void v1_commit(LogicalDecodingContext* ctx, DecodingState* state, ReorderBufferTXN* txn,
               XLogRecPtr commit_lsn);
void v1_change(LogicalDecodingContext* ctx, DecodingState* state, ReorderBufferTXN* txn, Relation rel,
               ReorderBufferChange* change);
void v1_message(LogicalDecodingContext* ctx, DecodingState* state, ReorderBufferTXN* txn, XLogRecPtr lsn,
                bool transactional, const char* prefix, Size content_size, const char* content);

void v2_begin(LogicalDecodingContext* ctx, DecodingState* state, ReorderBufferTXN* txn);
void v2_commit(LogicalDecodingContext* ctx, DecodingState* state, ReorderBufferTXN* txn,
               XLogRecPtr commit_lsn);
void v2_change(LogicalDecodingContext* ctx, DecodingState* state, ReorderBufferTXN* txn, Relation rel,
               ReorderBufferChange* change);
void v2_message(LogicalDecodingContext* ctx, DecodingState* state, ReorderBufferTXN* txn, XLogRecPtr lsn,
                bool transactional, const char* prefix, Size content_size, const char* content);
void v2_truncate(LogicalDecodingContext* ctx, DecodingState* state, ReorderBufferTXN* txn, int nrelations,
                 Relation relations[], ReorderBufferChange* change);

// Helpers shared by both formats.
bool action_is_selected(const PluginOptions* opts, ReorderBufferChangeType action);
// The commit time as a JSON string, as wal2json writes it (timestamptz_to_str in the session's time zone).
void append_commit_timestamp(StringInfo out, DecodingState* state, ReorderBufferTXN* txn);
// Whether a message's content goes out as base64: with pgstream-lossless-message-content, when it holds a NUL
// byte or is not valid UTF-8.
bool message_content_in_base64(const PluginOptions* opts, const char* content, Size content_size);
// The content as a JSON string: base64 of every byte, or the text as wal2json reads it (up to the first NUL).
void append_message_content(StringInfo out, const char* content, Size content_size, bool base64);
