// The `filter_path` query parameter (response filtering), as OpenSearch 2.x implements it for every REST
// endpoint. Upstream files followed (opensearch-project/OpenSearch):
//   server/src/main/java/org/opensearch/rest/AbstractRestChannel.java (how the value is split; error answers,
//     built with newErrorBuilder(), are never filtered)
//   libs/core/src/main/java/org/opensearch/core/xcontent/filtering/FilterPath.java (the expressions)
//   libs/core/src/main/java/org/opensearch/core/xcontent/filtering/FilterPathBasedFilter.java (the matching)
//   libs/x-content/src/main/java/org/opensearch/common/xcontent/json/JsonXContentGenerator.java (the root
//     object is always written; the include filter feeds the exclude filter)
//   and Jackson's FilteringGeneratorDelegate/TokenFilterContext (includePath, multiple matches; the
//     TokenFilter defaults: array elements take their array's filter, empty objects and arrays whose path is
//     only partly matched are dropped).
// The Elasticsearch flavor uses the same rules: Elasticsearch 8's FilterPath (a tree of the expressions,
// libs/x-content/.../xcontent/support/filtering/FilterPath.java) matches alike outside the corners refused
// here; later 8.x releases keep empty objects under exclusions (elastic/elasticsearch#109668), not done here.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace search_mock {

class FilterPath {
  public:
    // Reads a filter_path value as the REST layer does: comma-separated expressions (empty ones skipped,
    // duplicates one), each trimmed; one starting with '-' excludes. A value without any expression filters
    // nothing (empty()). nullopt, with `refusal` set, for the corners the mock does not implement.
    static std::optional<FilterPath> parse(std::string_view value, std::string& refusal);

    bool empty() const { return includes_.empty() && excludes_.empty(); }
    // Exactly the expressions errors, items.*.status and items.*.error (in any order): _bulk's fast path.
    bool isBulkStatusAndErrors() const;
    // The filtered copy of a (non-error) JSON answer; text that does not parse is returned as it is.
    std::string apply(std::string_view json) const;

    using Path = std::vector<std::string>;  // the segments of one expression

  private:
    std::set<std::string> include_texts_, exclude_texts_;
    std::vector<Path> includes_, excludes_;
};

}  // namespace search_mock
