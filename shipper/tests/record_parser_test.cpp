#include <gtest/gtest.h>
#include <array>
#include <cstdio>
#include <memory>

#include "wal/event_codec.h"
#include "wal/record_parser.h"
#include "wal/recycled_events.h"

namespace pgstream {
namespace {

TEST(RecordParser, ParsesBeginAndCommit) {
    auto begin = parse_wal2json_record(
        R"j({"action":"B","xid":1224,"timestamp":"2026-11-24 23:23:43.542615-03","origin":0,"lsn":"0/2949368","nextlsn":"0/2949398"})j");
    EXPECT_EQ(begin.kind, Record::Kind::Begin);
    EXPECT_EQ(begin.lsn.str(), "0/2949368");
    EXPECT_EQ(begin.next_lsn.str(), "0/2949398");
    EXPECT_EQ(begin.xid, "1224");
    EXPECT_EQ(begin.timestamp, "2026-11-24 23:23:43.542615-03");
    auto commit =
        parse_wal2json_record(R"j({"action":"C","xid":1224,"lsn":"0/2949368","nextlsn":"0/2949398"})j");
    EXPECT_EQ(commit.kind, Record::Kind::Commit);
    EXPECT_EQ(commit.next_lsn.str(), "0/2949398");
    // A bare B/C (no options) still parses.
    EXPECT_EQ(parse_wal2json_record(R"j({"action":"B"})j").kind, Record::Kind::Begin);
}

TEST(RecordParser, ParsesAnInsertKeepingNumbersExact) {
    const std::string text =
        R"j({"action":"I","xid":7,"timestamp":"2026-01-01 00:00:00+00","lsn":"0/15A5C70","schema":"public","table":"t",)j"
        R"j("columns":[{"name":"big","type":"bigint","value":9223372036854775807},)j"
        R"j({"name":"n","type":"numeric(40,20)","value":12345678901234567890.12345678901234567890},)j"
        R"j({"name":"f","type":"double precision","value":1e+300},{"name":"s","type":"text","value":"a\"b\\c\n\u0001é"},)j"
        R"j({"name":"b","type":"boolean","value":true},{"name":"z","type":"text","value":null}]})j";
    auto record = parse_wal2json_record(text);
    ASSERT_EQ(record.kind, Record::Kind::Change);
    const Event& event = *record.event;
    EXPECT_EQ(event.action, Action::Insert);
    EXPECT_EQ(event.schema, "public");
    EXPECT_EQ(event.table, "t");
    EXPECT_EQ(event.lsn.str(), "0/15A5C70");
    EXPECT_EQ(event.xid, "7");
    ASSERT_EQ(event.columns.size(), 6u);
    EXPECT_EQ(event.columns[0].value.to_json(), "9223372036854775807");
    EXPECT_EQ(event.columns[1].value.to_json(), "12345678901234567890.12345678901234567890");
    EXPECT_EQ(event.columns[1].type, "numeric(40,20)");
    EXPECT_EQ(event.columns[2].value.to_json(), "1e+300");
    EXPECT_EQ(event.columns[3].value.text, "a\"b\\c\n\x01\xc3\xa9");
    // Re-serialised exactly as PostgreSQL's escape_json wrote it.
    EXPECT_EQ(event.columns[3].value.to_json(), R"j("a\"b\\c\n\u0001é")j");
    EXPECT_EQ(event.columns[4].value.to_json(), "true");
    EXPECT_TRUE(event.columns[5].value.is_null());
    EXPECT_FALSE(event.has_identity);
}

