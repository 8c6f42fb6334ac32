// init, tear-down and status: the commands that talk to the database with an ordinary connection.
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/embedded_migrations.h"
#include "listener/postgres/postgres_listener.h"
#include "processor/translator/replica_identity.h"
#include "util/pg.h"
#include "util/redact.h"

namespace pgstream::cli {

namespace {

struct Failure : std::runtime_error {
    Failure(const std::string& message, int code) : std::runtime_error(message), exit_code(code) {}
    int exit_code;
};

pg::ConnPtr connect_or_fail(const std::string& url) {
    redact::remember(url);  // whatever libpq or the server quotes of it later, the password is masked
    std::string why;
    if (!pg::looks_like_connection_string(url, &why)) throw Failure("invalid --pgurl: " + why, kExitUsage);
    try {
        auto conn = pg::connect(url, false, "pgstream");
        PQsetClientEncoding(conn.get(), "UTF8");  // what init and status print is UTF-8, like the stream
        return conn;
    } catch (const pg::Error& e) {
        throw Failure(std::string("cannot connect to --pgurl: ") + e.what(), kExitFailure);
    }
}

std::string scalar(PGconn* conn, const std::string& sql,
                   const std::vector<std::optional<std::string>>& params = {}) {
    auto result = pg::exec(conn, sql, params);
    if (PQntuples(result.get()) == 0) return {};
    return pg::value(result.get(), 0, 0).value_or("");
}

std::string slot_name_for(const DatabaseOptions& options) {
    if (!options.slot.empty()) {
        for (char c : options.slot)
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
                throw Failure(
                    "invalid --slot \"" + options.slot + "\": only lower-case letters, digits and _",
                    kExitUsage);
        return options.slot;
    }
    return default_slot_name(options.url);
}

// A slot is ours to use or drop only when it is a logical slot of this database with a plugin pgstream reads.
void require_own_slot(PGconn* conn, const std::string& slot, const std::string& what) {
    auto found = pg::exec(conn,
                          "SELECT slot_type, coalesce(database, '(none)'), coalesce(plugin, '(none)'), "
                          "current_database() FROM pg_replication_slots WHERE slot_name = $1",
                          {slot});
    if (PQntuples(found.get()) == 0) return;
    auto field = [&](int column) { return pg::value(found.get(), 0, column).value_or(""); };
    if (field(0) == "logical" && field(1) == field(3) && (field(2) == "pgstream" || field(2) == "wal2json"))
        return;
    throw Failure("replication slot " + slot + " belongs to database " + field(1) + " (" + field(0) +
                      " slot, plugin " + field(2) + "), not to this database " + field(3) + ": " + what +
                      " refuses it; pass this database's own --slot",
                  kExitUsage);
}

bool extension_available(PGconn* conn) {
    return scalar(conn, "SELECT count(*) FROM pg_available_extensions WHERE name = 'pgstream'") != "0";
}

bool listed_in(const std::string& list, const std::string& plugin) {
    std::stringstream stream(list);
    std::string entry;
    while (std::getline(stream, entry, ',')) {
        size_t begin = entry.find_first_not_of(" \t\"");
        size_t end = entry.find_last_not_of(" \t\"");
        if (begin != std::string::npos && entry.substr(begin, end - begin + 1) == plugin) return true;
    }
    return false;
}

// What a role that is not a superuser lacks for init, one line each: the privilege, what init needs it for
// and the statement that grants it. Checked up front: the server's own "permission denied" names neither.
std::vector<std::string> missing_privileges(PGconn* conn, bool has_extension) {
    // Privileges are checked by OID: looking a function up by name would itself be refused without USAGE.
    static const char* kQuery =
        "SELECT r.rolsuper, r.rolreplication, has_database_privilege(current_database(), 'CREATE'), "
        // schema tracking is installed when its event triggers exist
        "(SELECT count(*) FROM pg_event_trigger "
        " WHERE evtname IN ('pgstream_log_schema_ddl', 'pgstream_log_schema_drop')) = 2, "
        "EXISTS (SELECT FROM pg_namespace WHERE nspname = 'pgstream'), "
        // what logging the existing schemas takes
        "coalesce((SELECT has_schema_privilege(n.oid, 'USAGE') "
        "          FROM pg_namespace n WHERE n.nspname = 'pgstream'), false) "
        "AND coalesce((SELECT bool_and(has_function_privilege(p.oid, 'EXECUTE')) "
        "              FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "              WHERE n.nspname = 'pgstream'), true) "
        // (has_table_privilege with a list is true when any one is held; get_schema's upserts need all three)
        "AND coalesce((SELECT bool_and(has_table_privilege(c.oid, 'SELECT') AND has_table_privilege(c.oid, "
        "'INSERT') AND has_table_privilege(c.oid, 'UPDATE')) "
        "              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "              WHERE n.nspname = 'pgstream' AND c.relkind = 'r'), true), "
        "current_user, current_database() "
        "FROM pg_roles r WHERE r.rolname = current_user";
    auto role = pg::exec(conn, kQuery);
    auto flag = [&](int column) { return pg::value(role.get(), 0, column).value_or("f") == "t"; };
    std::vector<std::string> problems;
    if (PQntuples(role.get()) == 0 || flag(0)) return problems;
    const bool replication = flag(1), create_on_database = flag(2), tracking_installed = flag(3),
               schema_exists = flag(4), schema_usable = flag(5);
    const std::string user = pg::value(role.get(), 0, 6).value_or("");
    const std::string quoted_user = pg::quote_identifier(conn, user);
    const std::string database = pg::quote_identifier(conn, pg::value(role.get(), 0, 7).value_or(""));
    if (!replication)
        problems.push_back("role " + user +
                           " lacks the REPLICATION attribute, needed to create the replication "
                           "slot: run ALTER ROLE " +
                           quoted_user + " WITH REPLICATION; as a superuser");
    if (!tracking_installed)
        problems.push_back(
            "role " + user +
            " is not a superuser, and only a superuser can install schema tracking "
            "(the pgstream schema's event triggers): run this first pgstream init as a superuser, or "
            "ALTER ROLE " +
            quoted_user + " WITH SUPERUSER;");
    // The extension is created once; the embedded migrations run CREATE SCHEMA IF NOT EXISTS every time.
    if (!create_on_database && (!schema_exists || !has_extension))
        problems.push_back("role " + user + " lacks CREATE on database " + database +
                           ", needed to create the pgstream schema: run GRANT CREATE ON DATABASE " +
                           database + " TO " + quoted_user + "; as a superuser");
    if (tracking_installed && !schema_usable)
        problems.push_back(
            "role " + user +
            " may not use schema pgstream, where init logs the current version of "
            "each schema: run pgstream init as a superuser, or GRANT USAGE ON SCHEMA pgstream TO " +
            quoted_user + "; GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA pgstream TO " + quoted_user +
            "; GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA pgstream TO " + quoted_user + ";");
    return problems;
}

