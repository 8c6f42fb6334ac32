#include "http/http_client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <future>
#include <iterator>
#include <stdexcept>
#include <string_view>

namespace pgstream {

// What decides how a transfer's easy handle is set up, besides the body and the headers: a transfer whose
// set-up is the same is reused without curl_easy_reset and without setting its options again.
struct EasySetup {
    std::string url;
    std::string method;
    bool sends_body = false;
    std::chrono::milliseconds timeout{0};
    // Held, not only compared: a policy freed and another allocated at its address must not look the same.
    std::shared_ptr<const AddressPolicy> address_policy;
    std::string ca_file;
    bool verify_tls = true;
    bool follow_redirects = false;

    bool operator==(const EasySetup& other) const {
        return url == other.url && method == other.method && sends_body == other.sends_body &&
               timeout == other.timeout && address_policy == other.address_policy &&
               ca_file == other.ca_file && verify_tls == other.verify_tls &&
               follow_redirects == other.follow_redirects;
    }
};

// One request in flight, or idle with its easy handle kept for the next request of the same set-up. The
// easy handle's callbacks point at the Transfer, which keeps its address while it is reused.
struct HttpClient::Transfer {
    HttpRequest request;
    Completion done;
    CURL* easy = nullptr;
    CURLU* parsed_url = nullptr;  // the URL parsed once (CURLOPT_CURLU), not at every request
    EasySetup setup;
    // CURLOPT_HTTPHEADER's list, linked over the request's own header strings: libcurl only reads it while
    // the transfer runs, so it needs no copy per request (curl_slist_append allocates a node and a copy for
    // each header); the vector keeps its capacity from one request to the next.
    std::vector<curl_slist> header_nodes;
    HttpResponse response;
    size_t max_response_bytes = 0;
    bool too_large = false;
    const AddressPolicy* policy = nullptr;
    std::string refusal;
    char error[CURL_ERROR_SIZE] = {0};

