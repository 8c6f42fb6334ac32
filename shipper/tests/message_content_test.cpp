#include <gtest/gtest.h>

#include "wal/event.h"
#include "wal/json.h"
#include "wal/record_parser.h"

namespace pgstream {
namespace {

TEST(MessageContent, Base64RoundTripsEveryLengthAndByte) {
    std::string bytes;
    for (int i = 0; i < 256; ++i) bytes += static_cast<char>(i);
    for (size_t length = 0; length <= bytes.size(); length += 1 + length / 4)
        EXPECT_EQ(base64_decode(base64_encode(bytes.substr(0, length))), bytes.substr(0, length));
    EXPECT_EQ(base64_encode(std::string("A\0B", 3)), "QQBC");
    EXPECT_THROW(base64_decode("Q!BC"), JsonError);
}

TEST(MessageContent, TextIsValidUtf8WithoutNul) {
    EXPECT_TRUE(is_json_text("plain \xc3\xbc \xf0\x9f\x98\x80"));
    EXPECT_FALSE(is_json_text(std::string("A\0B", 3)));
    EXPECT_FALSE(
        is_json_text("A\xff"
                     "B"));
    EXPECT_FALSE(is_json_text("\xc0\xaf"));      // overlong '/'
    EXPECT_FALSE(is_json_text("\xed\xa0\x80"));  // a UTF-16 surrogate
    EXPECT_FALSE(is_json_text("\xe2\x82"));      // cut short
}

TEST(MessageContent, Base64RecordContentIsDecodedAndWrittenBackLosslessly) {
    auto event = parse_wal2json_record(
                     R"({"action":"M","lsn":"0/10","transactional":true,"prefix":"p","content":"QQBC",)"
                     R"("content_encoding":"base64"})")
                     .event;
    ASSERT_TRUE(event);
    EXPECT_EQ(event->content, std::string("A\0B", 3));
    std::string json;
    append_event_json(json, *event);
    EXPECT_NE(json.find(R"("content":"QQBC","content_encoding":"base64")"), std::string::npos) << json;
    event->content = "text";
    json.clear();
    append_event_json(json, *event);
    EXPECT_NE(json.find(R"("content":"text","transactional")"), std::string::npos) << json;
}

}  // namespace
}  // namespace pgstream
