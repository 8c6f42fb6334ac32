// Runs a bound cpp-httplib server's accept loop on a thread of its own and stops it, including when the stop
// comes before the loop has begun: httplib's Server::stop() does nothing until its loop runs (is_running()),
// so a stop right after the start would leave the loop running and join() waiting forever.
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>

namespace httplib {
class Server;
}

namespace pgstream {

class HttpServerThread {
  public:
    HttpServerThread() = default;
    HttpServerThread(const HttpServerThread&) = delete;
    HttpServerThread& operator=(const HttpServerThread&) = delete;
    ~HttpServerThread() { stop(); }

    // Serves `server` (already bound) until stop(); `server` must outlive the thread.
    void start(httplib::Server& server);
    // Ends the accept loop and joins the thread. Idempotent; does nothing when never started.
    void stop();
    bool running() const { return thread_.joinable(); }

  private:
    httplib::Server* server_ = nullptr;
    std::thread thread_;
    std::mutex mutex_;
    std::condition_variable loop_ended_changed_;
    bool loop_ended_ = false;
};

}  // namespace pgstream
