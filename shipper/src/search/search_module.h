// Registers the search batch indexer output ("search indexer"): PGSTREAM_OPENSEARCH_STORE_URL or
// PGSTREAM_ELASTICSEARCH_STORE_URL selects it; YAML `target.search` (engine, url, batch, backoff...).
#pragma once

namespace pgstream::search {

void register_search_module();

}  // namespace pgstream::search
