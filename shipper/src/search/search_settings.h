// Settings of the search batch indexer (OpenSearch 2.x or Elasticsearch 8.x), read from PGSTREAM_* keys with
// the reference implementation's defaults, plus what real clusters need (batch bytes, credentials, TLS).
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "processor/backoff.h"

namespace pgstream::search {

enum class Engine { kOpenSearch, kElasticsearch };

// A retry policy (processor/backoff.h): exponential or constant; max_retries 0 = retry forever.
using RetryPolicy = BackoffSettings;

struct SearchSettings {
    Engine engine = Engine::kOpenSearch;
    // Base URL without credentials (http[s]://host[:port][/prefix], no trailing slash): safe to log.
    std::string url;
    // The key the URL came from, for messages.
    std::string url_key;
    std::chrono::milliseconds batch_timeout{1000};  // PGSTREAM_SEARCH_INDEXER_BATCH_TIMEOUT
    size_t batch_size = 100;                        // PGSTREAM_SEARCH_INDEXER_BATCH_SIZE
    size_t batch_bytes = 10u << 20;                 // PGSTREAM_SEARCH_INDEXER_BATCH_BYTES (bulk body size)
    size_t max_queue_bytes = 100u << 20;            // PGSTREAM_SEARCH_INDEXER_MAX_QUEUE_BYTES
    RetryPolicy cleanup_retry;                      // PGSTREAM_SEARCH_INDEXER_CLEANUP_[EXP_]BACKOFF_*
    // PGSTREAM_SEARCH_STORE_[EXP_]BACKOFF_*; without either: exponential 1s -> 1min, unlimited.
    RetryPolicy store_retry{RetryPolicy::Kind::kExponential, std::chrono::milliseconds(1000),
                            std::chrono::milliseconds(60000), 0};
    // Basic auth: from the URL's user info or PGSTREAM_SEARCH_STORE_USERNAME / _PASSWORD.
    std::string username;
    std::string password;
    std::string api_key;        // PGSTREAM_SEARCH_STORE_API_KEY (sent as "ApiKey <key>")
    std::string ca_file;        // PGSTREAM_SEARCH_STORE_CA_FILE
    bool tls_verify = true;     // PGSTREAM_SEARCH_STORE_TLS_VERIFY
    bool hash_doc_ids = false;  // PGSTREAM_SEARCH_INDEXER_HASH_DOC_IDS
    std::chrono::milliseconds request_timeout{30000};  // PGSTREAM_SEARCH_STORE_REQUEST_TIMEOUT
    // PGSTREAM_SEARCH_INDEXER_DEAD_LETTER_FILE: where documents the store refused for good are appended
    // (JSON lines). Empty: a refused document stops the indexer instead of being skipped.
    std::string dead_letter_file;

    // "Authorization: ..." header for the credentials, empty without any.
    std::string authorization_header() const;
};

// True when the configuration selects the search indexer (a store URL is set).
bool search_configured(const Config& config);

// Reads the settings; throws ConfigError (one line naming the key and the accepted form, never a secret)
// for a malformed value. No I/O.
SearchSettings search_settings_from_config(const Config& config);

// Empty when valid, else one line per problem, each naming the variable. No I/O beyond checking that the CA
// file is readable.
std::vector<std::string> validate(const SearchSettings& settings);

}  // namespace pgstream::search
