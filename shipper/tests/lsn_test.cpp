#include <gtest/gtest.h>

#include "wal/lsn.h"

namespace pgstream {
namespace {

TEST(Lsn, ParsesAndFormatsLikePostgres) {
    auto lsn = Lsn::parse("16/B374D848");
    ASSERT_TRUE(lsn);
    EXPECT_EQ(lsn->value, (uint64_t(0x16) << 32) | 0xB374D848u);
    EXPECT_EQ(lsn->str(), "16/B374D848");
    EXPECT_EQ(Lsn::parse("0/2962EF0")->str(), "0/2962EF0");
    EXPECT_EQ(Lsn::parse("0/0")->value, 0u);
}

TEST(Lsn, AppendsTheSameTextItFormats) {
    std::string out = "at ";
    for (uint64_t value : {uint64_t(0), uint64_t(0x2962EF0), uint64_t(0x16B374D848), ~uint64_t(0)}) {
        Lsn(value).append_to(out);
        out += ' ';
    }
    EXPECT_EQ(out, "at 0/0 0/2962EF0 16/B374D848 FFFFFFFF/FFFFFFFF ");
}

TEST(Lsn, AcceptsLowerCaseAndZeroPaddedHalves) {
    EXPECT_EQ(Lsn::parse("0/2962ef0")->value, 0x2962EF0u);
    EXPECT_EQ(Lsn::parse("00000000/02962EF0")->value, 0x2962EF0u);
    EXPECT_EQ(Lsn::parse("FFFFFFFF/FFFFFFFF")->value, ~uint64_t(0));
}

TEST(Lsn, RejectsMalformedText) {
    for (const char* bad :
         {"", "/", "0/", "/1", "12345", "0/G", "1/2/3", "123456789/0", "0/123456789", " 0/1"})
        EXPECT_FALSE(Lsn::parse(bad)) << bad;
}

TEST(Lsn, OrdersByPosition) {
    EXPECT_LT(*Lsn::parse("0/FFFFFFFF"), *Lsn::parse("1/0"));
    EXPECT_FALSE(Lsn().valid());
    EXPECT_TRUE(Lsn(1).valid());
}

}  // namespace
}  // namespace pgstream
