#include "processor/translator/translator.h"

#include <algorithm>
#include <limits>

#include "util/log.h"

namespace pgstream {

std::vector<const SchemaColumn*> PrimaryKeyIdFinder::identity_columns(const SchemaTable& table) const {
    std::vector<const SchemaColumn*> columns;
    for (const auto& name : table.primary_key_columns)
        if (const SchemaColumn* column = table.find_column(name)) columns.push_back(column);
    if (!columns.empty() && columns.size() == table.primary_key_columns.size()) return columns;
    columns.clear();
    for (const auto& column : table.columns) {
        if (column.unique && !column.nullable) {
            columns.push_back(&column);
            break;
        }
    }
    return columns;
}

std::string LsnVersionFinder::version(const Event& event, const SchemaTable&) const {
    return event.lsn.str();
}

Translator::Translator(std::unique_ptr<SchemaLogStore> store, Processor& next, Acknowledger& acknowledger,
                       std::unique_ptr<IdFinder> id_finder, std::unique_ptr<VersionFinder> version_finder)
    : store_(std::move(store)),
      next_(next),
      acknowledger_(acknowledger),
      id_finder_(id_finder ? std::move(id_finder) : std::make_unique<PrimaryKeyIdFinder>()),
      version_finder_(version_finder ? std::move(version_finder) : std::make_unique<LsnVersionFinder>()) {}

SchemaLogEntry Translator::entry_from_event(const Event& event) {
    SchemaLogEntry entry;
    const Column* id = event.find_column("id");
    const Column* version = event.find_column("version");
    const Column* schema_name = event.find_column("schema_name");
    const Column* schema = event.find_column("schema");
    if (!id || !schema_name || !schema || !schema->value.is_string())
        throw JsonError("schema_log row lacks id, schema_name or schema");
    entry.id = id->value.text;
    entry.schema_name = schema_name->value.text;
    if (version && version->value.is_number()) entry.version = std::stoll(version->value.text);
    // Absent when schema tracking predates it: such versions count as older than every positioned one, as the
    // store does with its NULL positions.
    if (const Column* position = event.find_column("wal_position"); position && position->value.is_string())
        entry.wal_position = Lsn::parse(position->value.text).value_or(Lsn());
    parse_schema_document(schema->value.text, entry);
    return entry;
}

void Translator::process(EventPtr shared) {
    if (shared->in_pgstream_schema() && !(shared->is_schema_log() && shared->action == Action::Insert)) {
        ++stats_.hidden;
        acknowledger_.acknowledge(*shared);
        return;
    }
    if (shared->action == Action::Message || shared->schema.empty()) {
        next_.process(std::move(shared));
        return;
    }
    // The translator completes the event (pgstream metadata, column ids); after it, events are read only.
    MutableEventPtr event = take_for_completion(std::move(shared));
    if (event->in_pgstream_schema()) {  // a schema_log insert
        handle_schema_change(std::move(event));
        return;
    }
    // An event without a position (a source that lost it) gets the newest version held.
    const SchemaLogEntry* entry = schema_for(
        event->schema, event->lsn.valid() ? event->lsn : Lsn(std::numeric_limits<uint64_t>::max()));
    const SchemaTable* table = entry ? find_table(*entry, event->table) : nullptr;
    if (!table) {
        ++stats_.without_schema;
        std::string qualified = event->schema + "." + event->table;
        if (warned_tables_.insert(qualified).second)
            log::emit(store_->tracks_schemas() ? log::Level::Warn : log::Level::Debug,
                      "translator: no acknowledged schema_log entry describes ", qualified,
                      "; its events pass without pgstream metadata");
        next_.process(std::move(event));
        return;
    }
    const TableHeads& heads = heads_for(*entry, *table);
    event->metadata.schema_id = heads.schema_id;
    event->metadata.table_pgstream_id = heads.table_id;
    for (auto* columns : {&event->columns, &event->identity}) {
        for (size_t i = 0; i < columns->size(); ++i) {
            Column& column = (*columns)[i];
            // Records list columns in attnum order like the schema does: try the same position before the
            // scan (column names are unique within a table, so a hit is the column the scan would find).
            size_t known = i < heads.column_names.size() && (heads.column_names[i].same_as(column.name) ||
                                                             table->columns[i].name == column.name)
                               ? i
                               : table->column_index(column.name);
            if (known < heads.column_ids.size()) column.id = heads.column_ids[known];
        }
    }
    if (event->action != Action::Truncate) {
        event->metadata.id_col_pgstream_ids = heads.identity_ids;
        if (heads.identity_ids.empty()) ++stats_.without_identity;
    }
    // A snapshot row's version is chosen by the snapshot: below every change the stream may still deliver.
    if (!event->metadata.is_snapshot()) event->metadata.version = version_finder_->version(*event, *table);
    ++stats_.translated;
    next_.process(std::move(event));
}

const Translator::TableHeads& Translator::heads_for(const SchemaLogEntry& entry, const SchemaTable& table) {
    auto found = table_heads_.find(HeadsKey{&entry, &table});
    if (found != table_heads_.end()) return found->second;
    TableHeads heads;
    // Interned: every row copies them, on this thread, and drops them on the output's (no shared count).
    heads.schema_id = SharedText::interned(entry.id);
    heads.table_id = SharedText::interned(table.pgstream_id);
    for (const auto& column : table.columns) {
        heads.column_ids.push_back(SharedText::interned(column.pgstream_id));
        heads.column_names.push_back(SharedText::interned(column.name));
    }
    std::vector<std::string> identity_ids;
    for (const SchemaColumn* column : id_finder_->identity_columns(table))
        identity_ids.push_back(column->pgstream_id);
    heads.identity_ids = std::move(identity_ids);
    return table_heads_.emplace(HeadsKey{&entry, &table}, std::move(heads)).first->second;
}

const SchemaTable* Translator::find_table(const SchemaLogEntry& entry, const std::string& table_name) {
    if (last_found_.entry == &entry && last_found_.table_name == table_name) return last_found_.table;
    auto [by_name, made] = tables_by_name_.try_emplace(&entry);
    if (made) {
        by_name->second.reserve(entry.tables.size());
        for (const SchemaTable& table : entry.tables) by_name->second.emplace(table.name, &table);
    }
    auto found = by_name->second.find(table_name);
    const SchemaTable* table = found == by_name->second.end() ? nullptr : found->second;
    last_found_.entry = &entry;
    last_found_.table_name = table_name;
    last_found_.table = table;
    return table;
}

void Translator::forget_derived_from_versions() {
    table_heads_.clear();
    tables_by_name_.clear();
    last_found_ = LastFound{};
}

void Translator::handle_schema_change(MutableEventPtr event) {
    // Since extension 0.5.0 the stream carries the versions' table, pgstream.schema_log_entries; downstream
    // (filter, outputs, their consumers) keeps seeing the name readers query, pgstream.schema_log.
    event->table = "schema_log";
    SchemaLogEntry entry;
    try {
        entry = entry_from_event(*event);
    } catch (const std::exception& e) {
        log::error("translator: cannot read the schema_log row at ", event->lsn.str(), ": ", e.what(),
                   "; forwarding it unacknowledged");
        next_.process(std::move(event));
        return;
    }
    try {
        store_->ack(entry);
    } catch (const SchemaLogGone&) {
        throw;
    } catch (const Stopped&) {
        throw;  // not forwarded: the version is acknowledged when the source sends it again
    } catch (const std::exception& e) {
        log::error("translator: acknowledging schema_log ", entry.id, " failed: ", e.what(),
                   "; it stays acked=false but is applied and forwarded");
    }
    ++stats_.schema_changes;
    bool delta = entry.delta_base.has_value();
    bool composed = !delta || compose_from_history(entry) || compose_from_store(entry);
    // A delta goes on as the whole document, as pgstream.schema_log shows it: outputs and their consumers
    // (search, the Go pgstream's) read schema changes as whole schemas whatever the extension stored.
    if (delta && composed) set_schema_document(*event, whole_document_json(entry));
    log::info("translator: schema \"", entry.schema_name, "\" version ", entry.version, " (",
              delta ? std::to_string(entry.tables.size()) + " tables changed" : "",
              delta && composed ? ", " : "", composed ? std::to_string(entry.tables.size()) + " tables" : "",
              entry.dropped ? ", dropped" : "", ") acknowledged");
    warn_undecodable_tables(entry);
    if (!event->metadata.is_snapshot()) event->metadata.version = event->lsn.str();
    warned_tables_.clear();
    if (composed) {
        add_version(std::move(entry));
    } else if (auto held = histories_.find(entry.schema_name); held != histories_.end()) {
        // The delta's base is not held: the next row of the schema reads the versions from the store, which
        // composes them (the version is committed by the time a later row arrives).
        held->second.loaded = false;
    }
    next_.process(std::move(event));
}

// A delta version from the stream is composed with its base version, when that is held (the usual case: the
// previous version of the schema, read or streamed before). Parsing and copying the base's tables costs far
// less than parsing a whole-schema document.
bool Translator::compose_from_history(SchemaLogEntry& delta) {
    auto history = histories_.find(delta.schema_name);
    if (history == histories_.end() || !history->second.loaded) return false;
    for (auto it = history->second.versions.rbegin(); it != history->second.versions.rend(); ++it) {
        if ((*it)->version == *delta.delta_base) {
            apply_delta(**it, delta);
            return true;
        }
    }
    return false;
}

// A delta whose base is not held: the store's whole document of the version (pgstream.schema_log composes
// it), when it can give one. The version is committed by the time the stream delivers it.
bool Translator::compose_from_store(SchemaLogEntry& delta) {
    std::optional<std::string> whole;
    try {
        whole = store_->whole_document(delta);
        if (!whole) return false;
        parse_schema_document(*whole, delta);
    } catch (const SchemaLogGone&) {
        throw;
    } catch (const Stopped&) {
        throw;
    } catch (const std::exception& e) {
        log::warn("translator: cannot read the whole document of schema \"", delta.schema_name, "\" version ",
                  delta.version, ": ", e.what(), "; it is forwarded as the delta the stream carries");
        return false;
    }
    return !delta.delta_base.has_value();
}

void Translator::set_schema_document(Event& event, std::string document) {
    for (auto& column : event.columns)
        if (column.name == "schema") {
            column.value.kind = JsonValue::Kind::String;
            column.value.text = std::move(document);
            column.value.escape_free = false;
            return;
        }
}

// A schema change may have added a table (or dropped a key) that leaves UPDATE/DELETE undecodable: one
// warning per such table, the first time it is seen.
void Translator::warn_undecodable_tables(const SchemaLogEntry& entry) {
    std::set<std::string> now;
    auto& warned = undecodable_tables_[entry.schema_name];
    for (const auto& table : store_->undecodable_tables(entry)) {
        if (!warned.count(table.qualified_name)) log::warn("translator: ", table.describe());
        now.insert(table.qualified_name);
    }
    warned = std::move(now);
    uint64_t total = 0;
    for (const auto& [schema, tables] : undecodable_tables_) total += tables.size();
    stats_.tables_without_replica_identity = total;
}

const SchemaLogEntry* Translator::schema_for(const std::string& schema_name, Lsn position) {
    if (last_history_ == nullptr || last_history_name_ != schema_name) {
        last_history_ = &histories_[schema_name];
        last_history_name_ = schema_name;
    }
    SchemaHistory& history = *last_history_;
    if (!history.loaded || position < history.valid_from ||
        (history.valid_until && position >= *history.valid_until))
        load(history, schema_name, position);
    for (auto it = history.versions.rbegin(); it != history.versions.rend(); ++it)
        if ((*it)->wal_position < position) return it->get();
    return nullptr;
}

void Translator::load(SchemaHistory& history, const std::string& schema_name, Lsn position) {
    SchemaVersions found = store_->versions_from(schema_name, position, kVersionsHeldPerSchema);
    forget_derived_from_versions();
    history.versions.clear();
    for (auto& entry : found.entries)
        history.versions.push_back(std::make_shared<const SchemaLogEntry>(std::move(entry)));
    history.loaded = true;
    // Without a version before `position` there is none before any earlier position either (versions are only
    // ever added after the newest, or deleted).
    bool in_force_found = !history.versions.empty() && history.versions.front()->wal_position < position;
    history.valid_from = in_force_found ? Lsn(history.versions.front()->wal_position.value + 1) : Lsn();
    history.valid_until = found.more_from;
}

void Translator::add_version(SchemaLogEntry entry) {
    SchemaHistory& history = histories_[entry.schema_name];
    auto added = std::make_shared<const SchemaLogEntry>(std::move(entry));
    if (!history.loaded) {
        // Nothing of this schema was read yet, or what was held is stale (a delta whose base was not held): the
        // stream goes on from this version. Versions held before are let go.
        if (!history.versions.empty()) forget_derived_from_versions();
        history.loaded = true;
        history.versions = {added};
        history.valid_from = Lsn(added->wal_position.value + 1);
        return;
    }
    // Past the versions held: the store has it (it is committed) and a row that needs it reloads from there.
    if (history.valid_until && added->wal_position >= *history.valid_until) return;
    auto order = [](const std::shared_ptr<const SchemaLogEntry>& a,
                    const std::shared_ptr<const SchemaLogEntry>& b) {
        return std::make_pair(a->wal_position, a->version) < std::make_pair(b->wal_position, b->version);
    };
    for (const auto& held : history.versions)
        if (held->id == added->id) return;  // read from the store before the stream brought it
    history.versions.insert(std::upper_bound(history.versions.begin(), history.versions.end(), added, order),
                            added);
    if (!history.valid_until && history.versions.size() > kVersionsHeldPerSchema) {
        history.versions.erase(history.versions.begin());
        history.valid_from =
            std::max(history.valid_from, Lsn(history.versions.front()->wal_position.value + 1));
        forget_derived_from_versions();
    }
}

std::string Translator::fatal_error() const {
    auto now = std::chrono::steady_clock::now();
    if (store_gone_.empty() && now >= next_store_check_ && store_->tracks_schemas()) {
        next_store_check_ = now + std::chrono::seconds(2);
        try {
            store_->check_present();
        } catch (const SchemaLogGone& e) {
            store_gone_ = e.what();
        }
    }
    return store_gone_.empty() ? next_.fatal_error() : store_gone_;
}

}  // namespace pgstream
