#include "support/search_mock.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <stdexcept>

#include "support/process.h"

namespace pgstream_it {

std::string search_mock_binary() {
    const char* dir = std::getenv("PGSTREAM_BINARY_DIR");
    return std::string(dir != nullptr ? dir : PGSTREAM_BINARY_DIR) + "/pgstream-search-mock";
}

SearchMock::SearchMock(std::vector<std::string> args) {
    std::vector<std::string> argv_strings{search_mock_binary()};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& arg : argv_strings) argv.push_back(arg.data());
    argv.push_back(nullptr);
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ == 0) {
        dup2(out[1], 1);
        execv(argv[0], argv.data());
        _exit(127);
    }
    close(out[1]);
    stdout_fd_ = out[0];
    register_cleanup(this, [this] {
        if (pid_ > 0) kill(pid_, SIGKILL);
    });
    bool with_admin = std::find(args.begin(), args.end(), "--admin-listen") != args.end();
    port_ = std::stoi(readLine());
    if (with_admin) admin_port_ = std::stoi(readLine().substr(6));
}

SearchMock::~SearchMock() {
    if (pid_ > 0) {
        kill(pid_, SIGTERM);
        int status = 0;
        waitpid(pid_, &status, 0);
    }
    close(stdout_fd_);
    unregister_cleanup(this);
}

std::string SearchMock::readLine() {
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    char c = 0;
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd ready{stdout_fd_, POLLIN, 0};
        if (poll(&ready, 1, 100) <= 0) continue;
        if (read(stdout_fd_, &c, 1) != 1) break;
        if (c == '\n') return line;
        line += c;
    }
    throw std::runtime_error("pgstream-search-mock printed no port line (got '" + line + "')");
}

}  // namespace pgstream_it
