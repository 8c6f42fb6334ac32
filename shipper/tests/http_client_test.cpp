#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "http/http_client.h"

using namespace pgstream;

namespace {

sockaddr_storage address_of(const std::string& text) {
    sockaddr_storage storage{};
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1)
        v4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1)
        v6->sin6_family = AF_INET6;
    else
        ADD_FAILURE() << text;
    return storage;
}

std::string refusal(const AddressPolicy& policy, const std::string& text) {
    auto storage = address_of(text);
    return policy.refusal(reinterpret_cast<sockaddr*>(&storage));
}

class LocalServer {
  public:
    LocalServer() {
        server.Post("/echo", [this](const httplib::Request& request, httplib::Response& response) {
            {
                std::lock_guard<std::mutex> lock(mutex);
                client_ports.insert(request.remote_port);
            }
            response.set_content(request.body, "text/plain");
        });
        // Answers with the request's headers that the tests look at, one "name=value" a line.
        server.Post("/headers", [](const httplib::Request& request, httplib::Response& response) {
            std::string seen;
            for (const char* name : {"X-Shared", "X-Own", "Accept"})
                if (request.has_header(name))
                    seen += std::string(name) + "=" + request.get_header_value(name) + "\n";
            response.set_content(seen, "text/plain");
        });
        server.Get("/big", [](const httplib::Request&, httplib::Response& response) {
            response.set_content(std::string(2 << 20, 'x'), "text/plain");
        });
        server.Get("/hello", [](const httplib::Request&, httplib::Response& response) {
            response.set_content("hello", "text/plain");
        });
        // Nothing listens on 127.0.0.2: a refusal there comes from the policy, before any connection.
        server.Get("/to-other-loopback", [this](const httplib::Request&, httplib::Response& response) {
            response.set_redirect("http://127.0.0.2:" + std::to_string(port) + "/hello");
        });
        server.Get("/to-same-host", [this](const httplib::Request&, httplib::Response& response) {
            response.set_redirect("http://127.0.0.1:" + std::to_string(port) + "/hello");
        });
        server.Get("/redirect", [](const httplib::Request&, httplib::Response& response) {
            response.set_redirect("http://169.254.169.254/latest/meta-data/");
        });
        // Answers with the client's port: which connection the request came on.
        server.Post("/port", [](const httplib::Request& request, httplib::Response& response) {
            response.set_content(std::to_string(request.remote_port), "text/plain");
        });
        server.Get("/slow", [this](const httplib::Request&, httplib::Response& response) {
            std::unique_lock<std::mutex> lock(mutex);
            ++slow_arrived;
            arrived.notify_all();
            released.wait_for(lock, std::chrono::seconds(10), [this] { return release; });
            response.set_content("late", "text/plain");
        });
        // A worker per client connection and no cap on requests per connection, so that what the test sees
        // of connection reuse is the client's doing.
        server.new_task_queue = [] { return new httplib::ThreadPool(20); };
        server.set_keep_alive_max_count(100000);
        port = server.bind_to_any_port("127.0.0.1");
        thread = std::thread([this] { server.listen_after_bind(); });
    }
    ~LocalServer() {
        {
            std::lock_guard<std::mutex> lock(mutex);
            release = true;
        }
        released.notify_all();
        server.stop();
        thread.join();
    }
    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(port) + path;
    }

    httplib::Server server;
    int port = 0;
    std::thread thread;
    std::mutex mutex;
    std::condition_variable released;
    bool release = false;
    std::condition_variable arrived;
    int slow_arrived = 0;
    std::set<int> client_ports;
};

HttpClientSettings local_allowed() {
    HttpClientSettings settings;
    settings.address_policy = AddressPolicy({*Network::parse("127.0.0.0/8")});
    return settings;
}

HttpClientSettings two_lanes() {
    HttpClientSettings settings = local_allowed();
    settings.threads = 2;
    return settings;
}

struct Answer {
    HttpResponse response;
    std::thread::id thread;  // the one its completion ran on
};

Answer send_and_wait(HttpClient& client, HttpRequest request) {
    std::promise<Answer> promise;
    auto future = promise.get_future();
    client.send(std::move(request), [&](HttpResponse response) {
        promise.set_value({std::move(response), std::this_thread::get_id()});
    });
    return future.get();
}

}  // namespace

