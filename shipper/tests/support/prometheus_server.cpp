#include "support/prometheus_server.h"

#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>

extern char** environ;

namespace pgstream_it {

PrometheusServer::PrometheusServer(const std::string& target, const std::string& metrics_path,
                                   std::chrono::milliseconds interval) {
    std::string seconds = std::to_string(std::max<int64_t>(1, interval.count() / 1000)) + "s";
    write_file(dir_.file("prometheus.yml"),
               "global:\n  scrape_interval: " + seconds + "\n  evaluation_interval: " + seconds +
                   "\nscrape_configs:\n  - job_name: pgstream\n    metrics_path: " + metrics_path +
                   "\n    scrape_interval: " + seconds + "\n    static_configs:\n      - targets: ['" +
                   target + "']\n");
    for (int attempt = 0; attempt < 3 && pid_ < 0; ++attempt) {
        port_ = refused_port();  // free right now; Prometheus binds it next
        std::string config = "--config.file=" + dir_.file("prometheus.yml");
        std::string storage = "--storage.tsdb.path=" + dir_.file("data");
        std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port_);
        std::vector<std::string> args{"prometheus", config, storage, listen, "--log.level=warn"};
        std::vector<char*> argv;
        for (auto& arg : args) argv.push_back(arg.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        std::string log = dir_.file("prometheus.log");
        posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        pid_t pid;
        int spawned = posix_spawnp(&pid, "prometheus", &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        if (spawned != 0) throw std::runtime_error("cannot start prometheus (apt-get install prometheus)");
        httplib::Client client("127.0.0.1", port_);
        bool ready = wait_until(
            [&] {
                auto response = client.Get("/-/ready");
                return response && response->status == 200;
            },
            std::chrono::seconds(30), std::chrono::milliseconds(100));
        if (ready) {
            pid_ = pid;
            register_cleanup(this, [pid] { ::kill(pid, SIGKILL); });
            break;
        }
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);  // the port may have been taken meanwhile: try another
    }
    if (pid_ < 0)
        throw std::runtime_error("prometheus did not become ready: " +
                                 read_file(dir_.file("prometheus.log")));
}

PrometheusServer::~PrometheusServer() {
    if (pid_ > 0) {
        unregister_cleanup(this);
        ::kill(pid_, SIGTERM);
        if (!wait_until([&] { return ::waitpid(pid_, nullptr, WNOHANG) == pid_; },
                        std::chrono::seconds(10))) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
}

std::optional<std::string> PrometheusServer::query(const std::string& expression) const {
    httplib::Client client("127.0.0.1", port_);
    auto response = client.Get("/api/v1/query", httplib::Params{{"query", expression}}, httplib::Headers{});
    if (!response || response->status != 200) return std::nullopt;
    return response->body;
}

std::string PrometheusServer::targets() const {
    httplib::Client client("127.0.0.1", port_);
    auto response = client.Get("/api/v1/targets");
    return response ? response->body : std::string("(no answer)");
}

}  // namespace pgstream_it
