#include "search/search_settings.h"

#include <unistd.h>

#include <algorithm>

#include "config/config.h"
#include "util/redact.h"
#include "wal/json.h"

namespace pgstream::search {

namespace {

constexpr const char* kOpenSearchUrl = "PGSTREAM_OPENSEARCH_STORE_URL";
constexpr const char* kElasticsearchUrl = "PGSTREAM_ELASTICSEARCH_STORE_URL";
// The YAML form (target.search.engine / url), also accepted from the environment.
constexpr const char* kStoreUrl = "PGSTREAM_SEARCH_STORE_URL";
constexpr const char* kStoreEngine = "PGSTREAM_SEARCH_STORE_ENGINE";

// Which key holds the store URL and which engine it names; throws ConfigError when the keys disagree.
const char* store_url_key(const Config& config, Engine& engine) {
    const bool open_search = config.has(kOpenSearchUrl);
    const bool elasticsearch = config.has(kElasticsearchUrl);
    const bool generic = config.has(kStoreUrl);
    if (open_search + elasticsearch + generic > 1) {
        throw ConfigError(kElasticsearchUrl, std::string("set one store URL (") + kOpenSearchUrl + ", " +
                                                 kElasticsearchUrl + " or " + kStoreUrl + "), not both");
    }
    if (config.has(kStoreEngine) && !generic)
        throw ConfigError(kStoreEngine, std::string("goes with ") + kStoreUrl);
    if (open_search) {
        engine = Engine::kOpenSearch;
        return kOpenSearchUrl;
    }
    if (elasticsearch) {
        engine = Engine::kElasticsearch;
        return kElasticsearchUrl;
    }
    if (!generic) throw ConfigError(kOpenSearchUrl, std::string("required (or ") + kElasticsearchUrl + ")");
    std::string name = config.get_string(kStoreEngine);
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    if (name == "opensearch") {
        engine = Engine::kOpenSearch;
    } else if (name == "elasticsearch") {
        engine = Engine::kElasticsearch;
    } else {
        throw ConfigError(kStoreEngine, "expected opensearch or elasticsearch");
    }
    return kStoreUrl;
}

std::string percent_decode(const std::string& text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
            out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += text[i];
        }
    }
    return out;
}

// Splits http[s]://[user[:password]@]host[:port][/path] into the URL without user info and the credentials.
// The message of a refusal names the key and the accepted form only: the value may hold a password.
void parse_store_url(const std::string& key, const std::string& value, SearchSettings& settings) {
    const std::string form = "expected http://host:port or https://[user:password@]host[:port][/path]";
    size_t scheme_end = value.find("://");
    std::string scheme = scheme_end == std::string::npos ? "" : value.substr(0, scheme_end);
    std::transform(scheme.begin(), scheme.end(), scheme.begin(), ::tolower);
    if (scheme != "http" && scheme != "https") throw ConfigError(key, form);
    std::string rest = value.substr(scheme_end + 3);
    size_t authority_end = rest.find_first_of("/?#");
    std::string authority = rest.substr(0, authority_end);
    std::string path = authority_end == std::string::npos ? "" : rest.substr(authority_end);
    if (path.find_first_of("?#") != std::string::npos)
        throw ConfigError(key, form + " (no query or fragment)");
    size_t at = authority.rfind('@');
    if (at != std::string::npos) {
        std::string user_info = authority.substr(0, at);
        authority = authority.substr(at + 1);
        size_t colon = user_info.find(':');
        settings.username = percent_decode(user_info.substr(0, colon));
        if (colon != std::string::npos) settings.password = percent_decode(user_info.substr(colon + 1));
        redact::remember(value);
    }
    if (authority.empty() || authority.front() == ':')
        throw ConfigError(key, form + " (the host is missing)");
    while (!path.empty() && path.back() == '/') path.pop_back();
    settings.url = scheme + "://" + authority + path;
    settings.url_key = key;
}

// The reference's policy keys (processor/backoff.h); `fallback` when neither policy is given.
RetryPolicy retry_from_config(const Config& config, const std::string& prefix, RetryPolicy fallback) {
    RetryPolicy policy = parse_backoff(config, prefix);
    return policy.kind == RetryPolicy::Kind::kNone ? fallback : policy;
}

}  // namespace

std::string SearchSettings::authorization_header() const {
    if (!api_key.empty()) return "Authorization: ApiKey " + api_key;
    if (!username.empty()) return "Authorization: Basic " + base64_encode(username + ":" + password);
    return {};
}

bool search_configured(const Config& config) {
    return config.has(kOpenSearchUrl) || config.has(kElasticsearchUrl) || config.has(kStoreUrl);
}

