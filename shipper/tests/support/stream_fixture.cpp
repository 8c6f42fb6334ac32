#include "stream_fixture.h"

#include <httplib.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <regex>
#include <stdexcept>

namespace pgstream_it {

void init_stream(const PgCluster& cluster, const std::string& slot, const std::string& plugin) {
    auto result = run_pgstream({"init", "--pgurl", cluster.url(), "--slot", slot, "--plugin", plugin}, {},
                               std::chrono::seconds(90));
    if (result.exit_code != 0) {
        throw std::runtime_error("pgstream init (plugin " + plugin + ") failed: " + result.describe());
    }
}

Settings shipper_settings(const PgCluster& cluster, const std::string& slot) {
    return {
        {"PGSTREAM_POSTGRES_LISTENER_URL", cluster.url()},
        {"PGSTREAM_POSTGRES_LISTENER_SLOT_NAME", slot},
        {"PGSTREAM_TRANSLATOR_STORE_POSTGRES_URL", cluster.url()},
        {"PGSTREAM_STDOUT_WRITER_ENABLED", "true"},
    };
}

SlotState slot_state(PgConnection& conn, const std::string& slot) {
    SlotState state;
    auto rows = conn.query(
        "SELECT active, active_pid, plugin, coalesce(confirmed_flush_lsn, '0/0') FROM pg_replication_slots "
        "WHERE slot_name = '" +
        slot + "'");
    if (rows.empty()) return state;
    state.exists = true;
    state.active = rows[0][0].value_or("f") == "t";
    if (rows[0][1]) state.active_pid = std::stol(*rows[0][1]);
    state.plugin = rows[0][2].value_or("");
    state.confirmed_flush_lsn = parse_lsn(rows[0][3].value_or("0/0"));
    return state;
}

std::vector<OutputEvent> parse_events(const std::vector<std::string>& lines,
                                      std::vector<std::string>* errors) {
    std::vector<OutputEvent> events;
    events.reserve(lines.size());
    for (const auto& line : lines) {
        std::string error;
        auto event = parse_event(line, &error);
        if (event) {
            events.push_back(std::move(*event));
        } else if (errors != nullptr) {
            errors->push_back(error);
        }
    }
    return events;
}

std::mt19937 seeded_rng() {
    unsigned seed = std::random_device{}();
    if (const char* forced = getenv("PGSTREAM_IT_SEED")) seed = static_cast<unsigned>(std::stoul(forced));
    std::cout << "seed " << seed << " (rerun with PGSTREAM_IT_SEED), plugin " << stream_plugin() << std::endl;
    return std::mt19937(seed);
}

std::string shipper_diagnostics(ShipperProcess& shipper) {
    bool alive = shipper.running();
    return std::string("shipper ") + (alive ? "running" : "not running") + ", " +
           std::to_string(read_complete_lines(shipper.output_path()).size()) +
           " output lines; stderr tail:\n" + shipper.stderr_tail();
}

int health_port(ShipperProcess& shipper) {
    int port = 0;
    static const std::regex listening("health server: listening on 127\\.0\\.0\\.1:([0-9]+)");
    wait_until(
        [&] {
            std::smatch match;
            std::string text = shipper.stderr_text();
            if (!std::regex_search(text, match, listening)) return false;
            port = std::stoi(match[1]);
            return true;
        },
        std::chrono::seconds(30));
    return port;
}

std::optional<double> scrape_metric(int port, const std::string& series) {
    httplib::Client client("127.0.0.1", port);
    auto page = client.Get("/metrics");
    if (!page || page->status != 200) return std::nullopt;
    const std::string prefix = series + " ";
    size_t at = page->body.rfind("\n" + prefix);
    if (at != std::string::npos) {
        at += 1;
    } else if (page->body.rfind(prefix, 0) == 0) {
        at = 0;
    } else {
        return std::nullopt;
    }
    return std::strtod(page->body.c_str() + at + prefix.size(), nullptr);
}

size_t resident_bytes(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmRSS:", 0) == 0) return size_t(std::strtoull(line.c_str() + 6, nullptr, 10)) * 1024;
    return 0;
}

}  // namespace pgstream_it
