// SharedText::interned (wal/shared_text.h): one kept text per content, shared without a reference count.
#include "wal/shared_text.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace pgstream {
namespace {

TEST(SharedTextInterned, EqualTextsAreTheSameKeptText) {
    std::string name = "column_name";
    SharedText first = SharedText::interned(name);
    name = "changed";  // the kept text is a copy
    SharedText second = SharedText::interned("column_name");
    EXPECT_TRUE(first.same_as(second));
    EXPECT_EQ(first, "column_name");
    EXPECT_FALSE(first.same_as(SharedText::interned("other")));
    EXPECT_TRUE(SharedText::interned("").empty());
}

TEST(SharedTextInterned, CopiesDroppedOnOtherThreadsKeepTheText) {
    SharedText head = SharedText::interned("public.t-1");
    std::vector<SharedText> copies(1000, head);
    std::thread dropper([&copies] { copies.clear(); });
    dropper.join();
    EXPECT_EQ(head, "public.t-1");
    EXPECT_EQ(SharedText::interned("public.t-1").data(), head.data());
}

}  // namespace
}  // namespace pgstream
