#include "search/documents.h"

#include <openssl/sha.h>

#include <algorithm>

#include "search/mapping.h"

namespace pgstream::search {

namespace {

std::string sha256_hex(const std::string& text) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned char byte : digest) {
        out += hex[byte >> 4];
        out += hex[byte & 0x0f];
    }
    return out;
}

const Column* find_by_id(const std::vector<Column>& columns, const std::string& id) {
    for (const auto& column : columns)
        if (column.id == id) return &column;
    return nullptr;
}

// The identity values of `columns`, as text; false when one is missing or null (no document id).
bool identity_values(const Event& event, const std::vector<Column>& columns,
                     std::vector<std::string>& values) {
    values.clear();
    for (const auto& id : event.metadata.id_col_pgstream_ids) {
        const Column* column = find_by_id(columns, id);
        if (column == nullptr || column->value.is_null()) return false;
        if (column->value.is_object() || column->value.is_array()) {
            values.push_back(column->value.to_json());
        } else {
            values.push_back(column->value.text);
        }
    }
    return true;
}

}  // namespace

std::string document_id(const std::string& table_pgstream_id, const std::vector<std::string>& identity_values,
                        bool hash) {
    std::string joined;
    if (identity_values.size() == 1) {
        joined = identity_values.front();
    } else {
        for (size_t i = 0; i < identity_values.size(); ++i) {
            if (i > 0) joined += '-';
            for (char c : identity_values[i]) {
                if (c == '-' || c == '\\') joined += '\\';
                joined += c;
            }
        }
    }
    std::string id = table_pgstream_id + "_" + joined;
    if (hash || id.size() > kMaxDocumentIdBytes) return table_pgstream_id + "_" + sha256_hex(joined);
    return id;
}

uint64_t document_version(const Event& event) {
    // A snapshot row's position is where it was read, later than changes of transactions the snapshot could
    // not see; its version is the one its snapshot chose, below all of those (docs/snapshot.md).
    if (event.metadata.is_snapshot())
        if (auto chosen = Lsn::parse(event.metadata.version)) return chosen->value;
    uint64_t version = event.lsn.value;
    if (event.action == Action::Update || event.action == Action::Delete) ++version;
    return version;
}

void write_source(BulkJsonWriter& writer, const BulkItem& item) {
    writer.StartObject();
    // The values are JSON already (document_value()).
    for (const auto& [name, value] : item.fields) {
        writer.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
        writer.raw_json(value);
    }
    writer.Key(kChangeVersionField);
    writer.Uint64(item.version);
    writer.EndObject();
}

std::string BulkItem::source() const {
    rapidjson::StringBuffer buffer;
    BulkJsonWriter writer(buffer);
    write_source(writer, *this);
    return std::string(buffer.GetString(), buffer.GetSize());
}

const FieldType* FieldTypes::mapped(const std::string& postgres_type) {
    auto found = by_type_.find(postgres_type);
    if (found == by_type_.end()) {
        std::optional<FieldType> type = field_type_of(postgres_type);
        if (type->kind == FieldKind::kUnknown || !field_mapping(*type, engine_)) type.reset();
        found = by_type_.emplace(postgres_type, type).first;
    }
    return found->second ? &*found->second : nullptr;
}

std::vector<BulkItem> bulk_items_for(const Event& event, const SchemaTable* table,
                                     const SearchSettings& settings, DocumentStats& stats) {
    FieldTypes types(settings.engine);
    return bulk_items_for(event, table, settings, stats, types);
}

std::vector<BulkItem> bulk_items_for(const Event& event, const SchemaTable* table,
                                     const SearchSettings& settings, DocumentStats& stats,
                                     FieldTypes& types) {
    std::vector<BulkItem> items;
    if (event.action != Action::Insert && event.action != Action::Update && event.action != Action::Delete) {
        return items;
    }
    if (event.metadata.table_pgstream_id.empty() || event.metadata.id_col_pgstream_ids.empty()) {
        ++stats.events_without_metadata;
        return items;
    }
    const std::string& table_id = event.metadata.table_pgstream_id;
    const std::string index = alias_name(event.schema);
    const uint64_t version = document_version(event);
    std::vector<std::string> values;

    auto delete_item = [&](const std::vector<std::string>& key) {
        BulkItem item;
        item.action = BulkItem::Action::kDelete;
        item.index = index;
        item.id = document_id(table_id, key, settings.hash_doc_ids);
        item.version = version;
        return item;
    };

    if (event.action == Action::Delete) {
        if (!identity_values(event, event.identity, values)) {
            ++stats.rows_without_identity;
            return items;
        }
        items.push_back(delete_item(values));
        return items;
    }
    if (!identity_values(event, event.columns, values)) {
        ++stats.rows_without_identity;
        return items;
    }
    BulkItem item;
    item.index = index;
    item.id = document_id(table_id, values, settings.hash_doc_ids);
    item.version = version;
    // An UPDATE that changed the key moves the document: the old id is deleted.
    std::vector<std::string> old_values;
    if (event.action == Action::Update && !event.identity.empty() &&
        identity_values(event, event.identity, old_values) && old_values != values) {
        items.push_back(delete_item(old_values));
    }
    item.fields.reserve(event.columns.size() + 1);
    item.fields.emplace_back("_table", json_quote(table_id));
    auto add_field = [&](const Column& column) {
        const FieldType* type = types.mapped(column.type);
        if (type == nullptr) {
            ++stats.fields_unmapped;
            return;
        }
        auto value = document_value(*type, column.value);
        if (!value) {
            ++stats.values_unconvertible;
            return;
        }
        item.fields.emplace_back(column.id, std::move(*value));
    };
    for (const auto& column : event.columns) {
        if (!column.id.empty()) add_field(column);
    }
    // wal2json leaves an unchanged TOASTed value out of an UPDATE's columns. With REPLICA IDENTITY FULL the
    // old row carries it; otherwise the writer copies it from the stored document.
    if (event.action == Action::Update && table != nullptr) {
        for (const auto& column : table->columns) {
            if (find_by_id(event.columns, column.pgstream_id) != nullptr) continue;
            if (types.mapped(column.type) == nullptr) continue;
            if (const Column* old = find_by_id(event.identity, column.pgstream_id)) {
                add_field(*old);
            } else {
                item.unchanged_fields.push_back(column.pgstream_id);
            }
        }
    }
    items.push_back(std::move(item));
    return items;
}

}  // namespace pgstream::search