TEST(RecordParser, ParsesUpdateDeleteIdentityTruncateAndMessages) {
    auto update = parse_wal2json_record(
        R"j({"action":"U","lsn":"0/1","schema":"s","table":"t","columns":[{"name":"id","type":"integer","value":2}],)j"
        R"j("identity":[{"name":"id","type":"integer","value":1}]})j");
    EXPECT_EQ(update.event->action, Action::Update);
    ASSERT_EQ(update.event->identity.size(), 1u);
    EXPECT_EQ(update.event->identity[0].value.text, "1");
    EXPECT_TRUE(update.event->has_identity);

    auto remove = parse_wal2json_record(
        R"j({"action":"D","lsn":"0/2","schema":"s","table":"t","identity":[{"name":"id","type":"integer","value":1}]})j");
    EXPECT_EQ(remove.event->action, Action::Delete);
    EXPECT_TRUE(remove.event->columns.empty());

    auto truncate = parse_wal2json_record(R"j({"action":"T","xid":5,"lsn":"0/3","schema":"s","table":"t"})j");
    EXPECT_EQ(truncate.event->action, Action::Truncate);

    auto message = parse_wal2json_record(
        R"j({"action":"M","xid":null,"timestamp":null,"origin":null,"lsn":"0/2963280","transactional":false,"prefix":"pre\"fix","content":"content \u0001 \"q\""})j");
    EXPECT_EQ(message.event->action, Action::Message);
    EXPECT_EQ(message.event->xid, "null");
    EXPECT_EQ(message.event->prefix, "pre\"fix");
    EXPECT_EQ(message.event->content, "content \x01 \"q\"");
    EXPECT_FALSE(message.event->transactional);
}

// RapidJSON 1.1 converts numbers to doubles even when it keeps their text, and refuses those beyond a
// double's range: such a record (a numeric of 310 integer digits) must come through digit for digit, not stop
// the stream.
TEST(RecordParser, KeepsNumbersBeyondADoublesRangeExact) {
    const std::string huge = "1" + std::string(309, '0');
    const std::string huge_fraction = "-" + std::string(400, '9') + "." + std::string(50, '1');
    const std::string text =
        R"j({"action":"I","xid":7,"lsn":"0/15A5C70","schema":"public","table":"t 1e999",)j"
        R"j("columns":[{"name":"n","type":"numeric","value":)j" +
        huge +
        R"j(},{"name":"s","type":"text","value":"12 \" 1e999 -5"},{"name":"e","type":"numeric","value":1E+400},)j"
        R"j({"name":"m","type":"numeric","value":)j" +
        huge_fraction + R"j(},{"name":"i","type":"integer","value":-0}]})j";
    auto record = parse_wal2json_record(text);
    ASSERT_EQ(record.kind, Record::Kind::Change);
    const Event& event = *record.event;
    EXPECT_EQ(event.table, "t 1e999");
    ASSERT_EQ(event.columns.size(), 5u);
    EXPECT_TRUE(event.columns[0].value.is_number());
    EXPECT_EQ(event.columns[0].value.text, huge);
    EXPECT_EQ(event.columns[1].value.text, "12 \" 1e999 -5");
    EXPECT_EQ(event.columns[2].value.to_json(), "1E+400");
    EXPECT_EQ(event.columns[3].value.to_json(), huge_fraction);
    EXPECT_EQ(event.columns[4].value.to_json(), "-0");
    EXPECT_NE(event_to_json(event).find("\"value\":" + huge + "}"), std::string::npos);
    // The same holds for a document read back (a Kafka value, a schema_log row).
    JsonValue value = parse_json("[" + huge + ",{\"k\":" + huge_fraction + "}]");
    ASSERT_EQ(value.items.size(), 2u);
    EXPECT_EQ(value.items[0].text, huge);
    EXPECT_EQ(value.items[1].find("k")->text, huge_fraction);
    // Still an error where the text is not JSON, at the offset of the fault (the digit after the leading 0).
    try {
        parse_json("[" + huge + ",01]");
        FAIL() << "expected a JsonError";
    } catch (const JsonError& e) {
        EXPECT_NE(std::string(e.what()).find("offset 313"), std::string::npos) << e.what();
    }
}

// What the tree-based parser (the reference for every record) makes of `text`, rendered.
std::string tree_rendering(const std::string& text) {
    JsonValue root = parse_json(text);
    Event event;
    event.action = static_cast<Action>(root.find("action")->text[0]);
    decode_event_object(root, event);
    return event_to_json(event);
}

