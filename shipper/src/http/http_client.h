// The one HTTP client the shipper's HTTP outputs share (webhooks, search stores): libcurl's multi interface
// on threads of its own ("lanes"), so many requests run at once over reused connections without a thread
// each. Building and parsing requests in libcurl costs ~60k instructions each, so at ~14k requests/s one
// thread is a whole core: with several lanes, each its own multi handle and event loop, the client can use
// more cores.
//
// Every request has a time limit, a response size limit, http/https only, no redirects followed, no proxy
// from the environment, and its connect address checked against an AddressPolicy after DNS resolution.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
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
    // Which lane (thread) runs the request: affinity % lanes when set, else a hash of the URL. Requests with
    // the same key share a lane, so they reuse its kept-alive connections and complete on the same thread, in
    // the order they finish (a webhook subscription's requests use its id).
    std::optional<uint64_t> affinity;
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
    // Totals over all lanes: each lane gets its share, rounded up.
    long max_connections = 64;
    long max_connections_per_host = 16;
    // Lanes: threads, each with its own libcurl multi handle (and so its own connections).
    size_t threads = 1;
};

class HttpClient {
  public:
    using Completion = std::function<void(HttpResponse)>;

    explicit HttpClient(HttpClientSettings settings = {});
    ~HttpClient();
    HttpClient(const HttpClient&) = delete;
    HttpClient& operator=(const HttpClient&) = delete;

    // Starts `request` on its lane (HttpRequest::affinity); `done` runs once, on that lane's thread, with no
    // lock of the client held. With several lanes, completions of requests on different lanes run
    // concurrently. After stop(), `done` runs at once with the error "stopped".
    void send(HttpRequest request, Completion done);
    // send(), with the response to wait for when it is needed.
    std::future<HttpResponse> start(HttpRequest request);
    // send() and wait for the response.
    HttpResponse perform(HttpRequest request);
    // Ends every transfer in flight on every lane (their completions report "stopped") and the threads.
    void stop();
    size_t lanes() const { return lanes_.size(); }

    struct Transfer;  // one request in flight (defined in the .cpp; public for libcurl's C callbacks)
    class Lane;       // one thread with its multi handle (defined in the .cpp)

  private:
    Lane& lane_for(const HttpRequest& request);

    const HttpClientSettings settings_;  // the lanes read it (declared first: it outlives them)
    std::vector<std::unique_ptr<Lane>> lanes_;
};

}  // namespace pgstream
