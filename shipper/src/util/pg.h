// Thin RAII helpers over libpq.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace pgstream::pg {

class Error : public std::runtime_error {
  public:
    explicit Error(const std::string& message, std::string sqlstate = {})
        : std::runtime_error(message), sqlstate_(std::move(sqlstate)) {}
    const std::string& sqlstate() const { return sqlstate_; }

  private:
    std::string sqlstate_;
};

struct ConnDeleter {
    void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct ResultDeleter {
    void operator()(PGresult* result) const { PQclear(result); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnDeleter>;
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

// Seconds libpq waits for a server to answer a new connection unless the URL (connect_timeout=) or
// PGCONNECT_TIMEOUT says otherwise.
inline constexpr const char* kDefaultConnectTimeoutSeconds = "10";
// Connects; `replication` adds replication=database. Throws Error with libpq's message (first line, with the
// URL's password masked).
ConnPtr connect(const std::string& url, bool replication = false,
                const std::string& application_name = "pgstream");

// Runs a statement with text parameters; throws Error unless the result is COMMAND_OK or TUPLES_OK.
ResultPtr exec(PGconn* conn, const std::string& sql,
               const std::vector<std::optional<std::string>>& params = {});

// libpq's last error as a single line.
std::string last_error(PGconn* conn);
std::string quote_identifier(PGconn* conn, const std::string& identifier);
std::string quote_literal(PGconn* conn, const std::string& literal);

// Value of (row, column), std::nullopt for SQL NULL.
std::optional<std::string> value(const PGresult* result, int row, int column);

// Whether a connection-level failure is worth retrying (server restarting, network) rather than a
// configuration problem (bad credentials, missing database).
bool is_transient_connection_error(const std::string& message);

// The database name in a connection URL or keyword/value string ("postgres" when none is given).
std::string database_name(const std::string& url);
// Basic shape check for a connection string: a postgres:// or postgresql:// URL or key=value pairs. `why`
// gets what is wrong and the accepted form, with any password masked.
bool looks_like_connection_string(const std::string& url, std::string* why);

}  // namespace pgstream::pg
