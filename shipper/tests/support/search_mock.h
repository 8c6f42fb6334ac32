// pgstream-search-mock as a child process for tests: started with arguments, its port (and admin port) read
// from its stdout, killed at the end of the test (or by the crash cleanup).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace pgstream_it {

// The pgstream-search-mock binary built by CMake ($PGSTREAM_BINARY_DIR overrides the build directory).
std::string search_mock_binary();

class SearchMock {
  public:
    explicit SearchMock(std::vector<std::string> args);
    ~SearchMock();
    SearchMock(const SearchMock&) = delete;
    SearchMock& operator=(const SearchMock&) = delete;
    int port() const { return port_; }
    int adminPort() const { return admin_port_; }

  private:
    // A line of the child's stdout, waiting at most 10 s for it.
    std::string readLine();

    pid_t pid_ = -1;
    int stdout_fd_ = -1;
    int port_ = 0;
    int admin_port_ = 0;
};

}  // namespace pgstream_it