// Plain records (no escapes) take the parser's own reader, the others RapidJSON's: both read every record as
// the tree-based parser does.
TEST(RecordParser, PlainAndEscapedRecordsReadAsTheTreeParserReadsThem) {
    const std::string head =
        R"j({"action":"U","xid":7,"timestamp":"2026-12-01 05:00:00.1+00","lsn":"0/15A5C70",)j"
        R"j("schema":"public","table":"t",)j";
    for (
        const std::string& rest : {
            std::string(
                R"j("columns":[{"name":"a","type":"bigint","value":-12},{"name":"b","type":"text","value":"x"}],)j"
                R"j("identity":[{"name":"a","type":"bigint","value":0}]})j"),
            std::string(
                R"j("columns":[{"name":"f","type":"double precision","value":-0.5e-3},)j"
                R"j({"name":"g","type":"real","value":1E+2},{"name":"n","type":"text","value":null},)j"
                R"j({"name":"b","type":"boolean","value":true},{"name":"c","type":"boolean","value":false}]})j"),
            std::string(
                R"j("columns":[{"name":"s","type":"text","value":"tab\there \"quoted\" \u00e9\ud83d\ude00"}]})j"),
            std::string(
                R"j( "columns" : [ { "name" : "a" , "type" : "int" , "value" : 1 } ] , "identity" : [ ] } )j"),
            std::string(
                R"j("columns":[{"name":"a","type":"int","value":1,"name":"b","extra":{"x":[1,{"y":2}]}}],)j"
                R"j("unknown":[[],{}],"columns":[]})j"),
            std::string(
                R"j("columns":[{"name":"a","type":"text","value":"a long value without any escape at all"}],)j"
                R"j("identity":null})j"),
            std::string(R"j("columns":[],"identity":[]})j"),
        }) {
        const std::string text = head + rest;
        SCOPED_TRACE(text);
        auto record = parse_wal2json_record(text);
        ASSERT_EQ(record.kind, Record::Kind::Change);
        EXPECT_EQ(event_to_json(*record.event), tree_rendering(text));
    }
}

// The plain reader finds a string's or a number's end a word at a time: a quote, an escape, a number's last
// digit or the record's end at every position of the first and second word (and in the last bytes of the
// record, which it reads one by one) must read as the tree parser reads it.
TEST(RecordParser, StringsAndNumbersEndAtEveryPositionOfAWord) {
    const std::string head = R"j({"action":"I","xid":7,"lsn":"0/15A5C70","schema":"public","table":"t",)j";
    for (size_t length = 0; length <= 20; ++length) {
        for (size_t escape_at = 0; escape_at <= length; ++escape_at) {
            std::string value(length, 'v');
            if (escape_at < length) value.replace(escape_at, 1, escape_at % 2 ? "\\\"" : "\\n");
            for (const std::string& text :
                 {head + R"j("columns":[{"name":"s","type":"text","value":")j" + value + R"j("}]})j",
                  head + R"j("columns":[{"name":")j" + value + R"j(","type":"text","value":1}],"x":")j" +
                      value + R"j("})j"}) {
                SCOPED_TRACE(text);
                auto record = parse_wal2json_record(text);
                ASSERT_EQ(record.kind, Record::Kind::Change);
                EXPECT_EQ(event_to_json(*record.event), tree_rendering(text));
            }
        }
    }
    // Numbers are read eight digits a step: every length through two words, with a fraction and an exponent,
    // as the record's last value and before more members.
    for (size_t length = 1; length <= 20; ++length) {
        std::string digits;
        for (size_t i = 0; i < length; ++i) digits += char('1' + i % 9);
        for (const std::string& number : {digits, "-" + digits, digits + "." + digits,
                                          digits + "e-" + digits.substr(0, 2), "0." + digits + "E+7"}) {
            for (const std::string& text :
                 {head + R"j("columns":[{"name":"n","type":"numeric","value":)j" + number + "}]}",
                  head + R"j("columns":[{"name":"n","type":"numeric","value":)j" + number +
                      R"j(,"x":1}],"identity":[]})j"}) {
                SCOPED_TRACE(text);
                auto record = parse_wal2json_record(text);
                ASSERT_EQ(record.kind, Record::Kind::Change);
                EXPECT_EQ(event_to_json(*record.event), tree_rendering(text));
                EXPECT_EQ(record.event->columns.at(0).value.text, number);
            }
        }
    }
    // A control character inside a string is not JSON, whichever word it falls in.
    for (size_t at = 0; at < 12; ++at) {
        std::string value(12, 'v');
        value[at] = '\x01';
        EXPECT_THROW(parse_wal2json_record(head + R"j("columns":[{"name":"s","type":"text","value":")j" +
                                           value + R"j("}]})j"),
                     JsonError);
    }
}

