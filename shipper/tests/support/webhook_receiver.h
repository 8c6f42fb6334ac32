// A webhook receiver for tests and the benchmark: a cpp-httplib server on 127.0.0.1 that records every
// request it answers, in arrival order, and answers what the test tells it to (200 by default).
#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pgstream_it {

struct ReceivedWebhook {
    std::string path;
    std::map<std::string, std::string> headers;  // names lower-cased
    std::string body;
    std::chrono::steady_clock::time_point arrived;
    int answered = 200;
    std::string header(const std::string& lower_name) const;
};

struct WebhookAnswer {
    int status = 200;
    std::string retry_after;  // a Retry-After header when not empty
};

class WebhookReceiver {
  public:
    using Answer = std::function<WebhookAnswer(const ReceivedWebhook&)>;

    // Listens on `port` (0 = an ephemeral one) right away.
    explicit WebhookReceiver(int port = 0);
    ~WebhookReceiver();
    WebhookReceiver(const WebhookReceiver&) = delete;
    WebhookReceiver& operator=(const WebhookReceiver&) = delete;

    int port() const { return port_; }
    std::string url(const std::string& path = "/hook") const;

    // What to answer from now on (the default answers 200).
    void set_answer(Answer answer);
    // Closes the listening socket: connections are refused until start() listens on the same port again.
    void stop();
    void start();

    // Every request answered so far (copies).
    std::vector<ReceivedWebhook> received() const;
    size_t count() const;
    // Waits until at least `count` requests were answered with a 2xx; false on timeout.
    bool wait_for_delivered(size_t count, std::chrono::milliseconds timeout) const;
    // Requests answered with a 2xx, in arrival order.
    std::vector<ReceivedWebhook> delivered() const;

  private:
    void listen();

    int port_ = 0;
    std::unique_ptr<httplib::Server> server_;
    std::thread thread_;
    mutable std::mutex mutex_;
    mutable std::condition_variable arrived_;
    Answer answer_;
    std::vector<ReceivedWebhook> received_;
    size_t delivered_ = 0;
};

}  // namespace pgstream_it
