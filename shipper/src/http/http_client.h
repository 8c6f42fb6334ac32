// The one HTTP client the shipper's HTTP outputs share (webhooks, search stores): libcurl's multi interface
// on a thread of its own, so many requests run at once over reused connections without a thread each.
//
// Every request has a time limit, a response size limit, http/https only, no redirects followed, no proxy
// from the environment, and its connect address checked against an AddressPolicy after DNS resolution.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http/address_policy.h"

namespace pgstream {

struct HttpRequest {
    std::string method = "POST";
    std::string url;
    std::vector<std::string> headers;  // "Name: value"
    // Sent before `headers`: a list that many requests share (a webhook event's headers that are the same for
    // every subscription), neither copied per request nor per attempt.
    std::shared_ptr<const std::vector<std::string>> shared_headers;
    std::string body;
    // Sent instead of `body` when set: one payload shared by many requests (a webhook event going to
    // several subscribers) is neither copied per request nor per attempt.
    std::shared_ptr<const std::string> shared_body;
    std::chrono::milliseconds timeout{10000};
    // Which addresses this request may connect to; nullptr = the client's policy. Outputs whose targets are
    // chosen by different people (an operator's search cluster, a subscriber's webhook) each pass their own.
    // Checked on every new connection; a kept-alive connection to the same host and port is reused as is.
    std::shared_ptr<const AddressPolicy> address_policy;
    // TLS: a CA bundle to verify the server with ("" = the system's), and whether to verify at all.
    std::string ca_file;
    bool verify_tls = true;
    // Follows up to 5 redirects (http and https only); each new connection is checked by the address policy,
    // so a redirect cannot lead into a refused network.
    bool follow_redirects = false;
};

struct HttpResponse {
    long status = 0;  // 0 when no response arrived (see error)
    std::string body;
    std::vector<std::string> headers;  // "Name: value" of the final response, for Retry-After and the like
    std::string error;                 // transport failure: refused, timed out, reset, too large, stopped
    bool address_refused = false;      // the address policy refused the connection (not worth retrying)
    bool ok() const { return error.empty() && status >= 200 && status < 300; }
};

struct HttpClientSettings {
    AddressPolicy address_policy;
    size_t max_response_bytes = 1u << 20;
    long max_connections = 64;
    long max_connections_per_host = 16;
};

class HttpClient {
  public:
    using Completion = std::function<void(HttpResponse)>;

    explicit HttpClient(HttpClientSettings settings = {});
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    // Starts `request`; `done` runs once, on the client's thread, with no lock of the client held. After
    // stop(), `done` runs at once with the error "stopped".
    void send(HttpRequest request, Completion done);
    // send() and wait for the response.
    HttpResponse perform(HttpRequest request);
    // Ends every transfer in flight (their completions report "stopped") and the thread.
    void stop();

    struct Transfer;  // one request in flight (defined in the .cpp; public for libcurl's C callbacks)

  private:
    void run();
    // Starts what send() queued (or completes it with "stopped").
    void start_incoming(std::deque<std::pair<HttpRequest, Completion>>& incoming, bool stopping,
                        std::vector<std::pair<Completion, HttpResponse>>& completed);
    void collect_finished(std::vector<std::pair<Completion, HttpResponse>>& completed);
    void finish(Transfer* transfer, int curl_code);
    // A transfer for `request`: an idle one whose easy handle was set up for the same target and options
    // (only the body and the headers are set again: no curl_easy_reset, no URL parsing per request), else an
    // idle one reset and set up anew, else a new one. libcurl keeps the connections in the multi handle, so
    // this saves per-request set-up work, not connections.
    std::unique_ptr<Transfer> take_transfer(HttpRequest& request);
    void recycle(std::unique_ptr<Transfer> transfer);
    void wake();
    // libcurl's socket and timer callbacks (curl_multi_socket_action): sockets are watched with epoll and
    // only the transfers whose socket is ready run, instead of curl_multi_perform polling every transfer.
    static int on_socket(void* easy, int socket, int what, void* client, void* socket_data);
    static int on_timer(void* multi, long timeout_ms, void* client);

    const HttpClientSettings settings_;
    void* multi_ = nullptr;  // CURLM*
    int epoll_ = -1;
    int wake_fd_ = -1;  // eventfd: send() and stop() from other threads end the client thread's wait
    // libcurl's next timeout (CURLMOPT_TIMERFUNCTION), client thread only.
    bool timer_set_ = false;
    std::chrono::steady_clock::time_point timer_at_;
    std::mutex mutex_;
    std::deque<std::pair<HttpRequest, Completion>> incoming_;
    bool stopping_ = false;
    std::vector<std::unique_ptr<Transfer>> active_;  // client thread only
    std::vector<std::unique_ptr<Transfer>> idle_;    // client thread only
    std::thread thread_;
};

}  // namespace pgstream
