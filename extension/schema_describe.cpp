// pgstream.describe_table(oid): a table's description, read from the catalogs in C.
//
// Logging a DDL describes every table it touched; the SQL version of this function (migration 0010, kept as
// pgstream.describe_table_sql) runs nine correlated subqueries per call, about 0.2-0.35 ms at any schema
// size, the largest single part of the fixed cost per logged DDL. This one reads the same catalogs through
// their indexes and builds the same jsonb: equal, value for value, to describe_table_sql's (regress
// check_log() compares the two for every table of the DDL corpus). It is created with SET search_path =
// pg_catalog, pg_temp like the SQL version, because format_type(), regclass output and the pg_get_*def()
// functions qualify names by what the search path makes visible.
//
// Boundary with PostgreSQL: plain C-style code over palloc'd memory, no object with a destructor and nothing
// that throws, so an ereport(ERROR) from a catalog lookup or a deparse function unwinds nothing C++ owns.
#include "pg_headers.h"

extern "C" {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wregister"
#include "access/skey.h"
#include "access/stratnum.h"
#include "catalog/namespace.h"
#include "catalog/pg_attrdef.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_description.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "utils/snapmgr.h"
#pragma GCC diagnostic pop

PGDLLEXPORT Datum pgstream_describe_table(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(pgstream_describe_table);
}

namespace {

// A column of the described table (dropped ones included: index and constraint keys are attnums).
struct Column {
    const char* name;  // NULL for an attnum without a pg_attribute row
    bool dropped;
    Oid type;
    int32 typmod;
    bool nullable;  // NOT (attnotnull OR a NOT NULL domain)
    char generated;
    char identity;
    bool single_column_unique;
    const char* default_expr;  // deparsed, or NULL
    const char* comment;       // or NULL
};

struct TableIndex {
    const char* name;
    bool unique;
    bool primary;
    const char* definition;
    int key_count;
    int16* keys;  // every indkey entry, INCLUDE columns and expression zeros as well
};

struct TableConstraint {
    const char* name;
    Oid oid;
    char type;
    Oid referenced_table;
    int key_count;
    int16* keys;
    int referenced_key_count;
    int16* referenced_keys;
};

int compare_index_names(const void* a, const void* b) {
    return strcmp(((const TableIndex*)a)->name, ((const TableIndex*)b)->name);
}

int compare_constraint_names(const void* a, const void* b) {
    return strcmp(((const TableConstraint*)a)->name, ((const TableConstraint*)b)->name);
}

char* text_result(Datum value) {
    return TextDatumGetCString(value);
}

char* regclass_text(Oid relation) {
    return DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(relation)));
}

// pg_get_constraintdef(oid), as the SQL version calls it (foreign keys and checks alike).
char* constraint_definition(Oid constraint) {
    return text_result(DirectFunctionCall1(pg_get_constraintdef, ObjectIdGetDatum(constraint)));
}

// pg_get_expr(expression, relation), as the SQL version calls it.
char* deparse(Datum node_tree, Oid relation) {
    return text_result(DirectFunctionCall2(pg_get_expr, node_tree, ObjectIdGetDatum(relation)));
}

void copy_int2_array(Datum array_datum, int* count, int16** values) {
    ArrayType* array = DatumGetArrayTypeP(array_datum);
    *count = ARR_NDIM(array) == 0 ? 0 : ARR_DIMS(array)[0];
    *values = (int16*)palloc(sizeof(int16) * Max(*count, 1));
    memcpy(*values, ARR_DATA_PTR(array), sizeof(int16) * (*count));
}

// --- jsonb building: every string pushed is palloc'd memory that lives until the jsonb is built ---

void push_key(JsonbParseState** state, const char* key) {
    JsonbValue value;
    value.type = jbvString;
    value.val.string.val = (char*)key;
    value.val.string.len = (int)strlen(key);
    pushJsonbValue(state, WJB_KEY, &value);
}

