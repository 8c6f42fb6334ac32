#include "server.h"

#include "filter_path.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <set>
#include <vector>

namespace search_mock {

namespace {

std::string base64(const std::string& input) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    size_t i = 0;
    while (i + 2 < input.size()) {
        uint32_t n = (static_cast<unsigned char>(input[i]) << 16) |
                     (static_cast<unsigned char>(input[i + 1]) << 8) |
                     static_cast<unsigned char>(input[i + 2]);
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
        out += alphabet[n & 63];
        i += 3;
    }
    if (i + 1 == input.size()) {
        uint32_t n = static_cast<unsigned char>(input[i]) << 16;
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += "==";
    } else if (i + 2 == input.size()) {
        uint32_t n =
            (static_cast<unsigned char>(input[i]) << 16) | (static_cast<unsigned char>(input[i + 1]) << 8);
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
        out += '=';
    }
    return out;
}

// A counter fault fires for this request: -1 always, N > 0 for the next N requests.
bool take(int64_t& counter) {
    if (counter < 0) return true;
    if (counter == 0) return false;
    --counter;
    return true;
}

std::vector<std::string> splitPath(const std::string& path) {
    std::vector<std::string> segments;
    size_t start = 1;
    while (start <= path.size()) {
        size_t slash = path.find('/', start);
        std::string segment =
            path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
        if (!segment.empty()) segments.push_back(segment);
        if (slash == std::string::npos) break;
        start = slash + 1;
    }
    return segments;
}

// Keeps room in the request's body for the length its Content-Length announces, before httplib reads the
// body: it appends 4 KiB pieces to request.body, which otherwise grew by doubling and copied itself about ten
// times per _bulk request (some 500 instructions per item under callgrind, which counts a large copy's
// bytes). Only the string's capacity changes: what httplib reads, and what handlers see, stay the same.
// httplib hands the pre-routing hook its own (mutable) request as const. Lengths that do not parse, or beyond
// 64 MiB, are left to the doubling.
void reserveAnnouncedBody(const httplib::Request& request) {
    constexpr uint64_t kMostReserved = uint64_t{64} << 20;
    std::string announced = request.get_header_value("Content-Length");
    uint64_t length = 0;
    auto [end, error] = std::from_chars(announced.data(), announced.data() + announced.size(), length);
    if (error != std::errc() || end != announced.data() + announced.size() || length > kMostReserved) return;
    const_cast<httplib::Request&>(request).body.reserve(static_cast<size_t>(length));
}

Response simpleError(int status, const std::string& message) {
    JsonWriter out;
    out.beginObject().key("error").str(message).key("status").num(status).endObject();
    return {status, out.text(), true};
}

const std::set<std::string> kCommonParams = {"pretty",
                                             "human",
                                             "error_trace",
                                             "timeout",
                                             "master_timeout",
                                             "cluster_manager_timeout",
                                             "wait_for_active_shards",
                                             "routing",
                                             "preference",
                                             "ignore_unavailable",
                                             "allow_no_indices",
                                             "expand_wildcards",
                                             "pipeline",
                                             "filter_path"};

// The engine refuses query parameters an endpoint does not know.
std::optional<Response> checkParams(const std::string& path, const Params& params,
                                    const std::set<std::string>& allowed) {
    std::vector<std::string> unknown;
    for (const auto& [name, value] : params) {
        if (kCommonParams.count(name) == 0 && allowed.count(name) == 0) unknown.push_back(name);
    }
    if (unknown.empty()) return std::nullopt;
    std::string list;
    for (const auto& name : unknown) list += (list.empty() ? "[" : ", [") + name + "]";
    std::string reason = "request [" + path + "] contains unrecognized parameter" +
                         (unknown.size() > 1 ? "s" : "") + ": " + list;
    return Response{400, illegalArgument(reason).responseBody(), true};
}

const std::set<std::string> kIndexDocParams = {"version",   "version_type",    "op_type",      "refresh",
                                               "if_seq_no", "if_primary_term", "require_alias"};
const std::set<std::string> kGetDocParams = {"realtime",         "refresh",          "_source",
                                             "_source_includes", "_source_excludes", "stored_fields",
                                             "version",          "version_type"};
const std::set<std::string> kDeleteDocParams = {"version", "version_type", "refresh", "if_seq_no",
                                                "if_primary_term"};
const std::set<std::string> kBulkParams = {"refresh", "require_alias", "_source", "_source_includes",
                                           "_source_excludes"};
const std::set<std::string> kSearchParams = {"size",
                                             "from",
                                             "sort",
                                             "_source",
                                             "_source_includes",
                                             "_source_excludes",
                                             "track_total_hits",
                                             "rest_total_hits_as_int",
                                             "version",
                                             "seq_no_primary_term",
                                             "search_type",
                                             "typed_keys",
                                             "request_cache",
                                             "allow_partial_search_results",
                                             "batched_reduce_size",
                                             "ccs_minimize_roundtrips"};
const std::set<std::string> kDeleteByQueryParams = {
    "conflicts",           "refresh", "max_docs", "size",          "scroll_size", "wait_for_completion",
    "requests_per_second", "slices",  "scroll",   "search_timeout"};
const std::set<std::string> kIndexAdminParams = {"local", "include_defaults", "write_index_only"};

}  // namespace