// Each problem is one line naming the setting and the fix.
std::vector<std::string> preflight(PGconn* conn, const std::string& plugin, bool slot_exists,
                                   bool has_extension) {
    std::vector<std::string> problems = missing_privileges(conn, has_extension);
    std::string wal_level = scalar(conn, "SHOW wal_level");
    if (wal_level != "logical")
        problems.push_back(
            "wal_level is '" + wal_level +
            "' but logical decoding needs wal_level = logical: run ALTER SYSTEM SET wal_level = "
            "logical; and restart PostgreSQL");
    // pg_settings hides output_plugin_libraries from roles that may not read it (and older servers lack it):
    // then the slot's creation reports an unlisted plugin.
    auto libraries = pg::exec(conn, "SELECT setting FROM pg_settings WHERE name = 'output_plugin_libraries'");
    auto allowed = PQntuples(libraries.get()) > 0 ? pg::value(libraries.get(), 0, 0) : std::nullopt;
    if (allowed && !listed_in(*allowed, plugin)) {
        std::string fixed = allowed->empty() ? plugin : *allowed + ", " + plugin;
        problems.push_back("output_plugin_libraries is '" + *allowed +
                           "' and does not list the output plugin " + plugin +
                           " (PostgreSQL 15.19+ refuses unlisted plugins): set output_plugin_libraries = '" +
                           fixed + "' in postgresql.conf and reload (SELECT pg_reload_conf())");
    }
    if (scalar(conn, "SHOW max_wal_senders") == "0")
        problems.push_back(
            "max_wal_senders is 0, so no replication connection can stream: set max_wal_senders = 10 "
            "in postgresql.conf and restart PostgreSQL");
    if (!slot_exists) {
        std::string used = scalar(conn, "SELECT count(*) FROM pg_replication_slots");
        std::string max = scalar(conn, "SHOW max_replication_slots");
        if (!max.empty() && std::stol(used) >= std::stol(max))
            problems.push_back(
                "max_replication_slots is " + max +
                " and all are in use: drop an unused slot with "
                "SELECT pg_drop_replication_slot('name') or raise max_replication_slots and restart "
                "PostgreSQL");
    }
    return problems;
}

