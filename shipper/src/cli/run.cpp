#include <pthread.h>
#include <signal.h>

#include <atomic>
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

int run(const RunOptions& options) {
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
        config = Config::load(options.config_file);
        log::Level level = log::Level::Info;
        std::string level_text = options.log_level.empty() ? config.get_string("PGSTREAM_LOG_LEVEL", "info")
                                                           : options.log_level;
        if (!log::parse_level(level_text, level)) {
            if (options.log_level.empty())
                throw ConfigError("PGSTREAM_LOG_LEVEL", "\"" + level_text + "\" is not one of trace, debug, info, warn, error");
            throw ConfigError("", "invalid --log-level \"" + level_text +
                                      "\": expected trace, debug, info, warn or error");
        }
        std::string format = config.get_string("PGSTREAM_LOG_FORMAT", "text");
        if (format != "text" && format != "json")
            throw ConfigError("PGSTREAM_LOG_FORMAT", "\"" + format + "\" is not one of text, json");
        log::configure(level, format == "json" ? log::Format::Json : log::Format::Text);
        pipeline = Pipeline::build(config);
    } catch (const ConfigError& e) {
        print_error(e.what());
        return kExitUsage;
    }
    for (const auto& key : config.unknown_keys()) log::warn("ignoring unknown setting ", key);

    std::atomic<bool> done{false};
    std::thread watcher([&] {
        int received = 0;
        while (!done) {
            timespec timeout{0, 200 * 1000 * 1000};
            int signal_number = sigtimedwait(&signals, nullptr, &timeout);
            if (signal_number <= 0) continue;
            if (++received == 1) {
                log::info("received ", signal_number == SIGINT ? "SIGINT" : "SIGTERM",
                          ": stopping (draining in-flight events; signal again to exit at once)");
                pipeline->stop();
            } else {
                log::warn("second signal: exiting without draining");
                std::_Exit(kExitFailure);
            }
        }
    });

    std::string error;
    try {
        error = pipeline->run();
    } catch (const std::exception& e) {
        error = e.what();
    }
    done = true;
    watcher.join();
    if (!error.empty()) {
        log::error(error);
        print_error(error);
        return kExitFailure;
    }
    log::info("stopped");
    return kExitOk;
}

}  // namespace pgstream::cli