void push_string(JsonbParseState** state, JsonbIteratorToken token, const char* text) {
    JsonbValue value;
    if (text == NULL) {
        value.type = jbvNull;
    } else {
        value.type = jbvString;
        value.val.string.val = (char*)text;
        value.val.string.len = (int)strlen(text);
    }
    pushJsonbValue(state, token, &value);
}

void push_bool(JsonbParseState** state, bool flag) {
    JsonbValue value;
    value.type = jbvBool;
    value.val.boolean = flag;
    pushJsonbValue(state, WJB_VALUE, &value);
}

void member_string(JsonbParseState** state, const char* key, const char* text) {
    push_key(state, key);
    push_string(state, WJB_VALUE, text);
}

void member_bool(JsonbParseState** state, const char* key, bool flag) {
    push_key(state, key);
    push_bool(state, flag);
}

// "char" as jsonb_build_object writes it: its text, "" for the zero byte.
void member_char(JsonbParseState** state, const char* key, char c) {
    char* text = (char*)palloc0(2);
    text[0] = c;
    member_string(state, key, text);
}

// The names of `keys` as jsonb_agg(attname ORDER BY position) over a join with pg_attribute: expression zeros
// and unknown attnums drop out; no name at all gives `empty_as_null` ? null : [].
void member_column_names(JsonbParseState** state, const char* key, const int16* keys, int key_count,
                         const Column* columns, int column_count, Oid other_relation, bool empty_as_null) {
    const char** names = (const char**)palloc(sizeof(char*) * Max(key_count, 1));
    int named = 0;
    for (int i = 0; i < key_count; i++) {
        int16 attnum = keys[i];
        const char* name = NULL;
        if (OidIsValid(other_relation))
            name = attnum != 0 ? get_attname(other_relation, attnum, true) : NULL;
        else if (attnum > 0 && attnum <= column_count)
            name = columns[attnum - 1].name;
        if (name != NULL) names[named++] = name;
    }
    push_key(state, key);
    if (named == 0 && empty_as_null) {
        push_string(state, WJB_VALUE, NULL);
        return;
    }
    pushJsonbValue(state, WJB_BEGIN_ARRAY, NULL);
    for (int i = 0; i < named; i++) push_string(state, WJB_ELEM, names[i]);
    pushJsonbValue(state, WJB_END_ARRAY, NULL);
}

// --- catalog reads ---

SysScanDesc begin_scan(Relation catalog, Oid index, ScanKeyData* keys, int key_count) {
    return systable_beginscan(catalog, index, true, NULL, key_count, keys);
}

