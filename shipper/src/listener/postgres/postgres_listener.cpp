#include "listener/postgres/postgres_listener.h"

#include <poll.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "processor/translator/replica_identity.h"
#include "util/log.h"
#include "wal/recycled_events.h"

namespace pgstream {

namespace {

constexpr int64_t kPostgresEpochOffsetMicros = 946684800LL * 1000000LL;  // 2000-01-01 - 1970-01-01

uint64_t read_u64(const char* p) {
    uint64_t value = 0;
    for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<unsigned char>(p[i]);
    return value;
}

void write_u64(char* p, uint64_t value) {
    for (int i = 7; i >= 0; --i) {
        p[i] = static_cast<char>(value & 0xff);
        value >>= 8;
    }
}

int64_t postgres_now_micros() {
    auto now = std::chrono::system_clock::now().time_since_epoch();
    return std::chrono::duration_cast<std::chrono::microseconds>(now).count() - kPostgresEpochOffsetMicros;
}

std::string quote_option(const std::string& value) {
    std::string out = "'";
    for (char c : value) {
        if (c == '\'') out += '\'';
        out += c;
    }
    return out + "'";
}

}  // namespace

std::string default_slot_name_for_database(const std::string& database) {
    std::string name = "pgstream_" + database + "_slot";
    // Slot names allow only lower-case letters, digits and underscores.
    for (auto& c : name) {
        if (c >= 'A' && c <= 'Z')
            c = char(c - 'A' + 'a');
        else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            c = '_';
    }
    constexpr size_t kMaxSlotName = 63;  // NAMEDATALEN - 1
    if (name.size() <= kMaxSlotName) return name;
    uint32_t hash = 2166136261u;
    for (unsigned char c : database) hash = (hash ^ c) * 16777619u;
    char suffix[16];
    snprintf(suffix, sizeof suffix, "_%08x_slot", hash);
    return name.substr(0, kMaxSlotName - strlen(suffix)) + suffix;
}

std::string default_slot_name(const std::string& url) {
    return default_slot_name_for_database(pg::database_name(url));
}

PostgresListener::PostgresListener(PostgresListenerSettings settings, Processor& next, Watermark& watermark)
    : PostgresListener(settings, next, watermark, StopToken(settings.drain_timeout)) {}

PostgresListener::PostgresListener(PostgresListenerSettings settings, Processor& next, Watermark& watermark,
                                   StopToken stop)
    : settings_(std::move(settings)),
      next_(next),
      watermark_(watermark),
      slot_name_(settings_.slot_name.empty() ? default_slot_name(settings_.url) : settings_.slot_name),
      stop_(std::move(stop)),
      sequencer_(next, watermark, UnreadableRecordRule{settings_.dead_letters, slot_name_}) {}

PostgresListener::~PostgresListener() {
    if (!socket_thread_.joinable()) return;
    stop();
    socket_thread_.join();
}

// The socket thread's waits watch the token; the processing thread follows once the socket thread is done.
void PostgresListener::stop() {
    stop_.request_stop();
}

void PostgresListener::fail(const std::string& message) {
    {
        std::lock_guard<std::mutex> lock(error_mutex_);
        if (error_.empty()) error_ = message;
    }
    stop();
}

void PostgresListener::set_connection_problem(std::string problem) {
    std::lock_guard<std::mutex> lock(health_mutex_);
    connection_problem_ = std::move(problem);
}

std::string PostgresListener::connection_problem() const {
    std::lock_guard<std::mutex> lock(health_mutex_);
    return connection_problem_;
}

// ---------------------------------------------------------------------------------------------------------
// socket thread

void PostgresListener::socket_loop() {
    auto delay = settings_.reconnect_initial;
    bool first = true;
    while (!stop_.stop_requested()) {
        if (open_stream(first)) {
            set_connection_problem({});
            if (!first) push_item(Item{Item::Kind::Reconnected, {}, {}, {}}, false);
            first = false;
            delay = settings_.reconnect_initial;
            if (pump() || stop_.stop_requested()) break;
            set_connection_problem("the replication connection was lost; reconnecting");
            ++stats_.reconnects;
        } else {
            set_connection_problem("cannot start replication from slot \"" + slot_name_ + "\"; retrying");
            std::lock_guard<std::mutex> lock(error_mutex_);
            if (!error_.empty()) break;
        }
        log::warn("postgres listener: reconnecting in ", delay.count(), "ms");
        if (!stop_.sleep_for(delay)) break;
        delay = std::min(delay * 2, settings_.reconnect_max);
    }
    {
        std::lock_guard<std::mutex> lock(queue_mutex_);
        socket_done_ = true;
    }
    queue_not_empty_.notify_all();
}

bool PostgresListener::open_stream(bool first) {
    conn_.reset();
    try {
        conn_ = pg::connect(settings_.url, true, "pgstream");
    } catch (const pg::Error& e) {
        std::string message = e.what();
        if (pg::is_transient_connection_error(message)) {
            log::warn("postgres listener: cannot connect: ", message);
            return false;
        }
        fail("cannot connect to PGSTREAM_POSTGRES_LISTENER_URL: " + message);
        return false;
    }
    PGconn* conn = conn_.get();
    try {
        const char* encoding = PQparameterStatus(conn, "server_encoding");
        to_utf8_ = Utf8Converter::for_server_encoding(encoding ? encoding : "");
    } catch (const std::runtime_error& e) {
        fail(e.what());
        return false;
    }
    try {
        // Replication connections accept only the simple query protocol.
        auto slot = pg::exec(conn,
                             "SELECT plugin, slot_type, confirmed_flush_lsn::text, restart_lsn::text, "
                             "coalesce(database, '(none)'), current_database() "
                             "FROM pg_catalog.pg_replication_slots WHERE slot_name = " +
                                 pg::quote_literal(conn, slot_name_));
        if (PQntuples(slot.get()) == 0) {
            fail("replication slot \"" + slot_name_ +
                 "\" does not exist; create it with `pgstream init --pgurl URL" +
                 (settings_.slot_name.empty() ? "" : " --slot " + slot_name_) +
                 "` or set PGSTREAM_POSTGRES_LISTENER_SLOT_NAME");
            return false;
        }
        std::string slot_plugin = pg::value(slot.get(), 0, 0).value_or("");
        if (pg::value(slot.get(), 0, 1).value_or("") != "logical") {
            fail("replication slot \"" + slot_name_ + "\" is not a logical slot");
            return false;
        }
        std::string slot_database = pg::value(slot.get(), 0, 4).value_or("");
        std::string this_database = pg::value(slot.get(), 0, 5).value_or("");
        if (slot_database != this_database) {
            fail("replication slot \"" + slot_name_ + "\" belongs to database " + slot_database +
                 ", not to " + this_database +
                 " (PGSTREAM_POSTGRES_LISTENER_URL): set PGSTREAM_POSTGRES_LISTENER_SLOT_NAME to this "
                 "database's slot");
            return false;
        }
        if (!settings_.plugin.empty() && settings_.plugin != slot_plugin) {
            fail("replication slot \"" + slot_name_ + "\" uses the output plugin \"" + slot_plugin +
                 "\" but PGSTREAM_POSTGRES_LISTENER_PLUGIN is \"" + settings_.plugin + "\"");
            return false;
        }
        if (slot_plugin != "pgstream" && slot_plugin != "wal2json") {
            fail("replication slot \"" + slot_name_ + "\" uses the output plugin \"" + slot_plugin +
                 "\"; pgstream reads slots of the pgstream or wal2json plugin");
            return false;
        }
        plugin_ = slot_plugin;
        auto confirmed = Lsn::parse(pg::value(slot.get(), 0, 2).value_or(""));
        if (!confirmed) confirmed = Lsn::parse(pg::value(slot.get(), 0, 3).value_or(""));
        Lsn start = confirmed.value_or(Lsn());
        if (first) watermark_.observe_idle(start);
        start = std::max(start, watermark_.confirmed());

        auto system = pg::exec(conn, "IDENTIFY_SYSTEM");
        log::info("postgres listener: connected to system ", pg::value(system.get(), 0, 0).value_or("?"),
                  " timeline ", pg::value(system.get(), 0, 1).value_or("?"), ", server at ",
                  pg::value(system.get(), 0, 2).value_or("?"), "; slot \"", slot_name_, "\" (", plugin_,
                  ") from ", start.str());
        if (first) warn_undecodable_tables(conn);

        std::string command = "START_REPLICATION SLOT \"" + slot_name_ + "\" LOGICAL " + start.str() +
                              " (\"format-version\" '2', \"include-xids\" '1', \"include-timestamp\" '1', "
                              "\"include-lsn\" '1', \"include-transaction\" '1'";
        if (plugin_ == "pgstream" && settings_.pack_bytes > 0)
            command += ", \"pgstream-pack-bytes\" " + quote_option(std::to_string(settings_.pack_bytes));
        // pgstream-transaction-fields-once: the transaction's xid and commit time come with its B record;
        // repeating them on every change was a tenth of the shipper's parsing (the record sequencer fills
        // them in). pgstream-lossless-message-content: message content with NUL bytes or invalid UTF-8
        // arrives whole (base64) instead of cut or as invalid JSON.
        if (plugin_ == "pgstream")
            for (const auto& extra : requested_extras_) command += ", \"" + extra + "\" '1'";
        command += ")";
        pg::exec(conn, command);
        last_received_ = start;
        last_status_ = std::chrono::steady_clock::time_point{};
        return true;
    } catch (const pg::Error& e) {
        std::string message = e.what();
        if (e.sqlstate() == "55006" || pg::is_transient_connection_error(message) ||
            PQstatus(conn) != CONNECTION_OK) {
            log::warn("postgres listener: cannot start replication: ", message);
            return false;
        }
        for (auto extra = requested_extras_.begin(); extra != requested_extras_.end(); ++extra) {
            if (message.find(*extra) == std::string::npos) continue;
            // An older pgstream plugin on the server: without the extra it writes what wal2json writes, which
            // reads the same (fields on every record; message content cut at a NUL).
            log::info("postgres listener: the server's pgstream plugin predates ", *extra,
                      "; reconnecting without it");
            requested_extras_.erase(extra);
            return open_stream(first);
        }
        if (message.find("output_plugin_libraries") != std::string::npos ||
            message.find("could not access file") != std::string::npos) {
            message +=
                " (the output plugin must be installed and listed in output_plugin_libraries, e.g. "
                "output_plugin_libraries = 'pgstream, wal2json' in postgresql.conf)";
        }
        fail("cannot start replication from slot \"" + slot_name_ + "\": " + message);
        return false;
    }
}

bool PostgresListener::send_status(bool reply_requested) {
    Lsn confirmed = watermark_.confirmed();
    char message[1 + 8 + 8 + 8 + 8 + 1];
    message[0] = 'r';
    write_u64(message + 1, std::max(last_received_, confirmed).value);  // received
    write_u64(message + 9, confirmed.value);                            // flushed = safe to forget
    write_u64(message + 17, confirmed.value);                           // applied
    write_u64(message + 25, uint64_t(postgres_now_micros()));
    message[33] = 0;
    last_status_ = std::chrono::steady_clock::now();
    if (PQputCopyData(conn_.get(), message, sizeof message) != 1 || PQflush(conn_.get()) != 0) {
        log::warn("postgres listener: sending a status update failed: ", pg::last_error(conn_.get()));
        return false;
    }
    ++stats_.status_updates;
    log::trace("postgres listener: status update, confirmed ", confirmed.str(),
               reply_requested ? " (server asked)" : "");
    return true;
}

bool PostgresListener::push_item(Item item, bool may_drop) {
    std::unique_lock<std::mutex> lock(queue_mutex_);
    size_t size = item.data.size() + 64;
    auto fits = [&] { return queue_.empty() || queued_bytes_ + size <= settings_.handoff_bytes; };
    while (!fits()) {
        if (may_drop || stop_.stop_requested()) return false;
        // Back-pressured: keep telling the server we are alive, or wal_sender_timeout ends the connection.
        // Nothing is read meanwhile (that would buffer without bound); TCP holds the server back.
        if (stop_.wait_until(lock, queue_not_full_, last_status_ + settings_.status_interval, fits)) break;
        if (std::chrono::steady_clock::now() - last_status_ >= settings_.status_interval && conn_) {
            lock.unlock();
            send_status(false);
            lock.lock();
        }
    }
    queued_bytes_ += size;
    queue_.push_back(std::move(item));
    lock.unlock();
    queue_not_empty_.notify_one();
    return true;
}

void PostgresListener::warn_undecodable_tables(PGconn* conn) {
    try {
        auto tables = find_undecodable_tables(conn);
        stats_.tables_without_replica_identity = tables.size();
        for (const auto& table : tables) log::warn("postgres listener: ", table.describe());
    } catch (const pg::Error& e) {
        log::debug("postgres listener: cannot list the tables without a replica identity: ", e.what());
    }
}

void PostgresListener::convert_to_utf8(std::string& out, std::string_view text) {
    size_t unconvertible = to_utf8_->append(out, text);
    if (unconvertible == 0) return;
    if (stats_.unconvertible_bytes.fetch_add(unconvertible) == 0)
        log::warn("postgres listener: the ", to_utf8_->encoding(), " database sent ", unconvertible,
                  " bytes that are not characters of its encoding",
                  to_utf8_->encoding() == "SQL_ASCII" ? " nor UTF-8; they are read as LATIN1"
                                                      : "; they are replaced with U+FFFD",
                  " (logged once; counted in unconvertible_bytes)");
}

bool PostgresListener::source_drained() {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    return queue_.empty();
}

bool PostgresListener::pump() {
    PGconn* conn = conn_.get();
    while (!stop_.stop_requested()) {
        auto now = std::chrono::steady_clock::now();
        if (now - last_status_ >= settings_.status_interval && !send_status(false)) return false;

        char* buffer = nullptr;
        int length = PQgetCopyData(conn, &buffer, /*async=*/1);
        if (length == 0) {
            auto until_status = std::chrono::ceil<std::chrono::milliseconds>(
                settings_.status_interval - (std::chrono::steady_clock::now() - last_status_));
            bool readable = stop_.wait_ready(PQsocket(conn), POLLIN,
                                             std::max(until_status, std::chrono::milliseconds(1)));
            if (readable && PQconsumeInput(conn) == 0) {
                log::warn("postgres listener: connection lost: ", pg::last_error(conn));
                return false;
            }
            continue;
        }
        if (length == -1) {
            pg::ResultPtr result(PQgetResult(conn));
            std::string message = result ? PQresultErrorMessage(result.get()) : "";
            while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
            log::warn("postgres listener: the server ended the replication stream",
                      message.empty() ? "" : ": ", message);
            return false;
        }
        if (length < 0) {
            log::warn("postgres listener: connection lost: ", pg::last_error(conn));
            return false;
        }
        std::unique_ptr<char, void (*)(void*)> owned(buffer, PQfreemem);
        if (buffer[0] == 'w' && length >= 25) {
            Item item{Item::Kind::Data, {}, Lsn(read_u64(buffer + 1)), Lsn(read_u64(buffer + 9))};
            std::string_view payload(buffer + 25, size_t(length - 25));
            if (to_utf8_)
                convert_to_utf8(item.data, payload);
            else
                item.data.assign(payload);
            if (item.wal_start > last_received_) last_received_ = item.wal_start;
            stats_.server_wal_end.store(item.wal_end.value, std::memory_order_relaxed);
            ++stats_.messages;
            if (!push_item(std::move(item), false)) return true;  // stopping
        } else if (buffer[0] == 'k' && length >= 18) {
            Lsn wal_end(read_u64(buffer + 1));
            bool reply_requested = buffer[17] != 0;
            ++stats_.keepalives;
            stats_.server_wal_end.store(wal_end.value, std::memory_order_relaxed);
            push_item(Item{Item::Kind::Keepalive, {}, {}, wal_end}, true);
            if (reply_requested && !send_status(true)) return false;
        } else {
            log::warn("postgres listener: ignoring an unknown replication message of type '", buffer[0], "'");
        }
    }
    return true;
}

// ---------------------------------------------------------------------------------------------------------
// processing thread

std::string PostgresListener::pipeline_error() const {
    std::string error = next_.fatal_error();
    return error.empty() ? watermark_.fatal_error() : error;
}

std::string PostgresListener::run() {
    // The records parsed on this thread take their events from the pool, and the outputs give them back once
    // delivered: a row's event, columns and value texts are reused instead of allocated and freed per row.
    RecycledEventsInUse recycled_events;
    socket_thread_ = std::thread([this] { socket_loop(); });
    auto next_health_check = std::chrono::steady_clock::now();
    bool data_since_idle = false;
    while (true) {
        Item item;
        {
            std::unique_lock<std::mutex> lock(queue_mutex_);
            queue_not_empty_.wait_for(lock, std::chrono::milliseconds(200),
                                      [this] { return !queue_.empty() || socket_done_; });
            if (queue_.empty()) {
                if (socket_done_) break;
            } else {
                item = std::move(queue_.front());
                queue_.pop_front();
                queued_bytes_ -= std::min(queued_bytes_, item.data.size() + 64);
                lock.unlock();
                queue_not_full_.notify_one();
                {
                    std::lock_guard<std::mutex> error_lock(error_mutex_);
                    if (!error_.empty()) break;
                }
                try {
                    handle(item);
                    // A keepalive often follows the data right away: the hint is due once the queue is
                    // empty, whatever kind of item came last.
                    if (item.kind == Item::Kind::Data) data_since_idle = true;
                    if (data_since_idle && source_drained()) {
                        data_since_idle = false;
                        next_.source_idle();
                    }
                } catch (const Stopped&) {
                    break;  // the stop ended a wait inside the pipeline; the event was not taken
                } catch (const std::exception& e) {
                    fail(e.what());
                    break;
                }
            }
        }
        auto now = std::chrono::steady_clock::now();
        if (now >= next_health_check) {
            next_health_check = now + std::chrono::milliseconds(200);
            std::string error = pipeline_error();
            if (!error.empty()) {
                fail(error);
                // Nothing after the failure can be confirmed: waiting for the drain would only delay the exit
                // (what is undelivered is sent again on the next start).
                stop_.end_drain();
                break;
            }
        }
    }

    stop();
    if (socket_thread_.joinable()) socket_thread_.join();
    // A transaction cut by the shutdown is sent again by the server next time; its events so far must not
    // hold the watermark back.
    sequencer_.on_shutdown();
    try {
        next_.flush();
    } catch (const std::exception& e) {
        fail(std::string("flushing outputs: ") + e.what());
    }
    bool drained = watermark_.wait_drained(stop_);
    if (conn_ && PQstatus(conn_.get()) == CONNECTION_OK) {
        if (send_status(false))
            log::info("postgres listener: final checkpoint at ", watermark_.confirmed().str());
        PQputCopyEnd(conn_.get(), nullptr);
        PQflush(conn_.get());
    }
    conn_.reset();
    return outcome(drained);
}

std::string PostgresListener::outcome(bool drained) {
    {
        std::lock_guard<std::mutex> lock(error_mutex_);
        if (!error_.empty()) return error_;
    }
    std::string error = pipeline_error();
    if (!error.empty() || drained) return error;
    std::string limit = stop_.drain_timeout() == std::chrono::milliseconds::max()
                            ? std::string("before the drain was ended")
                            : "within PGSTREAM_SHUTDOWN_DRAIN_TIMEOUT (" +
                                  std::to_string(stop_.drain_timeout().count()) + "ms)";
    return "shutdown: the outputs did not deliver everything " + limit + "; the slot is confirmed up to " +
           watermark_.confirmed().str() + " and the rest is sent again on the next start";
}

void PostgresListener::handle(Item& item) {
    switch (item.kind) {
        case Item::Kind::Reconnected:
            sequencer_.on_reconnect();
            return;
        case Item::Kind::Keepalive:
            sequencer_.on_keepalive(item.wal_end);
            return;
        case Item::Kind::Data:
            sequencer_.on_data(item.data, item.wal_start);
            return;
    }
}

}  // namespace pgstream
