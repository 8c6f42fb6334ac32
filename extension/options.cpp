#include "options.h"

#include <string.h>

namespace {

[[noreturn]] void report_unparsable(const char* value, const char* name, int sqlstate) {
    ereport(ERROR,
            (errcode(sqlstate), errmsg("could not parse value \"%s\" for parameter \"%s\"", value, name)));
    pg_unreachable();
}

// wal2json: a missing value means true; otherwise parse_bool (t/f, yes/no, on/off, 1/0 and prefixes).
void parse_bool_option(DefElem* elem, bool* target) {
    if (elem->arg == NULL) {
        *target = true;
        return;
    }
    if (!parse_bool(strVal(elem->arg), target))
        report_unparsable(strVal(elem->arg), elem->defname, ERRCODE_INVALID_PARAMETER_VALUE);
}

struct BoolOption {
    const char* name;
    size_t offset;
};

#define BOOL_OPTION(name, field) \
    { name, offsetof(PluginOptions, field) }
const BoolOption kBoolOptions[] = {
    BOOL_OPTION("include-transaction", include_transaction),
    BOOL_OPTION("include-xids", include_xids),
    BOOL_OPTION("include-timestamp", include_timestamp),
    BOOL_OPTION("include-pk", include_pk),
    BOOL_OPTION("include-origin", include_origin),
    BOOL_OPTION("include-schemas", include_schemas),
    BOOL_OPTION("include-types", include_types),
    BOOL_OPTION("include-type-oids", include_type_oids),
    BOOL_OPTION("include-typmod", include_typmod),
    BOOL_OPTION("include-domain-data-type", include_domain_data_type),
    BOOL_OPTION("include-column-positions", include_column_positions),
    BOOL_OPTION("include-not-null", include_not_null),
    BOOL_OPTION("include-default", include_default),
    BOOL_OPTION("numeric-data-types-as-string", numeric_data_types_as_string),
    BOOL_OPTION("pretty-print", pretty_print),
    BOOL_OPTION("write-in-chunks", write_in_chunks),
    BOOL_OPTION("include-lsn", include_lsn),
    BOOL_OPTION("pgstream-transaction-fields-once", transaction_fields_once),
    BOOL_OPTION("pgstream-lossless-message-content", lossless_message_content),
};
#undef BOOL_OPTION

void parse_actions(DefElem* elem, ActionSet* actions) {
    if (elem->arg == NULL) return;  // wal2json: no value keeps the current actions
    List* tokens = NIL;
    if (!split_comma_list(strVal(elem->arg), &tokens))
        report_unparsable(strVal(elem->arg), elem->defname, ERRCODE_INVALID_NAME);
    *actions = ActionSet{false, false, false, false};
    ListCell* lc;
    foreach (lc, tokens) {
        const char* token = (const char*)lfirst(lc);
        if (strcmp(token, "insert") == 0)
            actions->insert = true;
        else if (strcmp(token, "update") == 0)
            actions->update = true;
        else if (strcmp(token, "delete") == 0)
            actions->remove = true;
        else if (strcmp(token, "truncate") == 0)
            actions->truncate = true;
        else
            report_unparsable(token, elem->defname, ERRCODE_INVALID_PARAMETER_VALUE);
    }
}

void append_table_filters(DefElem* elem, TableFilterList* list) {
    TableFilterList parsed;
    if (!parse_table_filter_list(strVal(elem->arg), &parsed))
        report_unparsable(strVal(elem->arg), elem->defname, ERRCODE_INVALID_NAME);
    if (parsed.count == 0) return;
    TableFilter* merged = (TableFilter*)palloc(sizeof(TableFilter) * (list->count + parsed.count));
    if (list->count > 0) memcpy(merged, list->items, sizeof(TableFilter) * list->count);
    memcpy(merged + list->count, parsed.items, sizeof(TableFilter) * parsed.count);
    list->items = merged;
    list->count += parsed.count;
}

void parse_format_version(DefElem* elem, int* format_version) {
    const int kMaxVersion = 2, kMinVersion = 1;
    if (elem->arg == NULL)
        *format_version = kMaxVersion;
    else if (!parse_int(strVal(elem->arg), format_version, 0, NULL))
        report_unparsable(strVal(elem->arg), elem->defname, ERRCODE_INVALID_PARAMETER_VALUE);
    if (*format_version > kMaxVersion)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("client sent format_version=%d but we only support format %d or lower",
                               *format_version, kMaxVersion)));
    if (*format_version < kMinVersion)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("client sent format_version=%d but we only support format %d or higher",
                               *format_version, kMinVersion)));
}

void parse_pack_bytes(DefElem* elem, int* pack_bytes) {
    const char* hint = "pgstream-pack-bytes takes a byte count from 0 (off) to 1073741823";
    if (elem->arg == NULL)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("parameter \"%s\" needs a value", elem->defname), errhint("%s", hint)));
    if (!parse_int(strVal(elem->arg), pack_bytes, 0, NULL) || *pack_bytes < 0 ||
        *pack_bytes > (int)MaxAllocSize)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("could not parse value \"%s\" for parameter \"%s\"", strVal(elem->arg),
                               elem->defname),
                        errhint("%s", hint)));
}

}  // namespace

