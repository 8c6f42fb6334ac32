#include <gtest/gtest.h>

#include "listener/postgres/server_encoding.h"

namespace pgstream {
namespace {

std::string to_utf8(const std::string& encoding, const std::string& text, size_t* unconvertible = nullptr) {
    auto converter = Utf8Converter::for_server_encoding(encoding);
    if (!converter) return text;
    std::string out = "kept:";
    size_t count = converter->append(out, text);
    if (unconvertible) *unconvertible = count;
    return out.substr(5);
}

TEST(Utf8Converter, Utf8NeedsNoConversion) {
    EXPECT_EQ(Utf8Converter::for_server_encoding("UTF8"), nullptr);
}

TEST(Utf8Converter, SingleByteEncodingsBecomeUtf8) {
    size_t unconvertible = 1;
    EXPECT_EQ(to_utf8("LATIN1", "{\"v\":\"caf\xE9\"}", &unconvertible), "{\"v\":\"caf\xC3\xA9\"}");
    EXPECT_EQ(unconvertible, 0u);
    EXPECT_EQ(to_utf8("WIN1252", "\x80 5"), "\xE2\x82\xAC 5");      // the euro sign
    EXPECT_EQ(to_utf8("LATIN9", "\xA4"), "\xE2\x82\xAC");           // ISO-8859-15's euro
    EXPECT_EQ(to_utf8("WIN1251", "\xC0\xE1"), "\xD0\x90\xD0\xB1");  // Cyrillic А б
    EXPECT_EQ(to_utf8("KOI8R", "\xE1"), "\xD0\x90");
}

TEST(Utf8Converter, MultiByteEncodingsBecomeUtf8AndUndefinedBytesAreReplacedAndCounted) {
    size_t unconvertible = 0;
    EXPECT_EQ(to_utf8("EUC_JP", "\xC6\xFC\xCB\xDC", &unconvertible), "\xE6\x97\xA5\xE6\x9C\xAC");  // 日本
    EXPECT_EQ(unconvertible, 0u);
    // A lead byte cut from its character, then text: U+FFFD, and the text after it converted.
    EXPECT_EQ(to_utf8("EUC_JP", "a\xC6", &unconvertible), "a\xEF\xBF\xBD");
    EXPECT_EQ(unconvertible, 1u);
    // Long input (the output buffer grows).
    std::string many(100000, '\xE9');
    std::string expected;
    for (size_t i = 0; i < many.size(); ++i) expected += "\xC3\xA9";
    EXPECT_EQ(to_utf8("LATIN1", many), expected);
}

TEST(Utf8Converter, SqlAsciiKeepsUtf8AndReadsOtherBytesAsLatin1) {
    size_t unconvertible = 0;
    EXPECT_EQ(to_utf8("SQL_ASCII", "caf\xC3\xA9 \xF0\x9F\x98\x80", &unconvertible),
              "caf\xC3\xA9 \xF0\x9F\x98\x80");
    EXPECT_EQ(unconvertible, 0u);
    EXPECT_EQ(to_utf8("SQL_ASCII", "caf\xE9 \xC3\xA9 \xC3", &unconvertible), "caf\xC3\xA9 \xC3\xA9 \xC3\x83");
    EXPECT_EQ(unconvertible, 2u);
    // Overlong forms and surrogates are not UTF-8 either.
    EXPECT_EQ(to_utf8("SQL_ASCII", "\xC0\xAF\xED\xA0\x80", &unconvertible),
              "\xC3\x80\xC2\xAF\xC3\xAD\xC2\xA0\xC2\x80");
    EXPECT_EQ(unconvertible, 5u);
}

TEST(Utf8Converter, AnEncodingWithoutAConversionIsNamed) {
    try {
        Utf8Converter::for_server_encoding("MULE_INTERNAL");
        FAIL() << "expected an error";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("MULE_INTERNAL"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace pgstream
