// Child processes for black-box tests: one-shot commands with captured output, and the long-running
// `pgstream run` shipper, which tests crash (SIGKILL), stop (SIGTERM), restart and starve of readers.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pgstream_it {

using Settings = std::map<std::string, std::string>;

struct CommandResult {
    int exit_code = -1;  // -1 when killed by a signal or by the timeout
    int term_signal = 0;
    bool timed_out = false;
    std::string out;
    std::string err;
    // stderr split into non-empty lines, for "exactly one line" assertions.
    std::vector<std::string> err_lines() const;
    std::string describe() const;  // exit code, signal and both streams, for failure messages
};

// Runs argv[0] (PATH lookup) with extra environment variables; kills it after the timeout.
CommandResult run_command(const std::vector<std::string>& argv, const Settings& extra_env = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(60),
                          const std::vector<std::string>& unset_env = {});

// The `pgstream` CLI built by CMake: $PGSTREAM_BIN, else searched below PGSTREAM_BINARY_DIR. Throws if
// absent.
std::string pgstream_binary();

// `pgstream <args...>` with a clean PGSTREAM_* environment plus extra_env.
CommandResult run_pgstream(const std::vector<std::string>& args, const Settings& extra_env = {},
                           std::chrono::milliseconds timeout = std::chrono::seconds(60));

// A private scratch directory (mkdtemp), removed on destruction unless PGSTREAM_IT_KEEP is set.
class TempDir {
  public:
    explicit TempDir(const std::string& prefix = "pgstream-it");
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

  private:
    std::string path_;
};

void write_file(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);
void append_file(const std::string& path, const std::string& content);
off_t file_size(const std::string& path);  // 0 when missing

// Complete ('\n'-terminated) lines of a file; a torn last line is left out.
std::vector<std::string> read_complete_lines(const std::string& path);

// A TCP port on 127.0.0.1 where nothing listens (bound once, then released): connections are refused.
int refused_port();

// Polls until pred() is true; returns false on timeout.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll = std::chrono::milliseconds(50));

// Last-resort cleanup for a test binary that dies through std::terminate (an exception escaping a helper
// thread, a joinable thread destroyed during unwinding): destructors do not run then, so live clusters and
// shipper processes register here and a terminate handler stops them instead of leaving them running after
// the test.
void register_cleanup(const void* owner, std::function<void()> cleanup);
void unregister_cleanup(const void* owner);

// Runs a callback when the scope ends, also when an assertion or exception leaves it early: tests use it to
// stop and join their helper threads, since a joinable std::thread destroyed during unwinding aborts the
// whole binary.
class ScopeExit {
  public:
    explicit ScopeExit(std::function<void()> on_exit) : on_exit_(std::move(on_exit)) {}
    ~ScopeExit() {
        if (on_exit_) on_exit_();
    }
    ScopeExit(const ScopeExit&) = delete;
    ScopeExit& operator=(const ScopeExit&) = delete;

  private:
    std::function<void()> on_exit_;
};

// `pgstream run -c FILE` as a child process. Settings go to a .env file (or YAML); PGSTREAM_* variables of
// the test's own environment are removed so that only the file and `env` count.
class ShipperProcess {
  public:
    enum class Output { kFile, kPipe };
    enum class ConfigFormat { kEnv, kYaml };

    ShipperProcess(std::string work_dir, Settings settings, std::string name = "shipper");
    ~ShipperProcess();  // SIGKILLs a still-running child
    ShipperProcess(const ShipperProcess&) = delete;
    ShipperProcess& operator=(const ShipperProcess&) = delete;

    Settings& settings() { return settings_; }
    Settings& env() { return env_; }  // extra environment, overrides the file
    void set_config_format(ConfigFormat format) { config_format_ = format; }
    // Uses this text verbatim as the -c file (named file_name in the work directory) instead of settings().
    void set_raw_config(std::string file_name, std::string text) {
        raw_config_name_ = std::move(file_name);
        raw_config_text_ = std::move(text);
    }
    void set_log_level(std::string level) { log_level_ = std::move(level); }
    // The pgstream command started with the -c file: "run" (default) or "snapshot".
    void set_command(std::string command) { command_ = std::move(command); }
    // kFile (default): stdout appended to output_path(); kPipe: stdout is a pipe whose read end is pipe_fd().
    void set_output(Output output) { output_ = output; }

    void start();
    bool running();
    pid_t pid() const { return pid_; }
    void signal(int sig);
    // Waits for exit; returns the wait status, or nullopt on timeout.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    // SIGKILL + reap.
    void kill_hard();
    // SIGTERM (or sig), wait; returns the exit code (-1 if killed by a signal); SIGKILLs on timeout and
    // returns -2.
    int stop(std::chrono::milliseconds timeout = std::chrono::seconds(30), int sig = SIGTERM);

    const std::string& output_path() const { return output_path_; }
    const std::string& stderr_path() const { return stderr_path_; }
    const std::string& config_path() const { return config_path_; }
    int pipe_fd() const { return pipe_read_fd_; }
    // Closes the read end of the kPipe output, like a consumer that went away: the shipper's next write fails
    // with EPIPE.
    void close_pipe();
    std::string stderr_text() const;
    std::string stderr_tail(size_t max_bytes = 3000) const;
    std::vector<std::string> output_lines() const { return read_complete_lines(output_path_); }
    // Resident set size from /proc/PID/status, in KiB; 0 if the process is gone.
    long vm_rss_kib() const;
    int starts() const { return starts_; }

  private:
    void write_config();

    std::string work_dir_;
    std::string name_;
    Settings settings_;
    Settings env_;
    ConfigFormat config_format_ = ConfigFormat::kEnv;
    Output output_ = Output::kFile;
    std::string log_level_;
    std::string command_ = "run";
    std::string raw_config_name_;
    std::string raw_config_text_;
    std::string config_path_;
    std::string output_path_;
    std::string stderr_path_;
    pid_t pid_ = -1;
    int pipe_read_fd_ = -1;
    int starts_ = 0;
};

}  // namespace pgstream_it