SearchSettings search_settings_from_config(const Config& config) {
    SearchSettings settings;
    const char* url_key = store_url_key(config, settings.engine);
    parse_store_url(url_key, config.get_string(url_key), settings);

    settings.batch_timeout =
        config.get_duration("PGSTREAM_SEARCH_INDEXER_BATCH_TIMEOUT", settings.batch_timeout);
    settings.batch_size = static_cast<size_t>(
        config.get_int("PGSTREAM_SEARCH_INDEXER_BATCH_SIZE", static_cast<int64_t>(settings.batch_size), 1));
    settings.batch_bytes = config.get_size("PGSTREAM_SEARCH_INDEXER_BATCH_BYTES", settings.batch_bytes);
    settings.max_queue_bytes =
        config.get_size("PGSTREAM_SEARCH_INDEXER_MAX_QUEUE_BYTES", settings.max_queue_bytes);
    settings.cleanup_retry = retry_from_config(config, "PGSTREAM_SEARCH_INDEXER_CLEANUP", RetryPolicy{});
    settings.store_retry = retry_from_config(config, "PGSTREAM_SEARCH_STORE", settings.store_retry);
    if (config.has("PGSTREAM_SEARCH_STORE_USERNAME")) {
        if (!settings.username.empty()) {
            throw ConfigError(
                "PGSTREAM_SEARCH_STORE_USERNAME",
                std::string("give the credentials either in ") + url_key + " or here, not both");
        }
        settings.username = config.get_string("PGSTREAM_SEARCH_STORE_USERNAME");
        settings.password = config.get_string("PGSTREAM_SEARCH_STORE_PASSWORD");
        redact::remember("http://user:" + settings.password + "@host");
    } else if (config.has("PGSTREAM_SEARCH_STORE_PASSWORD")) {
        throw ConfigError("PGSTREAM_SEARCH_STORE_PASSWORD", "needs PGSTREAM_SEARCH_STORE_USERNAME");
    }
    settings.api_key = config.get_string("PGSTREAM_SEARCH_STORE_API_KEY");
    if (!settings.api_key.empty()) redact::remember("http://key:" + settings.api_key + "@host");
    settings.ca_file = config.get_string("PGSTREAM_SEARCH_STORE_CA_FILE");
    settings.tls_verify = config.get_bool("PGSTREAM_SEARCH_STORE_TLS_VERIFY", true);
    settings.hash_doc_ids = config.get_bool("PGSTREAM_SEARCH_INDEXER_HASH_DOC_IDS", false);
    settings.request_timeout =
        config.get_duration("PGSTREAM_SEARCH_STORE_REQUEST_TIMEOUT", settings.request_timeout);
    settings.dead_letter_file = config.get_string("PGSTREAM_SEARCH_INDEXER_DEAD_LETTER_FILE");
    return settings;
}

std::vector<std::string> validate(const SearchSettings& settings) {
    std::vector<std::string> problems;
    if (settings.url.empty())
        problems.push_back("PGSTREAM_OPENSEARCH_STORE_URL or PGSTREAM_ELASTICSEARCH_STORE_URL is required");
    if (settings.batch_size < 1) problems.push_back("PGSTREAM_SEARCH_INDEXER_BATCH_SIZE must be at least 1");
    if (settings.batch_bytes < 1024)
        problems.push_back("PGSTREAM_SEARCH_INDEXER_BATCH_BYTES must be at least 1KiB");
    if (settings.batch_timeout.count() < 1) {
        problems.push_back("PGSTREAM_SEARCH_INDEXER_BATCH_TIMEOUT must be at least 1ms");
    }
    if (settings.max_queue_bytes < settings.batch_bytes) {
        problems.push_back(
            "PGSTREAM_SEARCH_INDEXER_MAX_QUEUE_BYTES must be at least PGSTREAM_SEARCH_INDEXER_BATCH_BYTES");
    }
    if (settings.request_timeout.count() < 1) {
        problems.push_back("PGSTREAM_SEARCH_STORE_REQUEST_TIMEOUT must be at least 1ms");
    }
    if (!settings.api_key.empty() && !settings.username.empty()) {
        problems.push_back("PGSTREAM_SEARCH_STORE_API_KEY cannot be combined with basic auth (user info in " +
                           settings.url_key + " or PGSTREAM_SEARCH_STORE_USERNAME)");
    }
    if (!settings.ca_file.empty() && access(settings.ca_file.c_str(), R_OK) != 0) {
        problems.push_back("PGSTREAM_SEARCH_STORE_CA_FILE: cannot read file '" + settings.ca_file + "'");
    }
    return problems;
}

}  // namespace pgstream::search
