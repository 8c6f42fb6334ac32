// The webhook receiver of bench/webhooks and `make demo-webhooks`: a cpp-httplib server on 127.0.0.1 that
// answers every POST with 200.
//
//   receiver PORT_FILE print          prints each delivery (headers that matter and the body) to stdout
//   receiver PORT_FILE bench SAMPLE   counts deliveries; for events of table bench_latency, the time from the
//                                     row's written_us stamp (its insert) to arrival; keeps the first body of
//                                     a bench_rows event in SAMPLE (the wrk payload)
// It writes the port it listens on to PORT_FILE. GET /stats answers "requests=N latencies=M p50_ms=X p99_ms=Y
// rows_first_us=A rows_last_us=B" (first and last arrival of a bench_rows event);
// SIGTERM stops it.
#include <httplib.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

namespace {

httplib::Server* running_server = nullptr;

void on_signal(int) {
    if (running_server) running_server->stop();
}

// written_us of the event's columns, or -1: {"name":"written_us","type":"bigint","value":123}.
long long written_us(const std::string& body) {
    size_t at = body.find("\"written_us\"");
    if (at == std::string::npos) return -1;
    at = body.find("\"value\":", at);
    if (at == std::string::npos) return -1;
    return std::atoll(body.c_str() + at + 8);
}

long long now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::cerr << "usage: receiver PORT_FILE print | receiver PORT_FILE bench SAMPLE_FILE\n";
        return 2;
    }
    const std::string port_file = argv[1];
    const std::string mode = argv[2];
    const std::string sample_file = argc > 3 ? argv[3] : "";
    std::atomic<long long> requests{0};
    std::atomic<long long> first_row_us{0}, last_row_us{0};
    std::mutex mutex;
    std::vector<double> latencies_ms;
    bool sampled = false;

    httplib::Server server;
    server.new_task_queue = [] { return new httplib::ThreadPool(16); };
    server.set_keep_alive_max_count(100000000);
    server.Post(R"(/.*)", [&](const httplib::Request& request, httplib::Response& response) {
        ++requests;
        if (mode == "print") {
            std::lock_guard<std::mutex> lock(mutex);
            std::cout << request.path << " lsn=" << request.get_header_value("X-Pgstream-LSN")
                      << " key=" << request.get_header_value("Idempotency-Key")
                      << (request.has_header("webhook-signature") ? " signed" : "") << "\n  " << request.body
                      << std::endl;
        } else if (request.body.find("\"table\":\"bench_latency\"") != std::string::npos) {
            long long stamp = written_us(request.body);
            if (stamp > 0) {
                std::lock_guard<std::mutex> lock(mutex);
                latencies_ms.push_back(double(now_us() - stamp) / 1000.0);
            }
        } else if (request.body.find("\"table\":\"bench_rows\"") != std::string::npos) {
            // First and last arrival of the backlog: its delivery rate without the shipper's start-up.
            const long long now = now_us();
            long long unset = 0;
            first_row_us.compare_exchange_strong(unset, now);
            long long last = last_row_us.load();
            while (last < now && !last_row_us.compare_exchange_weak(last, now)) {
            }
            if (sampled || sample_file.empty()) {
                response.status = 200;
                return;
            }
            std::lock_guard<std::mutex> lock(mutex);
            if (!sampled) {
                std::ofstream(sample_file) << request.body;
                sampled = true;
            }
        }
        response.status = 200;
    });
    server.Get("/stats", [&](const httplib::Request&, httplib::Response& response) {
        std::vector<double> sorted;
        {
            std::lock_guard<std::mutex> lock(mutex);
            sorted = latencies_ms;
        }
        std::sort(sorted.begin(), sorted.end());
        auto pick = [&](double q) {
            return sorted.empty() ? 0.0 : sorted[size_t(q * double(sorted.size() - 1))];
        };
        char line[300];
        std::snprintf(
            line, sizeof line,
            "requests=%lld latencies=%zu p50_ms=%.2f p99_ms=%.2f rows_first_us=%lld rows_last_us=%lld\n",
            requests.load(), sorted.size(), pick(0.5), pick(0.99), first_row_us.load(), last_row_us.load());
        response.set_content(line, "text/plain");
    });
    int port = server.bind_to_any_port("127.0.0.1");
    if (port <= 0) {
        std::cerr << "receiver: cannot listen on 127.0.0.1\n";
        return 1;
    }
    running_server = &server;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    std::ofstream(port_file) << port << "\n";
    server.listen_after_bind();
    return 0;
}
