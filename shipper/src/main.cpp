// pgstream: change data capture for PostgreSQL. See docs/operations.md.
#include <signal.h>
#include <stdlib.h>
#ifdef PGSTREAM_MIMALLOC
#include <mimalloc.h>
#endif

#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/commands.h"
#include "util/redact.h"

int main(int argc, char** argv) {
    // A closed stdout must surface as a write error, not kill the process mid-batch.
    signal(SIGPIPE, SIG_IGN);
#ifdef PGSTREAM_MIMALLOC
    // Events are freed in bursts (a written batch) and the same amount allocated again right after:
    // mimalloc's default returns freed pages to the system after 25 ms, and every one is faulted in and
    // zeroed again. A second's delay halves the page faults and cuts the system time by a third at a
    // snapshot's pace (bench/snapshot, 20 tables). MIMALLOC_DECOMMIT_DELAY still overrides it.
    if (!getenv("MIMALLOC_DECOMMIT_DELAY")) mi_option_set(mi_option_decommit_delay, 1000);
#endif

    // A URL given as an argument, even a stray or malformed one, is never echoed with its password.
    for (int i = 1; i < argc; ++i) pgstream::redact::remember(argv[i]);

    CLI::App app{"pgstream: change data capture for PostgreSQL", "pgstream"};
    app.set_version_flag("--version", std::string("pgstream ") + PGSTREAM_VERSION);
    app.require_subcommand(1);

    pgstream::cli::RunOptions run_options;
    auto* run =
        app.add_subcommand("run", "Stream changes from the configured listener to the configured outputs");
    run->add_option("-c,--config", run_options.config_file,
                    ".env-style or YAML (.yaml/.yml) configuration file; the environment overrides it");
    run->add_option("--log-level", run_options.log_level, "trace, debug, info, warn or error");

    pgstream::cli::SnapshotOptions snapshot_options;
    auto* snapshot = app.add_subcommand(
        "snapshot",
        "Snapshot the existing rows of chosen tables into the configured outputs, without streaming");
    snapshot->add_option("-c,--config", snapshot_options.run.config_file,
                         ".env-style or YAML (.yaml/.yml) configuration file; the environment overrides it");
    snapshot->add_option("--log-level", snapshot_options.run.log_level, "trace, debug, info, warn or error");
    snapshot->add_option("--tables", snapshot_options.tables,
                         "tables: *, schema.*, name or schema.name, comma-separated (default "
                         "PGSTREAM_POSTGRES_INITIAL_SNAPSHOT_TABLES)");

    pgstream::cli::DatabaseOptions init_options, tear_down_options, status_options;
    auto add_database_options = [](CLI::App* command, pgstream::cli::DatabaseOptions& options) {
        command->add_option("--pgurl", options.url, "PostgreSQL URL (postgres://user@host:port/db)")
            ->required();
        command->add_option("--slot", options.slot, "replication slot (default pgstream_<dbname>_slot)");
    };
    auto* init = app.add_subcommand("init", "Install schema tracking and create the replication slot");
    add_database_options(init, init_options);
    init->add_option("--plugin", init_options.plugin,
                     "output plugin: pgstream (default when installed) or wal2json")
        ->check(CLI::IsMember({"pgstream", "wal2json"}));
    init->add_option(
            "--replica-identity", init_options.replica_identity,
            "tables whose UPDATE/DELETE cannot be decoded: index (REPLICA IDENTITY USING INDEX on a unique "
            "NOT NULL index), full (REPLICA IDENTITY FULL) or none (only name them; default)")
        ->check(CLI::IsMember({"index", "full", "none"}));
    init->add_flag(
        "--no-slot", init_options.no_slot,
        "install schema tracking only; `pgstream run` with the initial snapshot creates the slot with an "
        "exported snapshot (docs/snapshot.md)");
    auto* tear_down = app.add_subcommand("tear-down", "Drop the replication slot and the pgstream schema");
    add_database_options(tear_down, tear_down_options);
    auto* status =
        app.add_subcommand("status", "Show the slot's position, lag and unacknowledged schema versions");
    add_database_options(status, status_options);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::string message = e.what();
        // CLI11 reports a missing command before an unknown argument; name what was not understood instead.
        if (app.get_subcommands().empty()) {
            message = argc > 1 ? "unknown command or option '" + std::string(argv[1]) + "'"
                               : std::string("a command is required");
            message += ": expected run, snapshot, init, tear-down or status (pgstream --help)";
        }
        for (auto& c : message)
            if (c == '\n') c = ' ';
        pgstream::cli::print_error(message);
        return pgstream::cli::kExitUsage;
    }

    if (run->parsed()) return pgstream::cli::run(run_options);
    if (snapshot->parsed()) return pgstream::cli::snapshot(snapshot_options);
    if (init->parsed()) return pgstream::cli::init(init_options);
    if (tear_down->parsed()) return pgstream::cli::tear_down(tear_down_options);
    if (status->parsed()) return pgstream::cli::status(status_options);
    return pgstream::cli::kExitUsage;
}