    ~Transfer() {
        if (easy) curl_easy_cleanup(easy);
        if (parsed_url) curl_url_cleanup(parsed_url);
    }
};

namespace {

size_t collect_body(char* data, size_t size, size_t count, void* user) {
    auto* transfer = static_cast<HttpClient::Transfer*>(user);
    size_t bytes = size * count;
    if (transfer->response.body.size() + bytes > transfer->max_response_bytes) {
        transfer->too_large = true;
        return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
    std::string& body = transfer->response.body;
    if (body.empty()) {
        // Room for the whole answer when its length is known: a large one (a _bulk answer, ~200 bytes per
        // document) was otherwise copied again at every doubling of the string.
        curl_off_t length = -1;
        if (curl_easy_getinfo(transfer->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) == CURLE_OK &&
            length > 0)
            body.reserve(size_t(std::min(length, curl_off_t(transfer->max_response_bytes))));
    }
    body.append(data, bytes);
    return bytes;
}

size_t collect_header(char* data, size_t size, size_t count, void* user) {
    auto* transfer = static_cast<HttpClient::Transfer*>(user);
    size_t bytes = size * count;
    std::string_view line(data, bytes);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    auto& headers = transfer->response.headers;
    // A status line starts the headers of the next response (after a 100 Continue, or a redirect followed).
    if (line.substr(0, 5) == "HTTP/") {
        headers.clear();
    } else if (!line.empty() && headers.size() < 100) {
        headers.emplace_back(line);
    }
    return bytes;
}

// Runs after DNS resolution, right before connect(): the address actually used is the one checked.
curl_socket_t open_checked_socket(void* user, curlsocktype purpose, curl_sockaddr* address) {
    auto* transfer = static_cast<HttpClient::Transfer*>(user);
    if (purpose == CURLSOCKTYPE_IPCXN) {
        std::string refusal = transfer->policy->refusal(&address->addr);
        if (!refusal.empty()) {
            transfer->refusal = refusal;
            return CURL_SOCKET_BAD;
        }
    }
    return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

}  // namespace

namespace {

// Idle transfers kept for reuse: as many as requests commonly in flight at once.
constexpr size_t kMaxIdleTransfers = 64;
// Longest wait for socket events when libcurl has no timeout pending (a stop or a send wakes it earlier).
constexpr int kMaxWaitMs = 1000;

EasySetup setup_of(const HttpRequest& request) {
    EasySetup setup;
    setup.url = request.url;
    setup.method = request.method;
    const std::string& body = request.shared_body ? *request.shared_body : request.body;
    setup.sends_body = request.method == "POST" || request.method == "PUT" || !body.empty();
    setup.timeout = request.timeout;
    setup.address_policy = request.address_policy;
    setup.ca_file = request.ca_file;
    setup.verify_tls = request.verify_tls;
    setup.follow_redirects = request.follow_redirects;
    return setup;
}

bool same_setup(const EasySetup& setup, const HttpRequest& request) {
    // The URL first: the cheapest way to tell two subscriptions apart.
    if (setup.url != request.url || setup.method != request.method || setup.timeout != request.timeout ||
        setup.address_policy != request.address_policy || setup.ca_file != request.ca_file ||
        setup.verify_tls != request.verify_tls || setup.follow_redirects != request.follow_redirects)
        return false;
    const std::string& body = request.shared_body ? *request.shared_body : request.body;
    return setup.sends_body == (request.method == "POST" || request.method == "PUT" || !body.empty());
}

bool has_header(const std::vector<std::string>& headers, std::string_view name) {
    for (const auto& header : headers)
        if (header.size() > name.size() && header[name.size()] == ':' &&
            strncasecmp(header.data(), name.data(), name.size()) == 0)
            return true;
    return false;
}

// Headers libcurl would add by itself, removed ("Name:" with no value). Not const: curl_slist holds a char*,
// which libcurl only reads.
// "Expect: 100-continue" for large bodies makes libcurl wait for the server: not worth a round trip.
char kNoExpect[] = "Expect:";
// Its default "Accept: */*" says what no header says (a caller's own Accept is kept).
char kNoAccept[] = "Accept:";

// Links `transfer`'s header nodes over its request's headers (the shared ones first) and the removals above;
// returns the list's head for CURLOPT_HTTPHEADER.
curl_slist* link_headers(HttpClient::Transfer& transfer) {
    const HttpRequest& request = transfer.request;
    std::vector<curl_slist>& nodes = transfer.header_nodes;
    nodes.clear();
    const bool has_accept = has_header(request.headers, "Accept") ||
                            (request.shared_headers && has_header(*request.shared_headers, "Accept"));
    if (request.shared_headers)
        for (const auto& header : *request.shared_headers)
            nodes.push_back({const_cast<char*>(header.c_str()), nullptr});
    for (const auto& header : request.headers) nodes.push_back({const_cast<char*>(header.c_str()), nullptr});
    nodes.push_back({kNoExpect, nullptr});
    if (!has_accept) nodes.push_back({kNoAccept, nullptr});
    // Linked once the vector no longer grows: its nodes keep their addresses until the next request.
    for (size_t i = 0; i + 1 < nodes.size(); ++i) nodes[i].next = &nodes[i + 1];
    return nodes.data();
}

}  // namespace

// One lane: a thread running libcurl's multi interface over its own epoll set, with the transfers it started.
// What used to be the whole client; HttpClient spreads requests over its lanes.
class HttpClient::Lane {
  public:
    Lane(const HttpClientSettings& settings, size_t index, size_t lanes);
    ~Lane();
    Lane(const Lane&) = delete;
    Lane& operator=(const Lane&) = delete;

    void send(HttpRequest request, Completion done);
    // Asks the thread to end, without waiting: HttpClient::stop() asks every lane first, then joins them.
    void request_stop();
    void join();

  private:
    void run();
    // Starts what send() queued (or completes it with "stopped").
    void start_incoming(std::deque<std::pair<HttpRequest, Completion>>& incoming, bool stopping,
                        std::vector<std::pair<Completion, HttpResponse>>& completed);
    void collect_finished(std::vector<std::pair<Completion, HttpResponse>>& completed);
    // A transfer for `request`: an idle one whose easy handle was set up for the same target and options
    // (only the body and the headers are set again: no curl_easy_reset, no URL parsing per request), else an
    // idle one reset and set up anew, else a new one. libcurl keeps the connections in the multi handle, so
    // this saves per-request set-up work, not connections.
    std::unique_ptr<Transfer> take_transfer(HttpRequest& request);
    void recycle(std::unique_ptr<Transfer> transfer);
    void wake();
    // libcurl's socket and timer callbacks (curl_multi_socket_action): sockets are watched with epoll and
    // only the transfers whose socket is ready run, instead of curl_multi_perform polling every transfer.
    static int on_socket(void* easy, int socket, int what, void* lane, void* socket_data);
    static int on_timer(void* multi, long timeout_ms, void* lane);

    const HttpClientSettings& settings_;  // the client's, which outlives its lanes
    void* multi_ = nullptr;               // CURLM*
    int epoll_ = -1;
    int wake_fd_ = -1;  // eventfd: send() and stop() from other threads end the lane thread's wait
    // libcurl's next timeout (CURLMOPT_TIMERFUNCTION), lane thread only.
    bool timer_set_ = false;
    std::chrono::steady_clock::time_point timer_at_;
    std::mutex mutex_;
    std::deque<std::pair<HttpRequest, Completion>> incoming_;
    bool stopping_ = false;
    std::vector<std::unique_ptr<Transfer>> active_;  // lane thread only
    std::vector<std::unique_ptr<Transfer>> idle_;    // lane thread only
    std::thread thread_;
};

HttpClient::Lane::Lane(const HttpClientSettings& settings, size_t index, size_t lanes) : settings_(settings) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epoll_ < 0 || wake_fd_ < 0) {
        if (epoll_ >= 0) close(epoll_);
        if (wake_fd_ >= 0) close(wake_fd_);
        throw std::runtime_error("HTTP client: cannot create its epoll and eventfd");
    }
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = wake_fd_;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_fd_, &event);
    multi_ = curl_multi_init();
    // The settings' limits are the client's totals: each lane has its share (rounded up, at least 1).
    auto share = [lanes](long total) { return std::max(1L, (total + long(lanes) - 1) / long(lanes)); };
    curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS, share(settings_.max_connections));
    curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, share(settings_.max_connections_per_host));
    curl_multi_setopt(multi_, CURLMOPT_PIPELINING, long(CURLPIPE_NOTHING));
    curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &Lane::on_socket);
    curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &Lane::on_timer);
    curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
    thread_ = std::thread([this] { run(); });
    // Told apart in top -H and perf (15 characters at most).
    std::string name = "pgstream-http" + std::to_string(index);
    pthread_setname_np(thread_.native_handle(), name.substr(0, 15).c_str());
}

