#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "config/config.h"
#include "pipeline/pipeline.h"
#include "util/log.h"
#include "util/redact.h"

namespace pgstream::cli {

void print_error(const std::string& message) {
    std::cerr << "pgstream: " << redact::scrub(message) << std::endl;
}

namespace {

// `run` and `snapshot`: build the pipeline, watch for signals, run `work` on it.
int run_pipeline(const RunOptions& options, const std::string& tables,
                 const std::function<std::string(Pipeline&)>& work) {
    // Signals are taken by one thread with sigwait; every thread (outputs start some while the
    // pipeline is built) inherits the blocked mask.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    Config config;
    std::unique_ptr<Pipeline> pipeline;
    try {
        // Before loading: the modules' settings are the known keys and their YAML sections the known ones.
        register_builtin_modules();
        config = Config::load(options.config_file);
        log::Level level = log::Level::Info;
        std::string level_text =
            options.log_level.empty() ? config.get_string("PGSTREAM_LOG_LEVEL", "info") : options.log_level;
        if (!log::parse_level(level_text, level)) {
            if (options.log_level.empty())
                throw ConfigError("PGSTREAM_LOG_LEVEL",
                                  "\"" + level_text + "\" is not one of trace, debug, info, warn, error");
            throw ConfigError(
                "", "invalid --log-level \"" + level_text + "\": expected trace, debug, info, warn or error");
        }
        std::string format = config.get_string("PGSTREAM_LOG_FORMAT", "text");
        if (format != "text" && format != "json")
            throw ConfigError("PGSTREAM_LOG_FORMAT", "\"" + format + "\" is not one of text, json");
        log::configure(level, format == "json" ? log::Format::Json : log::Format::Text);
        if (!tables.empty()) config.set("PGSTREAM_POSTGRES_INITIAL_SNAPSHOT_TABLES", tables);
        pipeline = Pipeline::build(config);
    } catch (const ConfigError& e) {
        print_error(e.what());
        return kExitUsage;
    }
    for (const auto& key : config.unknown_keys()) log::warn("ignoring unknown setting ", key);

    // The watcher sleeps in poll() until a signal arrives or the run is over (`done` becomes readable).
    int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC);
    int done = eventfd(0, EFD_CLOEXEC);
    if (signal_fd < 0 || done < 0) {
        print_error("cannot watch for signals: " + std::string(std::strerror(errno)));
        return kExitFailure;
    }
    std::thread watcher([&] {
        int received = 0;
        while (true) {
            pollfd fds[2] = {{signal_fd, POLLIN, 0}, {done, POLLIN, 0}};
            if (::poll(fds, 2, -1) < 0) continue;  // EINTR
            if (fds[1].revents != 0) return;
            signalfd_siginfo info{};
            if (::read(signal_fd, &info, sizeof info) != ssize_t(sizeof info)) continue;
            if (++received == 1) {
                log::info(
                    "received ", info.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM",
                    ": stopping (draining in-flight events for up to PGSTREAM_SHUTDOWN_DRAIN_TIMEOUT; signal "
                    "again to exit at once)");
                pipeline->stop();
            } else {
                log::warn("second signal: exiting without draining");
                std::_Exit(kExitFailure);
            }
        }
    });

    std::string error;
    int failure_code = kExitFailure;
    try {
        error = work(*pipeline);
    } catch (const ConfigError& e) {
        // A table pattern that matches no table is found once the database is asked.
        error = e.what();
        failure_code = kExitUsage;
    } catch (const std::exception& e) {
        error = e.what();
    }
    uint64_t one = 1;
    if (::write(done, &one, sizeof one) != ssize_t(sizeof one)) std::_Exit(kExitFailure);
    watcher.join();
    ::close(signal_fd);
    ::close(done);
    if (!error.empty()) {
        log::error(error);
        print_error(error);
        return failure_code;
    }
    log::info("stopped");
    return kExitOk;
}

}  // namespace

int run(const RunOptions& options) {
    return run_pipeline(options, {}, [](Pipeline& pipeline) { return pipeline.run(); });
}

int snapshot(const SnapshotOptions& options) {
    return run_pipeline(options.run, options.tables,
                        [](Pipeline& pipeline) { return pipeline.snapshot_only(); });
}

}  // namespace pgstream::cli
