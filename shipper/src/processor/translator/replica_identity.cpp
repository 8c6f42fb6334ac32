#include "processor/translator/replica_identity.h"

namespace pgstream {

std::string UndecodableTable::fix_statement(bool full) const {
    std::string statement = "ALTER TABLE " + qualified_name + " REPLICA IDENTITY ";
    return statement + (full || usable_index.empty() ? "FULL" : "USING INDEX " + usable_index);
}

std::string UndecodableTable::describe() const {
    bool by_index = !usable_index.empty();
    std::string index_note;
    if (by_index && why == "has no primary key")
        index_note = " (its unique index " + usable_index +
                     " on NOT NULL columns is not the replica identity until the table is told so)";
    return "table " + qualified_name + " " + why + index_note +
           ": PostgreSQL does not decode its UPDATE and DELETE (they are skipped, with a warning in the "
           "server's "
           "log only); fix with " +
           fix_statement(false) + " (pgstream init --replica-identity=" + (by_index ? "index" : "full") + ")";
}

std::vector<UndecodableTable> find_undecodable_tables(PGconn* conn, const std::string& schema) {
    std::string sql =
        "SELECT n.nspname, c.relname, format('%I.%I', n.nspname, c.relname), "
        "  CASE c.relreplident WHEN 'd' THEN 'has no primary key' "
        "    WHEN 'n' THEN 'has REPLICA IDENTITY NOTHING' "
        "    ELSE 'has REPLICA IDENTITY USING INDEX on an index that is gone' END, "
        "  (SELECT format('%I', i.relname) FROM pg_catalog.pg_index x "
        "     JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid "
        "   WHERE x.indrelid = c.oid AND x.indisunique AND x.indimmediate AND x.indisvalid "
        "     AND x.indpred IS NULL AND x.indexprs IS NULL "
        "     AND NOT EXISTS (SELECT 1 FROM unnest(x.indkey::int2[]) k(attnum) "
        "       JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
        "       WHERE NOT a.attnotnull) "
        "   ORDER BY i.relname LIMIT 1) "
        "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND c.relpersistence = 'p' "
        "  AND n.nspname NOT IN ('information_schema', 'pgstream') AND n.nspname NOT LIKE 'pg\\_%' "
        "  AND CASE c.relreplident "
        "    WHEN 'f' THEN false "
        "    WHEN 'd' THEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index x "
        "                              WHERE x.indrelid = c.oid AND x.indisprimary) "
        "    WHEN 'i' THEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index x "
        "                              WHERE x.indrelid = c.oid AND x.indisreplident) "
        "    ELSE true END";
    if (!schema.empty()) sql += " AND n.nspname = " + pg::quote_literal(conn, schema);
    sql += " ORDER BY 1, 2";
    auto result = pg::exec(conn, sql);
    std::vector<UndecodableTable> tables;
    for (int row = 0; row < PQntuples(result.get()); ++row) {
        UndecodableTable table;
        table.schema = pg::value(result.get(), row, 0).value_or("");
        table.table = pg::value(result.get(), row, 1).value_or("");
        table.qualified_name = pg::value(result.get(), row, 2).value_or("");
        table.why = pg::value(result.get(), row, 3).value_or("");
        table.usable_index = pg::value(result.get(), row, 4).value_or("");
        tables.push_back(std::move(table));
    }
    return tables;
}

}  // namespace pgstream
