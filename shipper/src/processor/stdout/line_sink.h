// An output of whole lines (JSON lines, dead letters) that never leaves a partial line behind where that can
// be helped:
//  - a regular file: a write that fails part way (disk full, I/O error) is cut back to where it started
//    before the error is reported, so the retry (or the next run) appends whole lines after whole lines;
//    and a torn last line left by an earlier process (killed mid-write, a failed cut) is cut off on opening;
//  - a pipe, tty or socket: bytes written cannot be taken back, so a retry of the same text resumes at the
//    byte where the failed write stopped (and other text first completes the cut line).
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>

namespace pgstream {

class LineSink {
  public:
    // write(2) by default; tests inject faults through it.
    using WriteFunction = std::function<ssize_t(int fd, const void* data, size_t size)>;

    // Takes `fd` (closed on destruction when `owns_fd`); `name` goes into errors. Throws std::runtime_error
    // when a torn last line cannot be cut off.
    LineSink(int fd, bool owns_fd, std::string name, WriteFunction write = nullptr);
    // Opens `path` for appending (created with `mode`); throws std::runtime_error naming it on failure.
    static LineSink open_file(const std::string& path, mode_t mode, WriteFunction write = nullptr);
    LineSink(LineSink&& other) noexcept;
    LineSink& operator=(LineSink&&) = delete;
    LineSink(const LineSink&) = delete;
    ~LineSink();

    // Writes all of `text` (whole lines) or throws std::runtime_error, leaving what is described above.
    void write_all(std::string_view text);
    // fdatasync; throws on failure. Only meaningful for files.
    void sync();

    // Called when a non-blocking descriptor is full (EAGAIN): returns once it takes more, or throws, which
    // ends the write (the bytes already written stay written). Without one, EAGAIN fails the write.
    void set_wait_writable(std::function<void(int fd)> wait) { wait_writable_ = std::move(wait); }
    int fd() const { return fd_; }

    // Bytes of a torn last line cut off when the sink was opened (0 when there was none).
    size_t torn_bytes_cut() const { return torn_bytes_cut_; }
    const std::string& name() const { return name_; }

  private:
    void cut_torn_last_line();
    void cut_back_to(off_t offset);
    void write_regular(std::string_view text);
    void write_stream(std::string_view text);
    // Writes data[from, size) or returns the number of bytes written before a failure (with errno set).
    size_t write_from(const char* data, size_t from, size_t size, int* error);

    int fd_ = -1;
    bool owns_fd_ = false;
    std::string name_;
    WriteFunction write_;
    std::function<void(int fd)> wait_writable_;
    bool regular_file_ = false;
    bool appends_ = false;    // O_APPEND: a regular file's writes go to its end whatever the offset
    off_t pending_cut_ = -1;  // a cut back that failed: retried before anything else is written
    size_t torn_bytes_cut_ = 0;
    // Pipes: the text of a write that stopped part way, and how much of it the reader already has.
    std::string unfinished_;
    size_t unfinished_written_ = 0;
};

}  // namespace pgstream