void parse_plugin_options(List* option_list, PluginOptions* opts) {
    memset(opts, 0, sizeof(*opts));
    opts->format_version = 1;
    opts->include_transaction = true;
    opts->include_schemas = true;
    opts->include_types = true;
    opts->include_typmod = true;
    opts->actions = ActionSet{true, true, true, true};
    // add-tables defaults to "*.*": every table.
    opts->add_tables.items = (TableFilter*)palloc0(sizeof(TableFilter));
    opts->add_tables.items[0].any_schema = true;
    opts->add_tables.items[0].any_table = true;
    opts->add_tables.count = 1;

    bool pretty_punctuation = false;
    ListCell* lc;
    foreach (lc, option_list) {
        DefElem* elem = (DefElem*)lfirst(lc);
        Assert(elem->arg == NULL || IsA(elem->arg, String));
        const char* name = elem->defname;

        bool handled = false;
        for (const BoolOption& option : kBoolOptions) {
            if (strcmp(name, option.name) == 0) {
                bool* target = (bool*)((char*)opts + option.offset);
                parse_bool_option(elem, target);
                // wal2json switches the pretty punctuation on and never back off.
                if (target == &opts->pretty_print && *target) pretty_punctuation = true;
                handled = true;
                break;
            }
        }
        if (handled) continue;

        if (strcmp(name, "include-unchanged-toast") == 0) {
            ereport(ERROR, (errcode(ERRCODE_INVALID_NAME), errmsg("parameter \"%s\" was deprecated", name)));
        } else if (strcmp(name, "actions") == 0) {
            parse_actions(elem, &opts->actions);
        } else if (strcmp(name, "filter-origins") == 0) {
            if (elem->arg == NULL) {
                opts->filter_origins_count = 0;
            } else {
                Oid* ids;
                int count;
                if (!split_origin_list(strVal(elem->arg), &ids, &count))
                    report_unparsable(strVal(elem->arg), name, ERRCODE_INVALID_NAME);
                // Repeated filter-origins options accumulate, as in wal2json.
                Oid* merged = (Oid*)palloc(sizeof(Oid) * (opts->filter_origins_count + count + 1));
                if (opts->filter_origins_count > 0)
                    memcpy(merged, opts->filter_origins, sizeof(Oid) * opts->filter_origins_count);
                if (count > 0) memcpy(merged + opts->filter_origins_count, ids, sizeof(Oid) * count);
                opts->filter_origins = merged;
                opts->filter_origins_count += count;
            }
        } else if (strcmp(name, "filter-tables") == 0) {
            if (elem->arg == NULL)
                opts->filter_tables.count = 0;
            else
                append_table_filters(elem, &opts->filter_tables);
        } else if (strcmp(name, "add-tables") == 0) {
            // Giving add-tables replaces the default "*.*"; an empty or missing value selects nothing.
            opts->add_tables.count = 0;
            if (elem->arg != NULL) append_table_filters(elem, &opts->add_tables);
        } else if (strcmp(name, "filter-msg-prefixes") == 0 || strcmp(name, "add-msg-prefixes") == 0) {
            List** target = name[0] == 'f' ? &opts->filter_msg_prefixes : &opts->add_msg_prefixes;
            if (elem->arg == NULL)
                *target = NIL;
            else if (!split_comma_list(strVal(elem->arg), target))
                report_unparsable(strVal(elem->arg), name, ERRCODE_INVALID_NAME);
        } else if (strcmp(name, "format-version") == 0) {
            parse_format_version(elem, &opts->format_version);
        } else if (strcmp(name, "pgstream-pack-bytes") == 0) {
            parse_pack_bytes(elem, &opts->pack_bytes);
        } else {
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("option \"%s\" = \"%s\" is unknown", name,
                                   elem->arg ? strVal(elem->arg) : "(null)")));
        }
    }

    if (opts->pack_bytes > 0 && opts->format_version != 2)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("parameter \"pgstream-pack-bytes\" requires \"format-version\" 2"),
                        errdetail("Format version 1 already writes one message per transaction.")));
    if (opts->transaction_fields_once && (opts->format_version != 2 || !opts->include_transaction))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("parameter \"pgstream-transaction-fields-once\" requires \"format-version\" 2 "
                               "with \"include-transaction\""),
                        errdetail("The transaction's fields are then written only on its B and C records.")));

    opts->ht = pretty_punctuation ? "\t" : "";
    opts->nl = pretty_punctuation ? "\n" : "";
    opts->sp = pretty_punctuation ? " " : "";
}

bool origin_is_filtered(const PluginOptions* opts, RepOriginId origin_id) {
    if (origin_id == InvalidRepOriginId) return false;  // local changes are never filtered
    for (int i = 0; i < opts->filter_origins_count; i++)
        if (opts->filter_origins[i] == origin_id) return true;
    return false;
}

bool message_prefix_is_skipped(const PluginOptions* opts, const char* prefix) {
    ListCell* lc;
    foreach (lc, opts->filter_msg_prefixes)
        if (strcmp((const char*)lfirst(lc), prefix) == 0) return true;
    if (opts->add_msg_prefixes == NIL) return false;
    foreach (lc, opts->add_msg_prefixes)
        if (strcmp((const char*)lfirst(lc), prefix) == 0) return false;
    return true;
}
