// The migrations/*.sql files, embedded at build time (see shipper/cmake/embed_migrations.cmake), so that
// `pgstream init` can install schema tracking on servers where the pgstream extension is not available.
#pragma once

#include <string>
#include <vector>

namespace pgstream::cli {

struct EmbeddedMigration {
    std::string file_name;  // e.g. "001_schema_log.sql"; applied in this (file-name) order
    std::string sql;
};

const std::vector<EmbeddedMigration>& embedded_migrations();

}  // namespace pgstream::cli
