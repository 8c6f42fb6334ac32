#include "processor/filter/filter.h"

namespace pgstream {

bool glob_match(std::string_view pattern, std::string_view text) {
    // Iterative wildcard matching with backtracking to the last '*'.
    size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
    while (t < text.size()) {
        if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            mark = t;
        } else if (p < pattern.size() && pattern[p] == text[t]) {
            ++p;
            ++t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++mark;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') ++p;
    return p == pattern.size();
}

Filter::Filter(FilterSettings settings, Processor& next, Acknowledger& acknowledger)
    : settings_(std::move(settings)),
      include_tables_(split(settings_.include_tables)),
      exclude_tables_(split(settings_.exclude_tables)),
      next_(next),
      acknowledger_(acknowledger) {}

std::vector<Filter::TablePattern> Filter::split(const std::vector<std::string>& patterns) {
    std::vector<TablePattern> out;
    for (const auto& pattern : patterns) {
        size_t dot = pattern.find('.');
        if (dot == std::string::npos)
            out.push_back({"public", pattern});
        else
            out.push_back({pattern.substr(0, dot), pattern.substr(dot + 1)});
    }
    return out;
}

bool Filter::schema_passes(const std::string& schema) const {
    if (!settings_.include_schemas.empty()) {
        bool included = false;
        for (const auto& pattern : settings_.include_schemas)
            included = included || glob_match(pattern, schema);
        if (!included) return false;
    }
    for (const auto& pattern : settings_.exclude_schemas)
        if (glob_match(pattern, schema)) return false;
    return true;
}

bool Filter::accepts(const Event& event) const {
    if (event.action == Action::Message) return true;
    // pgstream's own bookkeeping (table_ids, schema_log acks) never leaves; schema changes do.
    const bool own_schema = event.in_pgstream_schema();
    if (own_schema && !(event.is_schema_log() && event.action == Action::Insert)) return false;
    if (own_schema && event.is_schema_log()) {
        const Column* schema_name = event.find_column("schema_name");
        if (!schema_name) return true;
        const std::string& described = schema_name->value.text;
        if (!schema_passes(described)) return false;
        if (include_tables_.empty()) return true;
        for (const auto& pattern : include_tables_)
            if (glob_match(pattern.schema, described)) return true;
        return false;
    }
    if (!schema_passes(event.schema)) return false;
    if (!include_tables_.empty()) {
        bool included = false;
        for (const auto& pattern : include_tables_)
            included = included ||
                       (glob_match(pattern.schema, event.schema) && glob_match(pattern.table, event.table));
        if (!included) return false;
    }
    for (const auto& pattern : exclude_tables_)
        if (glob_match(pattern.schema, event.schema) && glob_match(pattern.table, event.table)) return false;
    return true;
}

void Filter::process(EventPtr event) {
    if (accepts(*event)) {
        next_.process(std::move(event));
    } else {
        dropped_[action_index(event->action)].fetch_add(1, std::memory_order_relaxed);
        acknowledger_.acknowledge(*event);
    }
}

uint64_t Filter::dropped() const {
    uint64_t total = 0;
    for (const auto& count : dropped_) total += count.load(std::memory_order_relaxed);
    return total;
}

}  // namespace pgstream
