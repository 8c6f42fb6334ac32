// The Kafka batch writer (a pipeline output) and the Kafka listener against the mock cluster: records keyed
// by schema, per-schema order, acknowledgements only after delivery (also across a 10 s outage), the
// oversized-record rule, and Kafka → stdout with offset commits.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "kafka/kafka_listener.h"
#include "kafka/kafka_writer.h"
#include "kafka/record_key.h"
#include "kafka_mock_fixture.h"
#include "observability/metrics.h"
#include "observability/output_metrics.h"
#include "processor/stdout/stdout_writer.h"
#include "wal/event_codec.h"
#include "wal/record_parser.h"

namespace pgstream::kafka {
namespace {

using testing::KafkaMockTest;
using namespace std::chrono_literals;

class RecordingAcknowledger : public Acknowledger {
  public:
    void acknowledge(const Event& event) override {
        std::lock_guard lock(mutex_);
        tokens_.push_back(event.checkpoint_token);
    }
    void retain(const Event&, int) override {}
    std::vector<uint64_t> tokens() const {
        std::lock_guard lock(mutex_);
        return tokens_;
    }

  private:
    mutable std::mutex mutex_;
    std::vector<uint64_t> tokens_;
};

JsonValue jsonNumber(int n) {
    JsonValue value;
    value.kind = JsonValue::Kind::Number;
    value.text = std::to_string(n);
    return value;
}

JsonValue jsonString(const std::string& text) {
    JsonValue value;
    value.kind = JsonValue::Kind::String;
    value.text = text;
    return value;
}

// Event n of a stream that round-robins over three schemas.
MutableEventPtr makeEvent(uint64_t n, const std::string& schema) {
    auto event = std::make_shared<Event>();
    event->action = n % 7 == 3 ? Action::Update : Action::Insert;
    event->xid = std::to_string(1000 + n / 4);
    event->timestamp = "2026-11-25 16:00:00.000000+00";
    event->lsn = Lsn(0x1000000 + n * 0x100);
    event->commit_lsn = Lsn(0x1000000 + (n / 4 * 4 + 3) * 0x100 + 0x80);
    event->schema = schema;
    event->table = "orders";
    event->columns.push_back(Column{"t1-1", "id", "integer", jsonNumber(static_cast<int>(n))});
    event->columns.push_back(Column{"t1-2", "note", "text", jsonString("row \"" + std::to_string(n) + "\"")});
    if (event->action == Action::Update) {
        event->has_identity = true;
        event->identity.push_back(Column{"t1-1", "id", "integer", jsonNumber(static_cast<int>(n))});
    }
    event->metadata.schema_id = "schema-version-1";
    event->metadata.table_pgstream_id = "t1";
    event->metadata.id_col_pgstream_ids = {"t1-1"};
    event->metadata.version = event->lsn.str();
    event->checkpoint_token = n + 1;
    return event;
}

MutableEventPtr makeSchemaLogEvent(uint64_t n, const std::string& described_schema) {
    auto event = makeEvent(n, "pgstream");
    event->table = "schema_log";
    event->columns = {Column{"", "schema_name", "text", jsonString(described_schema)},
                      Column{"", "version", "bigint", jsonNumber(2)}};
    event->metadata = {};
    return event;
}

// The value of one series in Prometheus text ("name{labels}" as served), or -1 when it is not there.
double sampleOf(const std::string& text, const std::string& series) {
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line))
        if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
    return -1;
}

class KafkaWriterTest : public KafkaMockTest {
  protected:
    WriterSettings settingsFor(const std::string& topic) {
        WriterSettings settings;
        settings.connection.servers = servers();
        settings.connection.topic = topic;
        settings.batch_size = 10;
        settings.batch_timeout = 50ms;
        return settings;
    }

    // A consumer group "<topic>-group" committing every 100 ms.
    ReaderSettings readerSettingsFor(const std::string& topic) {
        ReaderSettings settings;
        settings.connection.servers = servers();
        settings.connection.topic = topic;
        settings.consumer_group_id = topic + "-group";
        settings.commit_interval = 100ms;
        return settings;
    }

