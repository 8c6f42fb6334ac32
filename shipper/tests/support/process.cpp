#include "process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace pgstream_it {

namespace {

using Clock = std::chrono::steady_clock;

// The child's environment: ours, minus PGSTREAM_* (a developer's shell must not leak into the tests) and
// unset_env, plus extra_env.
std::vector<std::string> child_environment(const Settings& extra_env,
                                           const std::vector<std::string>& unset_env,
                                           bool drop_pgstream_settings) {
    std::vector<std::string> env;
    for (char** entry = environ; *entry != nullptr; ++entry) {
        std::string item = *entry;
        std::string name = item.substr(0, item.find('='));
        if (drop_pgstream_settings && name.rfind("PGSTREAM_", 0) == 0) continue;
        if (extra_env.count(name) != 0) continue;
        bool unset = false;
        for (const auto& u : unset_env) unset = unset || u == name;
        if (!unset) env.push_back(item);
    }
    for (const auto& [name, value] : extra_env) env.push_back(name + "=" + value);
    return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
    std::vector<char*> pointers;
    for (auto& s : strings) pointers.push_back(s.data());
    pointers.push_back(nullptr);
    return pointers;
}

// Between fork and exec only async-signal-safe calls: everything is prepared before fork().
[[noreturn]] void exec_child(std::vector<char*>& argv, std::vector<char*>& envp) {
    execvpe(argv[0], argv.data(), envp.data());
    const char message[] = "exec failed\n";
    ssize_t ignored = write(2, message, sizeof message - 1);
    (void)ignored;
    _exit(127);
}

bool exists_executable(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

std::string binary_dir() {
    if (const char* env = getenv("PGSTREAM_BINARY_DIR")) return env;
#ifdef PGSTREAM_BINARY_DIR
    return PGSTREAM_BINARY_DIR;
#else
    return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().parent_path().string() +
           "/build";
#endif
}

std::mutex& cleanup_mutex() {
    static std::mutex mutex;
    return mutex;
}

std::map<const void*, std::function<void()>>& cleanups() {
    static std::map<const void*, std::function<void()>> registry;
    return registry;
}

std::terminate_handler previous_terminate_handler = nullptr;

void terminate_with_cleanup() {
    std::map<const void*, std::function<void()>> pending;
    {
        std::lock_guard<std::mutex> lock(cleanup_mutex());
        pending.swap(cleanups());
    }
    for (auto& [owner, cleanup] : pending) {
        try {
            cleanup();
        } catch (...) {
        }
    }
    if (previous_terminate_handler != nullptr) previous_terminate_handler();
    std::abort();
}

}  // namespace

void register_cleanup(const void* owner, std::function<void()> cleanup) {
    static std::once_flag installed;
    std::call_once(installed,
                   [] { previous_terminate_handler = std::set_terminate(terminate_with_cleanup); });
    std::lock_guard<std::mutex> lock(cleanup_mutex());
    cleanups()[owner] = std::move(cleanup);
}

void unregister_cleanup(const void* owner) {
    std::lock_guard<std::mutex> lock(cleanup_mutex());
    cleanups().erase(owner);
}

std::vector<std::string> CommandResult::err_lines() const {
    std::vector<std::string> lines;
    std::istringstream in(err);
    std::string line;
    while (std::getline(in, line)) {
        if (line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(line);
    }
    return lines;
}

std::string CommandResult::describe() const {
    std::ostringstream text;
    text << "exit=" << exit_code;
    if (term_signal != 0) text << " signal=" << term_signal;
    if (timed_out) text << " (timed out)";
    text << "\n--- stdout ---\n" << out.substr(0, 4000) << "\n--- stderr ---\n" << err.substr(0, 4000);
    return text.str();
}

CommandResult run_command(const std::vector<std::string>& args, const Settings& extra_env,
                          std::chrono::milliseconds timeout, const std::vector<std::string>& unset_env) {
    std::vector<std::string> argv_strings = args;
    std::vector<std::string> env_strings = child_environment(extra_env, unset_env, false);
    auto argv = c_strings(argv_strings);
    auto envp = c_strings(env_strings);

    int out_pipe[2];
    int err_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0)
        throw std::runtime_error("pipe failed");
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        exec_child(argv, envp);
    }
    close(out_pipe[1]);
    close(err_pipe[1]);

