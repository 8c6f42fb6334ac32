#include "pg_cluster.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "process.h"

namespace pgstream_it {

namespace {

std::string connection_error(pg_conn* conn) {
    std::string message = conn != nullptr ? PQerrorMessage(conn) : "out of memory";
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    return message;
}

std::string trim(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
        text.pop_back();
    size_t start = text.find_first_not_of(" \n\r\t");
    return start == std::string::npos ? std::string() : text.substr(start);
}

}  // namespace

PgConnection::PgConnection(const std::string& url) : url_(url) {
    conn_ = PQconnectdb(url.c_str());
    if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK) {
        std::string message = connection_error(conn_);
        PQfinish(conn_);
        conn_ = nullptr;
        throw std::runtime_error("connect " + url + ": " + message);
    }
    // Tests compare timestamps and numbers as text; pin the session so results do not depend on the server.
    exec("SET TimeZone = 'UTC'; SET extra_float_digits = 3");
}

PgConnection::~PgConnection() {
    PQfinish(conn_);
}

PgConnection::PgConnection(PgConnection&& other) noexcept : conn_(other.conn_), url_(std::move(other.url_)) {
    other.conn_ = nullptr;
}

PgConnection& PgConnection::operator=(PgConnection&& other) noexcept {
    if (this != &other) {
        PQfinish(conn_);
        conn_ = other.conn_;
        url_ = std::move(other.url_);
        other.conn_ = nullptr;
    }
    return *this;
}

bool PgConnection::healthy() const {
    return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK;
}

void PgConnection::exec(const std::string& sql) {
    query(sql);
}

std::vector<Row> PgConnection::query(const std::string& sql) {
    if (conn_ == nullptr) throw std::runtime_error("query on a closed connection: " + sql);
    if (PQsendQuery(conn_, sql.c_str()) == 0) {
        throw std::runtime_error("send '" + sql.substr(0, 200) + "': " + connection_error(conn_));
    }
    std::vector<Row> rows;
    std::string error;
    while (PGresult* result = PQgetResult(conn_)) {
        ExecStatusType status = PQresultStatus(result);
        if (status == PGRES_TUPLES_OK) {
            rows.clear();
            int columns = PQnfields(result);
            for (int r = 0; r < PQntuples(result); ++r) {
                Row row;
                row.reserve(columns);
                for (int c = 0; c < columns; ++c) {
                    if (PQgetisnull(result, r, c)) {
                        row.emplace_back(std::nullopt);
                    } else {
                        row.emplace_back(std::string(PQgetvalue(result, r, c), PQgetlength(result, r, c)));
                    }
                }
                rows.push_back(std::move(row));
            }
        } else if (status != PGRES_COMMAND_OK && status != PGRES_EMPTY_QUERY && error.empty()) {
            error = trim(PQresultErrorMessage(result));
        }
        PQclear(result);
    }
    if (!error.empty()) throw std::runtime_error("'" + sql.substr(0, 300) + "': " + error);
    return rows;
}

std::optional<std::string> PgConnection::scalar(const std::string& sql) {
    auto rows = query(sql);
    if (rows.empty() || rows[0].empty()) throw std::runtime_error("no rows from: " + sql);
    return rows[0][0];
}

std::string PgConnection::scalar_text(const std::string& sql) {
    auto value = scalar(sql);
    if (!value) throw std::runtime_error("NULL from: " + sql);
    return *value;
}

