// Tables whose UPDATE and DELETE logical decoding cannot carry. Without a primary key (and with replica
// identity DEFAULT), with REPLICA IDENTITY NOTHING, or with USING INDEX on an index that is gone, PostgreSQL
// writes no old key to the WAL, and the output plugin skips those changes with a warning in the server's log
// only: they would be lost without a word. A unique index on NOT NULL columns (what the translator takes as
// the identity) is not the replica identity unless the table is told so. `pgstream init`, `status` and `run`
// name these tables; `init --replica-identity=index|full` fixes them (docs/operations.md).
#pragma once

#include <string>
#include <vector>

#include "util/pg.h"

namespace pgstream {

struct UndecodableTable {
    std::string schema;
    std::string table;
    std::string qualified_name;  // quoted for SQL: public."Odd name"
    std::string why;             // "has no primary key", "has REPLICA IDENTITY NOTHING", ...
    // A unique, non-partial index on NOT NULL columns that REPLICA IDENTITY USING INDEX accepts (quoted);
    // empty when the table has none (then only FULL works).
    std::string usable_index;

    // ALTER TABLE ... REPLICA IDENTITY USING INDEX (when `full` is false and there is an index) or FULL.
    std::string fix_statement(bool full) const;
    // One line for logs and the CLI: the table, why, and the fix.
    std::string describe() const;
};

// User tables (not system schemas, not pgstream's own, not temporary or unlogged) whose UPDATE/DELETE cannot
// be decoded, by schema and name; only those of `schema` when it is given. Simple query protocol only, so it
// runs on a replication connection too. Throws pg::Error.
std::vector<UndecodableTable> find_undecodable_tables(PGconn* conn, const std::string& schema = {});

}  // namespace pgstream