MockServer::MockServer(ServerOptions options) : options_(std::move(options)), cluster_(options_.flavor) {}

MockServer::~MockServer() {
    stop();
}

std::unique_ptr<httplib::Server> MockServer::makeServer(bool admin_only) {
    auto server = std::make_unique<httplib::Server>();
    auto handler = [this, admin_only](const httplib::Request& request, httplib::Response& response) {
        handle(request, response, admin_only);
    };
    server->Get(".*", handler);
    server->Post(".*", handler);
    server->Put(".*", handler);
    server->Delete(".*", handler);
    server->Patch(".*", handler);
    server->Options(".*", handler);
    server->set_pre_routing_handler([](const httplib::Request& request, httplib::Response&) {
        reserveAnnouncedBody(request);
        return httplib::Server::HandlerResponse::Unhandled;
    });
    // Enough workers that delayed requests do not starve the admin API.
    server->new_task_queue = [] { return new httplib::ThreadPool(32); };
    server->set_keep_alive_max_count(100000);
    // The answer goes out in several writes (headers, then body): with Nagle's algorithm the body waits for
    // the client's delayed ACK of the headers (~40 ms per request on Linux), which made each _bulk round
    // trip wait far longer than the work. The engines set TCP_NODELAY too.
    server->set_tcp_nodelay(true);
    return server;
}

bool MockServer::bindData(std::string& error) {
    auto server = makeServer(false);
    if (port_ == 0) {
        int bound = options_.port == 0 ? server->bind_to_any_port(options_.host) : -1;
        if (options_.port != 0 && server->bind_to_port(options_.host, options_.port)) bound = options_.port;
        if (bound <= 0) {
            error = "cannot listen on " + options_.host + ":" + std::to_string(options_.port);
            return false;
        }
        port_ = bound;
    } else if (!server->bind_to_port(options_.host, port_)) {
        error = "cannot listen again on " + options_.host + ":" + std::to_string(port_);
        return false;
    }
    httplib::Server* raw = server.get();
    data_server_ = std::move(server);
    data_listening_ = true;
    data_thread_ = std::thread([raw] { raw->listen_after_bind(); });
    return true;
}

bool MockServer::start(std::string& error) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!bindData(error)) return false;
    }
    if (options_.admin_host) {
        admin_server_ = makeServer(true);
        admin_port_ = options_.admin_port == 0
                          ? admin_server_->bind_to_any_port(*options_.admin_host)
                          : (admin_server_->bind_to_port(*options_.admin_host, options_.admin_port)
                                 ? options_.admin_port
                                 : -1);
        if (admin_port_ <= 0) {
            error = "cannot listen on " + *options_.admin_host + ":" + std::to_string(options_.admin_port);
            return false;
        }
        httplib::Server* raw = admin_server_.get();
        admin_thread_ = std::thread([raw] { raw->listen_after_bind(); });
    }
    supervisor_thread_ = std::thread([this] { supervise(); });
    refresh_thread_ = std::thread([this] { refreshLoop(); });
    return true;
}

void MockServer::stop() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stopping_) return;
        stopping_ = true;
    }
    changed_.notify_all();
    if (supervisor_thread_.joinable()) supervisor_thread_.join();
    if (refresh_thread_.joinable()) refresh_thread_.join();
    if (data_server_) data_server_->stop();
    if (data_thread_.joinable()) data_thread_.join();
    if (admin_server_) admin_server_->stop();
    if (admin_thread_.joinable()) admin_thread_.join();
}

