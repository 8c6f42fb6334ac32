// pgstream-kafka-mock: a Kafka cluster for tests, demos and benchmarks, speaking the real Kafka protocol
// (librdkafka's mock cluster). Prints the bootstrap servers on one line, then runs until SIGINT/SIGTERM.
//
//   pgstream-kafka-mock [--brokers N] [--topic NAME]... [--partitions P] [--replication-factor R]

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "kafka-mock/mock_cluster.h"

namespace {

constexpr int kUsageError = 2;

void printUsage(std::ostream& out) {
    out << "usage: pgstream-kafka-mock [--brokers N] [--topic NAME]... [--partitions P] "
           "[--replication-factor R]\n"
           "  Starts an in-process Kafka mock cluster (librdkafka), prints its bootstrap servers on one "
           "line\n"
           "  and runs until SIGINT or SIGTERM. Topics given with --topic are created up front with P "
           "partitions\n"
           "  (default 1); other topics are auto-created on first use.\n";
}

int parsePositive(const std::string& option, const std::string& value) {
    try {
        size_t used = 0;
        int parsed = std::stoi(value, &used);
        if (used == value.size() && parsed >= 1) return parsed;
    } catch (const std::exception&) {
    }
    throw std::invalid_argument(option + " must be a positive integer, got '" + value + "'");
}

}  // namespace

int main(int argc, char** argv) {
    int brokers = 1;
    int partitions = 1;
    int replication_factor = 1;
    std::vector<std::string> topics;
    try {
        std::vector<std::string> args(argv + 1, argv + argc);
        for (size_t i = 0; i < args.size(); ++i) {
            const std::string& option = args[i];
            if (option == "-h" || option == "--help") {
                printUsage(std::cout);
                return 0;
            }
            if (i + 1 >= args.size())
                throw std::invalid_argument("unknown option or missing value: " + option);
            const std::string& value = args[++i];
            if (option == "--brokers") {
                brokers = parsePositive(option, value);
            } else if (option == "--partitions") {
                partitions = parsePositive(option, value);
            } else if (option == "--replication-factor") {
                replication_factor = parsePositive(option, value);
            } else if (option == "--topic") {
                if (value.empty()) throw std::invalid_argument("--topic must not be empty");
                topics.push_back(value);
            } else {
                throw std::invalid_argument("unknown option: " + option);
            }
        }
        if (replication_factor > brokers) {
            throw std::invalid_argument("--replication-factor (" + std::to_string(replication_factor) +
                                        ") cannot exceed --brokers (" + std::to_string(brokers) + ")");
        }
    } catch (const std::invalid_argument& e) {
        std::cerr << "pgstream-kafka-mock: " << e.what() << "\n";
        printUsage(std::cerr);
        return kUsageError;
    }

    // Block the signals before librdkafka starts its threads so that only sigwait below receives them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    try {
        pgstream::kafka::MockCluster cluster(brokers);
        for (const auto& topic : topics) cluster.createTopic(topic, partitions, replication_factor);
        std::cout << cluster.bootstrapServers() << std::endl;
        int received = 0;
        sigwait(&stop_signals, &received);
    } catch (const std::exception& e) {
        std::cerr << "pgstream-kafka-mock: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
