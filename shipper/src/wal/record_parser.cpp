#include "wal/record_parser.h"

#include "wal/event_codec.h"
#include "wal/recycled_events.h"

#include <rapidjson/reader.h>
#include <rapidjson/stream.h>

#include <cstring>
#include <optional>

namespace pgstream {

namespace {

// Consecutive records mostly come from the same table: each parsing thread keeps the column names and types
// (and the commit time) of the last record per position and hands out the same shared text while the record
// says the same (a comparison instead of an allocation and a copy per column per row).
class RecentHeads {
  public:
    // head 0: name, 1: type; `identity`: the identity array rather than the columns. Sets `head` to the text
    // (a recycled event's column mostly holds it already).
    void reuse(bool identity, size_t position, int kind, std::string_view text, SharedText& head) {
        auto& heads = heads_[identity][kind];
        if (heads.size() <= position) heads.resize(position + 1);
        const SharedText& recent = reuse(heads[position], text);
        if (!head.same_as(recent)) head = recent;
    }
    static const SharedText& reuse(SharedText& recent, std::string_view text) {
        if (recent.view() != text) recent = SharedText(text);
        return recent;
    }
    SharedText timestamp;

  private:
    std::vector<SharedText> heads_[2][2];
};

RecentHeads& recent_heads() {
    thread_local RecentHeads heads;
    return heads;
}

// The hot path: a SAX handler that fills a Record straight from the reader's events, without building a
// JsonValue tree (every key and value of which would be a heap string). It understands the shapes wal2json
// writes; on anything else (nested values where scalars are expected, a non-object column, a duplicate
// member it cannot resolve the same way) it stops and parse_wal2json_record falls back to the tree-based
// parser, which defines the behaviour (including every error message).
class RecordHandler : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, RecordHandler> {
  public:
    enum class Field {
        Action,
        Xid,
        Timestamp,
        Lsn,
        NextLsn,
        Schema,
        Table,
        Columns,
        Identity,
        Prefix,
        Content,
        ContentEncoding,
        Transactional,
        Other,
        Count
    };

    struct Scalar {
        bool seen = false;
        JsonValue::Kind kind = JsonValue::Kind::Null;
        // Into the in-situ buffer (or a literal): valid until the next record is parsed. Copied only into
        // the event's own fields; the action, xid and LSNs are read from here without a copy.
        std::string_view text;
    };

    // Fills `event`'s columns and identity (a recycled event's: their elements are reused, and what the
    // record does not set is reset).
    explicit RecordHandler(Event& event) : event_(event) {}
    // Back to the start of a record, for a second reading of the same one.
    void restart() {
        for (Scalar& field : fields) field = Scalar();
        columns_array = identity_array = false;
        depth_ = skip_depth_ = 0;
        field_ = Field::Other;
        column_field_ = ColumnField::Other;
        current_columns_ = nullptr;
    }

    Scalar fields[size_t(Field::Count)];
    bool columns_array = false;
    bool identity_array = false;

    bool Null() { return scalar(JsonValue::Kind::Null, {}); }
    // A scalar as the plain reader read it (Null, Bool, RawNumber and String in one call).
    // Its strings hold no escape and no control character: escape-free.
    bool PlainValue(JsonValue::Kind kind, std::string_view text) { return scalar(kind, text, true); }
    bool Bool(bool b) { return scalar(JsonValue::Kind::Bool, b ? "true" : "false"); }
    bool RawNumber(const char* str, rapidjson::SizeType length, bool) {
        return scalar(JsonValue::Kind::Number, std::string_view(str, length));
    }
    bool String(const char* str, rapidjson::SizeType length, bool) {
        return scalar(JsonValue::Kind::String, std::string_view(str, length));
    }

    bool Key(const char* str, rapidjson::SizeType length, bool) {
        std::string_view key(str, length);
        if (skip_depth_ > 0) return true;
        if (depth_ == 1) {
            field_ = top_level_field(key);
            // Object lookups take the first member of a name; later duplicates are ignored.
            if (field_ != Field::Other && seen(field_)) field_ = Field::Other;
            return true;
        }
        // depth 2 would be inside a top-level array (columns/identity items are objects at depth 3)
        if (key == "name")
            column_field_ = ColumnField::Name;
        else if (key == "type")
            column_field_ = ColumnField::Type;
        else if (key == "value")
            column_field_ = ColumnField::Value;
        else
            column_field_ = ColumnField::Other;
        return true;
    }