// While a listener keeps the event pool open, a record is parsed into the event an earlier one left behind
// (its column vector and value texts reused): whatever the earlier record held, the event must read as a new
// one, for every pair of these shapes, and the translator's column ids of the earlier row must be gone.
TEST(RecordParser, RecycledEventsReadAsNewOnes) {
    const std::string head = R"j({"action":"I","xid":7,"lsn":"0/15A5C70","schema":"public","table":"t",)j";
    const std::vector<std::string> records = {
        head +
            R"j("columns":[{"name":"a","type":"bigint","value":1},{"name":"b","type":"text","value":)j"
            R"j("a value longer than the small-string buffer"},{"name":"c","type":"jsonb","value":null}]})j",
        head + R"j("columns":[{"name":"x","type":"int","value":2}]})j",
        head + R"j("columns":[{"value":3},{"name":"y"},{"type":"text"}]})j",
        R"j({"action":"D","xid":8,"lsn":"0/15A5D00","schema":"s","table":"u",)j"
        R"j("identity":[{"name":"a","type":"bigint","value":1},{"name":"k","type":"text","value":"key"}]})j",
        R"j({"action":"U","lsn":"0/15A5D00","schema":"s","table":"u","columns":[{"name":"a","type":"bigint",)j"
        R"j("value":5}],"identity":[{"name":"a","type":"bigint","value":4}]})j",
        R"j({"action":"M","xid":9,"lsn":"0/15A5E00","transactional":true,"prefix":"p","content":"hello"})j",
        R"j({"action":"T","xid":9,"lsn":"0/15A5E00","schema":"public","table":"t"})j",
        head + R"j("columns":[{"name":"s","type":"text","value":"escaped \"quote\""}]})j",
        head + R"j( "columns" : [ { "name" : "a" , "type" : "int" , "value" : 1 } ] })j",
        head +
            R"j("columns":[{"name":"a","type":"int","value":1,"extra":{"x":[1]}},{"name":"b","type":"int",)j"
            R"j("value":2}],"columns":[]})j",
    };
    RecycledEventsInUse pool;
    size_t reused = 0;
    for (const std::string& earlier : records) {
        for (const std::string& text : records) {
            const Event* left_behind = nullptr;
            {
                MutableEventPtr event = parse_wal2json_record(earlier).event;
                for (Column& column : event->columns) column.id = SharedText("table-id-1");
                left_behind = event.get();
            }
            SCOPED_TRACE(earlier + " then " + text);
            auto record = parse_wal2json_record(text);
            ASSERT_EQ(record.kind, Record::Kind::Change);
            if (record.event.get() == left_behind) ++reused;
            EXPECT_EQ(event_to_json(*record.event), tree_rendering(text));
            for (const Column& column : record.event->columns) {
                EXPECT_TRUE(column.id.empty());
                // Marked escape-free only when it is (the writers copy such a text without escaping it).
                if (column.value.escape_free) {
                    EXPECT_FALSE(needs_json_escape(column.value.text)) << column.value.text;
                }
                if (column.value.is_null()) {
                    EXPECT_TRUE(column.value.text.empty());
                }
            }
            EXPECT_TRUE(record.event->metadata.version.empty());
            EXPECT_EQ(record.event->checkpoint_token, 0u);
        }
    }
    // The plainly written records reuse the event left behind (the others go through the tree parser's own).
    EXPECT_GE(reused, records.size() * 5);
    // The plain reader's strings are escape-free; the escaped record's string is not, and its text holds
    // the quotes.
    EXPECT_TRUE(parse_wal2json_record(records[0]).event->columns[1].value.escape_free);
    const auto escaped = parse_wal2json_record(records[7]);
    EXPECT_FALSE(escaped.event->columns[0].value.escape_free);
    EXPECT_EQ(escaped.event->columns[0].value.text, "escaped \"quote\"");
}

