#include "relation_cache.h"

#include <string.h>

struct RelationCacheEntry {
    Oid relid;  // hash key
    RelationInfo* info;
};

struct RelationCache {
    MemoryContext context;
    HTAB* entries;
    const PluginOptions* opts;
    uint64 invalidations;  // bumped by every invalidation that touched this cache
    RelationInfo* last;    // the entry returned last: consecutive changes mostly hit the same table
    RelationCache* next_active;
    MemoryContextCallback unregister_on_delete;
};

namespace {

// Caches of the decoding sessions alive in this backend (normally at most one). Invalidation callbacks
// are registered once per backend and can't be removed, so they walk this list.
RelationCache* g_active_caches = NULL;
// Any relcache, pg_proc, pg_type or pg_namespace invalidation may change how pg_get_expr() prints a
// default (a renamed sequence, function or type), so defaults are recomputed after any of them.
uint64 g_defaults_generation = 1;
bool g_callbacks_registered = false;

void mark_all_invalid(RelationCache* cache) {
    HASH_SEQ_STATUS status;
    hash_seq_init(&status, cache->entries);
    RelationCacheEntry* entry;
    while ((entry = (RelationCacheEntry*)hash_seq_search(&status)) != NULL)
        if (entry->info) entry->info->valid = false;
    cache->invalidations++;
}

void on_relcache_invalidation(Datum, Oid relid) {
    g_defaults_generation++;
    for (RelationCache* cache = g_active_caches; cache; cache = cache->next_active) {
        if (relid == InvalidOid) {
            mark_all_invalid(cache);
            continue;
        }
        RelationCacheEntry* entry = (RelationCacheEntry*)hash_search(cache->entries, &relid, HASH_FIND, NULL);
        if (entry && entry->info) entry->info->valid = false;
        cache->invalidations++;
    }
}

// Type and schema names are baked into entries (format_type output, schema name).
void on_name_catalog_invalidation(Datum, int, uint32) {
    g_defaults_generation++;
    for (RelationCache* cache = g_active_caches; cache; cache = cache->next_active) mark_all_invalid(cache);
}

void on_proc_invalidation(Datum, int, uint32) {
    g_defaults_generation++;
}

void unregister_cache(void* arg) {
    RelationCache* cache = (RelationCache*)arg;
    for (RelationCache** link = &g_active_caches; *link; link = &(*link)->next_active) {
        if (*link == cache) {
            *link = cache->next_active;
            return;
        }
    }
}

// Columns of a primary-key or replica-identity index, as attnums, without locking the index (the same
// way pgoutput reads the identity key during decoding). Such indexes have no expression columns.
bool* index_column_flags(Relation rel, Oid index_oid) {
    int natts = RelationGetDescr(rel)->natts;
    bool* flags = (bool*)palloc0(sizeof(bool) * (natts + 1));
    if (!OidIsValid(index_oid)) return flags;
    Relation index = RelationIdGetRelation(index_oid);
    if (index == NULL) return flags;
    int nkeys = IndexRelationGetNumberOfKeyAttributes(index);
    for (int i = 0; i < nkeys; i++) {
        int attnum = index->rd_index->indkey.values[i];
        if (attnum > 0 && attnum <= natts) flags[attnum] = true;
    }
    RelationClose(index);
    return flags;
}

// The type name and the type OID/value kind a column shows, following wal2json's per-format rules:
// v2 may show a domain's base type name but keeps the domain's OID and value quoting; v1 (with types
// on) switches all three to the base type; v1 without include-typmod shows the raw pg_type name.
void describe_column_type(const PluginOptions* opts, Form_pg_attribute attr, ColumnInfo* col) {
    HeapTuple type_tuple = SearchSysCache1(TYPEOID, ObjectIdGetDatum(attr->atttypid));
    if (!HeapTupleIsValid(type_tuple)) elog(ERROR, "cache lookup failed for type %u", attr->atttypid);
    Form_pg_type type_form = (Form_pg_type)GETSTRUCT(type_tuple);
    bool show_base_type = type_form->typtype == TYPTYPE_DOMAIN && opts->include_domain_data_type;
    Oid shown_oid = attr->atttypid;
    char* type_name = NULL;

    if (opts->format_version == 2) {
        if (opts->include_types)
            type_name = show_base_type
                            ? format_type_with_typemod(type_form->typbasetype, type_form->typtypmod)
                            : format_type_with_typemod(attr->atttypid, attr->atttypmod);
    } else if (opts->include_types) {
        if (show_base_type) {
            shown_oid = type_form->typbasetype;
            if (opts->include_typmod) {
                type_name = format_type_with_typemod(type_form->typbasetype, type_form->typtypmod);
            } else {
                HeapTuple base_tuple = SearchSysCache1(TYPEOID, ObjectIdGetDatum(shown_oid));
                if (!HeapTupleIsValid(base_tuple)) elog(ERROR, "cache lookup failed for type %u", shown_oid);
                type_name = pstrdup(NameStr(((Form_pg_type)GETSTRUCT(base_tuple))->typname));
                ReleaseSysCache(base_tuple);
            }
        } else {
            type_name = opts->include_typmod ? format_type_with_typemod(attr->atttypid, attr->atttypmod)
                                             : pstrdup(NameStr(type_form->typname));
        }
    }
    ReleaseSysCache(type_tuple);

    col->type_oid = shown_oid;
    col->kind = value_kind_for_type(shown_oid);
    // Raw like wal2json where that is valid JSON, escaped where wal2json's would not be (#296).
    if (type_name) col->type_json = json_type_name(type_name, &col->type_json_len);
}

void build_v2_head(const PluginOptions* opts, ColumnInfo* col) {
    StringInfoData head;
    initStringInfo(&head);
    APPEND_LITERAL(&head, "{\"name\":");
    append_bytes(&head, col->name_json, col->name_json_len);
    if (opts->include_types) {
        APPEND_LITERAL(&head, ",\"type\":");
        append_bytes(&head, col->type_json, col->type_json_len);
    }
    if (opts->include_type_oids) {
        APPEND_LITERAL(&head, ",\"typeoid\":");
        append_int32(&head, (int32)col->type_oid);  // wal2json prints it with %d
    }
    col->v2_head = head.data;
    col->v2_head_len = head.len;
}

RelationInfo* build_relation_info(RelationCache* cache, Relation rel) {
    const PluginOptions* opts = cache->opts;
    MemoryContext context = AllocSetContextCreate(cache->context, "pgstream relation", ALLOCSET_SMALL_SIZES);
    MemoryContext old = MemoryContextSwitchTo(context);

    RelationInfo* info = (RelationInfo*)palloc0(sizeof(RelationInfo));
    info->relid = RelationGetRelid(rel);
    info->context = context;
    info->schema_name = get_namespace_name(RelationGetNamespace(rel));
    if (info->schema_name == NULL)
        elog(ERROR, "cache lookup failed for namespace %u", RelationGetNamespace(rel));
    info->table_name = pstrdup(RelationGetRelationName(rel));
    info->schema_json = json_quote(info->schema_name, &info->schema_json_len);
    info->table_json = json_quote(info->table_name, &info->table_json_len);
    info->excluded = table_filter_matches(&opts->filter_tables, info->schema_name, info->table_name) ||
                     !table_filter_matches(&opts->add_tables, info->schema_name, info->table_name);

    TupleDesc tupdesc = RelationGetDescr(rel);
    info->natts = tupdesc->natts;
    if (info->excluded) {
        // Only the names are ever used for a filtered-out table (to skip its changes and TRUNCATEs).
        MemoryContextSwitchTo(old);
        return info;
    }

    list_free(RelationGetIndexList(rel));  // sets rd_pkindex and rd_replidindex
    info->has_identity_index = OidIsValid(rel->rd_replidindex);
    info->has_primary_key = OidIsValid(rel->rd_pkindex);
    info->replica_identity = rel->rd_rel->relreplident;
    bool* identity_flags = index_column_flags(rel, rel->rd_replidindex);
    bool* pk_flags = index_column_flags(rel, rel->rd_pkindex);

    info->columns = (ColumnInfo*)palloc0(sizeof(ColumnInfo) * (tupdesc->natts > 0 ? tupdesc->natts : 1));
    info->deform_values = (Datum*)palloc(sizeof(Datum) * (tupdesc->natts > 0 ? tupdesc->natts : 1));
    info->deform_nulls = (bool*)palloc(sizeof(bool) * (tupdesc->natts > 0 ? tupdesc->natts : 1));
    for (int i = 0; i < tupdesc->natts; i++) {
        Form_pg_attribute attr = TupleDescAttr(tupdesc, i);
        if (attr->attisdropped || attr->attnum < 0) continue;
        ColumnInfo* col = &info->columns[info->ncolumns++];
        col->tupdesc_index = i;
        col->attnum = attr->attnum;
        col->not_null = attr->attnotnull;
        col->has_default = attr->atthasdef && attr->attgenerated == '\0';
        col->is_varlena = attr->attlen == -1;
        col->identity_key = identity_flags[attr->attnum];
        col->primary_key = pk_flags[attr->attnum];
        col->name_json = json_quote(NameStr(attr->attname), &col->name_json_len);
        describe_column_type(opts, attr, col);
        if (opts->format_version == 2) build_v2_head(opts, col);
        Oid output_fn_oid;
        bool type_is_varlena;
        getTypeOutputInfo(attr->atttypid, &output_fn_oid, &type_is_varlena);
        fmgr_info_cxt(output_fn_oid, &col->output_fn, context);
    }
    pfree(identity_flags);
    pfree(pk_flags);

    MemoryContextSwitchTo(old);
    return info;
}

}  // namespace