    static bool waitFor(const std::function<bool()>& predicate, std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!predicate()) {
            if (std::chrono::steady_clock::now() >= deadline) return false;
            std::this_thread::sleep_for(10ms);
        }
        return true;
    }
};

// Construction does no network I/O: brokers that are down at start-up are a runtime condition (retried and
// reported by readiness()), and the writer delivers once they are up.
TEST_F(KafkaWriterTest, BrokersDownAtStartUpAreRetriedAndReportedNotReadyThenDelivered) {
    cluster().createTopic("created-late", 3);
    cluster().setAllBrokersDown();
    RecordingAcknowledger acks;
    WriterSettings settings = settingsFor("created-late");
    const auto before = std::chrono::steady_clock::now();
    KafkaWriter writer(settings, acks);
    EXPECT_LT(std::chrono::steady_clock::now() - before, 2s) << "the constructor waited for a broker";
    writer.start();
    EXPECT_NE(writer.readiness(), "");
    for (uint64_t n = 0; n < 5; ++n) writer.process(makeEvent(n, "s1"));
    EXPECT_TRUE(acks.tokens().empty());
    cluster().setAllBrokersUp();
    ASSERT_TRUE(waitFor([&] { return acks.tokens().size() == 5; }, 60s)) << writer.readiness();
    EXPECT_EQ(writer.readiness(), "");
    writer.close();
    EXPECT_EQ(readTopic("created-late", 3, 5).size(), 5u);
}

TEST_F(KafkaWriterTest, WritesEventsOfThreeSchemasKeyedBySchemaInOrder) {
    cluster().createTopic("cdc", 3);
    RecordingAcknowledger acks;
    const std::vector<std::string> schemas = {"sales", "billing", "hr"};
    std::vector<EventPtr> sent;
    {
        KafkaWriter writer(settingsFor("cdc"), acks);
        for (uint64_t n = 0; n < 299; ++n) sent.push_back(makeEvent(n, schemas[n % 3]));
        // A schema change of "billing" travels with billing's rows.
        sent.push_back(makeSchemaLogEvent(299, "billing"));
        for (const auto& event : sent) writer.process(event);
        writer.flush();
        EXPECT_EQ(writer.fatal_error(), "");
        EXPECT_EQ(writer.counters().delivered, 300u);
        writer.close();
    }
    std::vector<uint64_t> expected_tokens;
    for (const auto& event : sent) expected_tokens.push_back(event->checkpoint_token);
    EXPECT_EQ(acks.tokens(), expected_tokens) << "every event acknowledged once, in order";

    auto records = readTopic("cdc", 3, sent.size());
    ASSERT_EQ(records.size(), sent.size());
    std::map<std::string, int32_t> partition_of_key;
    std::map<std::string, uint64_t> last_lsn_of_key;
    size_t matched = 0;
    for (const auto& record : records) {
        auto [it, inserted] = partition_of_key.emplace(record.key, record.partition);
        EXPECT_EQ(it->second, record.partition) << "key " << record.key << " spans partitions";
        EventPtr decoded = event_from_json(record.value);
        const uint64_t n = (decoded->lsn.value - 0x1000000) / 0x100;
        ASSERT_LT(n, sent.size());
        const Event& original = *sent[n];
        EXPECT_EQ(record.key, kafkaKey(original));
        EXPECT_EQ(record.value, event_to_json(original)) << "value = the event's JSON line";
        EXPECT_EQ(decoded->metadata.table_pgstream_id, original.metadata.table_pgstream_id);
        EXPECT_EQ(decoded->metadata.schema_id, original.metadata.schema_id);
        EXPECT_EQ(decoded->metadata.id_col_pgstream_ids, original.metadata.id_col_pgstream_ids);
        EXPECT_EQ(decoded->commit_lsn, original.commit_lsn);
        EXPECT_EQ(event_to_json(*decoded), record.value) << "decode(encode(e)) == e";
        auto last = last_lsn_of_key.find(record.key);
        if (last != last_lsn_of_key.end()) {
            EXPECT_GT(decoded->lsn.value, last->second) << "order within schema " << record.key;
        }
        last_lsn_of_key[record.key] = decoded->lsn.value;
        ++matched;
    }
    EXPECT_EQ(matched, sent.size());
    EXPECT_EQ(partition_of_key.size(), 3u)
        << "keys: the three schemas (the schema_log event is keyed billing)";
    EXPECT_EQ(kafkaKey(*sent.back()), "billing");
}