TEST(RecordParser, RejectsWhatIsNotAV2Record) {
    for (const char* bad :
         {"", "{", "[]", R"j({"change":[]})j", R"j({"action":"X"})j", R"j({"action":"I","lsn":"nope"})j",
          R"j({"action":"I"} trailing)j", R"j({"action":"I","columns":{}})j",
          // Malformed JSON the plain reader must not accept either.
          R"j({"action":"I","columns":[{"name":"a","value":01}]})j", R"j({"action":"I","xid":1.})j",
          R"j({"action":"I","xid":-})j", R"j({"action":"I","xid":1e})j", R"j({"action":"I",})j",
          R"j({"action":"I","columns":[1,]})j",
          R"j({"action":"I","schema":"a)j"
          "\n"
          R"j("})j",
          R"j({"action":"I","xid":tru})j", R"j({"action":"I"}})j"})
        EXPECT_THROW(parse_wal2json_record(bad), JsonError) << bad;
}

TEST(EventJson, WritesTheContractFields) {
    auto record = parse_wal2json_record(
        R"j({"action":"U","xid":9,"timestamp":"2026-01-01 00:00:00+00","lsn":"0/10","schema":"public","table":"t",)j"
        R"j("columns":[{"name":"id","type":"bigint","value":18446744073709551615}],"identity":[{"name":"id","type":"bigint","value":1}]})j");
    Event& event = *record.event;
    event.commit_lsn = *Lsn::parse("0/20");
    event.columns[0].id = "tid-1";
    event.metadata.schema_id = "sid";
    event.metadata.table_pgstream_id = "tid";
    event.metadata.id_col_pgstream_ids = {"tid-1"};
    event.metadata.version = "0/10";
    const std::string json = event_to_json(event);
    EXPECT_EQ(
        json,
        R"j({"action":"U","xid":9,"timestamp":"2026-01-01 00:00:00+00","lsn":"0/10","commit_lsn":"0/20",)j"
        R"j("schema":"public","table":"t","columns":[{"id":"tid-1","name":"id","type":"bigint","value":18446744073709551615}],)j"
        R"j("identity":[{"id":"","name":"id","type":"bigint","value":1}],)j"
        R"j("metadata":{"schema_id":"sid","table_pgstream_id":"tid","id_col_pgstream_id":["tid-1"],"version":"0/10"}})j");
    // One codec: what it writes, it reads back whole.
    auto decoded = event_from_json(json);
    EXPECT_EQ(decoded->metadata.schema_id, "sid");
    EXPECT_EQ(event_to_json(*decoded), json);
    // Unknown: null, as the Go pgstream writes its zero id.
    event.metadata.schema_id.clear();
    EXPECT_NE(event_to_json(event).find(R"j("metadata":{"schema_id":null,)j"), std::string::npos);
    EXPECT_EQ(event_from_json(event_to_json(event))->metadata.schema_id, "");
}

TEST(EventJson, ReadsTheGoPgstreamsRecords) {
    auto event = event_from_json(
        R"j({"action":"I","timestamp":"2025-03-13 09:52:47.579305+00","lsn":"0/15A5C70","schema":"public",)j"
        R"j("table":"test","columns":[{"id":"t1-1","name":"id","type":"integer","value":1}],"identity":null,)j"
        R"j("metadata":{"schema_id":"cvb2eq3m0i7e0ubk0kbg","table_pgstream_id":"t1","id_col_pgstream_id":["t1-1"],)j"
        R"j("version_col_pgstream_id":"t1-2"}})j");
    EXPECT_EQ(event->metadata.schema_id, "cvb2eq3m0i7e0ubk0kbg");
    EXPECT_EQ(event->metadata.table_pgstream_id, "t1");
    EXPECT_EQ(event->metadata.version, "t1-2");
    EXPECT_EQ(event->columns.at(0).id, "t1-1");
    EXPECT_FALSE(event->has_identity);
}

