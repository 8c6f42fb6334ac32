// pgstream.compose_tables(): a schema version composed from the previous one at the cost of the tables a DDL
// touched, not of the schema.
//
// A version is {"tables": [<table>, ...], ...} with tables sorted by name. Editing it with jsonb_set()
// unpacks and re-serializes every node of every table (about 30 ms per DDL at 1,000 tables); this function
// works on the binary jsonb instead: untouched tables are copied as byte ranges, touched ones are dropped,
// the new descriptions are merged in by name. The result is byte for byte what PostgreSQL would serialize for
// the same value (same JEntry offsets/lengths, same alignment padding), so an unchanged schema comes back
// identical and is reported as NULL ("nothing to log").
//
// Boundary with PostgreSQL: plain C-style code over palloc'd memory, no object with a destructor and nothing
// that throws, so an ereport(ERROR) (from detoasting, palloc or the size check) unwinds nothing C++ owns.
#include "pg_headers.h"

extern "C" {
PGDLLEXPORT Datum pgstream_compose_tables(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(pgstream_compose_tables);
}

namespace {

// One element of the output "tables" array: a JSON object container somewhere in memory.
struct TableRef {
    const char* name;
    int name_len;
    const char* data;  // the object container, 4-byte aligned
    uint32 size;
};

// The value at `index` of a container: where its bytes start (after alignment padding) and how many there
// are.
void child_bytes(const JsonbContainer* container, int index, const char** data, uint32* size) {
    int count = (int)JsonContainerSize(container);
    if (JsonContainerIsObject(container)) count *= 2;
    const char* base = (const char*)&container->children[count];
    uint32 offset = getJsonbOffset(container, index);
    uint32 length = getJsonbLength(container, index);
    uint32 type = container->children[index] & JENTRY_TYPEMASK;
    if (type == JENTRY_ISCONTAINER || type == JENTRY_ISNUMERIC) {
        // Containers and numerics are stored 4-byte aligned; the padding belongs to the value's length.
        uint32 aligned = INTALIGN(offset);
        length -= aligned - offset;
        offset = aligned;
    }
    *data = base + offset;
    *size = length;
}

bool string_member(JsonbContainer* object, const char* key, const char** text, int* len) {
    JsonbValue value;
    if (!JsonContainerIsObject(object) ||
        getKeyJsonValueFromContainer(object, key, (uint32)strlen(key), &value) == NULL ||
        value.type != jbvString)
        return false;
    *text = value.val.string.val;
    *len = value.val.string.len;
    return true;
}

Oid oid_member(JsonbContainer* object) {
    const char* text;
    int len;
    if (!string_member(object, "oid", &text, &len) || len <= 0 || len > 10) return InvalidOid;
    Oid oid = 0;
    for (int i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') return InvalidOid;
        oid = oid * 10 + (Oid)(text[i] - '0');
    }
    return oid;
}

// COLLATE "C" order of two names (the order of versions built by get_schema()).
int compare_names(const TableRef* a, const TableRef* b) {
    int common = Min(a->name_len, b->name_len);
    int c = memcmp(a->name, b->name, common);
    if (c != 0) return c;
    return a->name_len - b->name_len;
}

int compare_table_refs(const void* a, const void* b) {
    return compare_names((const TableRef*)a, (const TableRef*)b);
}

int compare_oids(const void* a, const void* b) {
    Oid x = *(const Oid*)a, y = *(const Oid*)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

void pad_to_int(StringInfo buffer) {
    int padding = INTALIGN(buffer->len) - buffer->len;
    static const char zeros[4] = {0, 0, 0, 0};
    if (padding > 0) appendBinaryStringInfo(buffer, zeros, padding);
}

// Writes a container's children JEntries as PostgreSQL does: an end offset every JB_OFFSET_STRIDE'th child, a
// length otherwise. `lengths[i]` includes the child's alignment padding.
void store_jentries(StringInfo buffer, int jentries_at, const uint32* types, const uint32* lengths,
                    int count) {
    uint32 total = 0;
    for (int i = 0; i < count; i++) {
        total += lengths[i];
        if (total > JENTRY_OFFLENMASK)
            ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                            errmsg("pgstream: schema version exceeds the maximum jsonb size")));
        JEntry entry =
            (i % JB_OFFSET_STRIDE) == 0 ? (types[i] | total | JENTRY_HAS_OFF) : (types[i] | lengths[i]);
        memcpy(buffer->data + jentries_at + i * sizeof(JEntry), &entry, sizeof(JEntry));
    }
}

// Appends `count` JEntries' worth of space and returns where it starts.
int reserve_jentries(StringInfo buffer, int count) {
    int at = buffer->len;
    enlargeStringInfo(buffer, count * (int)sizeof(JEntry));
    memset(buffer->data + at, 0, count * sizeof(JEntry));
    buffer->len += count * (int)sizeof(JEntry);
    buffer->data[buffer->len] = '\0';
    return at;
}

void write_tables_array(StringInfo buffer, const TableRef* tables, int count) {
    uint32 header = (uint32)count | JB_FARRAY;
    appendBinaryStringInfo(buffer, (const char*)&header, sizeof(header));
    int jentries_at = reserve_jentries(buffer, count);
    uint32* types = (uint32*)palloc(sizeof(uint32) * Max(count, 1));
    uint32* lengths = (uint32*)palloc(sizeof(uint32) * Max(count, 1));
    for (int i = 0; i < count; i++) {
        int start = buffer->len;
        pad_to_int(buffer);
        appendBinaryStringInfo(buffer, tables[i].data, (int)tables[i].size);
        types[i] = JENTRY_ISCONTAINER;
        lengths[i] = (uint32)(buffer->len - start);
    }
    store_jentries(buffer, jentries_at, types, lengths, count);
}

// The JSON null that tells the caller to build the version from the catalogs instead.
Jsonb* json_null() {
    JsonbValue value;
    value.type = jbvNull;
    return JsonbValueToJsonb(&value);
}

}  // namespace