PgCluster::PgCluster() {
    char pattern[] = "/tmp/pgstream-it-pg.XXXXXX";
    if (mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    auto result = run_command({pg_cluster_script(), "start", dir_}, {}, std::chrono::seconds(120));
    if (result.exit_code != 0) {
        throw std::runtime_error("pg-cluster.sh start failed: " + result.describe());
    }
    port_ = std::stoi(trim(result.out));
    url_ = "postgres://postgres@127.0.0.1:" + std::to_string(port_) + "/postgres";
    running_ = true;
    register_cleanup(this, [script = pg_cluster_script(), dir = dir_] {
        std::string command = "'" + script + "' stop '" + dir + "' >/dev/null 2>&1";
        if (getenv("PGSTREAM_IT_KEEP") == nullptr) command += "; rm -rf '" + dir + "'";
        int ignored = std::system(command.c_str());
        (void)ignored;
    });
}

PgCluster::~PgCluster() {
    unregister_cleanup(this);
    stop();
    if (getenv("PGSTREAM_IT_KEEP") == nullptr && !dir_.empty()) {
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    } else {
        fprintf(stderr, "keeping cluster directory %s\n", dir_.c_str());
    }
}

std::string PgCluster::url_for_database(const std::string& dbname) const {
    return "postgres://postgres@127.0.0.1:" + std::to_string(port_) + "/" + dbname;
}

void PgCluster::stop() {
    if (!running_) return;
    run_command({pg_cluster_script(), "stop", dir_}, {}, std::chrono::seconds(120));
    running_ = false;
}

void PgCluster::start() {
    if (running_) return;
    auto result = run_command({pg_cluster_script(), "start", dir_}, {}, std::chrono::seconds(120));
    if (result.exit_code != 0) throw std::runtime_error("pg-cluster.sh start failed: " + result.describe());
    running_ = true;
}

void PgCluster::restart() {
    auto result = run_command({pg_cluster_script(), "restart", dir_}, {}, std::chrono::seconds(180));
    if (result.exit_code != 0) throw std::runtime_error("pg-cluster.sh restart failed: " + result.describe());
    running_ = true;
}

void PgCluster::exec(const std::string& sql) {
    PgConnection(url_).exec(sql);
}

std::vector<Row> PgCluster::query(const std::string& sql) {
    return PgConnection(url_).query(sql);
}

std::string PgCluster::scalar_text(const std::string& sql) {
    return PgConnection(url_).scalar_text(sql);
}

void PgCluster::set_system(const std::string& name, const std::string& value) {
    PgConnection conn(url_);
    std::string quoted = "'";
    for (char c : value) quoted += c == '\'' ? std::string("''") : std::string(1, c);
    quoted += "'";
    conn.exec("ALTER SYSTEM SET " + name + " = " + quoted);
    conn.exec("SELECT pg_reload_conf()");
    // The postmaster re-reads the file asynchronously; a new session sees the value once it has. Callers pass
    // the value the way current_setting() prints it ("5s", not "5000ms").
    bool applied = wait_until(
        [&] { return PgConnection(url_).scalar_text("SELECT current_setting('" + name + "')") == value; },
        std::chrono::seconds(10), std::chrono::milliseconds(100));
    if (!applied) throw std::runtime_error("server did not apply " + name + " = " + value);
}

std::string PgCluster::server_log_tail(size_t max_bytes) const {
    std::string log = read_file(dir_ + "/server.log");
    return log.size() > max_bytes ? log.substr(log.size() - max_bytes) : log;
}

uint64_t parse_lsn(const std::string& text) {
    unsigned high = 0;
    unsigned low = 0;
    if (sscanf(text.c_str(), "%X/%X", &high, &low) != 2)
        throw std::runtime_error("not an LSN: '" + text + "'");
    return (static_cast<uint64_t>(high) << 32) | low;
}

std::string format_lsn(uint64_t lsn) {
    char buffer[32];
    snprintf(buffer, sizeof buffer, "%X/%X", static_cast<unsigned>(lsn >> 32), static_cast<unsigned>(lsn));
    return buffer;
}

std::string source_dir() {
    if (const char* env = getenv("PGSTREAM_SOURCE_DIR")) return env;
#ifdef PGSTREAM_SOURCE_DIR
    return PGSTREAM_SOURCE_DIR;
#else
    // shipper/tests/support/pg_cluster.cpp -> repository root
    return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().parent_path().string();
#endif
}

std::string pg_cluster_script() {
    return source_dir() + "/scripts/pg-cluster.sh";
}

bool pgstream_plugin_installed() {
    static const bool installed = [] {
        auto result = run_command({"pg_config", "--pkglibdir"}, {}, std::chrono::seconds(20));
        std::string dir = trim(result.out);
        return result.exit_code == 0 && std::filesystem::exists(dir + "/pgstream.so");
    }();
    return installed;
}

std::string stream_plugin() {
    if (const char* forced = getenv("PGSTREAM_IT_PLUGIN")) return forced;
    return pgstream_plugin_installed() ? "pgstream" : "wal2json";
}

}  // namespace pgstream_it