// The renderer reuses the heads it rendered for the previous row; a row that differs from the previous one in
// a single column's id, name or type, in its table or schema, or in its metadata ids must never get the old
// text.
TEST(EventJson, RowsThatDifferInOneHeadFieldRenderTheirOwnHeads) {
    auto make = [](std::string schema, std::string table, std::vector<std::array<std::string, 3>> heads,
                   std::string table_id, std::vector<std::string> identity_ids) {
        Event event;
        event.schema = std::move(schema);
        event.table = std::move(table);
        for (auto& [id, name, type] : heads) {
            Column column;
            column.id = id;
            column.name = name;
            column.type = type;
            column.value.kind = JsonValue::Kind::String;
            column.value.text = "v\"" + name;
            event.columns.push_back(column);
        }
        event.metadata.table_pgstream_id = std::move(table_id);
        event.metadata.id_col_pgstream_ids = std::move(identity_ids);
        event.metadata.version = "0/1";
        return event;
    };
    const std::vector<Event> rows = {
        make("s", "t", {{"t-1", "a", "int"}, {"t-2", "b", "text"}}, "t", {"t-1"}),
        make("s", "t", {{"t-1", "a", "int"}, {"t-2", "b", "text"}}, "t", {"t-1"}),
        make("s", "t", {{"t-1", "a", "bigint"}, {"t-2", "b", "text"}}, "t", {"t-1"}),
        make("s", "t", {{"t-1", "a", "bigint"}, {"t-2", "renamed \"b\"", "text"}}, "t", {"t-1"}),
        make("s", "t", {{"t-9", "a", "bigint"}, {"t-2", "renamed \"b\"", "text"}}, "t", {"t-9"}),
        make("s", "t", {{"t-9", "a", "bigint"}}, "t", {"t-9", "t-2"}),
        make("s", "u", {{"t-9", "a", "bigint"}}, "u", {"t-9", "t-2"}),
        make("other", "u", {{"t-9", "a", "bigint"}, {"", "c", "date"}, {"u-3", "d", "json"}}, "u", {}),
        make("s", "t", {{"t-1", "a", "int"}, {"t-2", "b", "text"}}, "t", {"t-1"}),
    };
    for (size_t r = 0; r < rows.size(); ++r) {
        const Event& event = rows[r];
        std::string json = event_to_json(event);
        SCOPED_TRACE("row " + std::to_string(r) + ": " + json);
        JsonValue parsed = parse_json(json);
        ASSERT_EQ(parsed.find("schema")->text, event.schema);
        ASSERT_EQ(parsed.find("table")->text, event.table);
        const auto& columns = parsed.find("columns")->items;
        ASSERT_EQ(columns.size(), event.columns.size());
        for (size_t i = 0; i < columns.size(); ++i) {
            EXPECT_EQ(columns[i].find("id")->text, event.columns[i].id);
            EXPECT_EQ(columns[i].find("name")->text, event.columns[i].name);
            EXPECT_EQ(columns[i].find("type")->text, event.columns[i].type);
            EXPECT_EQ(columns[i].find("value")->text, event.columns[i].value.text);
        }
        const JsonValue* metadata = parsed.find("metadata");
        EXPECT_EQ(metadata->find("table_pgstream_id")->text, event.metadata.table_pgstream_id);
        const auto& ids = metadata->find("id_col_pgstream_id")->items;
        ASSERT_EQ(ids.size(), event.metadata.id_col_pgstream_ids.size());
        for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[i].text, event.metadata.id_col_pgstream_ids[i]);
    }
}

TEST(EventJson, MessagesCarryPrefixContentAndTransactional) {
    auto record = parse_wal2json_record(
        R"j({"action":"M","xid":3,"lsn":"0/5","transactional":true,"prefix":"p","content":"c"})j");
    std::string json = event_to_json(*record.event);
    EXPECT_NE(json.find(R"j("prefix":"p","content":"c","transactional":true)j"), std::string::npos) << json;
    EXPECT_NE(json.find(R"j("timestamp":null)j"), std::string::npos) << json;
    EXPECT_NE(json.find(R"j("commit_lsn":null)j"), std::string::npos) << json;
}