    CommandResult result;
    auto deadline = Clock::now() + timeout;
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    int open_streams = 2;
    char buffer[8192];
    while (open_streams > 0) {
        auto remaining =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (remaining <= 0) {
            result.timed_out = true;
            kill(pid, SIGKILL);
            break;
        }
        int ready = poll(fds, 2, static_cast<int>(std::min<long>(remaining, 200)));
        if (ready < 0 && errno != EINTR) break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
            ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
            if (n > 0) {
                (i == 0 ? result.out : result.err).append(buffer, n);
            } else if (n == 0 || errno != EINTR) {
                close(fds[i].fd);
                fds[i].fd = -1;
                --open_streams;
            }
        }
    }
    for (auto& fd : fds) {
        if (fd.fd >= 0) close(fd.fd);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
    return result;
}

std::string pgstream_binary() {
    if (const char* env = getenv("PGSTREAM_BIN")) return env;
    std::string root = binary_dir();
    for (const char* candidate : {"/shipper/pgstream", "/pgstream", "/bin/pgstream", "/shipper/src/pgstream",
                                  "/shipper/src/cli/pgstream", "/src/pgstream"}) {
        if (exists_executable(root + candidate)) return root + candidate;
    }
    std::error_code error;
    for (auto it = std::filesystem::recursive_directory_iterator(root, error);
         !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
        if (it->path().filename() == "CMakeFiles") {
            it.disable_recursion_pending();
            continue;
        }
        if (it->path().filename() == "pgstream" && exists_executable(it->path().string()))
            return it->path().string();
    }
    throw std::runtime_error("pgstream CLI not found below " + root + " (build it, or set PGSTREAM_BIN)");
}

CommandResult run_pgstream(const std::vector<std::string>& args, const Settings& extra_env,
                           std::chrono::milliseconds timeout) {
    std::vector<std::string> argv{pgstream_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> unset;
    for (char** entry = environ; *entry != nullptr; ++entry) {
        std::string item = *entry;
        if (item.rfind("PGSTREAM_", 0) == 0) unset.push_back(item.substr(0, item.find('=')));
    }
    return run_command(argv, extra_env, timeout, unset);
}

TempDir::TempDir(const std::string& prefix) {
    std::string pattern = "/tmp/" + prefix + ".XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
}

TempDir::~TempDir() {
    if (getenv("PGSTREAM_IT_KEEP") != nullptr) {
        fprintf(stderr, "keeping %s\n", path_.c_str());
        return;
    }
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

void write_file(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) throw std::runtime_error("cannot write " + path);
}

void append_file(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    out << content;
    if (!out) throw std::runtime_error("cannot append to " + path);
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    return content.str();
}

off_t file_size(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 ? st.st_size : 0;
}

std::vector<std::string> read_complete_lines(const std::string& path) {
    std::string content = read_file(path);
    std::vector<std::string> lines;
    size_t start = 0;
    while (true) {
        size_t end = content.find('\n', start);
        if (end == std::string::npos) break;
        if (end > start) lines.emplace_back(content, start, end - start);
        start = end + 1;
    }
    return lines;
}

int refused_port() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    bool bound = fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                 getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
    if (fd >= 0) close(fd);
    if (!bound) throw std::runtime_error("cannot find a free TCP port");
    return ntohs(address.sin_port);
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll_interval) {
    auto deadline = Clock::now() + timeout;
    while (true) {
        if (pred()) return true;
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(poll_interval);
    }
}

ShipperProcess::ShipperProcess(std::string work_dir, Settings settings, std::string name)
    : work_dir_(std::move(work_dir)), name_(std::move(name)), settings_(std::move(settings)) {
    output_path_ = work_dir_ + "/" + name_ + ".out.jsonl";
    stderr_path_ = work_dir_ + "/" + name_ + ".stderr.log";
}