TEST(AddressPolicy, RefusesSpecialPurposeAddressesByDefault) {
    AddressPolicy policy;
    EXPECT_EQ(refusal(policy, "127.0.0.1"), "loopback");
    EXPECT_EQ(refusal(policy, "::1"), "loopback");
    EXPECT_EQ(refusal(policy, "::ffff:127.0.0.1"), "loopback");
    EXPECT_EQ(refusal(policy, "169.254.169.254"), "link-local");
    EXPECT_EQ(refusal(policy, "10.1.2.3"), "private");
    EXPECT_EQ(refusal(policy, "172.31.255.255"), "private");
    EXPECT_EQ(refusal(policy, "192.168.0.1"), "private");
    EXPECT_EQ(refusal(policy, "fd00::1"), "private");
    EXPECT_EQ(refusal(policy, "fe80::1"), "link-local");
    EXPECT_EQ(refusal(policy, "224.0.0.1"), "multicast");
    EXPECT_EQ(refusal(policy, "0.0.0.0"), "unspecified");
    EXPECT_EQ(refusal(policy, "::"), "unspecified");
    EXPECT_EQ(refusal(policy, "93.184.216.34"), "");
    EXPECT_EQ(refusal(policy, "172.32.0.1"), "");
    EXPECT_EQ(refusal(policy, "2606:4700::1111"), "");
}

TEST(AddressPolicy, AllowedNetworksOpenOnlyThemselves) {
    AddressPolicy policy({*Network::parse("10.0.0.0/16"), *Network::parse("::1")});
    EXPECT_EQ(refusal(policy, "10.0.200.1"), "");
    EXPECT_EQ(refusal(policy, "10.1.0.1"), "private");
    EXPECT_EQ(refusal(policy, "::1"), "");
    EXPECT_EQ(refusal(policy, "127.0.0.1"), "loopback");
    for (std::string bad : {"10.0.0.0/33", "host", "10.0.0/8", "::1/129", "1.2.3.4/"})
        EXPECT_FALSE(Network::parse(bad)) << bad;
}

TEST(HttpClient, RefusesLoopbackUnlessAllowed) {
    LocalServer server;
    HttpClient client;
    HttpRequest request;
    request.url = server.url("/echo");
    request.body = "hello";
    HttpResponse response = client.perform(request);
    EXPECT_TRUE(response.address_refused);
    EXPECT_NE(response.error.find("loopback"), std::string::npos) << response.error;

    HttpClient allowed(local_allowed());
    response = allowed.perform(request);
    EXPECT_TRUE(response.ok()) << response.error;
    EXPECT_EQ(response.body, "hello");
}

TEST(HttpClient, ManyConcurrentRequestsReuseConnections) {
    LocalServer server;
    HttpClient client(local_allowed());
    constexpr int kRequests = 200;
    std::mutex mutex;
    std::condition_variable all_done;
    int done = 0, ok = 0;
    for (int round = 0; round < 4; ++round) {
        for (int i = 0; i < kRequests / 4; ++i) {
            HttpRequest request;
            request.url = server.url("/echo");
            request.body = std::to_string(i);
            std::string expected = request.body;
            client.send(request, [&, expected](HttpResponse response) {
                std::lock_guard<std::mutex> lock(mutex);
                ++done;
                if (response.ok() && response.body == expected) ++ok;
                all_done.notify_all();
            });
        }
        std::unique_lock<std::mutex> lock(mutex);
        ASSERT_TRUE(all_done.wait_for(lock, std::chrono::seconds(30),
                                      [&] { return done == (round + 1) * kRequests / 4; }));
    }
    EXPECT_EQ(ok, kRequests);
    std::lock_guard<std::mutex> lock(server.mutex);
    // Without reuse every request would open a connection of its own (200); libcurl may open a few more than
    // max_connections_per_host while earlier ones are closing.
    EXPECT_LE(server.client_ports.size(), 32u) << "connections are reused";
}

// One payload for many requests (a webhook event for several subscribers) is sent as is, and an easy handle
// reused after a POST carries none of its options into the next request.
TEST(HttpClient, SendsASharedBodyAndReusedHandlesStartClean) {
    LocalServer server;
    HttpClient client(local_allowed());
    HttpRequest post;
    post.url = server.url("/echo");
    post.body = "not this";
    post.shared_body = std::make_shared<const std::string>("shared payload");
    HttpResponse response = client.perform(post);
    ASSERT_TRUE(response.ok()) << response.error;
    EXPECT_EQ(response.body, "shared payload");

    HttpRequest get;
    get.method = "GET";
    get.url = server.url("/hello");
    response = client.perform(get);
    ASSERT_TRUE(response.ok()) << response.error;
    EXPECT_EQ(response.body, "hello");
}

