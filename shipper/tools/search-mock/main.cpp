// pgstream-search-mock: a test server for the search indexer, speaking the REST subset the indexer uses
// the way OpenSearch (or Elasticsearch 8 with --flavor elasticsearch) answers it, with fault injection
// switched at run time through /_mock/. Prints the bound port on its first line (and "admin PORT" on the
// second with --admin-listen), then runs until SIGINT or SIGTERM. See docs/search-mock.md.
//
//   pgstream-search-mock [--listen HOST:PORT] [--flavor opensearch|elasticsearch] [--user NAME:PASSWORD]
//                        [--api-key KEY] [--admin-listen HOST:PORT]

#include <csignal>
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "server.h"

namespace {

constexpr int kUsageError = 2;

void printUsage(std::ostream& out) {
    out << "usage: pgstream-search-mock [--listen HOST:PORT] [--flavor opensearch|elasticsearch]\n"
           "                            [--user NAME:PASSWORD] [--api-key KEY] [--admin-listen HOST:PORT]\n"
           "  A search engine test server (the REST subset of the pgstream search indexer). Prints the "
           "bound\n"
           "  port on its first line and runs until SIGINT or SIGTERM. Port 0 picks a free port.\n"
           "  Faults are switched at run time with POST /_mock/faults (see docs/search-mock.md).\n";
}

void parseHostPort(const std::string& option, const std::string& value, std::string& host, int& port) {
    size_t colon = value.rfind(':');
    std::string port_text = colon == std::string::npos ? "" : value.substr(colon + 1);
    std::string host_text = colon == std::string::npos ? "" : value.substr(0, colon);
    if (host_text.size() >= 2 && host_text.front() == '[' && host_text.back() == ']')
        host_text = host_text.substr(1, host_text.size() - 2);
    bool valid = !host_text.empty() && !port_text.empty() &&
                 port_text.find_first_not_of("0123456789") == std::string::npos && port_text.size() <= 5 &&
                 std::stoi(port_text) <= 65535;
    if (!valid)
        throw std::invalid_argument(option + " must be HOST:PORT (PORT 0-65535, 0 for any), got '" + value +
                                    "'");
    host = host_text;
    port = std::stoi(port_text);
}

}  // namespace

int main(int argc, char** argv) {
    search_mock::ServerOptions options;
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
            if (option == "--listen") {
                parseHostPort(option, value, options.host, options.port);
            } else if (option == "--admin-listen") {
                std::string host;
                parseHostPort(option, value, host, options.admin_port);
                options.admin_host = host;
            } else if (option == "--flavor") {
                if (value == "opensearch")
                    options.flavor = search_mock::Flavor::kOpenSearch;
                else if (value == "elasticsearch")
                    options.flavor = search_mock::Flavor::kElasticsearch;
                else
                    throw std::invalid_argument("--flavor must be opensearch or elasticsearch, got '" +
                                                value + "'");
            } else if (option == "--user") {
                // The value is a secret: it is never echoed back.
                if (value.find(':') == std::string::npos || value.front() == ':')
                    throw std::invalid_argument("--user must be NAME:PASSWORD");
                options.user = value;
            } else if (option == "--api-key") {
                if (value.empty()) throw std::invalid_argument("--api-key must not be empty");
                options.api_key = value;
            } else {
                throw std::invalid_argument("unknown option: " + option);
            }
        }
    } catch (const std::invalid_argument& e) {
        std::cerr << "pgstream-search-mock: " << e.what() << "\n";
        printUsage(std::cerr);
        return kUsageError;
    }

    // Block the stop signals before any thread starts so that only sigwait below receives them; a peer that
    // goes away mid-response must not kill the server.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    search_mock::MockServer server(options);
    std::string error;
    if (!server.start(error)) {
        std::cerr << "pgstream-search-mock: " << error << "\n";
        return 1;
    }
    std::cout << server.port() << std::endl;
    if (options.admin_host) std::cout << "admin " << server.adminPort() << std::endl;
    int received = 0;
    sigwait(&stop_signals, &received);
    server.stop();
    return 0;
}