    bool StartObject() {
        if (skip_depth_ > 0) return ++skip_depth_, true;
        if (depth_ == 0) return ++depth_, true;
        if (depth_ == 1) {
            if (field_ != Field::Other) return false;  // an object where a scalar or array is expected
            skip_depth_ = 1;
            return true;
        }
        if (depth_ == 2) {  // a column item
            next_column();
            ++depth_;
            return true;
        }
        if (column_field_ != ColumnField::Other) return false;  // nested column value
        skip_depth_ = 1;
        return true;
    }
    bool EndObject(rapidjson::SizeType) {
        if (skip_depth_ > 0) return --skip_depth_, true;
        if (depth_ == 3) {  // a column's end: heads it did not name are empty
            Column& column = (*current_columns_)[filled_ - 1];
            if (!name_seen_) column.name.clear();
            if (!type_seen_) column.type.clear();
        }
        --depth_;
        return true;
    }
    bool StartArray() {
        if (skip_depth_ > 0) return ++skip_depth_, true;
        if (depth_ == 1) {
            if (field_ == Field::Columns || field_ == Field::Identity) {
                mark_seen(field_);
                if (field_ == Field::Columns) {
                    columns_array = true;
                    current_columns_ = &event_.columns;
                } else {
                    identity_array = true;
                    current_columns_ = &event_.identity;
                }
                filled_ = 0;
                // Consecutive records mostly come from the same table: size the array like the last one's
                // instead of growing it one reallocation (and column move) at a time.
                current_columns_->reserve(last_size(field_));
                ++depth_;
                return true;
            }
            if (field_ != Field::Other) return false;
            skip_depth_ = 1;
            return true;
        }
        if (depth_ == 3 && column_field_ == ColumnField::Other) {
            skip_depth_ = 1;
            return true;
        }
        return false;  // an array as a column item or column value
    }
    bool EndArray(rapidjson::SizeType) {
        if (skip_depth_ > 0) return --skip_depth_, true;
        if (depth_ == 2) {
            // A recycled vector may hold more columns than this record's.
            current_columns_->resize(filled_);
            last_size(current_columns_ == &event_.columns ? Field::Columns : Field::Identity) = filled_;
        }
        --depth_;
        return true;
    }

    // Inside a columns or identity array, where the next object is a column.
    bool at_column_item() const { return skip_depth_ == 0 && depth_ == 2; }
    // A whole column object {"name":…,"type":…,"value":<scalar>}, as StartObject, the three members and
    // EndObject would apply it.
    bool PlainColumn(std::string_view name, std::string_view type, JsonValue::Kind kind,
                     std::string_view value) {
        next_column();
        const bool identity = current_columns_ == &event_.identity;
        Column& column = (*current_columns_)[filled_ - 1];
        recent_heads().reuse(identity, filled_ - 1, 0, name, column.name);
        recent_heads().reuse(identity, filled_ - 1, 1, type, column.type);
        column.value.kind = kind;
        column.value.text.assign(value.data(), value.size());
        column.value.escape_free = true;  // the plain reader's strings hold no escape
        return true;
    }

    bool seen(Field field) const { return fields[size_t(field)].seen; }
    const Scalar& get(Field field) const { return fields[size_t(field)]; }

  private:
    enum class ColumnField { Name, Type, Value, Other };

    static Field top_level_field(std::string_view key) {
        switch (key.size()) {
            case 3:
                if (key == "lsn") return Field::Lsn;
                if (key == "xid") return Field::Xid;
                break;
            case 5:
                if (key == "table") return Field::Table;
                break;
            case 6:
                if (key == "action") return Field::Action;
                if (key == "schema") return Field::Schema;
                if (key == "prefix") return Field::Prefix;
                break;
            case 7:
                if (key == "columns") return Field::Columns;
                if (key == "nextlsn") return Field::NextLsn;
                if (key == "content") return Field::Content;
                break;
            case 8:
                if (key == "identity") return Field::Identity;
                break;
            case 9:
                if (key == "timestamp") return Field::Timestamp;
                break;
            case 13:
                if (key == "transactional") return Field::Transactional;
                break;
            case 16:
                if (key == "content_encoding") return Field::ContentEncoding;
                break;
        }
        return Field::Other;
    }