void MockServer::refreshLoop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
        lock.unlock();
        auto wait = cluster_.refreshDue();
        lock.lock();
        changed_.wait_for(lock, wait, [this] { return stopping_; });
    }
}

void MockServer::supervise() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
        changed_.wait(lock, [this] { return stopping_ || (faults_.outage && !outage_active_); });
        if (stopping_) return;
        // Outage: nothing listens on the port any more and open connections are closed.
        outage_active_ = true;
        ++stats_.outages;
        std::unique_ptr<httplib::Server> server = std::move(data_server_);
        std::thread thread = std::move(data_thread_);
        lock.unlock();
        server->stop();
        if (thread.joinable()) thread.join();
        server.reset();
        lock.lock();
        data_listening_ = false;
        changed_.notify_all();
        auto until = faults_.outage_ms > 0
                         ? std::chrono::steady_clock::now() + std::chrono::milliseconds(faults_.outage_ms)
                         : std::chrono::steady_clock::time_point::max();
        while (!stopping_ && faults_.outage && std::chrono::steady_clock::now() < until) {
            if (until == std::chrono::steady_clock::time_point::max())
                changed_.wait(lock);
            else
                changed_.wait_until(lock, until);
        }
        faults_.outage = false;
        faults_.outage_ms = 0;
        outage_active_ = false;
        if (stopping_) return;
        // Back on the same port; a just-closed port may take a moment to be free again.
        std::string error;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!bindData(error) && std::chrono::steady_clock::now() < deadline) {
            changed_.wait_for(lock, std::chrono::milliseconds(50), [this] { return stopping_; });
            if (stopping_) return;
        }
        if (!data_server_) fprintf(stderr, "pgstream-search-mock: %s after the outage\n", error.c_str());
    }
}

void MockServer::dropConnection(const httplib::Request& request) {
    // httplib does not hand the socket to handlers: find it among our descriptors by its peer address.
    DIR* fds = opendir("/proc/self/fd");
    if (fds == nullptr) return;
    while (dirent* entry = readdir(fds)) {
        int fd = std::atoi(entry->d_name);
        if (fd <= 2) continue;
        sockaddr_storage peer{}, local{};
        socklen_t peer_length = sizeof peer, local_length = sizeof local;
        if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_length) != 0) continue;
        if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_length) != 0) continue;
        char address[INET6_ADDRSTRLEN] = {0};
        int peer_port = 0, local_port = 0;
        if (peer.ss_family == AF_INET) {
            auto* in = reinterpret_cast<sockaddr_in*>(&peer);
            inet_ntop(AF_INET, &in->sin_addr, address, sizeof address);
            peer_port = ntohs(in->sin_port);
            local_port = ntohs(reinterpret_cast<sockaddr_in*>(&local)->sin_port);
        } else if (peer.ss_family == AF_INET6) {
            auto* in = reinterpret_cast<sockaddr_in6*>(&peer);
            inet_ntop(AF_INET6, &in->sin6_addr, address, sizeof address);
            peer_port = ntohs(in->sin6_port);
            local_port = ntohs(reinterpret_cast<sockaddr_in6*>(&local)->sin6_port);
        } else {
            continue;
        }
        if (peer_port == request.remote_port && request.remote_addr == address && local_port == port_) {
            shutdown(fd, SHUT_RDWR);
            break;
        }
    }
    closedir(fds);
}

bool MockServer::authorized(const httplib::Request& request, httplib::Response& response) {
    if (!options_.user && !options_.api_key) return true;
    std::string header = request.get_header_value("Authorization");
    if (options_.user && header == "Basic " + base64(*options_.user)) return true;
    if (options_.api_key && header == "ApiKey " + *options_.api_key) return true;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        ++stats_.unauthorized;
    }
    response.status = 401;
    if (options_.flavor == Flavor::kOpenSearch) {
        // The security plugin answers with a bare text body and a Basic challenge.
        response.set_header("WWW-Authenticate", "Basic realm=\"OpenSearch Security\"");
        response.set_content("Unauthorized", "text/plain; charset=UTF-8");
        return false;
    }
    std::string reason;
    if (header.empty()) {
        reason = "missing authentication credentials for REST request [" + request.path + "]";
    } else if (header.rfind("Basic ", 0) == 0 && options_.user) {
        std::string user = options_.user->substr(0, options_.user->find(':'));
        reason = "unable to authenticate user [" + user + "] for REST request [" + request.path + "]";
    } else {
        reason =
            "unable to authenticate with provided credentials and anonymous access is not allowed for this "
            "request";
    }
    Failure failure;
    failure.status = 401;
    failure.type = "security_exception";
    failure.reason = reason;
    failure.with(
        "header",
        "{\"WWW-Authenticate\":[\"Basic realm=\\\"security\\\" charset=\\\"UTF-8\\\"\",\"ApiKey\"]}");
    response.set_header("WWW-Authenticate", "Basic realm=\"security\" charset=\"UTF-8\"");
    response.set_header("X-Elastic-Product", "Elasticsearch");
    response.set_content(failure.responseBody(), "application/json");
    return false;
}

