#include "processor/stdout/line_sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace pgstream {

LineSink::LineSink(int fd, bool owns_fd, std::string name, WriteFunction write)
    : fd_(fd), owns_fd_(owns_fd), name_(std::move(name)), write_(std::move(write)) {
    if (!write_)
        write_ = [](int target, const void* data, size_t size) { return ::write(target, data, size); };
    struct stat status {};
    regular_file_ = ::fstat(fd_, &status) == 0 && S_ISREG(status.st_mode);
    int flags = ::fcntl(fd_, F_GETFL);
    appends_ = flags >= 0 && (flags & O_APPEND) != 0;
    if (regular_file_) cut_torn_last_line();
}

LineSink LineSink::open_file(const std::string& path, mode_t mode, WriteFunction write) {
    // Read access too: a torn last line is found by reading the file's tail.
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, mode);
    if (fd < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
    try {
        return LineSink(fd, true, path, std::move(write));
    } catch (...) {
        ::close(fd);
        throw;
    }
}

LineSink::LineSink(LineSink&& other) noexcept
    : fd_(other.fd_),
      owns_fd_(other.owns_fd_),
      name_(std::move(other.name_)),
      write_(std::move(other.write_)),
      wait_writable_(std::move(other.wait_writable_)),
      regular_file_(other.regular_file_),
      appends_(other.appends_),
      pending_cut_(other.pending_cut_),
      torn_bytes_cut_(other.torn_bytes_cut_),
      unfinished_(std::move(other.unfinished_)),
      unfinished_written_(other.unfinished_written_) {
    other.owns_fd_ = false;
}

LineSink::~LineSink() {
    if (owns_fd_) ::close(fd_);
}

void LineSink::cut_torn_last_line() {
    struct stat status {};
    if (::fstat(fd_, &status) != 0 || status.st_size == 0) return;
    off_t end = status.st_size;
    // Only where the next write goes to the end of the file (appending, or a fresh `>>` redirection).
    if (!appends_ && ::lseek(fd_, 0, SEEK_CUR) != end) return;
    char last = 0;
    if (::pread(fd_, &last, 1, end - 1) != 1 || last == '\n') return;  // unreadable (write-only fd) or whole
    std::vector<char> chunk(64 * 1024);
    off_t line_end = 0;  // just after the last newline, 0 when there is none
    for (off_t chunk_end = end; chunk_end > 0 && line_end == 0;) {
        off_t chunk_start = std::max<off_t>(0, chunk_end - off_t(chunk.size()));
        ssize_t n = ::pread(fd_, chunk.data(), size_t(chunk_end - chunk_start), chunk_start);
        if (n != chunk_end - chunk_start) return;
        for (off_t i = n; i > 0; --i)
            if (chunk[size_t(i - 1)] == '\n') {
                line_end = chunk_start + i;
                break;
            }
        chunk_end = chunk_start;
    }
    cut_back_to(line_end);
    torn_bytes_cut_ = size_t(end - line_end);
}

void LineSink::cut_back_to(off_t offset) {
    if (::ftruncate(fd_, offset) != 0 || (!appends_ && ::lseek(fd_, offset, SEEK_SET) != offset)) {
        int error = errno;
        pending_cut_ = offset;
        throw std::runtime_error("cannot cut " + name_ + " back to its last whole line (" +
                                 std::to_string(offset) + " bytes): " + std::strerror(error));
    }
    pending_cut_ = -1;
}

size_t LineSink::write_from(const char* data, size_t from, size_t size, int* error) {
    while (from < size) {
        ssize_t n = write_(fd_, data + from, size - from);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_writable_) {
            wait_writable_(fd_);
            continue;
        }
        if (n <= 0) {
            *error = n < 0 ? errno : EIO;
            return from;
        }
        from += size_t(n);
    }
    *error = 0;
    return from;
}

void LineSink::write_all(std::string_view text) {
    if (regular_file_)
        write_regular(text);
    else
        write_stream(text);
}

void LineSink::write_regular(std::string_view text) {
    if (pending_cut_ >= 0) cut_back_to(pending_cut_);
    struct stat status {};
    off_t start = appends_ ? (::fstat(fd_, &status) == 0 ? status.st_size : -1) : ::lseek(fd_, 0, SEEK_CUR);
    if (start < 0) throw std::runtime_error("cannot find the end of " + name_ + ": " + std::strerror(errno));
    int error = 0;
    size_t written = write_from(text.data(), 0, text.size(), &error);
    if (error == 0) return;
    std::string why = std::strerror(error);
    if (written > 0) cut_back_to(start);  // throws (and remembers the cut) when it cannot
    throw std::runtime_error("write to " + name_ + " failed: " + why);
}

void LineSink::write_stream(std::string_view text) {
    int error = 0;
    if (!unfinished_.empty()) {
        // The same text again (a retry): go on where the reader's copy stops. Other text: first complete the
        // line the reader has part of.
        bool retry = text == unfinished_;
        size_t end = unfinished_.size();
        if (!retry) {
            size_t newline = unfinished_.find('\n', unfinished_written_);
            bool at_line_start = unfinished_[unfinished_written_ - 1] == '\n';
            end = at_line_start ? unfinished_written_ : newline == std::string::npos ? end : newline + 1;
        }
        unfinished_written_ = write_from(unfinished_.data(), unfinished_written_, end, &error);
        if (error != 0) throw std::runtime_error("write to " + name_ + " failed: " + std::strerror(error));
        unfinished_.clear();
        unfinished_written_ = 0;
        if (retry) return;
    }
    size_t written = write_from(text.data(), 0, text.size(), &error);
    if (error == 0) return;
    if (written > 0) {
        unfinished_.assign(text.data(), text.size());
        unfinished_written_ = written;
    }
    throw std::runtime_error("write to " + name_ + " failed: " + std::strerror(error));
}

void LineSink::sync() {
    if (regular_file_ && ::fdatasync(fd_) != 0)
        throw std::runtime_error("syncing " + name_ + " failed: " + std::strerror(errno));
}

}  // namespace pgstream
