// Filter: keeps only the events of the configured schemas and tables; acknowledges the rest.
//
// Patterns are comma-separated; `*` matches any run of characters. Table patterns are `schema.table`, or a
// bare `table` meaning `public.table`. An event passes when it matches an include pattern (or no include list
// is set) and no exclude pattern. Schema changes (inserts into pgstream.schema_log) are filtered by the
// schema they describe; table patterns let one through when their schema part matches it. Logical messages
// always pass. Writes to the pgstream schema other than schema_log inserts are always dropped.
#pragma once

#include <array>
#include <atomic>
#include <string>
#include <vector>

#include "checkpoint/acknowledger.h"
#include "processor/processor.h"

namespace pgstream {

struct FilterSettings {
    std::vector<std::string> include_schemas;
    std::vector<std::string> exclude_schemas;
    std::vector<std::string> include_tables;
    std::vector<std::string> exclude_tables;

    bool empty() const {
        return include_schemas.empty() && exclude_schemas.empty() && include_tables.empty() &&
               exclude_tables.empty();
    }
};

bool glob_match(std::string_view pattern, std::string_view text);

class Filter : public Processor {
  public:
    Filter(FilterSettings settings, Processor& next, Acknowledger& acknowledger);

    std::string name() const override { return "filter"; }
    void process(EventPtr event) override;
    void flush() override { next_.flush(); }
    void source_idle() override { next_.source_idle(); }
    void close() override { next_.close(); }
    std::string fatal_error() const override { return next_.fatal_error(); }

    bool accepts(const Event& event) const;
    // Events dropped (acknowledged without passing them on), in all and per action. Thread-safe.
    uint64_t dropped() const;
    uint64_t dropped(Action action) const {
        return dropped_[action_index(action)].load(std::memory_order_relaxed);
    }

  private:
    struct TablePattern {
        std::string schema;
        std::string table;
    };
    static std::vector<TablePattern> split(const std::vector<std::string>& patterns);
    bool schema_passes(const std::string& schema) const;

    FilterSettings settings_;
    std::vector<TablePattern> include_tables_;
    std::vector<TablePattern> exclude_tables_;
    Processor& next_;
    Acknowledger& acknowledger_;
    std::array<std::atomic<uint64_t>, kActionCount> dropped_{};
};

}  // namespace pgstream
