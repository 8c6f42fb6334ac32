#include "http/server_thread.h"

#include <httplib.h>

#include <chrono>

namespace pgstream {

void HttpServerThread::start(httplib::Server& server) {
    server_ = &server;
    loop_ended_ = false;
    thread_ = std::thread([this] {
        server_->listen_after_bind();
        {
            std::lock_guard<std::mutex> lock(mutex_);
            loop_ended_ = true;
        }
        loop_ended_changed_.notify_all();
    });
}

void HttpServerThread::stop() {
    if (!thread_.joinable()) return;
    std::unique_lock<std::mutex> lock(mutex_);
    while (!loop_ended_) {
        if (server_->is_running()) {
            lock.unlock();
            server_->stop();
            lock.lock();
            loop_ended_changed_.wait(lock, [this] { return loop_ended_; });
        } else {
            // The loop has not begun yet: look again shortly (httplib offers nothing to wait on).
            loop_ended_changed_.wait_for(lock, std::chrono::milliseconds(5), [this] { return loop_ended_; });
        }
    }
    lock.unlock();
    thread_.join();
}

}  // namespace pgstream