HttpClient::Lane::~Lane() {
    request_stop();
    join();
    idle_.clear();  // their easy handles before the multi handle
    curl_multi_cleanup(multi_);
    close(wake_fd_);
    close(epoll_);
}

HttpClient::HttpClient(HttpClientSettings settings) : settings_(std::move(settings)) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const size_t lanes = std::max<size_t>(settings_.threads, 1);
    lanes_.reserve(lanes);
    for (size_t i = 0; i < lanes; ++i) lanes_.push_back(std::make_unique<Lane>(settings_, i, lanes));
}

HttpClient::~HttpClient() {
    stop();
}

int HttpClient::Lane::on_socket(void*, int socket, int what, void* lane, void*) {
    auto* self = static_cast<Lane*>(lane);
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(self->epoll_, EPOLL_CTL_DEL, socket, nullptr);
        return 0;
    }
    epoll_event event{};
    event.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
    event.data.fd = socket;
    if (epoll_ctl(self->epoll_, EPOLL_CTL_MOD, socket, &event) != 0 && errno == ENOENT)
        epoll_ctl(self->epoll_, EPOLL_CTL_ADD, socket, &event);
    return 0;
}

int HttpClient::Lane::on_timer(void*, long timeout_ms, void* lane) {
    auto* self = static_cast<Lane*>(lane);
    self->timer_set_ = timeout_ms >= 0;
    if (self->timer_set_)
        self->timer_at_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    return 0;
}