    void mark_seen(Field field) { fields[size_t(field)].seen = true; }

    static size_t& last_size(Field field) {
        thread_local size_t last_columns = 0, last_identity = 0;
        return field == Field::Columns ? last_columns : last_identity;
    }

    // `escape_free`: the text holds no byte a JSON string escapes (the plain reader's values); RapidJSON's
    // decoded strings may.
    bool scalar(JsonValue::Kind kind, std::string_view text, bool escape_free = false) {
        if (skip_depth_ > 0) return true;
        if (depth_ == 0) return false;  // the record is not an object
        if (depth_ == 1) {
            if (field_ == Field::Other) return true;
            Scalar& field = fields[size_t(field_)];
            field.seen = true;
            field.kind = kind;
            field.text = text;
            return true;
        }
        if (depth_ == 2) return false;  // a scalar as a column item
        Column& column = (*current_columns_)[filled_ - 1];
        // Within a column object every member is applied in turn, so a later duplicate wins.
        switch (column_field_) {
            case ColumnField::Name:
                recent_heads().reuse(current_columns_ == &event_.identity, filled_ - 1, 0, text, column.name);
                name_seen_ = true;
                break;
            case ColumnField::Type:
                recent_heads().reuse(current_columns_ == &event_.identity, filled_ - 1, 1, text, column.type);
                type_seen_ = true;
                break;
            case ColumnField::Value:
                column.value.kind = kind;
                column.value.text.assign(text.data(), text.size());
                column.value.escape_free = escape_free;
                break;
            case ColumnField::Other:
                break;
        }
        return true;
    }

    // The next column of the array being read: a recycled one (reset but for its heads, which the column's
    // end clears unless the record names them) or a new one.
    void next_column() {
        auto& columns = *current_columns_;
        if (filled_ == columns.size()) {
            columns.emplace_back();
        } else {
            Column& column = columns[filled_];
            column.id.clear();  // the translator's, for the row before
            column.value.kind = JsonValue::Kind::Null;
            column.value.text.clear();
            column.value.escape_free = false;
            column.value.members.clear();
            column.value.items.clear();
        }
        ++filled_;
        name_seen_ = type_seen_ = false;
    }

    Event& event_;
    int depth_ = 0;       // 1 = in the record object, 2 = in columns/identity, 3 = in a column object
    int skip_depth_ = 0;  // > 0 while inside a container nobody reads
    Field field_ = Field::Other;
    ColumnField column_field_ = ColumnField::Other;
    std::vector<Column>* current_columns_ = nullptr;
    size_t filled_ = 0;  // columns of *current_columns_ read so far
    bool name_seen_ = false, type_seen_ = false;
};

// The plugin writes records without whitespace and, for most rows, without a single escape: for those this
// reader is several times faster than RapidJSON's (whose string scanner goes byte by byte up to an aligned
// block, and most strings of a record are a few bytes long). It calls the handler exactly as RapidJSON's
// reader does with kParseNumbersAsStringsFlag, with the same texts (a string without escapes is its own
// decoded text, here pointing into the record), and gives up (false) on anything else: whitespace between
// tokens (neither the pgstream plugin nor wal2json writes any), an escape or a control character in a string,
// malformed JSON, deep nesting, a handler that stops. The caller then parses the record with RapidJSON, which
// decides.
class PlainRecordReader {
  public:
    explicit PlainRecordReader(std::string_view text) : at_(text.data()), end_(text.data() + text.size()) {}

    bool parse(RecordHandler& handler) { return value(handler, 0) && at_ == end_; }

  private:
    static constexpr int kMaxDepth = 32;

    bool value(RecordHandler& handler, int depth) {
        if (at_ == end_) return false;
        switch (*at_) {
            case '{':
                if (handler.at_column_item() && plain_column(handler)) return true;
                return object(handler, depth);
            case '[':
                return array(handler, depth);
            default: {
                JsonValue::Kind kind;
                std::string_view text;
                return scalar(kind, text) && handler.PlainValue(kind, text);
            }
        }
    }