// Columns 1..column_count from pg_attribute, with their defaults and comments.
Column* read_columns(Oid relation, int column_count) {
    Column* columns = (Column*)palloc0(sizeof(Column) * Max(column_count, 1));
    ScanKeyData keys[2];

    Relation catalog = table_open(AttributeRelationId, AccessShareLock);
    ScanKeyInit(&keys[0], Anum_pg_attribute_attrelid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(relation));
    ScanKeyInit(&keys[1], Anum_pg_attribute_attnum, BTGreaterStrategyNumber, F_INT2GT, Int16GetDatum(0));
    SysScanDesc scan = begin_scan(catalog, AttributeRelidNumIndexId, keys, 2);
    HeapTuple tuple;
    while (HeapTupleIsValid(tuple = systable_getnext(scan))) {
        Form_pg_attribute attribute = (Form_pg_attribute)GETSTRUCT(tuple);
        if (attribute->attnum < 1 || attribute->attnum > column_count) continue;
        Column* column = &columns[attribute->attnum - 1];
        column->name = pstrdup(NameStr(attribute->attname));
        column->dropped = attribute->attisdropped;
        column->type = attribute->atttypid;
        column->typmod = attribute->atttypmod;
        column->nullable = !attribute->attnotnull;
        if (column->nullable && !column->dropped) {
            HeapTuple type_tuple = SearchSysCache1(TYPEOID, ObjectIdGetDatum(attribute->atttypid));
            if (HeapTupleIsValid(type_tuple)) {
                Form_pg_type type = (Form_pg_type)GETSTRUCT(type_tuple);
                column->nullable = !(type->typtype == TYPTYPE_DOMAIN && type->typnotnull);
                ReleaseSysCache(type_tuple);
            }
        }
        column->generated = attribute->attgenerated;
        column->identity = attribute->attidentity;
    }
    systable_endscan(scan);
    table_close(catalog, AccessShareLock);

    catalog = table_open(AttrDefaultRelationId, AccessShareLock);
    ScanKeyInit(&keys[0], Anum_pg_attrdef_adrelid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(relation));
    scan = begin_scan(catalog, AttrDefaultIndexId, keys, 1);
    while (HeapTupleIsValid(tuple = systable_getnext(scan))) {
        Form_pg_attrdef attrdef = (Form_pg_attrdef)GETSTRUCT(tuple);
        if (attrdef->adnum < 1 || attrdef->adnum > column_count) continue;
        bool isnull;
        Datum adbin = heap_getattr(tuple, Anum_pg_attrdef_adbin, RelationGetDescr(catalog), &isnull);
        if (!isnull) columns[attrdef->adnum - 1].default_expr = deparse(adbin, relation);
    }
    systable_endscan(scan);
    table_close(catalog, AccessShareLock);

    catalog = table_open(DescriptionRelationId, AccessShareLock);
    ScanKeyInit(&keys[0], Anum_pg_description_objoid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(relation));
    ScanKeyInit(&keys[1], Anum_pg_description_classoid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(RelationRelationId));
    scan = begin_scan(catalog, DescriptionObjIndexId, keys, 2);
    while (HeapTupleIsValid(tuple = systable_getnext(scan))) {
        Form_pg_description description = (Form_pg_description)GETSTRUCT(tuple);
        if (description->objsubid < 1 || description->objsubid > column_count) continue;
        bool isnull;
        Datum comment =
            heap_getattr(tuple, Anum_pg_description_description, RelationGetDescr(catalog), &isnull);
        if (!isnull) columns[description->objsubid - 1].comment = text_result(comment);
    }
    systable_endscan(scan);
    table_close(catalog, AccessShareLock);
    return columns;
}

// The table's indexes, sorted by name; marks the columns a single-column unique index covers.
TableIndex* read_indexes(Oid relation, Column* columns, int column_count, int* index_count) {
    int capacity = 4, count = 0;
    TableIndex* indexes = (TableIndex*)palloc(sizeof(TableIndex) * capacity);
    ScanKeyData key;

    Relation catalog = table_open(IndexRelationId, AccessShareLock);
    ScanKeyInit(&key, Anum_pg_index_indrelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relation));
    SysScanDesc scan = begin_scan(catalog, IndexIndrelidIndexId, &key, 1);
    HeapTuple tuple;
    while (HeapTupleIsValid(tuple = systable_getnext(scan))) {
        Form_pg_index form = (Form_pg_index)GETSTRUCT(tuple);
        if (count == capacity) {
            capacity *= 2;
            indexes = (TableIndex*)repalloc(indexes, sizeof(TableIndex) * capacity);
        }
        TableIndex* index = &indexes[count++];
        index->name = get_rel_name(form->indexrelid);
        if (index->name == NULL) index->name = "";
        index->unique = form->indisunique;
        index->primary = form->indisprimary;
        index->definition =
            text_result(DirectFunctionCall1(pg_get_indexdef, ObjectIdGetDatum(form->indexrelid)));
        index->key_count = form->indkey.dim1;
        index->keys = (int16*)palloc(sizeof(int16) * Max(index->key_count, 1));
        memcpy(index->keys, form->indkey.values, sizeof(int16) * index->key_count);

        int16 first_key = index->key_count > 0 ? index->keys[0] : 0;
        if (form->indisunique && form->indnkeyatts == 1 && first_key > 0 && first_key <= column_count &&
            heap_attisnull(tuple, Anum_pg_index_indpred, RelationGetDescr(catalog)))
            columns[first_key - 1].single_column_unique = true;
    }
    systable_endscan(scan);
    table_close(catalog, AccessShareLock);

    qsort(indexes, count, sizeof(TableIndex), compare_index_names);
    *index_count = count;
    return indexes;
}

