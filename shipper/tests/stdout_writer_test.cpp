// The JSON-lines output never leaves a cut line behind: a write that fails part way (disk full) is cut back
// or resumed, and a torn line left by an earlier run is cut off on start, so every line is one whole event.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>

#include "observability/metrics.h"
#include "processor/stdout/line_sink.h"
#include "processor/stdout/stdout_writer.h"
#include "wal/json.h"
#include "wal/record_parser.h"

namespace pgstream {
namespace {

class CountingAcknowledger : public Acknowledger {
  public:
    void acknowledge(const Event&) override {
        std::lock_guard<std::mutex> lock(mutex);
        ++acked;
    }
    void retain(const Event&, int) override {}
    std::mutex mutex;
    int acked = 0;
};

EventPtr row(int id) {
    auto event = std::make_shared<Event>();
    event->schema = "public";
    event->table = "t";
    Column column;
    column.name = "id";
    column.type = "integer";
    column.value.kind = JsonValue::Kind::Number;
    column.value.text = std::to_string(id);
    event->columns.push_back(column);
    return event;
}

std::string line_of(int id) {
    return event_to_json(*row(id)) + "\n";
}

class TempFile {
  public:
    TempFile() {
        char pattern[] = "/tmp/pgstream-stdout-XXXXXX";
        int fd = ::mkstemp(pattern);
        ::close(fd);
        path = pattern;
    }
    ~TempFile() { ::unlink(path.c_str()); }
    std::string read() const {
        std::ifstream in(path, std::ios::binary);
        std::stringstream text;
        text << in.rdbuf();
        return text.str();
    }
    void write(const std::string& text) const { std::ofstream(path, std::ios::binary) << text; }
    std::string path;
};

// Every line is a whole JSON object; returns the ids in file order.
std::vector<std::string> ids_of(const std::string& text) {
    std::vector<std::string> ids;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        try {
            ids.push_back(parse_json(line).find("columns")->items.at(0).find("value")->text);
        } catch (const std::exception& e) {
            ADD_FAILURE() << "not a whole event line: \"" << line << "\" (" << e.what() << ")";
        }
    }
    EXPECT_TRUE(text.empty() || text.back() == '\n') << "the output ends in a cut line";
    return ids;
}

// Writes half of what it is given and then fails with ENOSPC, `failures` times, before behaving like
// write(2).
struct HalfThenFull {
    int failures;
    bool cut_next = true;
    ssize_t operator()(int fd, const void* data, size_t size) {
        if (failures > 0) {
            if (cut_next && size > 1) {
                cut_next = false;
                return ::write(fd, data, size / 2);
            }
            --failures;
            cut_next = true;
            errno = ENOSPC;
            return -1;
        }
        return ::write(fd, data, size);
    }
};

StdoutWriterSettings writer_settings(const std::string& file) {
    StdoutWriterSettings settings;
    settings.file = file;
    settings.batch.batch_size = 100;
    settings.batch.batch_timeout = std::chrono::milliseconds(1);
    settings.batch.retry_initial = std::chrono::milliseconds(1);
    settings.batch.retry_max = std::chrono::milliseconds(1);
    return settings;
}

TEST(StdoutWriter, ABatchWhoseWriteFailsHalfWayIsWrittenWholeOnceByTheRetry) {
    TempFile file;
    CountingAcknowledger ack;
    StdoutWriterSettings settings = writer_settings(file.path);
    settings.write_function = HalfThenFull{2};
    {
        StdoutWriter writer(settings, ack);
        for (int id = 1; id <= 3; ++id) writer.process(row(id));
        writer.flush();
        EXPECT_EQ(writer.fatal_error(), "");
        writer.close();
    }
    EXPECT_EQ(ack.acked, 3);
    EXPECT_EQ(ids_of(file.read()), (std::vector<std::string>{"1", "2", "3"}));
}

TEST(StdoutWriter, RecordsEveryFailedAttemptAndEveryDeliveryInItsOutputMetrics) {
    TempFile file;
    CountingAcknowledger ack;
    Metrics metrics;
    StdoutWriterSettings settings = writer_settings(file.path);
    settings.batch.batch_timeout = std::chrono::hours(1);  // one batch, cut by the flush
    settings.write_function = HalfThenFull{2};
    std::string text;
    {
        StdoutWriter writer(settings, ack, {}, std::make_unique<OutputMetrics>(metrics, "stdout-writer"));
        for (int id = 1; id <= 3; ++id) writer.process(row(id));
        writer.flush();
        EXPECT_EQ(writer.fatal_error(), "");
        text = metrics.prometheus_text();
        writer.close();
    }
    EXPECT_NE(text.find("pgstream_target_event_outcomes_total{action=\"insert\",outcome=\"retried\",target="
                        "\"stdout-writer\"} 6"),
              std::string::npos)
        << "two failed writes of a batch of three\n"
        << text;
    EXPECT_NE(text.find("pgstream_target_event_outcomes_total{action=\"insert\",outcome=\"delivered\","
                        "target=\"stdout-writer\"} 3"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("pgstream_target_memory_limit{target=\"stdout-writer\"} " +
                        std::to_string(settings.batch.max_queue_bytes)),
              std::string::npos)
        << text;
}

TEST(StdoutWriter, AfterAWriterGaveUpMidWriteTheNextRunAppendsAfterWholeLines) {
    TempFile file;
    CountingAcknowledger ack;
    {
        StdoutWriterSettings settings = writer_settings(file.path);
        settings.write_function = HalfThenFull{1000};  // the disk stays full: the writer gives up
        settings.batch.max_send_attempts = 2;
        StdoutWriter writer(settings, ack);
        writer.process(row(1));
        writer.flush();
        EXPECT_NE(writer.fatal_error(), "");
        writer.close();
    }
    EXPECT_EQ(ack.acked, 0) << "an event that was not written must not be acknowledged";
    {
        StdoutWriter writer(writer_settings(file.path), ack);  // the next run replays event 1
        writer.process(row(1));
        writer.process(row(2));
        writer.flush();
        writer.close();
    }
    EXPECT_EQ(ids_of(file.read()), (std::vector<std::string>{"1", "2"}));
}

// A process killed in the middle of a write(2) (or an older version after a full disk) leaves a torn line:
// the next start cuts it off before appending.
TEST(StdoutWriter, ATornLastLineLeftByAnEarlierRunIsCutOffOnStart) {
    TempFile file;
    std::string torn = line_of(2);
    file.write(line_of(1) + torn.substr(0, torn.size() / 2));
    CountingAcknowledger ack;
    {
        StdoutWriter writer(writer_settings(file.path), ack);
        writer.process(row(2));
        writer.process(row(3));
        writer.flush();
        writer.close();
    }
    EXPECT_EQ(ids_of(file.read()), (std::vector<std::string>{"1", "2", "3"}));

    file.write(torn.substr(0, 5));  // nothing whole at all
    {
        StdoutWriter writer(writer_settings(file.path), ack);
        writer.process(row(4));
        writer.flush();
        writer.close();
    }
    EXPECT_EQ(ids_of(file.read()), (std::vector<std::string>{"4"}));
}

// A pipe cannot be cut back: the retry goes on from the byte where the failed write stopped, and other text
// first completes the line the reader has part of.
TEST(LineSink, OnAPipeARetryResumesWhereTheFailedWriteStopped) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
    auto drain = [&] {
        std::string out;
        char buffer[4096];
        ssize_t n;
        while ((n = ::read(fds[0], buffer, sizeof buffer)) > 0) out.append(buffer, size_t(n));
        return out;
    };
    {
        LineSink sink(fds[1], true, "pipe", HalfThenFull{2});
        const std::string batch = line_of(1) + line_of(2) + line_of(3);
        EXPECT_THROW(sink.write_all(batch), std::runtime_error);
        EXPECT_THROW(sink.write_all(batch), std::runtime_error);
        sink.write_all(batch);
        EXPECT_EQ(ids_of(drain()), (std::vector<std::string>{"1", "2", "3"}));

        LineSink other(fds[1], false, "pipe", HalfThenFull{1});
        // Half of these two lines ends inside the second.
        EXPECT_THROW(other.write_all(line_of(4) + line_of(500000)), std::runtime_error);
        other.write_all(line_of(6));  // not a retry: completes the cut line first
        EXPECT_EQ(ids_of(drain()), (std::vector<std::string>{"4", "500000", "6"}));
        // Cut at a line's end: nothing to complete.
        LineSink third(fds[1], false, "pipe", HalfThenFull{1});
        EXPECT_THROW(third.write_all(line_of(7) + line_of(8)), std::runtime_error);
        third.write_all(line_of(9));
        EXPECT_EQ(ids_of(drain()), (std::vector<std::string>{"7", "9"}));
    }
    ::close(fds[0]);
}

}  // namespace
}  // namespace pgstream