// compose_tables(previous jsonb, touched oid[], described jsonb[]) -> jsonb or NULL
//   previous:  the previous version, an object whose "tables" array is sorted by name
//   touched:   oids of tables whose old description goes (changed, moved away or dropped)
//   described: the new descriptions (NULL elements ignored); their oids go from the previous version too
// Returns the new version (the previous one's other members kept as they are), SQL NULL if it equals
// `previous`, or JSON null if `previous` cannot be composed from (a "dropped" marker, no "tables" array).
extern "C" Datum pgstream_compose_tables(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0)) PG_RETURN_NULL();
    Jsonb* previous = PG_GETARG_JSONB_P(0);
    JsonbContainer* root = &previous->root;
    if (!JsonContainerIsObject(root) || JB_ROOT_IS_SCALAR(previous)) PG_RETURN_JSONB_P(json_null());

    // Oids to drop: the touched ones and those of every new description.
    Oid* drop = NULL;
    int drop_count = 0;
    int described_count = 0;
    Datum* described_datums = NULL;
    bool* described_nulls = NULL;
    if (!PG_ARGISNULL(2))
        deconstruct_array(PG_GETARG_ARRAYTYPE_P(2), JSONBOID, -1, false, TYPALIGN_INT, &described_datums,
                          &described_nulls, &described_count);
    Datum* touched_datums = NULL;
    bool* touched_nulls = NULL;
    int touched_count = 0;
    if (!PG_ARGISNULL(1))
        deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), OIDOID, sizeof(Oid), true, TYPALIGN_INT, &touched_datums,
                          &touched_nulls, &touched_count);

    TableRef* added = (TableRef*)palloc(sizeof(TableRef) * Max(described_count, 1));
    int added_count = 0;
    drop = (Oid*)palloc(sizeof(Oid) * Max(touched_count + described_count, 1));
    for (int i = 0; i < touched_count; i++)
        if (!touched_nulls[i]) drop[drop_count++] = DatumGetObjectId(touched_datums[i]);
    for (int i = 0; i < described_count; i++) {
        if (described_nulls[i]) continue;
        Jsonb* table = DatumGetJsonbP(described_datums[i]);
        TableRef* ref = &added[added_count];
        if (!string_member(&table->root, "name", &ref->name, &ref->name_len))
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("pgstream.compose_tables: a described table has no \"name\"")));
        ref->data = (const char*)&table->root;
        ref->size = VARSIZE(table) - VARHDRSZ;
        Oid oid = oid_member(&table->root);
        if (OidIsValid(oid)) drop[drop_count++] = oid;
        added_count++;
    }
    qsort(drop, drop_count, sizeof(Oid), compare_oids);
    qsort(added, added_count, sizeof(TableRef), compare_table_refs);

    // The root's members, in their stored (canonical) order; "tables" is the one rebuilt.
    int members = (int)JsonContainerSize(root);
    int tables_index = -1;
    JsonbContainer* old_tables = NULL;
    for (int i = 0; i < members; i++) {
        const char* key;
        uint32 key_size;
        child_bytes(root, i, &key, &key_size);
        if (key_size == 7 && memcmp(key, "dropped", 7) == 0) PG_RETURN_JSONB_P(json_null());
        if (key_size == 6 && memcmp(key, "tables", 6) == 0 &&
            (root->children[members + i] & JENTRY_TYPEMASK) == JENTRY_ISCONTAINER) {
            const char* data;
            uint32 size;
            child_bytes(root, members + i, &data, &size);
            if (JsonContainerIsArray((JsonbContainer*)data)) {
                tables_index = i;
                old_tables = (JsonbContainer*)data;
            }
        }
    }
    if (tables_index < 0) PG_RETURN_JSONB_P(json_null());

    // Kept old tables (already in name order) merged with the added ones.
    int old_count = (int)JsonContainerSize(old_tables);
    TableRef* composed = (TableRef*)palloc(sizeof(TableRef) * Max(old_count + added_count, 1));
    int composed_count = 0;
    int next_added = 0;
    for (int i = 0; i < old_count; i++) {
        TableRef old;
        child_bytes(old_tables, i, &old.data, &old.size);
        JsonbContainer* object = (JsonbContainer*)old.data;
        if ((old_tables->children[i] & JENTRY_TYPEMASK) != JENTRY_ISCONTAINER ||
            !string_member(object, "name", &old.name, &old.name_len))
            ereport(ERROR,
                    (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                     errmsg("pgstream.compose_tables: table %d of the previous version has no \"name\"", i)));
        Oid oid = oid_member(object);
        if (OidIsValid(oid) && bsearch(&oid, drop, drop_count, sizeof(Oid), compare_oids) != NULL) continue;
        while (next_added < added_count && compare_names(&added[next_added], &old) < 0)
            composed[composed_count++] = added[next_added++];
        composed[composed_count++] = old;
    }
    while (next_added < added_count) composed[composed_count++] = added[next_added++];

    // The new root object: same keys, same other values, the composed "tables".
    StringInfoData buffer;
    initStringInfo(&buffer);
    enlargeStringInfo(&buffer, (int)VARSIZE(previous) + 64);
    buffer.len = VARHDRSZ;
    uint32 header = (uint32)members | JB_FOBJECT;
    appendBinaryStringInfo(&buffer, (const char*)&header, sizeof(header));
    int jentries_at = reserve_jentries(&buffer, 2 * members);
    uint32* types = (uint32*)palloc(sizeof(uint32) * 2 * Max(members, 1));
    uint32* lengths = (uint32*)palloc(sizeof(uint32) * 2 * Max(members, 1));
    for (int i = 0; i < 2 * members; i++) {
        int start = buffer.len;
        types[i] = root->children[i] & JENTRY_TYPEMASK;
        if (i == members + tables_index) {
            pad_to_int(&buffer);
            write_tables_array(&buffer, composed, composed_count);
        } else {
            const char* data;
            uint32 size;
            child_bytes(root, i, &data, &size);
            if (types[i] == JENTRY_ISCONTAINER || types[i] == JENTRY_ISNUMERIC) pad_to_int(&buffer);
            appendBinaryStringInfo(&buffer, data, (int)size);
        }
        lengths[i] = (uint32)(buffer.len - start);
    }
    store_jentries(&buffer, jentries_at, types, lengths, 2 * members);
    SET_VARSIZE(buffer.data, buffer.len);

    if ((Size)buffer.len == VARSIZE(previous) &&
        memcmp(buffer.data + VARHDRSZ, VARDATA(previous), buffer.len - VARHDRSZ) == 0)
        PG_RETURN_NULL();
    PG_RETURN_JSONB_P((Jsonb*)buffer.data);
}