// The table's foreign keys and check constraints, sorted by name.
TableConstraint* read_constraints(Oid relation, int* constraint_count) {
    int capacity = 4, count = 0;
    TableConstraint* constraints = (TableConstraint*)palloc(sizeof(TableConstraint) * capacity);
    ScanKeyData key;

    Relation catalog = table_open(ConstraintRelationId, AccessShareLock);
    ScanKeyInit(&key, Anum_pg_constraint_conrelid, BTEqualStrategyNumber, F_OIDEQ,
                ObjectIdGetDatum(relation));
    SysScanDesc scan = begin_scan(catalog, ConstraintRelidTypidNameIndexId, &key, 1);
    HeapTuple tuple;
    while (HeapTupleIsValid(tuple = systable_getnext(scan))) {
        Form_pg_constraint form = (Form_pg_constraint)GETSTRUCT(tuple);
        if (form->contype != CONSTRAINT_FOREIGN && form->contype != CONSTRAINT_CHECK) continue;
        if (count == capacity) {
            capacity *= 2;
            constraints = (TableConstraint*)repalloc(constraints, sizeof(TableConstraint) * capacity);
        }
        TableConstraint* constraint = &constraints[count++];
        memset(constraint, 0, sizeof(TableConstraint));
        constraint->name = pstrdup(NameStr(form->conname));
        constraint->oid = form->oid;
        constraint->type = form->contype;
        constraint->referenced_table = form->confrelid;
        if (form->contype == CONSTRAINT_FOREIGN) {
            bool isnull;
            Datum keys = heap_getattr(tuple, Anum_pg_constraint_conkey, RelationGetDescr(catalog), &isnull);
            if (!isnull) copy_int2_array(keys, &constraint->key_count, &constraint->keys);
            keys = heap_getattr(tuple, Anum_pg_constraint_confkey, RelationGetDescr(catalog), &isnull);
            if (!isnull)
                copy_int2_array(keys, &constraint->referenced_key_count, &constraint->referenced_keys);
        }
    }
    systable_endscan(scan);
    table_close(catalog, AccessShareLock);

    qsort(constraints, count, sizeof(TableConstraint), compare_constraint_names);
    *constraint_count = count;
    return constraints;
}

// The parent a partition is attached to (pg_inherits), or InvalidOid.
Oid partition_parent(Oid relation) {
    ScanKeyData key;
    Relation catalog = table_open(InheritsRelationId, AccessShareLock);
    ScanKeyInit(&key, Anum_pg_inherits_inhrelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relation));
    SysScanDesc scan = begin_scan(catalog, InheritsRelidSeqnoIndexId, &key, 1);
    HeapTuple tuple = systable_getnext(scan);
    Oid parent = HeapTupleIsValid(tuple) ? ((Form_pg_inherits)GETSTRUCT(tuple))->inhparent : InvalidOid;
    systable_endscan(scan);
    table_close(catalog, AccessShareLock);
    return parent;
}