    bool object(RecordHandler& handler, int depth) {
        rapidjson::SizeType members = 0;
        return depth < kMaxDepth && handler.StartObject() &&
               elements('}', members,
                        [&] {
                            std::string_view key;
                            if (at_ == end_ || *at_ != '"' || !string(key) ||
                                !handler.Key(key.data(), rapidjson::SizeType(key.size()), false))
                                return false;
                            if (at_ == end_ || *at_ != ':') return false;
                            ++at_;
                            return value(handler, depth + 1);
                        }) &&
               handler.EndObject(members);
    }

    // At a column object's opening brace: {"name":"…","type":"…","value":<scalar>}, the members in the order
    // the plugin and wal2json write them, read without the generic member loop and key dispatch. Anything
    // else (another order, another member, an escape, a nested value) reads nothing, and object() reads it
    // from the same position.
    bool plain_column(RecordHandler& handler) {
        const char* start = at_;
        std::string_view name, type, value;
        JsonValue::Kind kind;
        if (literal(R"({"name":)") && at_ != end_ && *at_ == '"' && string(name) && literal(R"(,"type":)") &&
            at_ != end_ && *at_ == '"' && string(type) && literal(R"(,"value":)") && scalar(kind, value) &&
            at_ != end_ && *at_ == '}') {
            ++at_;
            return handler.PlainColumn(name, type, kind, value);
        }
        at_ = start;
        return false;
    }

    // A scalar value: its kind and text as RapidJSON's reader would give them to the handler.
    bool scalar(JsonValue::Kind& kind, std::string_view& text) {
        if (at_ == end_) return false;
        switch (*at_) {
            case '"':
                kind = JsonValue::Kind::String;
                return string(text);
            case 't':
                kind = JsonValue::Kind::Bool;
                text = "true";
                return literal("true");
            case 'f':
                kind = JsonValue::Kind::Bool;
                text = "false";
                return literal("false");
            case 'n':
                kind = JsonValue::Kind::Null;
                text = {};
                return literal("null");
            case '{':
            case '[':
                return false;
            default:
                kind = JsonValue::Kind::Number;
                return number_text(text);
        }
    }

    bool array(RecordHandler& handler, int depth) {
        rapidjson::SizeType items = 0;
        return depth < kMaxDepth && handler.StartArray() &&
               elements(']', items, [&] { return value(handler, depth + 1); }) && handler.EndArray(items);
    }

    // At an object's or array's opening bracket: reads its elements (`element` reads one, a member or an
    // item) through its closing bracket, counting them.
    template <class Element>
    bool elements(char close, rapidjson::SizeType& count, Element element) {
        ++at_;
        if (at_ != end_ && *at_ == close) return ++at_, true;
        while (true) {
            if (!element()) return false;
            ++count;
            if (at_ == end_) return false;
            if (*at_ == close) return ++at_, true;
            if (*at_ != ',') return false;
            ++at_;
        }
    }

    // At the opening quote; the text between the quotes when it holds no escape and no control character.
    bool string(std::string_view& text) {
        const char* start = ++at_;
        // Eight bytes a step, and the first quote, backslash or control character found by its mark rather
        // than byte by byte: most strings of a record (keys, names, types) end within the first word.
        while (end_ - at_ >= 8) {
            size_t special = first_json_special_byte(json_detail::load_word(at_));
            if (special < 8) {
                at_ += special;
                return close_string(start, text);
            }
            at_ += 8;
        }
        for (; at_ != end_; ++at_)
            if (json_detail::is_json_special(static_cast<unsigned char>(*at_)))
                return close_string(start, text);
        return false;
    }
    // At the first byte of a string that a JSON string must escape: the string's end if it is the quote.
    bool close_string(const char* start, std::string_view& text) {
        if (*at_ != '"') return false;
        text = std::string_view(start, size_t(at_ - start));
        ++at_;
        return true;
    }

    bool literal(std::string_view word) {
        if (size_t(end_ - at_) < word.size() || std::string_view(at_, word.size()) != word) return false;
        at_ += word.size();
        return true;
    }

    bool digits() {
        const char* start = at_;
        // Eight bytes a step (a row's numbers are mostly long: ids, microsecond times, xids).
        while (end_ - at_ >= 8) {
            size_t count = leading_digits(json_detail::load_word(at_));
            at_ += count;
            if (count < 8) return at_ != start;
        }
        while (at_ != end_ && *at_ >= '0' && *at_ <= '9') ++at_;
        return at_ != start;
    }

