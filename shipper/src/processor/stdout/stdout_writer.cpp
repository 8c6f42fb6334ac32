#include "processor/stdout/stdout_writer.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "wal/record_parser.h"

namespace pgstream {

StdoutWriter::StdoutWriter(StdoutWriterSettings settings, Acknowledger& acknowledger, StopToken stop,
                           std::unique_ptr<OutputMetrics> metrics)
    : settings_(std::move(settings)), stop_(std::move(stop)), metrics_(std::move(metrics)) {
    if (settings_.file.empty() || settings_.file == "-")
        sink_ = std::make_unique<LineSink>(STDOUT_FILENO, false, "standard output", settings_.write_function);
    else
        sink_ =
            std::make_unique<LineSink>(LineSink::open_file(settings_.file, 0644, settings_.write_function));
    if (sink_->torn_bytes_cut() > 0)
        log::warn("stdout writer: cut off a torn last line of ", sink_->torn_bytes_cut(), " bytes from ",
                  sink_->name(), " (a write stopped part way in an earlier run; its events come again)");
    // A pipe or socket is written without blocking, so that a reader that stops reading holds the shutdown
    // no longer than the stop's drain.
    struct stat target {};
    if (::fstat(sink_->fd(), &target) == 0 && (S_ISFIFO(target.st_mode) || S_ISSOCK(target.st_mode))) {
        blocking_flags_ = ::fcntl(sink_->fd(), F_GETFL);
        if (blocking_flags_ >= 0) ::fcntl(sink_->fd(), F_SETFL, blocking_flags_ | O_NONBLOCK);
    }
    sink_->set_wait_writable([this](int fd) {
        if (!stop_.wait_ready_for_delivery(fd, POLLOUT))
            throw Stopped("the shutdown drain ended while the output took no more");
    });
    settings_.batch.max_send_attempts =
        settings_.batch.max_send_attempts ? settings_.batch.max_send_attempts : 5;
    if (metrics_) settings_.batch.on_result = metrics_->result_recorder(std::move(settings_.batch.on_result));
    sender_ = std::make_unique<BatchSender>(
        "stdout writer", settings_.batch, [this](const std::vector<EventPtr>& batch) { write_batch(batch); },
        acknowledger, event_weight, stop_);
    if (metrics_) metrics_->observe_memory(sender_->memory());
}

StdoutWriter::~StdoutWriter() {
    close();
    if (blocking_flags_ >= 0) ::fcntl(sink_->fd(), F_SETFL, blocking_flags_);
}

void StdoutWriter::process(EventPtr event) {
    sender_->submit(std::move(event));
}
void StdoutWriter::flush() {
    sender_->flush();
}
void StdoutWriter::source_idle() {
    sender_->send_pending();
}
void StdoutWriter::close() {
    sender_->close();
}
std::string StdoutWriter::fatal_error() const {
    return sender_->fatal_error();
}

void StdoutWriter::write_batch(const std::vector<EventPtr>& batch) {
    // The whole batch is rendered first and written in one go. A write that fails part way leaves no cut
    // line: a file is cut back to the batch's start (the retry rewrites it whole), a pipe's retry resumes at
    // the byte where the write stopped (the batch renders to the same text).
    buffer_.clear();
    for (const auto& event : batch) {
        buffer_.append_event(*event);
        buffer_.push_back('\n');
    }
    sink_->write_all(buffer_.view());
}

}  // namespace pgstream