// The table's id in pgstream.table_ids, or NULL. Read with the caller's snapshot, as the SQL version's
// subquery does: the id may have been minted earlier in this very statement's transaction.
char* pgstream_table_id(Oid relation) {
    Oid schema = get_namespace_oid("pgstream", true);
    Oid table_ids = OidIsValid(schema) ? get_relname_relid("table_ids", schema) : InvalidOid;
    if (!OidIsValid(table_ids)) return NULL;

    Relation table = table_open(table_ids, AccessShareLock);
    int oid_column = 0, id_column = 0;
    for (int i = 0; i < RelationGetDescr(table)->natts; i++) {
        Form_pg_attribute attribute = TupleDescAttr(RelationGetDescr(table), i);
        if (attribute->attisdropped) continue;
        if (strcmp(NameStr(attribute->attname), "oid") == 0) oid_column = attribute->attnum;
        if (strcmp(NameStr(attribute->attname), "id") == 0) id_column = attribute->attnum;
    }
    Oid oid_index = InvalidOid;
    List* index_oids = RelationGetIndexList(table);
    ListCell* cell;
    foreach (cell, index_oids) {
        HeapTuple index_tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(cell)));
        if (!HeapTupleIsValid(index_tuple)) continue;
        Form_pg_index form = (Form_pg_index)GETSTRUCT(index_tuple);
        if (form->indnkeyatts == 1 && form->indkey.values[0] == oid_column) oid_index = form->indexrelid;
        ReleaseSysCache(index_tuple);
    }
    list_free(index_oids);

    char* id = NULL;
    if (oid_column != 0 && id_column != 0 && OidIsValid(oid_index)) {
        ScanKeyData key;
        ScanKeyInit(&key, oid_column, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relation));
        Snapshot snapshot = ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot();
        SysScanDesc scan = systable_beginscan(table, oid_index, true, snapshot, 1, &key);
        HeapTuple tuple = systable_getnext(scan);
        if (HeapTupleIsValid(tuple)) {
            bool isnull;
            Datum value = heap_getattr(tuple, id_column, RelationGetDescr(table), &isnull);
            if (!isnull) id = text_result(value);
        }
        systable_endscan(scan);
    } else {
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("pgstream.table_ids has no index on its oid column")));
    }
    table_close(table, AccessShareLock);
    return id;
}

}  // namespace

