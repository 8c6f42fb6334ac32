// Reads a Kafka topic for bench/kafka/run.sh: counts the records of one table and, in latency mode, compares
// each row's written_us stamp (clock_timestamp() at insert, µs) with the time the record is read.
//
//   topic_reader BOOTSTRAP TOPIC PARTITIONS COUNT MARKER MODE READY_FILE
//     MODE: count (from the beginning) | latency (from the current end) | offsets (print the records written)
// Prints "rows=N seconds=S p50_ms=X p99_ms=Y" once COUNT records containing MARKER were read.
#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    if (argc != 8) {
        std::fprintf(
            stderr, "usage: topic_reader BOOTSTRAP TOPIC PARTITIONS COUNT MARKER count|latency READY_FILE\n");
        return 2;
    }
    const std::string bootstrap = argv[1], topic = argv[2], marker = argv[5], mode = argv[6], ready = argv[7];
    const int partitions = std::atoi(argv[3]);
    const long want = std::atol(argv[4]);
    const bool latency = mode == "latency";
    const bool offsets = mode == "offsets";

    std::string error;
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    conf->set("bootstrap.servers", bootstrap, error);
    conf->set("group.id", "bench-topic-reader", error);
    conf->set("enable.auto.commit", "false", error);
    conf->set("fetch.wait.max.ms", "5", error);
    conf->set("socket.nagle.disable", "true", error);
    // The mock cluster keeps a bounded log per partition; a reader that falls behind must say so, not skip.
    conf->set("auto.offset.reset", "error", error);
    std::unique_ptr<RdKafka::KafkaConsumer> consumer(RdKafka::KafkaConsumer::create(conf.get(), error));
    if (!consumer) {
        std::fprintf(stderr, "topic_reader: %s\n", error.c_str());
        return 1;
    }
    if (offsets) {
        // Records written so far: the sum of the partitions' high watermarks.
        long long total = 0;
        for (int p = 0; p < partitions; ++p) {
            int64_t low = 0, high = 0;
            if (consumer->query_watermark_offsets(topic, p, &low, &high, 10000) != RdKafka::ERR_NO_ERROR) return 1;
            total += high;
        }
        std::printf("records=%lld\n", total);
        return 0;
    }
    std::vector<RdKafka::TopicPartition*> assignment;
    for (int p = 0; p < partitions; ++p) {
        int64_t start = RdKafka::Topic::OFFSET_BEGINNING;
        if (latency) {
            int64_t low = 0, high = 0;
            if (consumer->query_watermark_offsets(topic, p, &low, &high, 10000) != RdKafka::ERR_NO_ERROR) {
                std::fprintf(stderr, "topic_reader: cannot query offsets of %s/%d\n", topic.c_str(), p);
                return 1;
            }
            start = high;
        }
        assignment.push_back(RdKafka::TopicPartition::create(topic, p, start));
    }
    consumer->assign(assignment);
    RdKafka::TopicPartition::destroy(assignment);
    std::ofstream(ready) << "ready\n";

    const std::string stamp_key = "\"name\":\"written_us\",\"type\":\"bigint\",\"value\":";
    std::vector<double> latencies_ms;
    long rows = 0;
    const auto start = std::chrono::steady_clock::now();
    auto next_report = start + std::chrono::seconds(5);
    while (rows < want) {
        if (std::chrono::steady_clock::now() >= next_report) {
            std::fprintf(stderr, "topic_reader: %ld of %ld rows so far\n", rows, want);
            next_report += std::chrono::seconds(5);
        }
        std::unique_ptr<RdKafka::Message> message(consumer->consume(100));
        if (message->err() == RdKafka::ERR__AUTO_OFFSET_RESET || message->err() == RdKafka::ERR_OFFSET_OUT_OF_RANGE) {
            std::fprintf(stderr, "topic_reader: fell behind the log (%s)\n", message->errstr().c_str());
            return 1;
        }
        if (message->err() != RdKafka::ERR_NO_ERROR) continue;
        const char* data = static_cast<const char*>(message->payload());
        std::string_view value(data, message->len());
        if (value.find(marker) == std::string_view::npos) continue;
        if (value.find("\"action\":\"I\"") == std::string_view::npos) continue;
        ++rows;
        if (latency) {
            const size_t at = value.find(stamp_key);
            if (at == std::string_view::npos) continue;
            const long long written_us =
                std::atoll(std::string(value.substr(at + stamp_key.size(), 20)).c_str());
            const long long now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count();
            latencies_ms.push_back(static_cast<double>(now_us - written_us) / 1000.0);
        }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // TOPIC_READER_TRACE=FILE: latencies in arrival order, to see whether slow rows cluster (start-up, a stall)
    // or are spread out.
    if (const char* trace = std::getenv("TOPIC_READER_TRACE"); trace != nullptr && latency) {
        if (FILE* out = std::fopen(trace, "w")) {
            for (double value : latencies_ms) std::fprintf(out, "%.3f\n", value);
            std::fclose(out);
        }
    }
    double p50 = 0, p99 = 0;
    if (!latencies_ms.empty()) {
        std::sort(latencies_ms.begin(), latencies_ms.end());
        p50 = latencies_ms[latencies_ms.size() / 2];
        p99 = latencies_ms[std::min(latencies_ms.size() - 1, latencies_ms.size() * 99 / 100)];
    }
    std::printf("rows=%ld seconds=%.3f p50_ms=%.2f p99_ms=%.2f\n", rows, seconds, p50, p99);
    consumer->close();
    return 0;
}