// Shared headers go out with the request's own, libcurl's default "Accept: */*" does not, and a handle reused
// for the same URL sends only the next request's headers.
TEST(HttpClient, SendsSharedAndOwnHeadersAndReusedHandlesKeepNone) {
    LocalServer server;
    HttpClient client(local_allowed());
    HttpRequest first;
    first.url = server.url("/headers");
    first.shared_headers = std::make_shared<const std::vector<std::string>>(
        std::vector<std::string>{"X-Shared: one", "Accept: application/json"});
    first.headers = {"X-Own: two"};
    first.body = "small";
    HttpResponse response = client.perform(first);
    ASSERT_TRUE(response.ok()) << response.error;
    EXPECT_EQ(response.body, "X-Shared=one\nX-Own=two\nAccept=application/json\n");

    HttpRequest second;
    second.url = server.url("/headers");
    second.headers = {"X-Own: three"};
    second.body = "small";
    response = client.perform(second);
    ASSERT_TRUE(response.ok()) << response.error;
    EXPECT_EQ(response.body, "X-Own=three\n");
}

// A request sent from a completion (on the client's thread, which skips the wake-up) starts at once, not at
// the next poll timeout (1 s): 20 chained requests take well under 20 s.
TEST(HttpClient, ARequestSentFromACompletionStartsAtOnce) {
    LocalServer server;
    HttpClient client(local_allowed());
    constexpr int kChained = 20;
    std::mutex mutex;
    std::condition_variable finished;
    int done = 0;
    std::function<void(HttpResponse)> next = [&](HttpResponse response) {
        {
            std::lock_guard<std::mutex> lock(mutex);
            if (!response.ok() || ++done == kChained) {
                finished.notify_all();
                return;
            }
        }
        HttpRequest request;
        request.url = server.url("/echo");
        client.send(request, next);
    };
    const auto started = std::chrono::steady_clock::now();
    HttpRequest first;
    first.url = server.url("/echo");
    client.send(first, next);
    std::unique_lock<std::mutex> lock(mutex);
    ASSERT_TRUE(finished.wait_for(lock, std::chrono::seconds(30), [&] { return done == kChained; })) << done;
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}

TEST(HttpClient, LimitsResponseSizeAndDoesNotFollowRedirects) {
    LocalServer server;
    HttpClient client(local_allowed());
    HttpRequest big;
    big.method = "GET";
    big.url = server.url("/big");
    HttpResponse response = client.perform(big);
    EXPECT_NE(response.error.find("larger than"), std::string::npos) << response.error;

    HttpRequest redirect;
    redirect.method = "GET";
    redirect.url = server.url("/redirect");
    response = client.perform(redirect);
    EXPECT_EQ(response.status, 302);
    EXPECT_FALSE(response.ok());
}

// The shared client serves outputs whose targets different people choose: each request brings its own policy.
TEST(HttpClient, ARequestsOwnAddressPolicyReplacesTheClients) {
    LocalServer server;
    HttpClient refusing;  // public addresses only
    HttpRequest request;
    request.url = server.url("/echo");
    request.body = "hello";
    request.address_policy =
        std::make_shared<AddressPolicy>(std::vector<Network>{*Network::parse("127.0.0.1")});
    HttpResponse response = refusing.perform(request);
    EXPECT_TRUE(response.ok()) << response.error;

    HttpClient allowing(local_allowed());
    request.address_policy = std::make_shared<AddressPolicy>();
    response = allowing.perform(request);
    EXPECT_TRUE(response.address_refused) << "the request's stricter policy wins: " << response.status;

    // A followed redirect is checked hop by hop: 127.0.0.2 is outside the request's allowed host.
    HttpRequest redirected;
    redirected.method = "GET";
    redirected.url = server.url("/to-other-loopback");
    redirected.follow_redirects = true;
    redirected.address_policy =
        std::make_shared<AddressPolicy>(std::vector<Network>{*Network::parse("127.0.0.1")});
    response = allowing.perform(redirected);
    EXPECT_TRUE(response.address_refused) << response.status << " " << response.error;
    redirected.url = server.url("/to-same-host");
    response = allowing.perform(redirected);
    EXPECT_EQ(response.status, 200) << "the redirect is followed where allowed: " << response.error;
    EXPECT_EQ(response.body, "hello");
}