TEST_F(KafkaWriterTest, AcknowledgesOnlyDeliveredEventsAcrossATenSecondOutage) {
    cluster().createTopic("outage", 3);
    RecordingAcknowledger acks;
    const std::vector<std::string> schemas = {"a", "b", "c"};
    KafkaWriter writer(settingsFor("outage"), acks);
    for (uint64_t n = 0; n < 30; ++n) writer.process(makeEvent(n, schemas[n % 3]));
    writer.flush();
    ASSERT_EQ(acks.tokens().size(), 30u);

    cluster().setAllBrokersDown();
    const auto outage_start = std::chrono::steady_clock::now();
    for (uint64_t n = 30; n < 130; ++n) writer.process(makeEvent(n, schemas[n % 3]));
    while (std::chrono::steady_clock::now() - outage_start < 10s) {
        ASSERT_EQ(acks.tokens().size(), 30u) << "an event was acknowledged while every broker was down";
        ASSERT_EQ(writer.fatal_error(), "") << "an outage is waited out, not a failure";
        std::this_thread::sleep_for(100ms);
    }
    cluster().setAllBrokersUp();
    ASSERT_TRUE(waitFor([&] { return acks.tokens().size() == 130; }, 60s))
        << acks.tokens().size() << " acked";
    std::vector<uint64_t> expected(130);
    for (uint64_t n = 0; n < 130; ++n) expected[n] = n + 1;
    EXPECT_EQ(acks.tokens(), expected);

    auto records = readTopic("outage", 3, 130);
    ASSERT_EQ(records.size(), 130u) << "nothing lost, nothing duplicated";
    std::map<std::string, uint64_t> last;
    for (const auto& record : records) {
        const uint64_t lsn = event_from_json(record.value)->lsn.value;
        auto it = last.find(record.key);
        if (it != last.end()) {
            EXPECT_GT(lsn, it->second) << "reordered within " << record.key;
        }
        last[record.key] = lsn;
    }
}

TEST_F(KafkaWriterTest, OversizedRecordStopsTheWriterWithoutAcknowledgingIt) {
    cluster().createTopic("big", 1);
    RecordingAcknowledger acks;
    auto settings = settingsFor("big");
    settings.max_message_bytes = 4000;
    settings.max_queue_bytes = 1 << 20;
    settings.batch_bytes = 64 * 1024;
    KafkaWriter writer(settings, acks);
    writer.process(makeEvent(0, "s"));
    writer.flush();
    ASSERT_EQ(acks.tokens(), (std::vector<uint64_t>{1}));

    auto huge = makeEvent(1, "s");
    huge->columns[1].value = jsonString(std::string(10000, 'x'));
    writer.process(huge);
    writer.process(makeEvent(2, "s"));
    writer.flush();
    const std::string error = writer.fatal_error();
    EXPECT_NE(error.find("PGSTREAM_KAFKA_WRITER_MAX_MESSAGE_BYTES"), std::string::npos) << error;
    EXPECT_NE(error.find("s.orders"), std::string::npos) << "the error names the table: " << error;
    EXPECT_EQ(writer.counters().oversized, 1u);
    EXPECT_EQ(acks.tokens(), (std::vector<uint64_t>{1}))
        << "neither the oversized event nor later ones are acked";
    EXPECT_THROW(writer.process(makeEvent(3, "s")), std::runtime_error);
    auto records = readTopic("big", 1, 1);
    EXPECT_EQ(records.size(), 1u);
}

