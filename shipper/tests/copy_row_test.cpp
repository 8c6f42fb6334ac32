// COPY text rows rendered as the plugin renders values (snapshot/copy_row.h).
#include <gtest/gtest.h>

#include "snapshot/copy_row.h"

namespace pgstream {
namespace {

std::vector<SnapshotColumn> columns(std::initializer_list<std::pair<const char*, uint32_t>> types) {
    std::vector<SnapshotColumn> out;
    for (const auto& [name, oid] : types) out.push_back({name, "t", rendering_for_type(oid)});
    return out;
}

std::string rendered(const std::vector<Column>& row) {
    std::string out;
    for (const auto& column : row) out += column.value.to_json() + " ";
    return out;
}

TEST(CopyRow, RendersValuesByTypeOidAsThePluginDoes) {
    // int4, numeric, float8 (NaN), float4 (-Infinity), bool, bytea, text, a domain over int4 (its own OID)
    auto cols = columns(
        {{"a", 23}, {"b", 1700}, {"c", 701}, {"d", 700}, {"e", 16}, {"f", 17}, {"g", 25}, {"h", 50000}});
    std::vector<Column> row;
    decode_copy_row("7\t12345678901234567890.5\tNaN\t-Infinity\tt\t\\\\x00ff\thello\t42\n", cols, row);
    EXPECT_EQ(rendered(row), "7 12345678901234567890.5 null null true \"00ff\" \"hello\" \"42\" ");
}

TEST(CopyRow, UndoesCopyEscapesAndReadsNull) {
    auto cols = columns({{"a", 25}, {"b", 25}, {"c", 16}});
    std::vector<Column> row;
    decode_copy_row("tab\\there\\nline\\\\back\\r\\b\\f\\v\\101\t\\N\tf", cols, row);
    EXPECT_EQ(row[0].value.text, std::string("tab\there\nline\\back\r\b\f\vA"));
    EXPECT_TRUE(row[1].value.is_null());
    EXPECT_EQ(row[2].value.to_json(), "false");
}

// Text is copied in runs between escapes: escapes at a field's edges, a lone trailing backslash, a row
// decoded over a previous row's values (its column ids cleared), and negative numbers next to the
// case-insensitive special values.
TEST(CopyRow, CopiesRunsBetweenEscapesAndOverwritesAReusedRow) {
    auto cols = columns({{"a", 25}, {"b", 25}, {"c", 25}, {"d", 701}, {"e", 701}, {"f", 701}});
    std::vector<Column> row;
    decode_copy_row("a long first value without any escape\tx\ty\t1\t2\t3", cols, row);
    row[0].id = "the previous row's pgstream id";  // as the translator left a recycled event
    decode_copy_row("\\tstart\\x41\\x4g\tend\\\\\tlone\\\t-5.5\tinfinity\t-inFinity", cols, row);
    EXPECT_TRUE(row[0].id.empty());
    EXPECT_EQ(row[0].value.text, std::string("\tstartA\x04g"));
    EXPECT_EQ(row[1].value.text, "end\\");
    EXPECT_EQ(row[2].value.text, "lone\\");
    EXPECT_EQ(rendered(row).substr(rendered(row).find("-5.5")), "-5.5 null null ");
}

// Fields are found sixteen bytes a step where the line has them: every field length up to 40 before a
// field with an escape, a backslash or NULL marker at each position around chunk edges, with the tab in the
// same chunk as the backslash or in a later one.
TEST(CopyRow, FindsFieldsAndEscapesWhereverTheChunksFall) {
    auto cols = columns({{"a", 25}, {"b", 25}, {"c", 25}});
    std::vector<Column> row;
    for (size_t first = 0; first <= 40; ++first) {
        for (size_t at = 0; at <= 34; ++at) {
            const std::string plain(first, 'p');
            std::string escaped(at, 'q');
            escaped += "\\t";  // an escaped tab
            escaped += std::string(34 - at, 'r');
            std::string expected(at, 'q');
            expected += '\t';
            expected += std::string(34 - at, 'r');
            decode_copy_row(plain + "\t" + escaped + "\t" + std::string(at, 's'), cols, row);
            ASSERT_EQ(row[0].value.text, plain) << first << " " << at;
            ASSERT_EQ(row[1].value.text, expected) << first << " " << at;
            ASSERT_EQ(row[2].value.text, std::string(at, 's')) << first << " " << at;
            decode_copy_row(std::string(at, 'x') + "\t\\N\t" + plain, cols, row);
            ASSERT_EQ(row[0].value.text, std::string(at, 'x'));
            ASSERT_TRUE(row[1].value.is_null()) << first << " " << at;
            ASSERT_EQ(row[2].value.text, plain);
        }
    }
}

// The event writers copy an escape-free text between quotes without looking at it: a text is marked so only
// when it holds no quote, backslash or control character, wherever such a byte stands around the scan's
// 16-byte chunks and the field's tab, and when no COPY escape was undone (that may have made one). Numbers
// are escape-free; bytea is left to the writer.
TEST(CopyRow, MarksTextsThatNeedNoJsonEscape) {
    auto cols = columns({{"a", 25}, {"b", 25}, {"c", 23}, {"d", 17}});
    std::vector<Column> row;
    auto written = [](const JsonValue& value) {
        std::string out(json_string_bound(value.text.size()), '\0');
        out.resize(size_t(value.write_json(out.data()) - out.data()));
        return out;
    };
    for (size_t size = 1; size <= 40; ++size) {
        for (size_t at = 0; at < size; ++at) {
            for (char special : {'"', '\x01', '\x1f'}) {
                std::string field(size, 'p');
                field[at] = special;
                SCOPED_TRACE(::testing::Message() << size << " " << at << " " << int(special));
                // The special field first, then last: the scan ends at a tab or at the line's end.
                decode_copy_row(field + "\t" + std::string(size, 'q') + "\t7\t\\\\x0a", cols, row);
                EXPECT_FALSE(row[0].value.escape_free);
                EXPECT_TRUE(row[1].value.escape_free);
                EXPECT_TRUE(row[2].value.escape_free);
                EXPECT_FALSE(row[3].value.escape_free);
                EXPECT_EQ(written(row[0].value), json_quote(field));
                EXPECT_EQ(written(row[1].value), json_quote(std::string(size, 'q')));
                decode_copy_row(std::string(size, 'q') + "\t" + field + "\t7\t\\N", cols, row);
                EXPECT_TRUE(row[0].value.escape_free);
                EXPECT_FALSE(row[1].value.escape_free);
                EXPECT_EQ(written(row[1].value), json_quote(field));
            }
        }
    }
    // An escape undone: the text may now hold a control character, so it is not marked.
    decode_copy_row("new\\nline\tback\\\\slash\t1\t\\N", cols, row);
    EXPECT_FALSE(row[0].value.escape_free);
    EXPECT_FALSE(row[1].value.escape_free);
    EXPECT_EQ(written(row[0].value), "\"new\\nline\"");
    EXPECT_EQ(written(row[1].value), "\"back\\\\slash\"");
}

TEST(CopyRow, RefusesARowWithTheWrongNumberOfFields) {
    auto cols = columns({{"a", 23}, {"b", 23}});
    std::vector<Column> row;
    EXPECT_THROW(decode_copy_row("1", cols, row), CopyRowError);
    EXPECT_THROW(decode_copy_row("1\t2\t3", cols, row), CopyRowError);
}

}  // namespace
}  // namespace pgstream
