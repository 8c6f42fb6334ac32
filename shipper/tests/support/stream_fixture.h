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

// The health server's port (PGSTREAM_HEALTH_CHECK_ADDRESS=127.0.0.1:0), from its start-up log line; 0 when
// none was logged within 30 s.
int health_port(ShipperProcess& shipper);

// The value of one series of the /metrics page served on 127.0.0.1:`port`, spelled as exposed
// ("pgstream_target_memory_used{target=\"webhooks-notifier\"}"); nullopt when the page or the series is
// missing.
std::optional<double> scrape_metric(int port, const std::string& series);

// Resident set size of a process in bytes, from VmRSS in /proc/<pid>/status; 0 when it cannot be read.
size_t resident_bytes(pid_t pid);

}  // namespace pgstream_it