TEST(HttpClient, TimesOutAndStopsPromptly) {
    LocalServer server;
    HttpClient client(local_allowed());
    HttpRequest slow;
    slow.method = "GET";
    slow.url = server.url("/slow");
    slow.timeout = std::chrono::milliseconds(300);
    HttpResponse response = client.perform(slow);
    EXPECT_NE(response.error, "");
    EXPECT_EQ(response.status, 0);

    slow.timeout = std::chrono::seconds(60);
    std::promise<HttpResponse> pending;
    auto future = pending.get_future();
    client.send(slow, [&](HttpResponse r) { pending.set_value(std::move(r)); });
    auto started = std::chrono::steady_clock::now();
    client.stop();
    ASSERT_EQ(future.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    EXPECT_EQ(future.get().error, "stopped");
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
    HttpResponse after = client.perform(slow);
    EXPECT_EQ(after.error, "stopped");
}

// With two lanes, requests spread over both threads (by affinity, else by URL) and each completes once.
TEST(HttpClient, TwoLanesCompleteEveryRequestOnce) {
    LocalServer server;
    HttpClient client(two_lanes());
    ASSERT_EQ(client.lanes(), 2u);
    constexpr int kRequests = 400;
    std::mutex mutex;
    std::condition_variable all_done;
    std::vector<int> completions(kRequests, 0);
    std::set<std::thread::id> threads;
    int done = 0, ok = 0;
    for (int i = 0; i < kRequests; ++i) {
        HttpRequest request;
        // A quarter without affinity: those go by their URL's hash (two URLs).
        request.url = server.url(i % 8 == 0 ? "/echo" : "/echo?other");
        if (i % 4 != 0) request.affinity = uint64_t(i % 10);
        request.body = std::to_string(i);
        client.send(request, [&, i](HttpResponse response) {
            std::lock_guard<std::mutex> lock(mutex);
            ++completions[i];
            ++done;
            if (response.ok() && response.body == std::to_string(i)) ++ok;
            threads.insert(std::this_thread::get_id());
            all_done.notify_all();
        });
    }
    std::unique_lock<std::mutex> lock(mutex);
    ASSERT_TRUE(all_done.wait_for(lock, std::chrono::seconds(30), [&] { return done == kRequests; })) << done;
    EXPECT_EQ(ok, kRequests);
    for (int i = 0; i < kRequests; ++i) EXPECT_EQ(completions[i], 1) << i;
    EXPECT_EQ(threads.size(), 2u) << "both lanes ran requests";
}

// Requests with the same affinity run on one lane: they reuse its kept-alive connection and complete on its
// thread; another key (on the other lane) has a connection and a thread of its own.
TEST(HttpClient, SameAffinitySameLaneAndConnection) {
    LocalServer server;
    HttpClient client(two_lanes());
    std::map<uint64_t, std::set<std::string>> ports;
    std::map<uint64_t, std::set<std::thread::id>> threads;
    for (int round = 0; round < 10; ++round) {
        for (uint64_t key : {uint64_t(4), uint64_t(7)}) {
            HttpRequest request;
            request.url = server.url("/port");
            request.body = "which connection";
            request.affinity = key;
            Answer answer = send_and_wait(client, request);
            ASSERT_TRUE(answer.response.ok()) << answer.response.error;
            ports[key].insert(answer.response.body);
            threads[key].insert(answer.thread);
        }
    }
    for (uint64_t key : {uint64_t(4), uint64_t(7)}) {
        EXPECT_EQ(ports[key].size(), 1u) << "affinity " << key << " reuses one connection";
        EXPECT_EQ(threads[key].size(), 1u) << "affinity " << key << " completes on one thread";
    }
    EXPECT_NE(*ports[4].begin(), *ports[7].begin());
    EXPECT_NE(*threads[4].begin(), *threads[7].begin()) << "4 % 2 and 7 % 2 are different lanes";
}

// stop() ends the transfers in flight on every lane: each reports "stopped", promptly.
TEST(HttpClient, StopEndsTransfersOnEveryLane) {
    LocalServer server;
    HttpClient client(two_lanes());
    std::promise<Answer> answers[2];
    for (uint64_t key : {uint64_t(0), uint64_t(1)}) {
        HttpRequest slow;
        slow.method = "GET";
        slow.url = server.url("/slow");
        slow.timeout = std::chrono::seconds(60);
        slow.affinity = key;
        client.send(slow, [&answers, key](HttpResponse response) {
            answers[key].set_value({std::move(response), std::this_thread::get_id()});
        });
    }
    {
        // Both are in flight: the server holds them.
        std::unique_lock<std::mutex> lock(server.mutex);
        ASSERT_TRUE(server.arrived.wait_for(lock, std::chrono::seconds(10),
                                            [&] { return server.slow_arrived == 2; }));
    }
    auto started = std::chrono::steady_clock::now();
    client.stop();
    std::set<std::thread::id> threads;
    for (auto& answer : answers) {
        auto future = answer.get_future();
        ASSERT_EQ(future.wait_for(std::chrono::seconds(5)), std::future_status::ready);
        Answer got = future.get();
        EXPECT_EQ(got.response.error, "stopped");
        threads.insert(got.thread);
    }
    EXPECT_EQ(threads.size(), 2u) << "one transfer on each lane";
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}