    // How many of the eight bytes of `word` (the first in memory lowest), from the first, are ASCII digits: a
    // digit's high nibble is 3 and its low nibble plus 6 stays below 16 (no byte carries into the next).
    static size_t leading_digits(uint64_t word) {
        constexpr uint64_t kHighNibbles = 0xF0F0F0F0F0F0F0F0ULL, kLowNibbles = 0x0F0F0F0F0F0F0F0FULL;
        uint64_t not_digit = ((word & kHighNibbles) ^ 0x3030303030303030ULL) |
                             (((word & kLowNibbles) + 0x0606060606060606ULL) & kHighNibbles);
        return not_digit ? size_t(__builtin_ctzll(not_digit)) / 8 : 8;
    }

    // JSON's number grammar; the text as written (what the handler gets with kParseNumbersAsStringsFlag).
    bool number_text(std::string_view& text) {
        const char* start = at_;
        if (*at_ == '-') ++at_;
        if (at_ == end_) return false;
        if (*at_ == '0')
            ++at_;
        else if (*at_ < '1' || *at_ > '9' || !digits())
            return false;
        if (at_ != end_ && *at_ == '.' && (++at_, !digits())) return false;
        if (at_ != end_ && (*at_ == 'e' || *at_ == 'E')) {
            ++at_;
            if (at_ != end_ && (*at_ == '+' || *at_ == '-')) ++at_;
            if (!digits()) return false;
        }
        text = std::string_view(start, size_t(at_ - start));
        return true;
    }