TEST_F(KafkaWriterTest, KafkaListenerFeedsStdoutAndCommitsDeliveredOffsets) {
    cluster().createTopic("relay", 2);
    std::vector<EventPtr> sent;
    {
        RecordingAcknowledger acks;
        KafkaWriter writer(settingsFor("relay"), acks);
        for (uint64_t n = 0; n < 60; ++n) {
            sent.push_back(makeEvent(n, n % 2 ? "odd" : "even"));
            writer.process(sent.back());
        }
        writer.close();
        ASSERT_EQ(acks.tokens().size(), 60u);
    }
    const std::string output = ::testing::TempDir() + "/kafka_relay_" + std::to_string(getpid()) + ".jsonl";
    std::remove(output.c_str());

    ReaderSettings reader_settings = readerSettingsFor("relay");
    // The mock coordinator waits up to a session timeout for members of the previous generation.
    reader_settings.connection.librdkafka_overrides = {{"session.timeout.ms", "6000"},
                                                       {"heartbeat.interval.ms", "200"}};
    auto runOnce = [&](size_t expected_lines) {
        KafkaCheckpointer checkpointer;
        StdoutWriterSettings stdout_settings;
        stdout_settings.file = output;
        stdout_settings.batch.batch_timeout = 20ms;
        StdoutWriter stdout_writer(stdout_settings, checkpointer);
        KafkaListener listener(reader_settings, stdout_writer, checkpointer, StopToken(10s));
        std::string error = "not finished";
        std::thread thread([&] { error = listener.run(); });
        auto lines = [&] {
            std::ifstream in(output);
            size_t count = 0;
            std::string line;
            while (std::getline(in, line)) ++count;
            return count;
        };
        EXPECT_TRUE(waitFor([&] { return lines() >= expected_lines; }, 30s)) << lines() << " lines";
        std::this_thread::sleep_for(300ms);
        listener.stop();
        thread.join();
        stdout_writer.close();
        EXPECT_EQ(error, "");
        EXPECT_EQ(checkpointer.inFlight(), 0u);
        return listener.stats().records.load();
    };
    EXPECT_EQ(runOnce(60), 60u);

    std::ifstream in(output);
    std::map<std::string, std::string> line_of_lsn;
    std::string line;
    size_t count = 0;
    while (std::getline(in, line)) {
        ++count;
        line_of_lsn[event_from_json(line)->lsn.str()] = line;
    }
    EXPECT_EQ(count, 60u);
    for (const auto& event : sent) EXPECT_EQ(line_of_lsn[event->lsn.str()], event_to_json(*event));

    // Everything was delivered to stdout and committed: a restarted listener in the same group reads nothing
    // old, only what is new.
    {
        RecordingAcknowledger acks;
        KafkaWriter writer(settingsFor("relay"), acks);
        writer.process(makeEvent(60, "even"));
        writer.close();
    }
    EXPECT_EQ(runOnce(61), 1u);
}