void MockServer::writeFaults(JsonWriter& out) {
    out.beginObject();
    out.key("reject_bulk_items_ratio").dbl(faults_.reject_bulk_items_ratio);
    out.key("reject_requests").num(faults_.reject_requests);
    out.key("unavailable_requests").num(faults_.unavailable_requests);
    out.key("status_503").boolean(faults_.unavailable_requests != 0);
    out.key("drop_connections").num(faults_.drop_connections);
    out.key("drop_responses").num(faults_.drop_responses);
    out.key("delay_ms").num(faults_.delay_ms);
    out.key("outage").boolean(faults_.outage);
    out.key("outage_ms").num(faults_.outage_ms);
    out.key("path_filter").str(faults_.path_filter);
    out.endObject();
}

bool MockServer::applyFaults(const rapidjson::Value& json, std::string& error) {
    if (!json.IsObject()) {
        error = "the faults must be a JSON object";
        return false;
    }
    Faults next = faults_;
    // true: until switched off (-1); false: off; N: the next N requests.
    auto counter = [&error](const rapidjson::Value& value, const std::string& name, int64_t& into) {
        if (value.IsBool()) {
            into = value.GetBool() ? -1 : 0;
            return true;
        }
        if (value.IsInt64() && value.GetInt64() >= 0) {
            into = value.GetInt64();
            return true;
        }
        error = name + " must be true, false or a count of requests";
        return false;
    };
    for (const auto& member : json.GetObject()) {
        std::string name = member.name.GetString();
        const rapidjson::Value& value = member.value;
        if (name == "reject_bulk_items_ratio") {
            if (!value.IsNumber() || value.GetDouble() < 0 || value.GetDouble() > 1) {
                error = "reject_bulk_items_ratio must be a number from 0 to 1";
                return false;
            }
            next.reject_bulk_items_ratio = value.GetDouble();
        } else if (name == "reject_requests") {
            if (!counter(value, name, next.reject_requests)) return false;
        } else if (name == "status_503" || name == "unavailable_requests") {
            if (!counter(value, name, next.unavailable_requests)) return false;
        } else if (name == "drop_connections") {
            if (!counter(value, name, next.drop_connections)) return false;
        } else if (name == "drop_responses") {
            if (!counter(value, name, next.drop_responses)) return false;
        } else if (name == "delay_ms") {
            if (!value.IsInt64() || value.GetInt64() < 0) {
                error = "delay_ms must be a non-negative integer";
                return false;
            }
            next.delay_ms = value.GetInt64();
        } else if (name == "outage") {
            if (!value.IsBool()) {
                error = "outage must be true or false";
                return false;
            }
            next.outage = value.GetBool();
        } else if (name == "outage_ms") {
            if (!value.IsInt64() || value.GetInt64() < 0) {
                error = "outage_ms must be a non-negative integer";
                return false;
            }
            next.outage_ms = value.GetInt64();
        } else if (name == "path_filter") {
            if (!value.IsString()) {
                error = "path_filter must be a string";
                return false;
            }
            next.path_filter = value.GetString();
        } else {
            error = "unknown fault [" + name +
                    "]; known: reject_bulk_items_ratio, reject_requests, status_503, unavailable_requests, "
                    "drop_connections, drop_responses, delay_ms, outage, outage_ms, path_filter";
            return false;
        }
    }
    if (next.outage && next.outage_ms == 0 && !options_.admin_host) {
        error = "an outage without outage_ms needs --admin-listen to be switched off again";
        return false;
    }
    if (next.reject_bulk_items_ratio != faults_.reject_bulk_items_ratio) bulk_items_seen_ = 0;
    faults_ = next;
    return true;
}