int migration_number(const std::string& file_name) {
    size_t digits = 0;
    while (digits < file_name.size() && std::isdigit(static_cast<unsigned char>(file_name[digits]))) ++digits;
    return digits ? std::stoi(file_name.substr(0, digits)) : -1;
}

void apply_migrations(PGconn* conn) {
    const auto& migrations = embedded_migrations();
    if (migrations.empty())
        throw Failure(
            "this pgstream binary embeds no migrations and the pgstream extension is not available: "
            "install the extension (make install) first",
            kExitFailure);
    pg::exec(conn, "BEGIN");
    try {
        pg::exec(conn, "CREATE SCHEMA IF NOT EXISTS pgstream");
        for (const auto& migration : migrations) {
            int number = migration_number(migration.file_name);
            bool tracked = scalar(conn, "SELECT to_regclass('pgstream.migrations') IS NOT NULL") == "t";
            if (tracked && number >= 0 &&
                scalar(conn, "SELECT count(*) FROM pgstream.migrations WHERE version = $1",
                       {std::to_string(number)}) != "0")
                continue;
            try {
                pg::exec(conn, migration.sql);
            } catch (const pg::Error& e) {
                throw Failure("applying migration " + migration.file_name + " failed: " + e.what(),
                              kExitFailure);
            }
        }
        pg::exec(conn, "COMMIT");
    } catch (...) {
        PQexec(conn, "ROLLBACK");
        throw;
    }
}

// Gives the tables whose UPDATE/DELETE cannot be decoded a replica identity as `mode` asks (index, full), and
// names every one left without (on stderr: a warning, the exit code stays 0).
void report_undecodable_tables(PGconn* conn, const std::string& mode) {
    for (const auto& table : find_undecodable_tables(conn)) {
        bool fixable = mode == "full" || (mode == "index" && !table.usable_index.empty());
        if (!fixable) {
            print_error("warning: " + table.describe());
            continue;
        }
        std::string statement = table.fix_statement(mode == "full");
        try {
            pg::exec(conn, statement);
        } catch (const pg::Error& e) {
            throw Failure(statement + " failed: " + e.what(), kExitFailure);
        }
        std::cout << "pgstream: " << statement << std::endl;
    }
}

