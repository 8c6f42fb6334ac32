# Writes a .cpp holding every migrations/*.sql file as a raw string literal, in file-name order, so that
# `pgstream init` can install schema tracking on servers without the pgstream extension.
# Invoked as: cmake -DMIGRATIONS_DIR=... -DOUTPUT=... -P embed_migrations.cmake
file(GLOB migration_files "${MIGRATIONS_DIR}/*.sql")
list(SORT migration_files)
set(body "")
foreach(path IN LISTS migration_files)
  get_filename_component(name "${path}" NAME)
  file(READ "${path}" sql)
  string(FIND "${sql}" ")pgstream_sql\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${path} contains the raw-string delimiter )pgstream_sql\"")
  endif()
  string(APPEND body "    {\"${name}\", R\"pgstream_sql(${sql})pgstream_sql\"},\n")
endforeach()
set(content "// Generated from migrations/*.sql by shipper/cmake/embed_migrations.cmake. Do not edit.
#include \"cli/embedded_migrations.h\"

namespace pgstream::cli {

const std::vector<EmbeddedMigration>& embedded_migrations() {
    static const std::vector<EmbeddedMigration> migrations = {
${body}    };
    return migrations;
}

}  // namespace pgstream::cli
")
# Only touch the file when it changes, so an unrelated reconfigure does not rebuild the library.
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" previous)
  if(previous STREQUAL content)
    return()
  endif()
endif()
file(WRITE "${OUTPUT}" "${content}")