RelationCache* relation_cache_create(MemoryContext parent, const PluginOptions* opts) {
    if (!g_callbacks_registered) {
        CacheRegisterRelcacheCallback(on_relcache_invalidation, (Datum)0);
        CacheRegisterSyscacheCallback(TYPEOID, on_name_catalog_invalidation, (Datum)0);
        CacheRegisterSyscacheCallback(NAMESPACEOID, on_name_catalog_invalidation, (Datum)0);
        CacheRegisterSyscacheCallback(PROCOID, on_proc_invalidation, (Datum)0);
        g_callbacks_registered = true;
    }
    MemoryContext context = AllocSetContextCreate(parent, "pgstream relation cache", ALLOCSET_DEFAULT_SIZES);
    RelationCache* cache = (RelationCache*)MemoryContextAllocZero(context, sizeof(RelationCache));
    cache->context = context;
    cache->opts = opts;

    HASHCTL hash_ctl;
    memset(&hash_ctl, 0, sizeof(hash_ctl));
    hash_ctl.keysize = sizeof(Oid);
    hash_ctl.entrysize = sizeof(RelationCacheEntry);
    hash_ctl.hcxt = context;
    cache->entries =
        hash_create("pgstream relation cache", 128, &hash_ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

    // Leave the active list when the decoding context goes away, including on error.
    cache->unregister_on_delete.func = unregister_cache;
    cache->unregister_on_delete.arg = cache;
    MemoryContextRegisterResetCallback(context, &cache->unregister_on_delete);
    cache->next_active = g_active_caches;
    g_active_caches = cache;
    return cache;
}

RelationInfo* relation_cache_get(RelationCache* cache, Relation rel) {
    Oid relid = RelationGetRelid(rel);
    RelationInfo* last = cache->last;
    if (last && last->relid == relid && last->valid && last->natts == RelationGetDescr(rel)->natts)
        return last;
    bool found;
    RelationCacheEntry* entry = (RelationCacheEntry*)hash_search(cache->entries, &relid, HASH_ENTER, &found);
    if (!found) entry->info = NULL;
    RelationInfo* info = entry->info;
    if (info && info->valid && info->natts == RelationGetDescr(rel)->natts) {
        cache->last = info;
        return info;
    }

    if (cache->last == info) cache->last = NULL;
    if (info) MemoryContextDelete(info->context);
    entry->info = NULL;
    uint64 invalidations_before = cache->invalidations;
    info = build_relation_info(cache, rel);
    // An invalidation that arrived while building may have described a newer state: use this entry
    // for the current change only.
    info->valid = cache->invalidations == invalidations_before;
    entry = (RelationCacheEntry*)hash_search(cache->entries, &relid, HASH_ENTER, &found);
    entry->info = info;
    cache->last = info;
    return info;
}

void relation_cache_load_defaults(RelationCache* cache, RelationInfo* info, Relation rel) {
    if (info->defaults_generation == g_defaults_generation) return;
    if (info->defaults_context == NULL)
        info->defaults_context =
            AllocSetContextCreate(info->context, "pgstream defaults", ALLOCSET_SMALL_SIZES);
    else
        MemoryContextReset(info->defaults_context);
    TupleConstr* constr = RelationGetDescr(rel)->constr;
    for (int c = 0; c < info->ncolumns; c++) {
        ColumnInfo* col = &info->columns[c];
        col->default_state = DEFAULT_NULL;
        col->default_json = NULL;
        if (!col->has_default) continue;
        col->default_state = DEFAULT_MISSING;
        if (constr == NULL) continue;
        for (int d = 0; d < constr->num_defval; d++) {
            if (constr->defval[d].adnum != col->attnum || constr->defval[d].adbin == NULL) continue;
            // Deparsed in the caller's (per-change) context; only the escaped result is kept.
            Datum expr = DirectFunctionCall2(pg_get_expr, CStringGetTextDatum(constr->defval[d].adbin),
                                             ObjectIdGetDatum(info->relid));
            char* expr_text = TextDatumGetCString(expr);
            // Escaped, unlike wal2json, whose raw text breaks JSON for defaults with quotes or newlines.
            MemoryContext old = MemoryContextSwitchTo(info->defaults_context);
            col->default_json = json_quote(expr_text, &col->default_json_len);
            MemoryContextSwitchTo(old);
            col->default_state = DEFAULT_TEXT;
            break;
        }
    }
    info->defaults_generation = g_defaults_generation;
}