std::unique_ptr<HttpClient::Transfer> HttpClient::Lane::take_transfer(HttpRequest& request) {
    std::unique_ptr<Transfer> transfer;
    for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
        if (same_setup((*it)->setup, request)) {
            transfer = std::move(*it);
            idle_.erase(std::next(it).base());
            break;
        }
    }
    const bool set_up = transfer != nullptr;
    if (!transfer && !idle_.empty()) {
        transfer = std::move(idle_.back());
        idle_.pop_back();
        curl_easy_reset(transfer->easy);
        if (transfer->parsed_url) curl_url_cleanup(transfer->parsed_url);
        transfer->parsed_url = nullptr;
    }
    if (!transfer) {
        transfer = std::make_unique<Transfer>();
        transfer->easy = curl_easy_init();
    }
    transfer->request = std::move(request);
    transfer->max_response_bytes = settings_.max_response_bytes;
    transfer->policy =
        transfer->request.address_policy ? transfer->request.address_policy.get() : &settings_.address_policy;
    if (set_up) return transfer;

    CURL* easy = transfer->easy;
    const HttpRequest& r = transfer->request;
    transfer->setup = setup_of(r);
    // A URL with a redirect to follow is given as text: libcurl updates the URL it follows.
    if (!r.follow_redirects) {
        transfer->parsed_url = curl_url();
        if (curl_url_set(transfer->parsed_url, CURLUPART_URL, r.url.c_str(), 0) != CURLUE_OK) {
            curl_url_cleanup(transfer->parsed_url);
            transfer->parsed_url = nullptr;
        }
    }
    if (transfer->parsed_url)
        curl_easy_setopt(easy, CURLOPT_CURLU, transfer->parsed_url);
    else
        curl_easy_setopt(easy, CURLOPT_URL, r.url.c_str());  // libcurl reports what is wrong with it
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, r.method.c_str());
    if (!transfer->setup.sends_body && r.method == "HEAD") curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, long(r.timeout.count()));
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, long(std::min<int64_t>(r.timeout.count(), 10000)));
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, r.follow_redirects ? 1L : 0L);
    if (r.follow_redirects) {
        curl_easy_setopt(easy, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    }
    if (!r.ca_file.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, r.ca_file.c_str());
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, r.verify_tls ? 1L : 0L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, r.verify_tls ? 2L : 0L);
    curl_easy_setopt(easy, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, transfer->error);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, transfer.get());
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, collect_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, transfer.get());
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, open_checked_socket);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, transfer.get());
    curl_easy_setopt(easy, CURLOPT_PRIVATE, transfer.get());
    return transfer;
}

void HttpClient::Lane::recycle(std::unique_ptr<Transfer> transfer) {
    if (idle_.size() >= kMaxIdleTransfers) return;
    // What the next request replaces anyway, released now: an idle transfer holds no payload.
    transfer->request.body.clear();
    transfer->request.shared_body.reset();
    transfer->request.headers.clear();
    transfer->request.shared_headers.reset();
    // The header nodes point into those headers: the idle handle keeps no list to strings that are gone.
    curl_easy_setopt(transfer->easy, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
    transfer->header_nodes.clear();
    transfer->done = nullptr;
    idle_.push_back(std::move(transfer));
}

void HttpClient::Lane::wake() {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t written = write(wake_fd_, &one, sizeof one);
}

void HttpClient::Lane::send(HttpRequest request, Completion done) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!stopping_) {
            const bool was_empty = incoming_.empty();
            incoming_.emplace_back(std::move(request), std::move(done));
            // A send from a completion on this lane's own thread is picked up before it waits again (one
            // from another lane's thread wakes it like any other); a queue that was not empty has its
            // wake-up pending already.
            if (was_empty && std::this_thread::get_id() != thread_.get_id()) wake();
            return;
        }
    }
    HttpResponse stopped;
    stopped.error = "stopped";
    done(std::move(stopped));
}

void HttpClient::Lane::request_stop() {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    wake();
}

void HttpClient::Lane::join() {
    if (thread_.joinable()) thread_.join();
}

HttpClient::Lane& HttpClient::lane_for(const HttpRequest& request) {
    if (lanes_.size() == 1) return *lanes_.front();
    const size_t key = request.affinity ? size_t(*request.affinity) : std::hash<std::string>()(request.url);
    return *lanes_[key % lanes_.size()];
}

void HttpClient::send(HttpRequest request, Completion done) {
    Lane& lane = lane_for(request);
    lane.send(std::move(request), std::move(done));
}

std::future<HttpResponse> HttpClient::start(HttpRequest request) {
    auto promise = std::make_shared<std::promise<HttpResponse>>();
    auto future = promise->get_future();
    send(std::move(request), [promise](HttpResponse response) { promise->set_value(std::move(response)); });
    return future;
}

HttpResponse HttpClient::perform(HttpRequest request) {
    return start(std::move(request)).get();
}

void HttpClient::stop() {
    for (auto& lane : lanes_) lane->request_stop();
    for (auto& lane : lanes_) lane->join();
}

namespace {

// The response of a transfer libcurl reports done with `curl_code`: its status and what went wrong.
void finish(HttpClient::Transfer* transfer, int curl_code) {
    HttpResponse& response = transfer->response;
    curl_easy_getinfo(transfer->easy, CURLINFO_RESPONSE_CODE, &response.status);
    if (!transfer->refusal.empty()) {
        response.address_refused = true;
        response.error = "refused to connect to a " + transfer->refusal +
                         " address (allow its network explicitly to send requests there)";
    } else if (transfer->too_large) {
        response.error = "response larger than " + std::to_string(transfer->max_response_bytes) + " bytes";
    } else if (curl_code != CURLE_OK) {
        response.error = transfer->error[0] ? transfer->error : curl_easy_strerror(CURLcode(curl_code));
    }
}

}  // namespace