ShipperProcess::~ShipperProcess() {
    unregister_cleanup(this);
    if (pid_ > 0) kill_hard();
    if (pipe_read_fd_ >= 0) close(pipe_read_fd_);
}

void ShipperProcess::write_config() {
    std::string text;
    if (!raw_config_name_.empty()) {
        config_path_ = work_dir_ + "/" + raw_config_name_;
        text = raw_config_text_;
    } else if (config_format_ == ConfigFormat::kYaml) {
        config_path_ = work_dir_ + "/" + name_ + ".yaml";
        for (const auto& [key, value] : settings_) text += key + ": \"" + value + "\"\n";
    } else {
        config_path_ = work_dir_ + "/" + name_ + ".env";
        for (const auto& [key, value] : settings_) text += key + "=" + value + "\n";
    }
    write_file(config_path_, text);
}

void ShipperProcess::start() {
    if (pid_ > 0) throw std::runtime_error("shipper already running");
    write_config();
    std::vector<std::string> argv_strings{pgstream_binary(), command_, "-c", config_path_};
    if (!log_level_.empty()) {
        argv_strings.push_back("--log-level");
        argv_strings.push_back(log_level_);
    }
    std::vector<std::string> env_strings = child_environment(env_, {}, true);
    auto argv = c_strings(argv_strings);
    auto envp = c_strings(env_strings);

    int out_fd = -1;
    if (output_ == Output::kPipe) {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
        if (pipe_read_fd_ >= 0) close(pipe_read_fd_);
        pipe_read_fd_ = fds[0];
        out_fd = fds[1];
    } else {
        // O_APPEND: a restarted shipper continues the same file, like a log shipper's stdout redirected with
        // >>.
        out_fd = open(output_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    }
    int err_fd = open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out_fd < 0 || err_fd < 0)
        throw std::runtime_error("cannot open shipper output files in " + work_dir_);
    std::string banner = "==== start #" + std::to_string(starts_ + 1) + " ====\n";
    ssize_t ignored = write(err_fd, banner.data(), banner.size());
    (void)ignored;

    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        dup2(out_fd, 1);
        dup2(err_fd, 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        exec_child(argv, envp);
    }
    close(out_fd);
    close(err_fd);
    pid_ = pid;
    register_cleanup(this, [this] {
        if (pid_ > 0) kill(pid_, SIGKILL);
    });
    ++starts_;
}

void ShipperProcess::close_pipe() {
    if (pipe_read_fd_ >= 0) close(pipe_read_fd_);
    pipe_read_fd_ = -1;
}

bool ShipperProcess::running() {
    if (pid_ <= 0) return false;
    int status = 0;
    pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
        pid_ = -1;
        return false;
    }
    return true;
}

void ShipperProcess::signal(int sig) {
    if (pid_ > 0) kill(pid_, sig);
}

std::optional<int> ShipperProcess::wait_exit(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return std::nullopt;
    auto deadline = Clock::now() + timeout;
    while (true) {
        int status = 0;
        pid_t done = waitpid(pid_, &status, WNOHANG);
        if (done == pid_) {
            pid_ = -1;
            return status;
        }
        if (Clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

void ShipperProcess::kill_hard() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
}

int ShipperProcess::stop(std::chrono::milliseconds timeout, int sig) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    auto status = wait_exit(timeout);
    if (!status) {
        kill_hard();
        return -2;
    }
    return WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
}

std::string ShipperProcess::stderr_text() const {
    return read_file(stderr_path_);
}

std::string ShipperProcess::stderr_tail(size_t max_bytes) const {
    std::string text = stderr_text();
    return text.size() > max_bytes ? text.substr(text.size() - max_bytes) : text;
}

long ShipperProcess::vm_rss_kib() const {
    if (pid_ <= 0) return 0;
    std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return 0;
}

}  // namespace pgstream_it
