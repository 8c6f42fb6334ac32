// Throwaway PostgreSQL 15 cluster and a small libpq client for black-box integration tests.
//
// The cluster comes from scripts/pg-cluster.sh (trust auth, wal_level=logical, TCP on 127.0.0.1), so the
// tests exercise the same server setup as the demo and the benchmarks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

struct pg_conn;

namespace pgstream_it {

// Rows of a query result as text; SQL NULL becomes std::nullopt.
using Row = std::vector<std::optional<std::string>>;

class PgConnection {
  public:
    explicit PgConnection(const std::string& url);
    ~PgConnection();
    PgConnection(const PgConnection&) = delete;
    PgConnection& operator=(const PgConnection&) = delete;
    PgConnection(PgConnection&& other) noexcept;
    PgConnection& operator=(PgConnection&& other) noexcept;

    // Both throw std::runtime_error carrying the server's message, which gtest reports as the test failure.
    void exec(const std::string& sql);
    std::vector<Row> query(const std::string& sql);
    // First column of the first row; throws when the query returns no rows.
    std::optional<std::string> scalar(const std::string& sql);
    std::string scalar_text(const std::string& sql);  // like scalar(), NULL is an error
    bool healthy() const;

  private:
    pg_conn* conn_ = nullptr;
    std::string url_;
};

class PgCluster {
  public:
    // initdb + start in a fresh mkdtemp directory; throws when the cluster cannot start.
    PgCluster();
    // Fast shutdown; removes the directory unless PGSTREAM_IT_KEEP is set (to inspect server.log).
    ~PgCluster();
    PgCluster(const PgCluster&) = delete;
    PgCluster& operator=(const PgCluster&) = delete;

    const std::string& url() const { return url_; }
    std::string url_for_database(const std::string& dbname) const;
    int port() const { return port_; }
    const std::string& dir() const { return dir_; }

    void stop();
    void start();
    // Fast shutdown then start on the same port: clients see their connections terminated, nothing is
    // SIGKILLed.
    void restart();

    // One-shot helpers on a fresh connection to the postgres database.
    void exec(const std::string& sql);
    std::vector<Row> query(const std::string& sql);
    std::string scalar_text(const std::string& sql);

    // ALTER SYSTEM SET name = value + pg_reload_conf(); waits until a new session sees the value.
    void set_system(const std::string& name, const std::string& value);

    std::string server_log_tail(size_t max_bytes = 4000) const;

  private:
    std::string dir_;
    std::string url_;
    int port_ = 0;
    bool running_ = false;
};

// "16/B374D848" <-> 64-bit position.
uint64_t parse_lsn(const std::string& text);
std::string format_lsn(uint64_t lsn);

// Absolute path of the repository root (PGSTREAM_SOURCE_DIR, else derived from this file's location).
std::string source_dir();
std::string pg_cluster_script();

// The output plugin the tests stream with: "pgstream" when $(pg_config --pkglibdir)/pgstream.so is installed,
// else "wal2json" (what the Go pgstream uses), so the shipper is tested either way.
std::string stream_plugin();
bool pgstream_plugin_installed();

}  // namespace pgstream_it
