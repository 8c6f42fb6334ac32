// Reads the shipper's JSON lines from stdin and drops them, timing what the benchmark needs:
//   line_reader COUNT MARKER [latency]
// Counts lines containing MARKER (the table name, quoted); after COUNT of them prints
//   rows=<n> seconds=<since start> [p50_ms=<..> p99_ms=<..> max_ms=<..>]
// and exits. In latency mode each counted line's "written_us" column (microseconds since the epoch, stamped
// with clock_timestamp() by the insert) is compared with the time the line was read.
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

int64_t now_us() {
    timeval tv;
    gettimeofday(&tv, nullptr);
    return static_cast<int64_t>(tv.tv_sec) * 1000000 + tv.tv_usec;
}

// The integer value of the column named `written_us` in one output line, or -1.
int64_t written_us(const char* line, size_t length) {
    static const char kName[] = "\"name\":\"written_us\"";
    const char* end = line + length;
    const char* at = static_cast<const char*>(memmem(line, length, kName, sizeof kName - 1));
    if (at == nullptr) return -1;
    const char* value = static_cast<const char*>(memmem(at, end - at, "\"value\":", 8));
    if (value == nullptr) return -1;
    return strtoll(value + 8, nullptr, 10);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: line_reader COUNT MARKER [latency]\n");
        return 2;
    }
    const long want = atol(argv[1]);
    const std::string marker = argv[2];
    const bool latency = argc > 3 && strcmp(argv[3], "latency") == 0;
    const auto start = std::chrono::steady_clock::now();

    std::vector<int64_t> latencies_us;
    if (latency) latencies_us.reserve(want);
    long rows = 0;
    std::string pending;
    std::vector<char> buffer(1 << 20);
    while (rows < want) {
        ssize_t n = read(0, buffer.data(), buffer.size());
        if (n <= 0) break;
        const int64_t read_at = latency ? now_us() : 0;
        pending.append(buffer.data(), n);
        size_t line_start = 0;
        while (rows < want) {
            size_t line_end = pending.find('\n', line_start);
            if (line_end == std::string::npos) break;
            const char* line = pending.data() + line_start;
            size_t length = line_end - line_start;
            if (memmem(line, length, marker.data(), marker.size()) != nullptr) {
                ++rows;
                if (latency) {
                    int64_t stamp = written_us(line, length);
                    if (stamp > 0) latencies_us.push_back(read_at - stamp);
                }
            }
            line_start = line_end + 1;
        }
        pending.erase(0, line_start);
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    printf("rows=%ld seconds=%.3f", rows, seconds);
    if (const char* trace = getenv("LINE_READER_TRACE"); trace != nullptr && latency) {
        // Latencies in arrival order, to see whether slow rows cluster (start-up, batching) or are spread
        // out.
        if (FILE* out = fopen(trace, "w")) {
            for (int64_t value : latencies_us) fprintf(out, "%lld\n", static_cast<long long>(value));
            fclose(out);
        }
    }
    if (latency && !latencies_us.empty()) {
        std::sort(latencies_us.begin(), latencies_us.end());
        auto at = [&](double q) {
            return latencies_us[std::min(latencies_us.size() - 1, size_t(q * latencies_us.size()))];
        };
        printf(" p50_ms=%.2f p99_ms=%.2f max_ms=%.2f", at(0.50) / 1000.0, at(0.99) / 1000.0,
               latencies_us.back() / 1000.0);
    }
    printf("\n");
    fflush(stdout);
    return rows >= want ? 0 : 1;
}
