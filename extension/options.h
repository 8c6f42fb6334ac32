// Decoding options: wal2json 2.5's option set (same names, defaults and error messages) plus pgstream extras.
#pragma once

#include "pg_headers.h"
#include "table_filter.h"

struct ActionSet {
    bool insert;
    bool update;
    bool remove;
    bool truncate;
};

struct PluginOptions {
    int format_version;  // 1 or 2
    bool include_transaction;
    bool include_xids;
    bool include_timestamp;
    bool include_origin;
    bool include_lsn;
    bool include_schemas;
    bool include_types;
    bool include_typmod;
    bool include_type_oids;
    bool include_domain_data_type;
    bool include_column_positions;
    bool include_not_null;
    bool include_default;
    bool include_pk;
    bool numeric_data_types_as_string;  // wal2json 2.6's option, accepted although 2.5 rejects it
    bool pretty_print;
    bool write_in_chunks;
    ActionSet actions;
    Oid* filter_origins;
    int filter_origins_count;
    TableFilterList filter_tables;
    TableFilterList add_tables;
    List* filter_msg_prefixes;  // of char*
    List* add_msg_prefixes;     // of char*
    int pack_bytes;             // pgstream-pack-bytes: 0 = one record per message (wal2json behaviour)
    // pgstream-transaction-fields-once: xid, timestamp and origin only on B and C, not repeated on every
    // record of the transaction (v2 with include-transaction; a reader takes them from B).
    bool transaction_fields_once;
    // pgstream-lossless-message-content: a logical message's content that a JSON string cannot carry as is (a
    // NUL byte, or not valid UTF-8) is written whole as base64, with "content_encoding":"base64" beside it.
    // Off: wal2json's text, cut at the first NUL.
    bool lossless_message_content;

    // Pretty-print punctuation (v1 only): empty strings unless pretty-print.
    const char* ht;
    const char* nl;
    const char* sp;
};

// Fills `opts` from the slot's option list; raises the exact wal2json ERROR for a bad option.
// Allocates in CurrentMemoryContext.
void parse_plugin_options(List* option_list, PluginOptions* opts);

bool origin_is_filtered(const PluginOptions* opts, RepOriginId origin_id);
bool message_prefix_is_skipped(const PluginOptions* opts, const char* prefix);