extern "C" Datum pgstream_describe_table(PG_FUNCTION_ARGS) {
    Oid relation = PG_GETARG_OID(0);
    HeapTuple class_tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relation));
    if (!HeapTupleIsValid(class_tuple)) PG_RETURN_NULL();
    Form_pg_class form = (Form_pg_class)GETSTRUCT(class_tuple);
    char* relation_name = pstrdup(NameStr(form->relname));
    char kind = form->relkind;
    bool is_partition = form->relispartition;
    int column_count = form->relnatts;
    bool isnull = true;
    Datum bound =
        is_partition ? SysCacheGetAttr(RELOID, class_tuple, Anum_pg_class_relpartbound, &isnull) : (Datum)0;
    char* partition_bound = isnull ? NULL : deparse(bound, relation);
    ReleaseSysCache(class_tuple);

    char* table_id = pgstream_table_id(relation);
    Column* columns = read_columns(relation, column_count);
    int index_count;
    TableIndex* indexes = read_indexes(relation, columns, column_count, &index_count);
    int constraint_count;
    TableConstraint* constraints = read_constraints(relation, &constraint_count);
    Oid parent = is_partition ? partition_parent(relation) : InvalidOid;

    JsonbParseState* state = NULL;
    pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
    member_string(&state, "oid", psprintf("%u", relation));
    member_string(&state, "name", relation_name);
    member_string(&state, "pgstream_id", table_id);

    push_key(&state, "columns");
    pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
    for (int i = 0; i < column_count; i++) {
        const Column* column = &columns[i];
        if (column->name == NULL || column->dropped) continue;
        pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
        member_string(&state, "pgstream_id", table_id ? psprintf("%s-%d", table_id, i + 1) : NULL);
        member_string(&state, "name", column->name);
        member_string(&state, "type",
                      format_type_extended(column->type, column->typmod,
                                           FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_ALLOW_INVALID));
        member_string(&state, "default", column->default_expr);
        member_bool(&state, "nullable", column->nullable);
        member_bool(&state, "unique", column->single_column_unique);
        member_bool(&state, "generated", column->generated != '\0');
        member_char(&state, "generated_kind", column->generated);
        member_char(&state, "identity", column->identity);
        member_string(&state, "metadata", column->comment);
        pushJsonbValue(&state, WJB_END_OBJECT, NULL);
    }
    pushJsonbValue(&state, WJB_END_ARRAY, NULL);

    bool has_primary_key = false;
    for (int i = 0; i < index_count; i++) {
        if (!indexes[i].primary) continue;
        member_column_names(&state, "primary_key_columns", indexes[i].keys, indexes[i].key_count, columns,
                            column_count, InvalidOid, false);
        has_primary_key = true;
        break;
    }
    if (!has_primary_key) {
        push_key(&state, "primary_key_columns");
        pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
        pushJsonbValue(&state, WJB_END_ARRAY, NULL);
    }

    push_key(&state, "unique_not_null_columns");
    pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
    for (int i = 0; i < column_count; i++) {
        const Column* column = &columns[i];
        if (column->name != NULL && !column->dropped && column->single_column_unique && !column->nullable)
            push_string(&state, WJB_ELEM, column->name);
    }
    pushJsonbValue(&state, WJB_END_ARRAY, NULL);

    push_key(&state, "indexes");
    pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
    for (int i = 0; i < index_count; i++) {
        pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
        member_string(&state, "name", indexes[i].name);
        member_column_names(&state, "columns", indexes[i].keys, indexes[i].key_count, columns, column_count,
                            InvalidOid, false);
        member_bool(&state, "unique", indexes[i].unique);
        member_bool(&state, "primary", indexes[i].primary);
        member_string(&state, "definition", indexes[i].definition);
        pushJsonbValue(&state, WJB_END_OBJECT, NULL);
    }
    pushJsonbValue(&state, WJB_END_ARRAY, NULL);

    push_key(&state, "foreign_keys");
    pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
    for (int i = 0; i < constraint_count; i++) {
        const TableConstraint* constraint = &constraints[i];
        if (constraint->type != CONSTRAINT_FOREIGN) continue;
        pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
        member_string(&state, "name", constraint->name);
        member_column_names(&state, "columns", constraint->keys, constraint->key_count, columns, column_count,
                            InvalidOid, true);
        member_string(&state, "referenced_table", regclass_text(constraint->referenced_table));
        member_column_names(&state, "referenced_columns", constraint->referenced_keys,
                            constraint->referenced_key_count, NULL, 0, constraint->referenced_table, true);
        member_string(&state, "definition", constraint_definition(constraint->oid));
        pushJsonbValue(&state, WJB_END_OBJECT, NULL);
    }
    pushJsonbValue(&state, WJB_END_ARRAY, NULL);

    push_key(&state, "check_constraints");
    pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
    for (int i = 0; i < constraint_count; i++) {
        const TableConstraint* constraint = &constraints[i];
        if (constraint->type != CONSTRAINT_CHECK) continue;
        pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
        member_string(&state, "name", constraint->name);
        member_string(&state, "definition", constraint_definition(constraint->oid));
        pushJsonbValue(&state, WJB_END_OBJECT, NULL);
    }
    pushJsonbValue(&state, WJB_END_ARRAY, NULL);

    member_string(&state, "partition_of", OidIsValid(parent) ? regclass_text(parent) : NULL);
    member_string(&state, "partition_bound", partition_bound);
    if (kind == RELKIND_PARTITIONED_TABLE)
        member_string(&state, "partition_key",
                      text_result(DirectFunctionCall1(pg_get_partkeydef, ObjectIdGetDatum(relation))));
    else
        member_string(&state, "partition_key", NULL);

    JsonbValue* result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
    PG_RETURN_JSONB_P(JsonbValueToJsonb(result));
}
