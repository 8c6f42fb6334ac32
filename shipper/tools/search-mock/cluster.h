// The in-memory "cluster" behind pgstream-search-mock: indices with settings, mappings and aliases,
// documents with the engine's versioning (internal, external, external_gte, if_seq_no), delete tombstones
// kept for index.gc_deletes, near-real-time search (documents become searchable on refresh, periodic per
// index.refresh_interval or forced by ?refresh / _refresh) and the request handlers that build the
// engine's response bodies. One mutex guards all of it: a test server, not a fast one.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "json.h"
#include "mapping.h"
#include "query.h"

namespace search_mock {

struct Response {
    int status = 200;
    std::string body;  // empty for HEAD-style answers
    // An answer built from an exception ({"error":{...},"status":N}): filter_path never filters it
    // (upstream builds it with newErrorBuilder()). Other answers, whatever their status, are filtered.
    bool error_body = false;
    // The handler already applied the request's filter_path (_bulk's fast path).
    bool filtered = false;
};

// Query-string parameters of one request.
using Params = std::map<std::string, std::string>;

// Single objects of one size (a map's nodes) from chunks kept on a free list, instead of a malloc each; other
// requests (a hash table's buckets) go to operator new. The memory is given back when the pool goes.
class NodePool {
  public:
    NodePool() = default;
    NodePool(const NodePool&) = delete;
    NodePool& operator=(const NodePool&) = delete;

    void* allocate(size_t size) {
        if (size_ == 0) size_ = std::max(size, sizeof(Free));
        if (size != size_ && size > sizeof(Free)) return ::operator new(size);
        if (free_ != nullptr) {
            Free* item = free_;
            free_ = item->next;
            return item;
        }
        if (next_ == end_) {
            constexpr size_t kPerChunk = 256;
            chunks_.push_back(std::make_unique<Slot[]>(kPerChunk * slots()));
            next_ = chunks_.back().get();
            end_ = next_ + kPerChunk * slots();
        }
        void* item = next_;
        next_ += slots();
        return item;
    }
    void deallocate(void* p, size_t size) {
        if (size != size_ && size > sizeof(Free)) return ::operator delete(p);
        free_ = new (p) Free{free_};
    }

  private:
    struct Free {
        Free* next;
    };
    using Slot = std::max_align_t;
    size_t slots() const { return (size_ + sizeof(Slot) - 1) / sizeof(Slot); }

    size_t size_ = 0;
    Free* free_ = nullptr;
    Slot* next_ = nullptr;
    Slot* end_ = nullptr;
    std::vector<std::unique_ptr<Slot[]>> chunks_;
};

// A document's id as `live` keys it: with its hash, computed once per write (applyWrite looks the id up and
// then stores it, and each of the two hashed it: some 75 instructions per item each).
struct DocKey {
    std::string_view id;
    size_t hash;
    explicit DocKey(std::string_view text) : id(text), hash(std::hash<std::string_view>()(text)) {}
    DocKey(std::string_view text, size_t known_hash) : id(text), hash(known_hash) {}
};
struct DocKeyHash {
    size_t operator()(const DocKey& key) const noexcept { return key.hash; }
};
struct DocKeyEqual {
    bool operator()(const DocKey& a, const DocKey& b) const noexcept {
        return a.hash == b.hash && sameBytes(a.id, b.id);
    }
};

// A container's allocator taking its single objects from a NodePool.
template <typename T>
struct NodeAllocator {
    using value_type = T;
    NodePool* pool;
    explicit NodeAllocator(NodePool* p) : pool(p) {}
    template <typename U>
    NodeAllocator(const NodeAllocator<U>& other) : pool(other.pool) {}
    T* allocate(size_t n) {
        return static_cast<T*>(n == 1 ? pool->allocate(sizeof(T)) : ::operator new(n * sizeof(T)));
    }
    void deallocate(T* p, size_t n) {
        if (n == 1)
            pool->deallocate(p, sizeof(T));
        else
            ::operator delete(p);
    }
    template <typename U>
    bool operator==(const NodeAllocator<U>& other) const {
        return pool == other.pool;
    }
    template <typename U>
    bool operator!=(const NodeAllocator<U>& other) const {
        return pool != other.pool;
    }
};

class Cluster {
  public:
    using Clock = std::chrono::steady_clock;
    // Decides, per bulk item in arrival order, whether the fault injector rejects it with 429.
    using ItemRejector = std::function<bool()>;

    explicit Cluster(Flavor flavor);
    Flavor flavor() const { return flavor_; }

    Response createIndex(const std::string& name, const std::string& body);
    Response deleteIndex(const std::string& expression);
    Response getIndex(const std::string& expression);
    Response indexExists(const std::string& expression);  // HEAD: 200 or 404, no body
    Response putMapping(const std::string& expression, const std::string& body);
    Response getMapping(const std::string& expression);
    Response getSettings(const std::string& expression);
    Response refresh(const std::string& expression);

    Response indexDocument(const std::string& index, const std::optional<std::string>& id,
                           const std::string& body, const Params& params, bool create_only);
    Response getDocument(const std::string& index, const std::string& id, const Params& params, bool head);
    Response deleteDocument(const std::string& index, const std::string& id, const Params& params);
    Response bulk(const std::optional<std::string>& default_index, const std::string& body,
                  const Params& params, const ItemRejector& reject);
    Response deleteByQuery(const std::string& expression, const std::string& body, const Params& params);
    Response search(const std::string& expression, const std::string& body, const Params& params);
    Response count(const std::string& expression, const std::string& body, const Params& params);

