// Shared set-up of the integration tests: a cluster prepared with `pgstream init`, shipper settings that
// stream it to JSON lines, and reads of the replication slot's state.
#pragma once

#include <optional>
#include <random>
#include <string>

#include "output_events.h"
#include "pg_cluster.h"
#include "process.h"

namespace pgstream_it {

inline constexpr const char* kSlot = "pgstream_it_slot";

// `pgstream init --pgurl URL --slot SLOT --plugin PLUGIN`; throws with the CLI's output when it does not exit
// 0.
void init_stream(const PgCluster& cluster, const std::string& slot = kSlot,
                 const std::string& plugin = stream_plugin());

// Listener + translator on the cluster, stdout writer enabled.
Settings shipper_settings(const PgCluster& cluster, const std::string& slot = kSlot);

struct SlotState {
    bool exists = false;
    bool active = false;
    std::optional<long> active_pid;
    std::string plugin;
    uint64_t confirmed_flush_lsn = 0;
};
SlotState slot_state(PgConnection& conn, const std::string& slot = kSlot);

// Parses every complete line; a line that is not JSON is a test failure reported by the caller through
// *errors.
std::vector<OutputEvent> parse_events(const std::vector<std::string>& lines,
                                      std::vector<std::string>* errors);

// A random generator for tests that pick random moments: seeded from PGSTREAM_IT_SEED when set, else at
// random; prints the seed (and the plugin) so that a failure can be replayed.
std::mt19937 seeded_rng();

// One-line summary of a process' state for failure messages.
std::string shipper_diagnostics(ShipperProcess& shipper);

}  // namespace pgstream_it