void HttpClient::Lane::start_incoming(std::deque<std::pair<HttpRequest, Completion>>& incoming, bool stopping,
                                      std::vector<std::pair<Completion, HttpResponse>>& completed) {
    for (auto& [request, done] : incoming) {
        if (stopping) {
            HttpResponse stopped;
            stopped.error = "stopped";
            completed.emplace_back(std::move(done), std::move(stopped));
            continue;
        }
        std::unique_ptr<Transfer> transfer = take_transfer(request);
        transfer->done = std::move(done);
        transfer->response = HttpResponse();
        transfer->too_large = false;
        transfer->refusal.clear();
        transfer->error[0] = '\0';
        const HttpRequest& r = transfer->request;
        curl_easy_setopt(transfer->easy, CURLOPT_HTTPHEADER, link_headers(*transfer));
        if (transfer->setup.sends_body) {
            const std::string& body = r.shared_body ? *r.shared_body : r.body;
            curl_easy_setopt(transfer->easy, CURLOPT_POSTFIELDS, body.data());
            curl_easy_setopt(transfer->easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.size()));
        }
        curl_multi_add_handle(multi_, transfer->easy);
        active_.push_back(std::move(transfer));
    }
    incoming.clear();
}

void HttpClient::Lane::collect_finished(std::vector<std::pair<Completion, HttpResponse>>& completed) {
    int queued = 0;
    while (CURLMsg* message = curl_multi_info_read(multi_, &queued)) {
        if (message->msg != CURLMSG_DONE) continue;
        Transfer* transfer = nullptr;
        curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &transfer);
        finish(transfer, message->data.result);
        curl_multi_remove_handle(multi_, transfer->easy);
        auto owned = std::find_if(active_.begin(), active_.end(),
                                  [&](const auto& candidate) { return candidate.get() == transfer; });
        completed.emplace_back(std::move(transfer->done), std::move(transfer->response));
        std::unique_ptr<Transfer> finished = std::move(*owned);
        active_.erase(owned);
        recycle(std::move(finished));
    }
}

void HttpClient::Lane::run() {
    std::vector<std::pair<Completion, HttpResponse>> completed;
    std::deque<std::pair<HttpRequest, Completion>> incoming;
    epoll_event events[32];
    int running = 0;
    while (true) {
        bool stopping;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            incoming.swap(incoming_);
            stopping = stopping_;
        }
        start_incoming(incoming, stopping, completed);
        if (stopping) {
            for (auto& transfer : active_) {
                curl_multi_remove_handle(multi_, transfer->easy);
                transfer->response.error = "stopped";
                completed.emplace_back(std::move(transfer->done), std::move(transfer->response));
            }
            active_.clear();
        } else {
            // libcurl's timeouts, and the start of the transfers just added (they ask for a timeout of 0).
            if (timer_set_ && std::chrono::steady_clock::now() >= timer_at_) {
                timer_set_ = false;
                curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
            }
            collect_finished(completed);
        }
        for (auto& [done, response] : completed) done(std::move(response));
        completed.clear();
        if (stopping) break;
        int wait_ms = kMaxWaitMs;
        {
            // Requests sent by those completions (or meanwhile) start without waiting.
            std::lock_guard<std::mutex> lock(mutex_);
            if (!incoming_.empty() || stopping_) wait_ms = 0;
        }
        if (timer_set_ && wait_ms > 0) {
            auto until =
                std::chrono::ceil<std::chrono::milliseconds>(timer_at_ - std::chrono::steady_clock::now());
            wait_ms = int(std::clamp<int64_t>(until.count(), 0, kMaxWaitMs));
        }
        int ready = epoll_wait(epoll_, events, int(std::size(events)), wait_ms);
        for (int i = 0; i < ready; ++i) {
            if (events[i].data.fd == wake_fd_) {
                uint64_t count;
                [[maybe_unused]] ssize_t got = read(wake_fd_, &count, sizeof count);
                continue;
            }
            int mask = 0;
            if (events[i].events & EPOLLIN) mask |= CURL_CSELECT_IN;
            if (events[i].events & EPOLLOUT) mask |= CURL_CSELECT_OUT;
            if (events[i].events & (EPOLLERR | EPOLLHUP)) mask |= CURL_CSELECT_ERR;
            curl_multi_socket_action(multi_, events[i].data.fd, mask, &running);
        }
        collect_finished(completed);
        for (auto& [done, response] : completed) done(std::move(response));
        completed.clear();
    }
}

}  // namespace pgstream
