#include "webhook_receiver.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace pgstream_it {

std::string ReceivedWebhook::header(const std::string& lower_name) const {
    auto found = headers.find(lower_name);
    return found == headers.end() ? std::string() : found->second;
}

WebhookReceiver::WebhookReceiver(int port) : port_(port) {
    listen();
}

WebhookReceiver::~WebhookReceiver() {
    stop();
}

std::string WebhookReceiver::url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void WebhookReceiver::set_answer(Answer answer) {
    std::lock_guard<std::mutex> lock(mutex_);
    answer_ = std::move(answer);
}

void WebhookReceiver::listen() {
    server_ = std::make_unique<httplib::Server>();
    server_->new_task_queue = [] { return new httplib::ThreadPool(16); };
    server_->set_keep_alive_max_count(1000000);
    // stop() waits for idle keep-alive connections to time out: a second, not httplib's five.
    server_->set_keep_alive_timeout(1);
    server_->Post(R"(/.*)", [this](const httplib::Request& request, httplib::Response& response) {
        ReceivedWebhook webhook;
        webhook.path = request.path;
        for (const auto& [name, value] : request.headers) {
            std::string lower = name;
            std::transform(lower.begin(), lower.end(), lower.begin(),
                           [](unsigned char c) { return char(std::tolower(c)); });
            webhook.headers[lower] = value;
        }
        webhook.body = request.body;
        webhook.arrived = std::chrono::steady_clock::now();
        Answer answer;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            answer = answer_;
        }
        WebhookAnswer decided = answer ? answer(webhook) : WebhookAnswer{};
        webhook.answered = decided.status;
        response.status = decided.status;
        if (!decided.retry_after.empty()) response.set_header("Retry-After", decided.retry_after);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (decided.status >= 200 && decided.status < 300) ++delivered_;
            received_.push_back(std::move(webhook));
        }
        arrived_.notify_all();
    });
    if (port_ == 0) {
        port_ = server_->bind_to_any_port("127.0.0.1");
    } else if (!server_->bind_to_port("127.0.0.1", port_)) {
        throw std::runtime_error("webhook receiver: cannot listen on 127.0.0.1:" + std::to_string(port_));
    }
    if (port_ <= 0) throw std::runtime_error("webhook receiver: cannot listen on 127.0.0.1");
    thread_ = std::thread([server = server_.get()] { server->listen_after_bind(); });
    // stop() before the accept loop runs would be lost (httplib only stops a running server).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!server_->is_running() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
}

void WebhookReceiver::stop() {
    if (!server_) return;
    server_->stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
}

void WebhookReceiver::start() {
    if (!server_) listen();
}

std::vector<ReceivedWebhook> WebhookReceiver::received() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return received_;
}

size_t WebhookReceiver::count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return received_.size();
}

bool WebhookReceiver::wait_for_delivered(size_t count, std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(mutex_);
    return arrived_.wait_for(lock, timeout, [&] { return delivered_ >= count; });
}

std::vector<ReceivedWebhook> WebhookReceiver::delivered() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<ReceivedWebhook> out;
    for (const auto& webhook : received_)
        if (webhook.answered >= 200 && webhook.answered < 300) out.push_back(webhook);
    return out;
}

}  // namespace pgstream_it