    const char* at_;
    const char* end_;
};

constexpr size_t kScratchPadding = 17;  // the terminator and one SSE2 block

bool only_whitespace(std::string_view text) {
    for (char c : text)
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return false;
    return true;
}

// A scalar's compact JSON text (what JsonValue::to_json gives for it).
std::string scalar_json(const RecordHandler::Scalar& scalar) {
    switch (scalar.kind) {
        case JsonValue::Kind::Null:
            return "null";
        case JsonValue::Kind::String:
            return json_quote(scalar.text);
        default:
            return std::string(scalar.text);
    }
}

// nullopt: leave the decision (or the error) to the tree-based parser.
std::optional<Lsn> fast_lsn(const RecordHandler& handler, RecordHandler::Field field, bool* ok) {
    const auto& scalar = handler.get(field);
    if (!scalar.seen || scalar.kind == JsonValue::Kind::Null) return Lsn();
    if (scalar.kind != JsonValue::Kind::String) return *ok = false, std::nullopt;
    auto lsn = Lsn::parse(scalar.text);
    if (!lsn) *ok = false;
    return lsn;
}

// The events of the records this thread parses: recycled ones while a listener keeps the pool open.
EventSupply& event_supply() {
    thread_local EventSupply supply;
    return supply;
}

std::optional<Record> parse_record_fast(std::string_view text) {
    using Field = RecordHandler::Field;
    // Taken before the record is read, since the handler writes the columns straight into it; a begin or
    // commit record drops it again, back to the pool (one per transaction).
    MutableEventPtr event = event_supply().next();
    RecordHandler handler(*event);
    if (!PlainRecordReader(text).parse(handler)) {
        handler.restart();
        // Reused: a fresh Reader allocates its string stack on every record.
        thread_local rapidjson::Reader reader;
        // In-situ parsing decodes strings inside a scratch copy of the record instead of copying them
        // character by character onto the reader's stack, and lets RapidJSON's SSE2 scanners run over
        // unescaped strings. Those scanners load aligned 16-byte blocks, so the copy ends with a terminator
        // plus 16 bytes of padding.
        thread_local std::string scratch;
        scratch.assign(text.data(), text.size());
        scratch.append(kScratchPadding, '\0');
        rapidjson::InsituStringStream stream(scratch.data());
        constexpr unsigned kFlags = rapidjson::kParseInsituFlag | rapidjson::kParseNumbersAsStringsFlag |
                                    rapidjson::kParseStopWhenDoneFlag;
        if (reader.Parse<kFlags>(stream, handler).IsError()) return std::nullopt;
        if (!only_whitespace(text.substr(stream.Tell()))) return std::nullopt;
    }

    const auto& action = handler.get(Field::Action);
    if (!action.seen || action.kind != JsonValue::Kind::String || action.text.size() != 1)
        return std::nullopt;
    char code = action.text[0];
    bool ok = true;
    Record record;
    const auto& timestamp = handler.get(Field::Timestamp);
    const auto& xid = handler.get(Field::Xid);
    if (code == 'B' || code == 'C') {
        record.kind = code == 'B' ? Record::Kind::Begin : Record::Kind::Commit;
        auto lsn = fast_lsn(handler, Field::Lsn, &ok);
        auto next_lsn = fast_lsn(handler, Field::NextLsn, &ok);
        if (!ok) return std::nullopt;
        record.lsn = *lsn;
        record.next_lsn = *next_lsn;
        if (xid.seen) record.xid = scalar_json(xid);
        if (timestamp.seen && timestamp.kind == JsonValue::Kind::String)
            record.timestamp = RecentHeads::reuse(recent_heads().timestamp, timestamp.text);
        return record;
    }
    if (code != 'I' && code != 'U' && code != 'D' && code != 'T' && code != 'M') return std::nullopt;
    // "columns"/"identity" are arrays, null or absent; a scalar there is an error the slow path reports.
    for (Field field : {Field::Columns, Field::Identity}) {
        const auto& scalar = handler.get(field);
        bool array = field == Field::Columns ? handler.columns_array : handler.identity_array;
        if (scalar.seen && !array && scalar.kind != JsonValue::Kind::Null) return std::nullopt;
    }
    auto lsn = fast_lsn(handler, Field::Lsn, &ok);
    if (!ok) return std::nullopt;

    event->action = static_cast<Action>(code);
    if (xid.seen) event->xid = scalar_json(xid);
    auto string_field = [&](Field field) -> std::string_view {
        const auto& scalar = handler.get(field);
        return scalar.seen && scalar.kind == JsonValue::Kind::String ? scalar.text : std::string_view();
    };
    if (timestamp.seen && timestamp.kind == JsonValue::Kind::String)
        event->timestamp = RecentHeads::reuse(recent_heads().timestamp, timestamp.text);
    event->lsn = *lsn;
    event->schema.assign(string_field(Field::Schema));
    event->table.assign(string_field(Field::Table));
    // Without the array the record has no columns (a recycled event may; its identity starts empty).
    if (!handler.columns_array) event->columns.clear();
    event->has_identity = handler.identity_array;
    if (code == 'M') {
        event->prefix.assign(string_field(Field::Prefix));
        event->content =
            message_content(std::string(string_field(Field::Content)), string_field(Field::ContentEncoding));
        const auto& transactional = handler.get(Field::Transactional);
        if (transactional.seen)
            event->transactional =
                transactional.kind == JsonValue::Kind::Bool && transactional.text == "true";
    }
    record.kind = Record::Kind::Change;
    record.lsn = event->lsn;
    record.event = std::move(event);
    return record;
}

}  // namespace

Record parse_wal2json_record(std::string_view text) {
    if (auto record = parse_record_fast(text)) return std::move(*record);
    JsonValue root = parse_json(text);
    if (!root.is_object()) throw JsonError("record is not a JSON object");
    const JsonValue* action = root.find("action");
    if (!action || !action->is_string() || action->text.size() != 1)
        throw JsonError("record has no \"action\" (is the slot using format-version 2?)");

    Record record;
    char code = action->text[0];
    if (code == 'B' || code == 'C') {
        record.kind = code == 'B' ? Record::Kind::Begin : Record::Kind::Commit;
        record.lsn = json_lsn_member(root, "lsn");
        record.next_lsn = json_lsn_member(root, "nextlsn");
        if (const JsonValue* xid = root.find("xid")) record.xid = xid->to_json();
        record.timestamp = json_string_member(root, "timestamp");
        return record;
    }
    if (code != 'I' && code != 'U' && code != 'D' && code != 'T' && code != 'M')
        throw JsonError("unknown action \"" + action->text + "\"");

    auto event = std::make_shared<Event>();
    event->action = static_cast<Action>(code);
    decode_event_object(root, *event);
    record.kind = Record::Kind::Change;
    record.lsn = event->lsn;
    record.event = std::move(event);
    return record;
}

}  // namespace pgstream