Response MockServer::admin(const httplib::Request& request, bool on_admin_listener) {
    std::string path = request.path;
    if (path == "/_mock/faults") {
        std::unique_lock<std::mutex> lock(mutex_);
        if (request.method == "POST" || request.method == "PUT") {
            rapidjson::Document json;
            Failure parse_error;
            if (!parseJson(request.body, json, parse_error))
                return simpleError(400, "invalid JSON: " + parse_error.reason);
            std::string error;
            if (!applyFaults(json, error)) return simpleError(400, error);
        } else if (request.method == "DELETE") {
            faults_ = Faults();
            bulk_items_seen_ = 0;
        } else if (request.method != "GET") {
            return simpleError(405, "use GET, POST or DELETE on /_mock/faults");
        }
        changed_.notify_all();
        // An outage switched on through the admin listener is in force when the answer comes: the data
        // listener is closed by then, so a test needs no polling to know that nothing listens. (Through the
        // data listener the supervisor's stop would wait for this very request: that answer comes first.)
        if (on_admin_listener)
            changed_.wait(lock, [this] { return stopping_ || !faults_.outage || !data_listening_; });
        JsonWriter out;
        writeFaults(out);
        return {200, out.text()};
    }
    if (path == "/_mock/stats" && request.method == "GET") {
        std::lock_guard<std::mutex> lock(mutex_);
        JsonWriter out;
        out.beginObject();
        out.key("requests").num(stats_.requests).key("bulk_items_rejected").num(stats_.bulk_items_rejected);
        out.key("requests_rejected")
            .num(stats_.requests_rejected)
            .key("requests_unavailable")
            .num(stats_.requests_unavailable);
        out.key("connections_dropped")
            .num(stats_.connections_dropped)
            .key("responses_dropped")
            .num(stats_.responses_dropped);
        out.key("requests_delayed").num(stats_.requests_delayed).key("unauthorized").num(stats_.unauthorized);
        out.key("outages").num(stats_.outages).key("outage_active").boolean(outage_active_ || faults_.outage);
        out.key("answer_bytes").num(stats_.answer_bytes);
        out.endObject();
        return {200, out.text()};
    }
    if (path == "/_mock/reset" && request.method == "POST") {
        cluster_.reset();
        {
            std::lock_guard<std::mutex> lock(mutex_);
            faults_ = Faults();
            stats_ = Stats();
            bulk_items_seen_ = 0;
        }
        changed_.notify_all();
        return {200, "{\"acknowledged\":true}"};
    }
    return simpleError(404,
                       "unknown admin endpoint [" + request.method + " " + path +
                           "]; known: GET|POST|DELETE /_mock/faults, GET /_mock/stats, POST /_mock/reset");
}