int init_impl(const DatabaseOptions& options) {
    pg::ConnPtr conn = connect_or_fail(options.url);
    std::string slot = slot_name_for(options);
    require_own_slot(conn.get(), slot, "init");
    bool has_extension = extension_available(conn.get());
    auto existing = pg::exec(
        conn.get(), "SELECT plugin, slot_type FROM pg_replication_slots WHERE slot_name = $1", {slot});
    bool slot_exists = PQntuples(existing.get()) > 0;
    std::string existing_plugin = slot_exists ? pg::value(existing.get(), 0, 0).value_or("") : "";
    // Without --plugin an existing slot keeps its plugin; a new one gets pgstream when it is installed.
    std::string plugin = !options.plugin.empty() ? options.plugin
                         : slot_exists           ? existing_plugin
                         : has_extension         ? "pgstream"
                                                 : "wal2json";
    if (slot_exists) {
        if (pg::value(existing.get(), 0, 1).value_or("") != "logical")
            throw Failure(
                "replication slot " + slot + " exists and is not a logical slot: choose another --slot",
                kExitUsage);
        if (existing_plugin != plugin)
            throw Failure("replication slot " + slot + " exists with the output plugin " + existing_plugin +
                              ", not " + plugin + ": run pgstream tear-down first or pass --plugin " +
                              existing_plugin,
                          kExitUsage);
    }
    auto problems = preflight(conn.get(), plugin, slot_exists, has_extension);
    if (!problems.empty()) {
        for (const auto& problem : problems) print_error(problem);
        return kExitUsage;
    }

    std::string tracking;
    if (has_extension) {
        try {
            pg::exec(conn.get(), "CREATE EXTENSION IF NOT EXISTS pgstream");
            // An older installed version gets upgraded. Only then: ALTER EXTENSION needs the extension's
            // owner, which a role granted what init needs (operations.md) is not.
            auto versions = pg::exec(conn.get(),
                                     "SELECT installed_version IS DISTINCT FROM default_version "
                                     "FROM pg_catalog.pg_available_extensions WHERE name = 'pgstream'");
            if (pg::value(versions.get(), 0, 0).value_or("f") == "t")
                pg::exec(conn.get(), "ALTER EXTENSION pgstream UPDATE");
        } catch (const pg::Error& e) {
            throw Failure(std::string("CREATE EXTENSION pgstream failed: ") + e.what(), kExitFailure);
        }
        tracking = "extension pgstream";
    } else {
        apply_migrations(conn.get());
        tracking = "schema pgstream (" + std::to_string(embedded_migrations().size()) + " migrations)";
    }
    if (!slot_exists && !options.no_slot) {
        try {
            pg::exec(conn.get(), "SELECT pg_create_logical_replication_slot($1, $2)", {slot, plugin});
        } catch (const pg::Error& e) {
            std::string message = e.what();
            if (e.sqlstate() == "42710") {
                // Created concurrently: idempotent all the same.
            } else {
                throw Failure("creating replication slot " + slot + " failed: " + message, kExitFailure);
            }
        }
    }
    // Written after the slot exists, so each schema's first version is the first thing the stream carries:
    // the shipper acknowledges it there, and rows of tables that existed before init get their metadata (the
    // Go pgstream logs nothing here, so such tables stay undescribed until their first DDL).
    std::string logged;
    try {
        logged = scalar(conn.get(),
                        "SELECT coalesce(sum(pgstream.refresh_schema(n.nspname)), 0) "
                        "FROM (SELECT nspname FROM pg_namespace ORDER BY 1) n "
                        "WHERE NOT pgstream.is_system_schema(n.nspname)");
    } catch (const pg::Error& e) {
        throw Failure(std::string("logging the existing schemas failed: ") + e.what(), kExitFailure);
    }
    std::cout << "pgstream: initialised " << tracking << "; replication slot " << slot << " (" << plugin
              << ")"
              << (slot_exists ? " already existed"
                  : options.no_slot
                      ? " not created (--no-slot: `pgstream run` with the initial snapshot creates it)"
                      : " created")
              << "; " << logged << " schema version(s) logged" << std::endl;
    report_undecodable_tables(conn.get(), options.replica_identity);
    return kExitOk;
}

int tear_down_impl(const DatabaseOptions& options) {
    pg::ConnPtr conn = connect_or_fail(options.url);
    std::string slot = slot_name_for(options);
    require_own_slot(conn.get(), slot, "tear-down");
    auto existing =
        pg::exec(conn.get(), "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", {slot});
    if (PQntuples(existing.get()) > 0) {
        auto pid = pg::value(existing.get(), 0, 0);
        if (pid)
            throw Failure(
                "replication slot " + slot + " is in use by process " + *pid + ": stop `pgstream run` first",
                kExitFailure);
        try {
            pg::exec(conn.get(), "SELECT pg_drop_replication_slot($1)", {slot});
        } catch (const pg::Error& e) {
            throw Failure("dropping replication slot " + slot + " failed: " + e.what(), kExitFailure);
        }
    }
    bool installed =
        scalar(conn.get(), "SELECT count(*) FROM pg_extension WHERE extname = 'pgstream'") != "0";
    try {
        if (installed) pg::exec(conn.get(), "DROP EXTENSION pgstream CASCADE");
        pg::exec(conn.get(), "DROP SCHEMA IF EXISTS pgstream CASCADE");
    } catch (const pg::Error& e) {
        throw Failure(std::string("dropping the pgstream schema failed: ") + e.what(), kExitFailure);
    }
    std::cout << "pgstream: removed replication slot " << slot << " and the pgstream schema" << std::endl;
    return kExitOk;
}

