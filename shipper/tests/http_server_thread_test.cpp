#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include "http/server_thread.h"
#include "observability/health_server.h"

namespace pgstream {
namespace {

// Runs `stop` on a thread of its own and fails when it has not returned within 5 s. A hung stop leaks `owner`
// (the stuck thread must not outlive what it uses).
template <typename Owner>
void expect_stops_promptly(std::unique_ptr<Owner> owner, void (*stop)(Owner&), int round) {
    auto stopped = std::make_shared<std::promise<void>>();
    Owner* raw = owner.get();
    std::thread([raw, stop, stopped] {
        stop(*raw);
        stopped->set_value();
    }).detach();
    ASSERT_EQ(stopped->get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready)
        << "stop() hung in round " << round;
    owner.reset();
}

// httplib's stop() does nothing until its accept loop runs on the server thread: a stop that came first would
// leave the loop running and the join waiting forever.
TEST(HttpServerThread, AStopRightAfterTheStartEndsTheServer) {
    struct Served {
        httplib::Server server;
        HttpServerThread thread;
    };
    for (int round = 0; round < 100; ++round) {
        auto served = std::make_unique<Served>();
        ASSERT_GT(served->server.bind_to_any_port("127.0.0.1"), 0);
        served->thread.start(served->server);
        expect_stops_promptly<Served>(
            std::move(served), [](Served& s) { s.thread.stop(); }, round);
        if (HasFatalFailure()) return;
    }
}

TEST(HealthServer, AStopRightAfterTheStartEndsTheServer) {
    Metrics metrics;
    for (int round = 0; round < 100; ++round) {
        auto server =
            std::make_unique<HealthServer>(HealthServerSettings{"127.0.0.1:0", false, "/metrics"}, metrics);
        server->start();
        expect_stops_promptly<HealthServer>(
            std::move(server), [](HealthServer& s) { s.stop(); }, round);
        if (HasFatalFailure()) return;
    }
}

}  // namespace
}  // namespace pgstream