void MockServer::handle(const httplib::Request& request, httplib::Response& response, bool admin_only) {
    bool is_admin = request.path.rfind("/_mock/", 0) == 0;
    if (is_admin || admin_only) {
        Response result = is_admin ? admin(request, admin_only)
                                   : simpleError(404, "the admin listener serves /_mock/ only");
        response.status = result.status;
        response.set_content(result.body, "application/json");
        return;
    }
    if (!authorized(request, response)) return;

    bool drop_before = false, drop_after = false;
    std::optional<Response> injected;
    std::unique_lock<std::mutex> lock(mutex_);
    ++stats_.requests;
    bool applies = faults_.path_filter.empty() || request.path.find(faults_.path_filter) != std::string::npos;
    int64_t delay_ms = 0;
    if (applies) {
        if (take(faults_.drop_connections)) {
            drop_before = true;
            ++stats_.connections_dropped;
        } else if (take(faults_.unavailable_requests)) {
            ++stats_.requests_unavailable;
            Failure failure;
            failure.status = 503;
            failure.type = "cluster_block_exception";
            failure.reason = options_.flavor == Flavor::kOpenSearch
                                 ? "blocked by: [SERVICE_UNAVAILABLE/2/no cluster-manager];"
                                 : "blocked by: [SERVICE_UNAVAILABLE/2/no master];";
            injected = Response{503, failure.responseBody(), true};
        } else if (take(faults_.reject_requests)) {
            ++stats_.requests_rejected;
            Failure failure;
            failure.status = 429;
            failure.type = options_.flavor == Flavor::kOpenSearch ? "rejected_execution_exception"
                                                                  : "es_rejected_execution_exception";
            failure.reason =
                "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, "
                "replica_bytes=0, all_bytes=0, coordinating_operation_bytes=" +
                std::to_string(request.body.size()) + ", max_coordinating_and_primary_bytes=0]";
            injected = Response{429, failure.responseBody(), true};
        }
        if (!drop_before && faults_.delay_ms > 0) {
            delay_ms = faults_.delay_ms;
            ++stats_.requests_delayed;
        }
        if (!drop_before && !injected && take(faults_.drop_responses)) {
            drop_after = true;
            ++stats_.responses_dropped;
        }
    }
    if (delay_ms > 0) {
        // A slow cluster: the answer comes after delay_ms (or at shutdown).
        changed_.wait_for(lock, std::chrono::milliseconds(delay_ms), [this] { return stopping_; });
    }
    double ratio = applies ? faults_.reject_bulk_items_ratio : 0;
    lock.unlock();
    if (drop_before) {
        dropConnection(request);
        return;
    }

    // Content type: OpenSearch takes JSON and NDJSON; Elasticsearch 8 also its versioned media types.
    std::string content_type = request.get_header_value("Content-Type");
    std::string accept = request.get_header_value("Accept");
    bool compatible = content_type.find("vnd.elasticsearch") != std::string::npos ||
                      accept.find("vnd.elasticsearch") != std::string::npos;
    Response result;
    if (injected) {
        result = *injected;
    } else if (!request.body.empty() && content_type.empty()) {
        result = simpleError(406, "Content-Type header is missing");
    } else if (!request.body.empty() && content_type.find("application/json") == std::string::npos &&
               content_type.find("application/x-ndjson") == std::string::npos &&
               !(options_.flavor == Flavor::kElasticsearch && compatible)) {
        result = simpleError(406, "Content-Type header [" + content_type + "] is not supported");
    } else if (options_.flavor == Flavor::kElasticsearch && compatible &&
               ((!content_type.empty() && content_type.find("vnd.elasticsearch") != std::string::npos &&
                 content_type.find("compatible-with=8") == std::string::npos &&
                 content_type.find("compatible-with=7") == std::string::npos) ||
                (accept.find("vnd.elasticsearch") != std::string::npos &&
                 accept.find("compatible-with=8") == std::string::npos &&
                 accept.find("compatible-with=7") == std::string::npos))) {
        Failure failure;
        failure.type = "media_type_header_exception";
        failure.reason = "Invalid media-type value on headers [Accept, Content-Type]";
        Failure cause;
        cause.type = "status_exception";
        cause.reason =
            "Accept version must be either version 8 or 7, but found a different one. Accept=" + accept;
        failure.causedBy(cause);
        result = {400, failure.responseBody(), true};
    } else {
        Params params;
        for (const auto& [name, value] : request.params) params[name] = value;
        bool head = false;
        Cluster::ItemRejector reject;
        if (ratio > 0) {
            // Bulk item rejections are spread evenly: item n is rejected when floor((n+1)*r) > floor(n*r).
            reject = [this, ratio] {
                std::lock_guard<std::mutex> guard(mutex_);
                uint64_t n = bulk_items_seen_++;
                bool rejected = std::floor((n + 1) * ratio) > std::floor(n * ratio);
                if (rejected) ++stats_.bulk_items_rejected;
                return rejected;
            };
        }
        // filter_path (every endpoint): read before the request is applied, so that a value the mock refuses
        // changes nothing; applied here, in one place, to every answer not built from an exception.
        std::optional<FilterPath> filter;
        std::string refusal;
        if (auto given = params.find("filter_path"); given != params.end())
            filter = FilterPath::parse(given->second, refusal);
        if (!refusal.empty())
            result = Response{400, illegalArgument(refusal).responseBody(), true};
        else
            result = dispatch(request, params, head, reject);
        if (filter && !filter->empty() && !result.error_body && !result.filtered && !result.body.empty())
            result.body = filter->apply(result.body);
    }
    if (drop_after) {
        dropConnection(request);
        return;
    }
    {
        std::lock_guard<std::mutex> count(mutex_);
        stats_.answer_bytes += int64_t(result.body.size());
    }
    response.status = result.status;
    if (options_.flavor == Flavor::kElasticsearch) response.set_header("X-Elastic-Product", "Elasticsearch");
    std::string type = options_.flavor == Flavor::kOpenSearch ? "application/json; charset=UTF-8"
                       : compatible ? "application/vnd.elasticsearch+json;compatible-with=8"
                                    : "application/json";
    if (request.method == "HEAD" || result.body.empty()) {
        response.set_header("Content-Type", type);
        return;
    }
    // What set_content does, with the body moved instead of copied (a _bulk answer is some 200 KiB).
    response.body = std::move(result.body);
    response.set_header("Content-Type", type);
}