// The latest snapshot (docs/snapshot.md): its state and, per table, ranges and rows done.
void print_snapshot_progress(PGconn* conn) {
    if (scalar(conn, "SELECT to_regclass('pgstream.snapshot_ranges') IS NOT NULL") != "t") return;
    auto latest =
        pg::exec(conn,
                 "SELECT id, coalesce(slot_name, '(one-off)'), array_to_string(tables, ','), "
                 "coalesce(snapshot_lsn::text, '-'), status, coalesce(error, ''), started_at::text, "
                 "coalesce(finished_at::text, '-') FROM pgstream.snapshots ORDER BY id DESC LIMIT 1");
    if (PQntuples(latest.get()) == 0) {
        std::cout << "snapshot: none\n";
        return;
    }
    auto field = [&](int column) { return pg::value(latest.get(), 0, column).value_or(""); };
    std::cout << "snapshot: " << field(0) << " " << field(4) << " (slot " << field(1) << ", tables "
              << field(2) << ", at " << field(3) << ", started " << field(6) << ", finished " << field(7)
              << ")\n";
    if (!field(5).empty()) std::cout << "  error: " << field(5) << "\n";
    auto tables =
        pg::exec(conn,
                 "SELECT table_schema || '.' || table_name, count(*) FILTER (WHERE done_at IS NOT NULL), "
                 "count(*), sum(rows_done), sum(estimated_rows), max(read_count) "
                 "FROM pgstream.snapshot_ranges WHERE snapshot_id = $1 GROUP BY 1 ORDER BY 1",
                 {field(0)});
    for (int row = 0; row < PQntuples(tables.get()); ++row) {
        auto cell = [&](int column) { return pg::value(tables.get(), row, column).value_or("?"); };
        std::cout << "  " << cell(0) << ": " << cell(1) << "/" << cell(2) << " ranges done, " << cell(3)
                  << " rows delivered (of ~" << cell(4) << ")"
                  << (cell(5) != "1" ? ", some ranges read " + cell(5) + " times" : std::string()) << "\n";
    }
}

int status_impl(const DatabaseOptions& options) {
    pg::ConnPtr conn = connect_or_fail(options.url);
    std::string slot = slot_name_for(options);
    require_own_slot(conn.get(), slot, "status");
    auto result = pg::exec(conn.get(),
                           "SELECT plugin, active, active_pid, confirmed_flush_lsn::text, restart_lsn::text, "
                           "pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint, "
                           "pg_current_wal_lsn()::text "
                           "FROM pg_replication_slots WHERE slot_name = $1",
                           {slot});
    if (PQntuples(result.get()) == 0)
        throw Failure("replication slot " + slot + " does not exist: run pgstream init --pgurl URL" +
                          (options.slot.empty() ? "" : " --slot " + slot),
                      kExitFailure);
    auto field = [&](int column) { return pg::value(result.get(), 0, column).value_or("-"); };
    std::cout << "slot: " << slot << "\n"
              << "plugin: " << field(0) << "\n"
              << "active: " << (field(1) == "t" ? "yes (pid " + field(2) + ")" : std::string("no")) << "\n"
              << "confirmed_flush_lsn: " << field(3) << "\n"
              << "restart_lsn: " << field(4) << "\n"
              << "current_wal_lsn: " << field(6) << "\n"
              << "lag_bytes: " << field(5) << "\n";
    if (scalar(conn.get(), "SELECT to_regclass('pgstream.schema_log') IS NOT NULL") == "t") {
        auto unacked = pg::exec(conn.get(),
                                "SELECT schema_name, version FROM pgstream.schema_log WHERE NOT acked "
                                "ORDER BY schema_name, version");
        std::cout << "unacked_schema_versions: " << PQntuples(unacked.get()) << "\n";
        for (int row = 0; row < PQntuples(unacked.get()); ++row)
            std::cout << "  " << pg::value(unacked.get(), row, 0).value_or("") << " version "
                      << pg::value(unacked.get(), row, 1).value_or("") << "\n";
    } else {
        std::cout << "schema_tracking: not installed\n";
    }
    auto undecodable = find_undecodable_tables(conn.get());
    std::cout << "tables_without_replica_identity: " << undecodable.size() << "\n";
    for (const auto& table : undecodable) std::cout << "  " << table.describe() << "\n";
    print_snapshot_progress(conn.get());
    std::cout.flush();
    return kExitOk;
}

template <typename Fn>
int guarded(Fn&& fn) {
    try {
        return fn();
    } catch (const Failure& e) {
        print_error(e.what());
        return e.exit_code;
    } catch (const pg::Error& e) {
        print_error(e.what());
        return kExitFailure;
    } catch (const std::exception& e) {
        print_error(e.what());
        return kExitFailure;
    }
}

}  // namespace

int init(const DatabaseOptions& options) {
    return guarded([&] { return init_impl(options); });
}
int tear_down(const DatabaseOptions& options) {
    return guarded([&] { return tear_down_impl(options); });
}
int status(const DatabaseOptions& options) {
    return guarded([&] { return status_impl(options); });
}

}  // namespace pgstream::cli