// The Go pgstream's Kafka instruments, with values that follow from what was written and read.
TEST_F(KafkaWriterTest, WriterAndReaderRecordTheirHistogramsInTheMetrics) {
    cluster().createTopic("measured", 2);
    Metrics metrics;
    constexpr uint64_t kEvents = 25;
    {
        RecordingAcknowledger acks;
        KafkaWriter writer(settingsFor("measured"), acks, {},
                           std::make_unique<OutputMetrics>(metrics, "kafka-batch-writer"));
        for (uint64_t n = 0; n < kEvents; ++n) writer.process(makeEvent(n, n % 2 ? "odd" : "even"));
        writer.flush();
        ASSERT_EQ(acks.tokens().size(), kEvents);
        std::string text = metrics.prometheus_text();
        const double batches = sampleOf(text, "pgstream_kafka_writer_batch_size_count");
        EXPECT_GE(batches, 3) << "batches of at most 10\n" << text;
        EXPECT_EQ(sampleOf(text, "pgstream_kafka_writer_batch_size_sum"), double(kEvents)) << text;
        EXPECT_EQ(sampleOf(text, "pgstream_kafka_writer_batch_bytes_count"), batches) << text;
        EXPECT_EQ(sampleOf(text, "pgstream_kafka_writer_latency_count"), batches)
            << "one latency per batch, at its last delivery report\n"
            << text;
        EXPECT_GT(sampleOf(text, "pgstream_kafka_writer_latency_sum"), 0) << text;
        EXPECT_EQ(sampleOf(text,
                           "pgstream_target_event_outcomes_total{action=\"insert\",outcome=\"delivered\","
                           "target=\"kafka-batch-writer\"}") +
                      sampleOf(text,
                               "pgstream_target_event_outcomes_total{action=\"update\",outcome=\"delivered\","
                               "target=\"kafka-batch-writer\"}"),
                  double(kEvents))
            << text;
        EXPECT_GT(sampleOf(text, "pgstream_target_memory_limit{target=\"kafka-batch-writer\"}"), 0) << text;
        // Handed to the producer is not delivered: the delivery reports acknowledged them, not the sender.
        EXPECT_EQ(writer.sender().counters().pending, kEvents);
        EXPECT_EQ(writer.sender().counters().delivered, 0u);
        writer.close();
    }
    auto records = readTopic("measured", 2, kEvents);
    ASSERT_EQ(records.size(), kEvents);
    double record_bytes = 0, value_bytes = 0;
    for (const auto& record : records) {
        record_bytes += double(record.key.size() + record.value.size());
        value_bytes += double(record.value.size());
    }
    EXPECT_EQ(sampleOf(metrics.prometheus_text(), "pgstream_kafka_writer_batch_bytes_sum"), record_bytes);

    // Read back through the listener, instrumented, into a stdout writer.
    const std::string output =
        ::testing::TempDir() + "/kafka_measured_" + std::to_string(getpid()) + ".jsonl";
    std::remove(output.c_str());
    ReaderSettings reader_settings = readerSettingsFor("measured");
    KafkaCheckpointer checkpointer;
    StdoutWriterSettings stdout_settings;
    stdout_settings.file = output;
    stdout_settings.batch.batch_timeout = 20ms;
    StdoutWriter stdout_writer(stdout_settings, checkpointer);
    KafkaListener listener(reader_settings, stdout_writer, checkpointer, StopToken(10s));
    listener.instrument(metrics);
    std::string error = "not finished";
    std::thread thread([&] { error = listener.run(); });
    EXPECT_TRUE(
        waitFor([&] { return checkpointer.inFlight() == 0 && listener.stats().records == kEvents; }, 30s));
    listener.stop();
    thread.join();
    stdout_writer.close();
    std::remove(output.c_str());
    EXPECT_EQ(error, "");

    std::string text = metrics.prometheus_text();
    EXPECT_EQ(sampleOf(text, "pgstream_kafka_reader_msg_bytes_count"), double(kEvents)) << text;
    EXPECT_EQ(sampleOf(text, "pgstream_kafka_reader_msg_bytes_sum"), value_bytes) << text;
    EXPECT_EQ(sampleOf(text, "pgstream_kafka_reader_fetch_latency_count"), double(kEvents)) << text;
    // Leaving the group commits what was delivered synchronously (the partition handover); by then every
    // record was moved past by exactly one commit.
    EXPECT_GE(sampleOf(text, "pgstream_kafka_reader_commit_latency_count"), 1) << text;
    EXPECT_EQ(sampleOf(text, "pgstream_kafka_reader_commit_batch_size_sum"), double(kEvents)) << text;
}

}  // namespace
}  // namespace pgstream::kafka
