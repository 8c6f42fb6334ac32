#include "http/http_client.h"

#include <curl/curl.h>
#include <sys/socket.h>

#include <algorithm>
#include <future>

namespace pgstream {

struct HttpClient::Transfer {
    HttpRequest request;
    Completion done;
    CURL* easy = nullptr;
    curl_slist* headers = nullptr;
    HttpResponse response;
    size_t max_response_bytes = 0;
    bool too_large = false;
    const AddressPolicy* policy = nullptr;
    std::string refusal;
    char error[CURL_ERROR_SIZE] = {0};

    ~Transfer() {
        if (headers) curl_slist_free_all(headers);
        if (easy) curl_easy_cleanup(easy);
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
    transfer->response.body.append(data, bytes);
    return bytes;
}

size_t collect_header(char* data, size_t size, size_t count, void* user) {
    auto* transfer = static_cast<HttpClient::Transfer*>(user);
    size_t bytes = size * count;
    std::string line(data, bytes);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    auto& headers = transfer->response.headers;
    // A status line starts the headers of the next response (after a 100 Continue, or a redirect followed).
    if (line.rfind("HTTP/", 0) == 0) {
        headers.clear();
    } else if (!line.empty() && headers.size() < 100) {
        headers.push_back(std::move(line));
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

HttpClient::HttpClient(HttpClientSettings settings) : settings_(std::move(settings)) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    multi_ = curl_multi_init();
    curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS, settings_.max_connections);
    curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, settings_.max_connections_per_host);
    thread_ = std::thread([this] { run(); });
}

namespace {
// Idle easy handles kept for reuse: as many as requests commonly in flight at once.
constexpr size_t kMaxIdleEasyHandles = 64;
}  // namespace

HttpClient::~HttpClient() {
    stop();
    for (void* easy : idle_easy_) curl_easy_cleanup(static_cast<CURL*>(easy));
    curl_multi_cleanup(multi_);
}

void* HttpClient::take_easy() {
    if (idle_easy_.empty()) return curl_easy_init();
    CURL* easy = static_cast<CURL*>(idle_easy_.back());
    idle_easy_.pop_back();
    curl_easy_reset(easy);
    return easy;
}

void HttpClient::recycle(void* easy) {
    if (idle_easy_.size() < kMaxIdleEasyHandles)
        idle_easy_.push_back(easy);
    else
        curl_easy_cleanup(static_cast<CURL*>(easy));
}

void HttpClient::send(HttpRequest request, Completion done) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!stopping_) {
            incoming_.emplace_back(std::move(request), std::move(done));
            // A send from a completion, on the client's own thread, is picked up before it polls again.
            if (std::this_thread::get_id() != thread_.get_id()) curl_multi_wakeup(multi_);
            return;
        }
    }
    HttpResponse stopped;
    stopped.error = "stopped";
    done(std::move(stopped));
}

HttpResponse HttpClient::perform(HttpRequest request) {
    auto promise = std::make_shared<std::promise<HttpResponse>>();
    auto future = promise->get_future();
    send(std::move(request), [promise](HttpResponse response) { promise->set_value(std::move(response)); });
    return future.get();
}

void HttpClient::stop() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
        curl_multi_wakeup(multi_);
    }
    if (thread_.joinable()) thread_.join();
}

void HttpClient::finish(Transfer* transfer, int curl_code) {
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

void HttpClient::run() {
    std::vector<std::pair<Completion, HttpResponse>> completed;
    while (true) {
        std::deque<std::pair<HttpRequest, Completion>> incoming;
        bool stopping;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            incoming.swap(incoming_);
            stopping = stopping_;
        }
        for (auto& [request, done] : incoming) {
            auto transfer = std::make_unique<Transfer>();
            transfer->request = std::move(request);
            transfer->done = std::move(done);
            transfer->max_response_bytes = settings_.max_response_bytes;
            transfer->policy = transfer->request.address_policy ? transfer->request.address_policy.get()
                                                                : &settings_.address_policy;
            if (stopping) {
                transfer->response.error = "stopped";
                completed.emplace_back(std::move(transfer->done), std::move(transfer->response));
                continue;
            }
            CURL* easy = transfer->easy = static_cast<CURL*>(take_easy());
            const HttpRequest& r = transfer->request;
            for (const auto& header : r.headers)
                transfer->headers = curl_slist_append(transfer->headers, header.c_str());
            // libcurl sends "Expect: 100-continue" for large bodies and waits for the server: not worth a
            // round trip.
            transfer->headers = curl_slist_append(transfer->headers, "Expect:");
            curl_easy_setopt(easy, CURLOPT_URL, r.url.c_str());
            curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, r.method.c_str());
            const std::string& body = r.shared_body ? *r.shared_body : r.body;
            if (r.method == "POST" || r.method == "PUT" || !body.empty()) {
                curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body.data());
                curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.size()));
            } else if (r.method == "HEAD") {
                curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
            }
            curl_easy_setopt(easy, CURLOPT_HTTPHEADER, transfer->headers);
            curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, long(r.timeout.count()));
            curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                             long(std::min<int64_t>(r.timeout.count(), 10000)));
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
            curl_multi_add_handle(multi_, easy);
            active_.push_back(std::move(transfer));
        }
        if (stopping) {
            for (auto& transfer : active_) {
                curl_multi_remove_handle(multi_, transfer->easy);
                transfer->response.error = "stopped";
                completed.emplace_back(std::move(transfer->done), std::move(transfer->response));
            }
            active_.clear();
        } else {
            int running = 0;
            curl_multi_perform(multi_, &running);
            int queued = 0;
            while (CURLMsg* message = curl_multi_info_read(multi_, &queued)) {
                if (message->msg != CURLMSG_DONE) continue;
                Transfer* transfer = nullptr;
                curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &transfer);
                finish(transfer, message->data.result);
                curl_multi_remove_handle(multi_, transfer->easy);
                recycle(transfer->easy);
                transfer->easy = nullptr;
                auto owned = std::find_if(active_.begin(), active_.end(),
                                          [&](const auto& candidate) { return candidate.get() == transfer; });
                completed.emplace_back(std::move(transfer->done), std::move(transfer->response));
                active_.erase(owned);
            }
        }
        for (auto& [done, response] : completed) done(std::move(response));
        completed.clear();
        if (stopping) break;
        {
            // Requests sent by those completions (or meanwhile) start without waiting for the poll.
            std::lock_guard<std::mutex> lock(mutex_);
            if (!incoming_.empty() || stopping_) continue;
        }
        curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
    }
}

}  // namespace pgstream
