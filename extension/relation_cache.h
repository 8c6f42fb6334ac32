// Per-relation metadata computed once and reused for every row: escaped names, type names, output
// functions, value kinds, identity/primary-key membership and default expressions. Entries are keyed
// by relation OID and dropped by relcache invalidations (which logical decoding replays from the WAL,
// so ALTER TABLE mid-stream is seen at the right change), and by pg_type / pg_namespace / pg_proc
// syscache invalidations for the names derived from those catalogs.
#pragma once

#include "json_output.h"
#include "options.h"

enum DefaultState : uint8 {
    DEFAULT_NULL,     // no default expression (or a generated column): "null"
    DEFAULT_MISSING,  // atthasdef but no pg_attrdef row: wal2json writes nothing at all
    DEFAULT_TEXT,     // default_json holds the quoted expression
};

struct ColumnInfo {
    int tupdesc_index;  // index into the relation's TupleDesc
    int16 attnum;
    bool not_null;
    bool has_default;   // atthasdef and not generated
    bool is_varlena;    // attlen == -1: may be toasted
    bool identity_key;  // member of the replica identity index
    bool primary_key;   // member of the primary key
    ValueKind kind;     // how values are written (format-dependent domain rules already applied)
    Oid type_oid;       // the OID printed by include-type-oids (format-dependent)
    const char* name_json;
    int name_json_len;
    const char* type_json;  // quoted, escaped type name for this session's options; NULL if types are off
    int type_json_len;
    // format-version 2: `{"name":...` with "type" and "typeoid" as this session's options want them, the
    // start of every column object, cached so that a row copies one string per column.
    const char* v2_head;
    int v2_head_len;
    FmgrInfo output_fn;
    DefaultState default_state;
    const char* default_json;
    int default_json_len;
};

struct RelationInfo {
    Oid relid;
    bool valid;
    MemoryContext context;  // everything below lives here
    int natts;              // TupleDesc natts this entry was built from
    const char* schema_name;
    const char* table_name;
    const char* schema_json;
    int schema_json_len;
    const char* table_json;
    int table_json_len;
    bool excluded;            // by filter-tables / add-tables
    bool has_identity_index;  // rd_replidindex valid
    bool has_primary_key;     // rd_pkindex valid
    char replica_identity;    // relreplident
    int ncolumns;             // live (not dropped) user columns, in attnum order
    ColumnInfo* columns;
    Datum* deform_values;  // heap_deform_tuple output, natts long, reused by every change of the relation
    bool* deform_nulls;
    uint64 defaults_generation;      // defaults are (re)computed lazily when include-default is on
    MemoryContext defaults_context;  // holds the default texts; emptied on every recomputation
};

struct RelationCache;

// Creates the cache for one decoding session in `parent` (freed with it).
RelationCache* relation_cache_create(MemoryContext parent, const PluginOptions* opts);

// The entry for `rel`, built or rebuilt if invalid. Call outside any per-change memory context reset
// window: the entry lives in the cache's context.
RelationInfo* relation_cache_get(RelationCache* cache, Relation rel);

// Makes sure default expressions of `info` are current (only needed with include-default).
void relation_cache_load_defaults(RelationCache* cache, RelationInfo* info, Relation rel);