Response MockServer::dispatch(const httplib::Request& request, const Params& params, bool& head,
                              const Cluster::ItemRejector& reject) {
    const std::string& method = request.method;
    const std::string& path = request.path;
    head = method == "HEAD";
    std::vector<std::string> s = splitPath(path);
    auto wrongMethod = [&](const std::string& allowed) {
        return simpleError(405, "Incorrect HTTP method for uri [" + path + "] and method [" + method +
                                    "], allowed: [" + allowed + "]");
    };
    auto guard = [&](const std::set<std::string>& allowed) { return checkParams(path, params, allowed); };
    bool get = method == "GET" || method == "HEAD";
    bool post = method == "POST";
    bool put = method == "PUT";
    bool del = method == "DELETE";

    if (s.empty()) {
        if (!get) return wrongMethod("GET, HEAD");
        JsonWriter out;
        out.beginObject()
            .key("name")
            .str("pgstream-search-mock")
            .key("cluster_name")
            .str("pgstream-search-mock");
        out.key("cluster_uuid").str("pgstream-search-mock-cluster").key("version").beginObject();
        if (options_.flavor == Flavor::kOpenSearch) {
            out.key("distribution")
                .str("opensearch")
                .key("number")
                .str("2.13.0")
                .key("build_type")
                .str("tar");
            out.key("lucene_version").str("9.10.0").key("minimum_wire_compatibility_version").str("7.10.0");
            out.key("minimum_index_compatibility_version").str("7.0.0").endObject();
            out.key("tagline").str("The OpenSearch Project: https://opensearch.org/");
        } else {
            out.key("number")
                .str("8.13.0")
                .key("build_flavor")
                .str("default")
                .key("build_type")
                .str("docker");
            out.key("lucene_version").str("9.10.0").key("minimum_wire_compatibility_version").str("7.17.0");
            out.key("minimum_index_compatibility_version").str("7.0.0").endObject();
            out.key("tagline").str("You Know, for Search");
        }
        out.endObject();
        return {200, out.text()};
    }
    const std::string& first = s[0];
    if (first == "_cluster" && s.size() >= 2 && s[1] == "health") {
        if (!get) return wrongMethod("GET");
        static const std::set<std::string> allowed = {
            "wait_for_status", "wait_for_nodes", "level", "local", "wait_for_no_relocating_shards",
            "wait_for_events"};
        if (auto bad = guard(allowed)) return *bad;
        return cluster_.health();
    }
    if (first == "_bulk" && s.size() == 1) {
        if (!post && !put) return wrongMethod("POST, PUT");
        if (auto bad = guard(kBulkParams)) return *bad;
        return cluster_.bulk(std::nullopt, request.body, params, reject);
    }
    if ((first == "_search" || first == "_count") && s.size() == 1) {
        if (!get && !post) return wrongMethod("GET, POST");
        if (auto bad = guard(first == "_search" ? kSearchParams : std::set<std::string>{})) return *bad;
        return first == "_search" ? cluster_.search("_all", request.body, params)
                                  : cluster_.count("_all", request.body, params);
    }
    if (first == "_refresh" && s.size() == 1) {
        if (!get && !post) return wrongMethod("GET, POST");
        if (auto bad = guard({})) return *bad;
        return cluster_.refresh("_all");
    }
    if (first == "_mapping" && s.size() == 1) {
        if (!get) return wrongMethod("GET");
        if (auto bad = guard(kIndexAdminParams)) return *bad;
        return cluster_.getMapping("_all");
    }
    if (first == "_aliases" && s.size() == 1) {
        if (post) return cluster_.updateAliases(request.body);
        if (get) return cluster_.getAliases("_all", "");
        return wrongMethod("GET, POST");
    }
    if (first == "_alias" && s.size() <= 2) {
        if (!get) return wrongMethod("GET, HEAD");
        std::string names = s.size() == 2 ? s[1] : "";
        if (head) return cluster_.aliasExists("_all", names);
        return cluster_.getAliases("_all", names);
    }
    if (first.front() == '_' && first != "_all")
        return simpleError(400, "no handler found for uri [" + path + "] and method [" + method + "]");

    const std::string& index = first;
    if (s.size() == 1) {
        if (auto bad = guard(kIndexAdminParams)) return *bad;
        if (put) return cluster_.createIndex(index, request.body);
        if (head) return cluster_.indexExists(index);
        if (get) return cluster_.getIndex(index);
        if (del) return cluster_.deleteIndex(index);
        return wrongMethod("DELETE, GET, HEAD, PUT");
    }
    const std::string& endpoint = s[1];
    // A document id is everything after the endpoint, so that an id with an encoded '/' stays whole.
    auto rest = [&]() {
        size_t at = path.find("/" + endpoint + "/");
        return path.substr(at + endpoint.size() + 2);
    };
    if (endpoint == "_doc" || endpoint == "_create") {
        if (s.size() == 2) {
            if (endpoint == "_doc" && post) {
                if (auto bad = guard(kIndexDocParams)) return *bad;
                return cluster_.indexDocument(index, std::nullopt, request.body, params, false);
            }
            return wrongMethod("POST");
        }
        std::string id = rest();
        if (put || post) {
            if (auto bad = guard(kIndexDocParams)) return *bad;
            return cluster_.indexDocument(index, id, request.body, params, endpoint == "_create");
        }
        if (endpoint == "_doc" && get) {
            if (auto bad = guard(kGetDocParams)) return *bad;
            return cluster_.getDocument(index, id, params, head);
        }
        if (endpoint == "_doc" && del) {
            if (auto bad = guard(kDeleteDocParams)) return *bad;
            return cluster_.deleteDocument(index, id, params);
        }
        return wrongMethod(endpoint == "_doc" ? "DELETE, GET, HEAD, POST, PUT" : "POST, PUT");
    }
    if (s.size() == 2) {
        if (endpoint == "_bulk") {
            if (!post && !put) return wrongMethod("POST, PUT");
            if (auto bad = guard(kBulkParams)) return *bad;
            return cluster_.bulk(index, request.body, params, reject);
        }
        if (endpoint == "_search" || endpoint == "_count") {
            if (!get && !post) return wrongMethod("GET, POST");
            if (auto bad = guard(endpoint == "_search" ? kSearchParams : std::set<std::string>{}))
                return *bad;
            return endpoint == "_search" ? cluster_.search(index, request.body, params)
                                         : cluster_.count(index, request.body, params);
        }
        if (endpoint == "_refresh") {
            if (!get && !post) return wrongMethod("GET, POST");
            if (auto bad = guard({})) return *bad;
            return cluster_.refresh(index);
        }
        if (endpoint == "_mapping") {
            if (auto bad = guard(kIndexAdminParams)) return *bad;
            if (put || post) return cluster_.putMapping(index, request.body);
            if (get) return cluster_.getMapping(index);
            return wrongMethod("GET, POST, PUT");
        }
        if (endpoint == "_settings") {
            if (!get) return wrongMethod("GET");
            if (auto bad = guard(kIndexAdminParams)) return *bad;
            return cluster_.getSettings(index);
        }
        if (endpoint == "_delete_by_query") {
            if (!post) return wrongMethod("POST");
            if (auto bad = guard(kDeleteByQueryParams)) return *bad;
            return cluster_.deleteByQuery(index, request.body, params);
        }
    }
    if (endpoint == "_alias" || endpoint == "_aliases") {
        std::string alias = s.size() >= 3 ? s[2] : "";
        if ((put || post) && !alias.empty()) return cluster_.putAlias(index, alias, request.body);
        if (del && !alias.empty()) return cluster_.deleteAlias(index, alias);
        if (head) return cluster_.aliasExists(index, alias);
        if (get) return cluster_.getAliases(index, alias);
        return wrongMethod("DELETE, GET, HEAD, POST, PUT");
    }
    return simpleError(400, "no handler found for uri [" + path + "] and method [" + method + "]");
}

}  // namespace search_mock
