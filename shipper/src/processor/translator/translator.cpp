#include "processor/translator/translator.h"

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
    parse_schema_document(schema->value.text, entry);
    return entry;
}

void Translator::process(EventPtr event) {
    if (event->schema == "pgstream") {
        if (event->table == "schema_log" && event->action == Action::Insert) {
            handle_schema_change(std::move(event));
        } else {
            ++stats_.hidden;
            acknowledger_.acknowledge(*event);
        }
        return;
    }
    if (event->action == Action::Message || event->schema.empty()) {
        next_.process(std::move(event));
        return;
    }
    const SchemaLogEntry* entry = schema_for(event->schema);
    const SchemaTable* table = entry ? entry->find_table(event->table) : nullptr;
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
    event->metadata.table_pgstream_id = table->pgstream_id;
    for (auto* columns : {&event->columns, &event->identity}) {
        for (size_t i = 0; i < columns->size(); ++i) {
            Column& column = (*columns)[i];
            // Records list columns in attnum order like the schema does: try the same position before the
            // scan (column names are unique within a table, so a hit is the column the scan would find).
            const SchemaColumn* known = i < table->columns.size() && table->columns[i].name == column.name
                                            ? &table->columns[i]
                                            : table->find_column(column.name);
            if (known) column.id = known->pgstream_id;
        }
    }
    if (event->action != Action::Truncate) {
        auto ids = identity_ids_.find(table);
        if (ids == identity_ids_.end()) {
            std::vector<std::string> found;
            for (const SchemaColumn* column : id_finder_->identity_columns(*table))
                found.push_back(column->pgstream_id);
            ids = identity_ids_.emplace(table, std::move(found)).first;
        }
        event->metadata.id_col_pgstream_ids = ids->second;
        if (ids->second.empty()) ++stats_.without_identity;
    }
    event->metadata.version = version_finder_->version(*event, *table);
    ++stats_.translated;
    next_.process(std::move(event));
}

void Translator::handle_schema_change(EventPtr event) {
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
    } catch (const Stopped&) {
        throw;  // not forwarded: the version is acknowledged when the source sends it again
    } catch (const std::exception& e) {
        log::error("translator: acknowledging schema_log ", entry.id, " failed: ", e.what(),
                   "; it stays acked=false but is applied and forwarded");
    }
    ++stats_.schema_changes;
    log::info("translator: schema \"", entry.schema_name, "\" version ", entry.version, " (",
              entry.tables.size(), " tables", entry.dropped ? ", dropped" : "", ") acknowledged");
    event->metadata.version = event->lsn.str();
    warned_tables_.clear();
    identity_ids_.clear();
    cache_[entry.schema_name] = std::move(entry);
    next_.process(std::move(event));
}

const SchemaLogEntry* Translator::schema_for(const std::string& schema_name) {
    auto it = cache_.find(schema_name);
    if (it == cache_.end()) it = cache_.emplace(schema_name, store_->latest_acked(schema_name)).first;
    return it->second ? &*it->second : nullptr;
}

}  // namespace pgstream