TEST(EventJson, TheBatchBufferWritesTheSameLinesAsAppendEventJsonWhenReused) {
    auto wide = parse_wal2json_record(
        R"j({"action":"I","xid":7,"lsn":"0/30","schema":"public","table":"t","columns":[)j"
        R"j({"name":"id","type":"bigint","value":1},{"name":"doc","type":"jsonb","value":"{\"k\": \"a long value\"}"}]})j");
    auto message = parse_wal2json_record(
        R"j({"action":"M","xid":3,"lsn":"0/5","transactional":false,"prefix":"p\"x","content":"c"})j");
    auto narrow = parse_wal2json_record(R"j({"action":"D","xid":8,"lsn":"0/40","schema":"s","table":"u",)j"
                                        R"j("identity":[{"name":"id","type":"int","value":2}]})j");
    std::string expected;
    EventJsonBuffer buffer;
    // A wide line first, so that the shorter lines of the second round land on room holding its bytes.
    for (int round = 0; round < 2; ++round) {
        expected.clear();
        buffer.clear();
        for (const Event* event : {wide.event.get(), message.event.get(), narrow.event.get()}) {
            if (round == 1 && event == wide.event.get()) continue;
            append_event_json(expected, *event);
            expected += '\n';
            buffer.append_event(*event);
            buffer.push_back('\n');
        }
        EXPECT_EQ(buffer.view(), expected) << "round " << round;
    }
}

TEST(Json, ParsesNestedDocumentsAndRoundTrips) {
    const std::string text = R"j({"a":[1,2.50,null,{"b":"x"}],"c":true,"d":-0.0})j";
    JsonValue value = parse_json(text);
    EXPECT_EQ(value.to_json(), text);
    ASSERT_NE(value.find("a"), nullptr);
    EXPECT_EQ(value.find("a")->items.size(), 4u);
    EXPECT_EQ(value.find("missing"), nullptr);
}

TEST(Json, StringsAreEscapedLikePostgresEscapeJsonWhereverTheSpecialBytesStand) {
    EXPECT_EQ(json_quote("a\"b\\c\n\x01\x1f\t\r\b\f é"), R"("a\"b\\c\n\u0001\u001f\t\r\b\f é")");
    // PostgreSQL's escape_json byte by byte: the reference for the word-at-a-time search.
    auto reference = [](std::string_view text) {
        std::string out = "\"";
        for (unsigned char c : text) {
            switch (c) {
                case '"':
                    out += "\\\"";
                    break;
                case '\\':
                    out += "\\\\";
                    break;
                case '\b':
                    out += "\\b";
                    break;
                case '\f':
                    out += "\\f";
                    break;
                case '\n':
                    out += "\\n";
                    break;
                case '\r':
                    out += "\\r";
                    break;
                case '\t':
                    out += "\\t";
                    break;
                default:
                    if (c < 0x20) {
                        char escape[7];
                        std::snprintf(escape, sizeof escape, "\\u%04x", c);
                        out += escape;
                    } else {
                        out += char(c);
                    }
            }
        }
        return out + "\"";
    };
    // Every byte value, alone and at every position of texts up to 40 bytes (the word-at-a-time search, and
    // write_json_string's 16-byte chunks with a tail), after plain bytes, bytes that only just pass (a space,
    // 0x21, 0x7f, UTF-8) and other special bytes. write_json_string writes into exactly json_string_bound's
    // room, so that the sanitizer build catches a store past it.
    for (const char filler : {'x', ' ', '!', '\x7f', '\xc3', '"', '\n'}) {
        for (size_t size = 1; size <= 40; ++size) {
            std::unique_ptr<char[]> room(new char[json_string_bound(size)]);
            for (size_t at = 0; at < size; ++at) {
                for (int byte = 0; byte < 256; ++byte) {
                    std::string text(size, filler);
                    text[at] = char(byte);
                    ASSERT_EQ(json_quote(text), reference(text))
                        << "size " << size << ", byte " << byte << " at " << at << ", filler " << int(filler);
                    JsonValue value;
                    value.kind = JsonValue::Kind::String;
                    value.text = text;
                    ASSERT_EQ(value.to_json(), reference(text));
                    ASSERT_EQ(std::string(room.get(), write_json_string(room.get(), text)), reference(text));
                }
            }
        }
    }
    EXPECT_EQ(json_quote(""), "\"\"");
}

}  // namespace
}  // namespace pgstream
