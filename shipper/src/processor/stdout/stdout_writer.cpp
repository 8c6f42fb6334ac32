#include "processor/stdout/stdout_writer.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "wal/record_parser.h"

namespace pgstream {

StdoutWriter::StdoutWriter(StdoutWriterSettings settings, Acknowledger& acknowledger, StopToken stop)
    : settings_(std::move(settings)), stop_(std::move(stop)) {
    if (settings_.file.empty() || settings_.file == "-") {
        fd_ = STDOUT_FILENO;
    } else {
        fd_ = ::open(settings_.file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd_ < 0) throw std::runtime_error("cannot open " + settings_.file + ": " + std::strerror(errno));
        owns_fd_ = true;
    }
    struct stat target {};
    if (::fstat(fd_, &target) == 0 && (S_ISFIFO(target.st_mode) || S_ISSOCK(target.st_mode))) {
        blocking_flags_ = ::fcntl(fd_, F_GETFL);
        if (blocking_flags_ >= 0) ::fcntl(fd_, F_SETFL, blocking_flags_ | O_NONBLOCK);
    }
    settings_.batch.max_send_attempts = settings_.batch.max_send_attempts ? settings_.batch.max_send_attempts : 5;
    sender_ = std::make_unique<BatchSender>(
        "stdout writer", settings_.batch, [this](const std::vector<EventPtr>& batch) { write_batch(batch); },
        acknowledger, event_weight, stop_);
}

StdoutWriter::~StdoutWriter() {
    close();
    if (blocking_flags_ >= 0) ::fcntl(fd_, F_SETFL, blocking_flags_);
    if (owns_fd_) ::close(fd_);
}

void StdoutWriter::process(EventPtr event) { sender_->submit(std::move(event)); }
void StdoutWriter::flush() { sender_->flush(); }
void StdoutWriter::source_idle() { sender_->send_pending(); }
void StdoutWriter::close() { sender_->close(); }
std::string StdoutWriter::fatal_error() const { return sender_->fatal_error(); }

void StdoutWriter::write_batch(const std::vector<EventPtr>& batch) {
    // The whole batch is rendered first and written in one go: no partial line is ever left behind by a
    // failure, and a retry rewrites the batch from its first line.
    buffer_.clear();
    for (const auto& event : batch) {
        append_event_json(buffer_, *event);
        buffer_ += '\n';
    }
    size_t written = 0;
    while (written < buffer_.size()) {
        ssize_t n = ::write(fd_, buffer_.data() + written, buffer_.size() - written);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!stop_.wait_ready_for_delivery(fd_, POLLOUT))
                    throw Stopped("the shutdown drain ended while the output took no more");
                continue;
            }
            throw std::runtime_error(std::string("write failed: ") + std::strerror(errno));
        }
        written += size_t(n);
    }
}

}  // namespace pgstream
