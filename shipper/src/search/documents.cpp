#include "search/documents.h"

#include <openssl/sha.h>

#include <algorithm>
#include <cstring>

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

// Appends one identity value joined as document_id() joins it: as is when it is the only one, else with '-'
// and '\' escaped (the caller puts the '-' between values).
void append_key_value(std::string& key, std::string_view value, bool only) {
    if (only) {
        key.append(value);
        return;
    }
    for (char c : value) {
        if (c == '-' || c == '\\') key += '\\';
        key += c;
    }
}

// Writes the _id of the row `key` of the table into `id` (whose memory is reused).
void write_id_of_key(const std::string& table_pgstream_id, const std::string& key, bool hash,
                     std::string& id) {
    id.assign(table_pgstream_id).append(1, '_');
    if (hash || table_pgstream_id.size() + 1 + key.size() > kMaxDocumentIdBytes)
        id.append(sha256_hex(key));
    else
        id.append(key);
}

std::string id_of_key(const std::string& table_pgstream_id, const std::string& key, bool hash) {
    std::string id;
    write_id_of_key(table_pgstream_id, key, hash, id);
    return id;
}

}  // namespace

std::string document_id(const std::string& table_pgstream_id, const std::vector<std::string>& identity_values,
                        bool hash) {
    std::string joined;
    for (size_t i = 0; i < identity_values.size(); ++i) {
        if (i > 0) joined += '-';
        append_key_value(joined, identity_values[i], identity_values.size() == 1);
    }
    return id_of_key(table_pgstream_id, joined, hash);
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

void BulkItem::add_field(std::string_view name, std::string_view json_value) {
    if (!fields_json.empty()) fields_json += ',';
    append_json_string(fields_json, name);
    fields_json += ':';
    fields_json.append(json_value);
}

std::optional<std::string> BulkItem::field_json(std::string_view name) const {
    // Its values come back as written (add_field): numbers keep their digits, strings are escaped again the
    // same way.
    try {
        const JsonValue document = parse_json("{" + fields_json + "}");
        if (const JsonValue* value = document.find(name)) return value->to_json();
    } catch (const JsonError&) {
        // Not a document add_field() wrote: it has no such field.
    }
    return std::nullopt;
}

std::string BulkItem::source() const {
    std::string out = "{" + fields_json;
    if (!fields_json.empty()) out += ',';
    append_json_string(out, kChangeVersionField);
    out += ':' + std::to_string(version) + '}';
    return out;
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
    DocumentBuilder builder(settings);
    std::vector<BulkItem> items;
    builder.append(event, table, stats, items);
    return items;
}

bool DocumentBuilder::identity_key(const Event& event, const std::vector<Column>& columns, std::string& key) {
    key.clear();
    const auto& ids = event.metadata.id_col_pgstream_ids;
    for (size_t i = 0; i < ids.size(); ++i) {
        const Column* column = find_by_id(columns, ids[i]);
        if (column == nullptr || column->value.is_null()) return false;
        if (i > 0) key += '-';
        if (column->value.is_object() || column->value.is_array()) {
            append_key_value(key, column->value.to_json(), ids.size() == 1);
        } else {
            append_key_value(key, column->value.text, ids.size() == 1);
        }
    }
    return true;
}

void DocumentBuilder::reuse(std::vector<BulkItem>&& items) {
    if (spare_.empty()) spare_ = std::move(items);
}

BulkItem& DocumentBuilder::next_item(std::vector<BulkItem>& items) {
    if (spare_.empty()) return items.emplace_back();
    BulkItem& item = items.emplace_back(std::move(spare_.back()));
    spare_.pop_back();
    item.reset_keeping_memory();
    return item;
}

const DocumentBuilder::ColumnHead& DocumentBuilder::head(size_t position, const Column& column) {
    if (position >= heads_.size()) heads_.resize(position + 1);
    ColumnHead& head = heads_[position];
    if (!head.id.same_as(column.id) || !head.type.same_as(column.type)) make_head(head, column);
    return head;
}

void DocumentBuilder::make_head(ColumnHead& head, const Column& column) {
    head.id = column.id;
    head.type = column.type;
    head.field = types_.mapped(column.type);
    head.name_json = json_quote(column.id.view()) + ':';
}

char* DocumentBuilder::room(size_t bytes) {
    if (document_.size() - document_size_ < bytes)
        document_.resize(std::max(2 * document_.size(), document_size_ + bytes));
    return document_.data() + document_size_;
}

void DocumentBuilder::add_field(const ColumnHead& head, const Column& column, DocumentStats& stats) {
    if (head.field == nullptr) {
        ++stats.fields_unmapped;
        return;
    }
    const FieldType& field = *head.field;
    // Every field follows "_table": a comma first.
    if (is_scalar_value(field, column.value)) {
        char* out = room(1 + head.name_json.size() + scalar_value_bound(column.value));
        *out++ = ',';
        std::memcpy(out, head.name_json.data(), head.name_json.size());
        out = write_scalar_value(out + head.name_json.size(), field, column.value);
        if (out == nullptr) {
            ++stats.values_unconvertible;
            return;
        }
        document_size_ = size_t(out - document_.data());
        return;
    }
    std::optional<std::string> value = document_value(field, column.value);
    if (!value) {
        ++stats.values_unconvertible;
        return;
    }
    char* out = room(1 + head.name_json.size() + value->size());
    *out++ = ',';
    std::memcpy(out, head.name_json.data(), head.name_json.size());
    out += head.name_json.size();
    std::memcpy(out, value->data(), value->size());
    document_size_ = size_t(out + value->size() - document_.data());
}

size_t DocumentBuilder::append(const Event& event, const SchemaTable* table, DocumentStats& stats,
                               std::vector<BulkItem>& items) {
    if (event.action != Action::Insert && event.action != Action::Update && event.action != Action::Delete) {
        return 0;
    }
    if (event.metadata.table_pgstream_id.empty() || event.metadata.id_col_pgstream_ids.empty()) {
        ++stats.events_without_metadata;
        return 0;
    }
    const std::string& table_id = event.metadata.table_pgstream_id;
    const std::string& index = alias_name(event.schema);
    const uint64_t version = document_version(event);

    auto delete_item = [&](const std::string& key) {
        BulkItem& item = next_item(items);
        item.action = BulkItem::Action::kDelete;
        item.index = index;
        write_id_of_key(table_id, key, hash_ids_, item.id);
        item.version = version;
    };

    if (event.action == Action::Delete) {
        if (!identity_key(event, event.identity, key_)) {
            ++stats.rows_without_identity;
            return 0;
        }
        delete_item(key_);
        return 1;
    }
    if (!identity_key(event, event.columns, key_)) {
        ++stats.rows_without_identity;
        return 0;
    }
    size_t added = 0;
    // An UPDATE that changed the key moves the document: the old id is deleted. The joined keys are equal
    // exactly when the values are (the escapes keep the joining one to one).
    if (event.action == Action::Update && !event.identity.empty() &&
        identity_key(event, event.identity, old_key_) && old_key_ != key_) {
        delete_item(old_key_);
        ++added;
    }
    BulkItem& item = next_item(items);
    item.index = index;
    write_id_of_key(table_id, key_, hash_ids_, item.id);
    item.version = version;
    // "_table":"<table id>", as the last row of the same table wrote it (the rows of a table share the text).
    if (!table_field_id_.same_as(event.metadata.table_pgstream_id)) {
        table_field_id_ = event.metadata.table_pgstream_id;
        table_field_json_ = "\"_table\":" + json_quote(table_id);
    }
    document_size_ = 0;
    std::memcpy(room(table_field_json_.size()), table_field_json_.data(), table_field_json_.size());
    document_size_ = table_field_json_.size();
    for (size_t i = 0; i < event.columns.size(); ++i) {
        const Column& column = event.columns[i];
        if (!column.id.empty()) add_field(head(i, column), column, stats);
    }
    // wal2json leaves an unchanged TOASTed value out of an UPDATE's columns. With REPLICA IDENTITY FULL the
    // old row carries it; otherwise the writer copies it from the stored document.
    if (event.action == Action::Update && table != nullptr) {
        for (const auto& column : table->columns) {
            if (find_by_id(event.columns, column.pgstream_id) != nullptr) continue;
            if (types_.mapped(column.type) == nullptr) continue;
            if (const Column* old = find_by_id(event.identity, column.pgstream_id)) {
                make_head(toast_head_, *old);
                add_field(toast_head_, *old, stats);
            } else {
                item.unchanged_fields.push_back(column.pgstream_id);
            }
        }
    }
    // One allocation of the document's size: the room made for escapes stays with the builder.
    item.fields_json.assign(document_.data(), document_size_);
    return added + 1;
}

}  // namespace pgstream::search