    Response updateAliases(const std::string& body);
    Response putAlias(const std::string& index_expression, const std::string& alias, const std::string& body);
    Response deleteAlias(const std::string& index_expression, const std::string& alias_expression);
    Response getAliases(const std::string& index_expression, const std::string& alias_expression);
    Response aliasExists(const std::string& index_expression, const std::string& alias_expression);

    // Refreshes indices whose refresh_interval has passed since their last refresh; returns the time until
    // the next one is due (for the refresher thread's wait).
    std::chrono::milliseconds refreshDue();
    Response health();  // GET /_cluster/health of a one-node cluster
    void reset();       // drops every index and alias

    struct Tombstone {
        int64_t version = 0;
        int64_t seq_no = 0;
        Clock::time_point deleted_at;
    };
    struct AliasOptions {
        std::optional<bool> is_write_index;
        std::string filter_json;  // as given, echoed by GET _alias
        std::string index_routing, search_routing;
        bool hidden = false;
    };
    // A stored document never changes: `live` and `searchable` share it, so a refresh copies a pointer.
    using DocPtr = std::shared_ptr<const StoredDoc>;
    struct Index {
        explicit Index(Flavor flavor)
            : mapping(flavor),
              live(0, DocKeyHash(), DocKeyEqual(),
                   NodeAllocator<std::pair<const DocKey, DocPtr>>(&live_nodes)),
              searchable(std::less<std::string_view>(),
                         NodeAllocator<std::pair<const std::string_view, DocPtr>>(&searchable_nodes)) {}
        std::string name, uuid;
        int64_t creation_date_ms = 0;
        std::map<std::string, std::string>
            settings;  // flat "index.*" keys, string values as the engine keeps them
        Mapping mapping;
        // The nodes of `live` and `searchable` and the documents themselves (one each per document), from
        // pools of this index rather than one malloc each; given back when the index goes. Declared before
        // the maps and lists, so they outlive them (a document is only held, under the cluster's lock, by its
        // index).
        NodePool live_nodes, searchable_nodes, doc_nodes;
        // The documents by id, keyed by a view of the document's own id (kept right by applyWrite). `live`
        // is only looked up, so it is hashed: ids share their table's prefix, which made an ordered map's
        // comparisons costly.
        std::unordered_map<DocKey, DocPtr, DocKeyHash, DocKeyEqual,
                           NodeAllocator<std::pair<const DocKey, DocPtr>>>
            live;
        std::unordered_map<std::string, Tombstone> tombstones;
        // What searches see, in id order: the live documents as of the last refresh.
        std::map<std::string_view, DocPtr, std::less<std::string_view>,
                 NodeAllocator<std::pair<const std::string_view, DocPtr>>>
            searchable;
        // Written since the last refresh, possibly repeated: the documents indexed and the ids deleted. A
        // refresh brings just these ids from `live` into `searchable` instead of copying the whole index.
        std::vector<DocPtr> unrefreshed_writes;
        std::vector<std::string> unrefreshed_deletes;
        int64_t next_seq_no = 0;
        int64_t refresh_interval_ms = 1000;  // -1: only explicit refreshes
        int64_t gc_deletes_ms = 60000;
        int64_t max_result_window = 10000;
        int shards = 1, replicas = 1;
        Clock::time_point last_refresh;
        std::map<std::string, AliasOptions> aliases;
    };

    struct WriteRequest;
    struct WriteResult;
    // The write target a _bulk request resolved last (name, require_alias → index), which applyWrite reuses
    // for the next item naming it instead of resolving it again: within one request a successful resolution
    // cannot change (an item may only auto-create an index under a name that resolved to nothing).
    struct WriteTargetMemo;

  private:
    Index* findIndex(const std::string& name);
    // Comma-separated names, wildcards, _all and aliases → concrete indices (sorted, unique). Missing
    // concrete names fail with index_not_found_exception.
    bool resolve(const std::string& expression, std::vector<Index*>& out, Failure& error,
                 bool allow_missing_wildcards = true);
    std::optional<Response> resolveOrFail(const std::string& expression, std::vector<Index*>& targets);
    // The index a write goes to: the index itself, or an alias's single or write index.
    Index* writeTarget(const std::string& name, bool require_alias, bool auto_create, Failure& error);
    Index* autoCreate(const std::string& name, Failure& error);
    bool validIndexName(const std::string& name, Failure& error);
    bool applySettings(Index& index, const rapidjson::Value* settings, Failure& error);
    void refreshIndex(Index& index);
    WriteResult applyWrite(WriteRequest& request, WriteTargetMemo* memo = nullptr);
    Response singleWrite(WriteRequest& request, const Params& params);  // one document: index, create, delete
    void writeIndexSummary(JsonWriter& out, const Index& index);
    Response searchLocked(const std::string& expression, const std::string& body, const Params& params,
                          bool count_only);

    Flavor flavor_;
    std::mutex mutex_;
    std::map<std::string, std::unique_ptr<Index>> indices_;
    uint64_t id_counter_ = 0;
};

}  // namespace search_mock
