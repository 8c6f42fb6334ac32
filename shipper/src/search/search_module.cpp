#include "search/search_module.h"

#include "pipeline/module.h"
#include "search/search_indexer.h"

namespace pgstream::search {

namespace {

// Reads and checks the settings; throws ConfigError naming the first bad setting. No I/O beyond checking that
// the CA file is readable.
SearchSettings checked_settings(const Config& config) {
    SearchSettings settings = search_settings_from_config(config);
    std::vector<std::string> problems = validate(settings);
    if (!problems.empty()) {
        const std::string& first = problems.front();
        const size_t key_end = first.find_first_of(" :");
        throw ConfigError(first.substr(0, key_end), first.substr(key_end + (first[key_end] == ':' ? 2 : 1)));
    }
    return settings;
}

// YAML target.search: engine/url as the Go pgstream's YAML, batch.* and backoff.* as the other modules'.
std::string yaml_key(const std::string& rest) {
    if (rest == "ENGINE") return "PGSTREAM_SEARCH_STORE_ENGINE";
    if (rest == "URL") return "PGSTREAM_SEARCH_STORE_URL";
    if (rest == "OPENSEARCH_URL") return "PGSTREAM_OPENSEARCH_STORE_URL";
    if (rest == "ELASTICSEARCH_URL") return "PGSTREAM_ELASTICSEARCH_STORE_URL";
    if (rest == "BATCH_MAX_QUEUE_BYTES") return "PGSTREAM_SEARCH_INDEXER_MAX_QUEUE_BYTES";
    if (rest == "BATCH_MAX_BYTES") return "PGSTREAM_SEARCH_INDEXER_BATCH_BYTES";
    if (rest.rfind("BATCH_", 0) == 0 || rest == "HASH_DOC_IDS" || rest == "MAX_QUEUE_BYTES" ||
        rest == "DEAD_LETTER_FILE")
        return "PGSTREAM_SEARCH_INDEXER_" + rest;
    if (rest.rfind("BACKOFF_EXPONENTIAL_", 0) == 0)
        return "PGSTREAM_SEARCH_STORE_EXP_BACKOFF_" + rest.substr(sizeof("BACKOFF_EXPONENTIAL_") - 1);
    if (rest.rfind("BACKOFF_CONSTANT_", 0) == 0) {
        std::string what = rest.substr(sizeof("BACKOFF_CONSTANT_") - 1);
        return "PGSTREAM_SEARCH_STORE_BACKOFF_" + what;
    }
    if (rest.rfind("CLEANUP_BACKOFF_EXPONENTIAL_", 0) == 0)
        return "PGSTREAM_SEARCH_INDEXER_CLEANUP_EXP_BACKOFF_" +
               rest.substr(sizeof("CLEANUP_BACKOFF_EXPONENTIAL_") - 1);
    if (rest.rfind("CLEANUP_BACKOFF_CONSTANT_", 0) == 0)
        return "PGSTREAM_SEARCH_INDEXER_CLEANUP_BACKOFF_" +
               rest.substr(sizeof("CLEANUP_BACKOFF_CONSTANT_") - 1);
    return "PGSTREAM_SEARCH_STORE_" +
           rest;  // username, password, api_key, ca_file, tls_verify, request_timeout
}

}  // namespace

void register_search_module() {
    OutputModule module;
    module.name = "search indexer";
    module.settings = {
        {"PGSTREAM_OPENSEARCH_STORE_URL", "",
         "OpenSearch 2.x URL http[s]://[user:password@]host[:port][/path]"},
        {"PGSTREAM_ELASTICSEARCH_STORE_URL", "", "Elasticsearch 8.x URL (not with the OpenSearch URL)"},
        {"PGSTREAM_SEARCH_STORE_URL", "", "store URL with PGSTREAM_SEARCH_STORE_ENGINE (the YAML form)"},
        {"PGSTREAM_SEARCH_STORE_ENGINE", "", "opensearch or elasticsearch, with PGSTREAM_SEARCH_STORE_URL"},
        {"PGSTREAM_SEARCH_INDEXER_BATCH_TIMEOUT", "1s", "longest wait of an open batch"},
        {"PGSTREAM_SEARCH_INDEXER_BATCH_SIZE", "100", "events per batch"},
        {"PGSTREAM_SEARCH_INDEXER_BATCH_BYTES", "10MiB", "bytes per batch"},
        {"PGSTREAM_SEARCH_INDEXER_MAX_QUEUE_BYTES", "100MiB", "memory budget of the indexer"},
        {"PGSTREAM_SEARCH_INDEXER_HASH_DOC_IDS", "false", "document ids <table id>_<sha256 of the key>"},
        {"PGSTREAM_SEARCH_INDEXER_DEAD_LETTER_FILE", "",
         "JSON lines file of changes the store refused for good"},
        {"PGSTREAM_SEARCH_STORE_USERNAME", "", "basic auth user (or user info in the URL)"},
        {"PGSTREAM_SEARCH_STORE_PASSWORD", "", "basic auth password"},
        {"PGSTREAM_SEARCH_STORE_API_KEY", "", "API key, sent as Authorization: ApiKey <key>"},
        {"PGSTREAM_SEARCH_STORE_CA_FILE", "", "CA bundle (PEM) for https"},
        {"PGSTREAM_SEARCH_STORE_TLS_VERIFY", "true", "verify the store's certificate"},
        {"PGSTREAM_SEARCH_STORE_REQUEST_TIMEOUT", "30s", "time limit of one request"},
    };
    for (const auto& key : backoff_keys("PGSTREAM_SEARCH_INDEXER_CLEANUP"))
        module.settings.push_back({key, "", "retry policy of a dropped schema's cleanup (default: none)"});
    for (const auto& key : backoff_keys("PGSTREAM_SEARCH_STORE"))
        module.settings.push_back(
            {key, "", "retry policy of store requests (default: exponential 1s to 1min)"});
    module.yaml = YamlSection{"target", "search", yaml_key, ""};
    module.configured = [](const Config& config) { return search_configured(config); };
    module.validate = [](const Config& config) { checked_settings(config); };
    module.create = [](const Config& config, Acknowledger& acknowledger,
                       RuntimeContext& context) -> std::unique_ptr<Processor> {
        // No request here: a store that is down is a runtime condition (readiness(), retries).
        auto indexer = std::make_unique<SearchIndexer>(checked_settings(config), acknowledger, context.stop(),
                                                       context.output_metrics("search-batch-indexer"));
        indexer->observe(context.metrics());
        return indexer;
    };
    register_output_module(std::move(module));
}

}  // namespace pgstream::search
