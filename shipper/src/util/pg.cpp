#include "util/pg.h"

#include <cctype>
#include <cstdlib>

#include "util/redact.h"

namespace pgstream::pg {

namespace {

std::string first_line(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    // libpq prefixes multi-line messages; keep them on one line for logs.
    std::string out;
    for (char c : text) {
        if (c == '\n' || c == '\t') c = ' ';
        if (c == ' ' && !out.empty() && out.back() == ' ') continue;
        out += c;
    }
    return out;
}

}  // namespace

std::string last_error(PGconn* conn) {
    return first_line(conn ? PQerrorMessage(conn) : "out of memory");
}

ConnPtr connect(const std::string& url, bool replication, const std::string& application_name) {
    // Without a connect timeout libpq waits forever for a server that accepted the TCP connection but never
    // answers (a hung server, a stuck proxy), and every caller with it: start-up, reconnects, the health of
    // /ready. Keepalives notice a peer that vanished during a long wait. These are defaults: keywords before
    // "dbname" are overridden by the URL's own (connect_timeout=..., keepalives_idle=...), and an explicit
    // PGCONNECT_TIMEOUT in the environment is left to libpq.
    std::vector<const char*> keys, values;
    auto add = [&](const char* key, const char* value) {
        keys.push_back(key);
        values.push_back(value);
    };
    if (std::getenv("PGCONNECT_TIMEOUT") == nullptr) add("connect_timeout", kDefaultConnectTimeoutSeconds);
    add("keepalives_idle", "30");
    add("keepalives_interval", "10");
    add("keepalives_count", "3");
    add("dbname", url.c_str());
    if (replication) add("replication", "database");
    add("application_name", application_name.c_str());
    add(nullptr, nullptr);
    ConnPtr conn(PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1));
    // libpq may quote parts of a malformed URL (a host name that is really the tail of a password).
    if (!conn || PQstatus(conn.get()) != CONNECTION_OK)
        throw Error(redact::scrub(last_error(conn.get()), url));
    // NOTICEs (e.g. "schema does not exist, skipping") would otherwise go to stderr, which carries our logs.
    PQsetNoticeProcessor(
        conn.get(), [](void*, const char*) {}, nullptr);
    return conn;
}

ResultPtr exec(PGconn* conn, const std::string& sql, const std::vector<std::optional<std::string>>& params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& param : params) values.push_back(param ? param->c_str() : nullptr);
    ResultPtr result(params.empty() ? PQexec(conn, sql.c_str())
                                    : PQexecParams(conn, sql.c_str(), int(params.size()), nullptr,
                                                   values.data(), nullptr, nullptr, 0));
    ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_COPY_BOTH) {
        std::string sqlstate;
        if (result) {
            const char* state = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE);
            if (state) sqlstate = state;
        }
        std::string message = result ? first_line(PQresultErrorMessage(result.get())) : last_error(conn);
        if (message.empty()) message = last_error(conn);
        throw Error(message, sqlstate);
    }
    return result;
}

std::string quote_identifier(PGconn* conn, const std::string& identifier) {
    char* quoted = PQescapeIdentifier(conn, identifier.c_str(), identifier.size());
    if (!quoted) throw Error(last_error(conn));
    std::string out(quoted);
    PQfreemem(quoted);
    return out;
}

std::string quote_literal(PGconn* conn, const std::string& literal) {
    char* quoted = PQescapeLiteral(conn, literal.c_str(), literal.size());
    if (!quoted) throw Error(last_error(conn));
    std::string out(quoted);
    PQfreemem(quoted);
    return out;
}

std::optional<std::string> value(const PGresult* result, int row, int column) {
    if (PQgetisnull(result, row, column)) return std::nullopt;
    return std::string(PQgetvalue(result, row, column), PQgetlength(result, row, column));
}

bool is_transient_connection_error(const std::string& message) {
    static const char* kTransient[] = {"could not connect",
                                       "Connection refused",
                                       "starting up",
                                       "shutting down",
                                       "server closed the connection",
                                       "terminating connection",
                                       "timeout",
                                       "timed out",
                                       "is active for PID",
                                       "Connection reset",
                                       "no connection to the server",
                                       "could not receive data",
                                       "could not send data",
                                       "recovery mode",
                                       "too many clients",
                                       "remaining connection slots",
                                       "SSL SYSCALL error",
                                       "lost synchronization",
                                       "EOF detected",
                                       "unexpected EOF",
                                       "administrator command"};
    for (const char* needle : kTransient)
        if (message.find(needle) != std::string::npos) return true;
    return false;
}

std::string database_name(const std::string& url) {
    PQconninfoOption* options = PQconninfoParse(url.c_str(), nullptr);
    std::string name;
    if (options) {
        for (PQconninfoOption* option = options; option->keyword; ++option) {
            if (std::string(option->keyword) == "dbname" && option->val) name = option->val;
            if (name.empty() && std::string(option->keyword) == "user" && option->val) name = option->val;
        }
        PQconninfoFree(options);
    }
    if (name.empty()) {
        const char* env = std::getenv("PGDATABASE");
        if (!env) env = std::getenv("PGUSER");
        name = env ? env : "postgres";
    }
    return name;
}

namespace {

// Why `url` is not a usable connection string, or "" when it looks fine. Checked before libpq sees it, since
// libpq's own messages for these mistakes quote the string, password included.
std::string shape_problem(const std::string& url) {
    if (url.empty()) return "it is empty";
    if (std::isspace(static_cast<unsigned char>(url.front())) ||
        std::isspace(static_cast<unsigned char>(url.back())))
        return "it has leading or trailing whitespace";
    if (url.front() == '"' || url.front() == '\'') return "it starts with a quote (an unclosed quote?)";
    bool is_url = url.rfind("postgres://", 0) == 0 || url.rfind("postgresql://", 0) == 0;
    if (is_url) {
        // Up to the query, a URL holds one '@' (after the user info); libpq splits at the first one and takes
        // the rest of the password for the host name.
        std::string before_query = url.substr(0, url.find('?'));
        size_t first_at = before_query.find('@');
        if (first_at != std::string::npos && before_query.find('@', first_at + 1) != std::string::npos)
            return "it has an unescaped '@' (percent-encode an '@' in the user name or password as %40)";
        size_t path = before_query.find('/', before_query.find("://") + 3);
        if (first_at != std::string::npos && path != std::string::npos && path < first_at)
            return "it has an unescaped '/' before the '@' (percent-encode a '/' in the user name or "
                   "password as %2F)";
    } else if (url.find('=') == std::string::npos) {
        return "it is neither a URL nor key=value pairs";
    }
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(url.c_str(), &error);
    if (!options) {
        std::string why = error ? redact::scrub(first_line(error), url) : "libpq cannot parse it";
        if (error) PQfreemem(error);
        return why;
    }
    PQconninfoFree(options);
    return {};
}

}  // namespace

bool looks_like_connection_string(const std::string& url, std::string* why) {
    std::string problem = shape_problem(url);
    if (problem.empty()) return true;
    if (why) *why = problem + "; expected postgres://user@host:port/dbname or key=value pairs";
    return false;
}

}  // namespace pgstream::pg
