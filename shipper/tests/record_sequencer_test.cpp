#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "listener/postgres/record_sequencer.h"
#include "wal/json.h"

namespace pgstream {
namespace {

class Collector : public Processor {
  public:
    std::string name() const override { return "collector"; }
    void process(EventPtr event) override { events.push_back(std::move(event)); }
    std::vector<EventPtr> events;
};

std::string begin(int xid, const char* commit, const char* end) {
    return std::string(R"({"action":"B","xid":)") + std::to_string(xid) +
           R"(,"timestamp":"2026-01-01 00:00:00+00","lsn":")" + commit + R"(","nextlsn":")" + end + R"("})";
}
std::string commit(int xid, const char* commit_lsn, const char* end) {
    return std::string(R"({"action":"C","xid":)") + std::to_string(xid) + R"(,"lsn":")" + commit_lsn +
           R"(","nextlsn":")" + end + R"("})";
}
std::string insert(int xid, const char* lsn, int id) {
    return std::string(R"({"action":"I","xid":)") + std::to_string(xid) + R"(,"lsn":")" + lsn +
           R"(","schema":"public","table":"t","columns":[{"name":"id","type":"integer","value":)" +
           std::to_string(id) + "}]}";
}
std::string message(const char* lsn, const char* content) {
    return std::string(R"({"action":"M","xid":null,"lsn":")") + lsn +
           R"(","transactional":false,"prefix":"p","content":")" + content + R"("})";
}

Lsn L(const char* text) {
    return *Lsn::parse(text);
}

class RecordSequencerTest : public ::testing::Test {
  protected:
    void feed(const std::string& data) { sequencer.on_data(data, L("0/1")); }
    void ack_all() {
        for (; acked < output.events.size(); ++acked) watermark.acknowledge(*output.events[acked]);
    }
    Watermark watermark{L("0/100")};
    Collector output;
    RecordSequencer sequencer{output, watermark};
    size_t acked = 0;
};

TEST_F(RecordSequencerTest, ChangesWithoutTransactionFieldsTakeThemFromBegin) {
    // pgstream-transaction-fields-once: only B and C carry xid and timestamp.
    feed(begin(7, "0/200", "0/230"));
    feed(
        R"({"action":"I","lsn":"0/1F0","schema":"public","table":"t","columns":[{"name":"id","type":"integer","value":1}]})");
    feed(insert(7, "0/1F8", 2));
    feed(commit(7, "0/200", "0/230"));
    feed(begin(8, "0/300", "0/330"));
    feed(
        R"({"action":"D","lsn":"0/2F0","schema":"public","table":"t","identity":[{"name":"id","type":"integer","value":1}]})");
    feed(commit(8, "0/300", "0/330"));
    ASSERT_EQ(output.events.size(), 3u);
    EXPECT_EQ(output.events[0]->xid, "7");
    EXPECT_EQ(output.events[0]->timestamp, "2026-01-01 00:00:00+00");
    EXPECT_EQ(output.events[1]->xid, "7") << "a change's own xid is kept";
    EXPECT_EQ(output.events[2]->xid, "8") << "each transaction's own";
    // A non-transactional message keeps its null xid.
    feed(message("0/400", "m"));
    ASSERT_EQ(output.events.size(), 4u);
    EXPECT_EQ(output.events[3]->xid, "null");
}

TEST_F(RecordSequencerTest, OneRecordPerMessage) {
    feed(begin(5, "0/200", "0/230"));
    feed(insert(5, "0/1F0", 1));
    feed(insert(5, "0/1F8", 2));
    EXPECT_TRUE(sequencer.in_transaction());
    feed(commit(5, "0/200", "0/230"));
    ASSERT_EQ(output.events.size(), 2u);
    EXPECT_EQ(output.events[0]->commit_lsn, L("0/230")) << "the end LSN of the transaction, known from B";
    EXPECT_EQ(output.events[0]->timestamp, "2026-01-01 00:00:00+00") << "commit time from B";
    EXPECT_EQ(output.events[1]->lsn, L("0/1F8"));
    EXPECT_EQ(watermark.confirmed(), L("0/100"));
    ack_all();
    EXPECT_EQ(watermark.confirmed(), L("0/230"));
}

TEST_F(RecordSequencerTest, PackedMessagesSplitOnNewlines) {
    feed(begin(5, "0/200", "0/230") + "\n" + insert(5, "0/1F0", 1) + "\n" + insert(5, "0/1F8", 2) + "\n" +
         commit(5, "0/200", "0/230") + "\n" + begin(6, "0/300", "0/330") + "\n" + insert(6, "0/2F0", 3));
    EXPECT_EQ(output.events.size(), 3u);
    EXPECT_EQ(sequencer.stats().records, 6u);
    EXPECT_TRUE(sequencer.in_transaction()) << "a transaction may continue in the next message";
    feed(commit(6, "0/300", "0/330"));
    ack_all();
    EXPECT_EQ(watermark.confirmed(), L("0/330"));
}

TEST_F(RecordSequencerTest, KeepalivesAdvanceOnlyBetweenTransactionsAndAfterDelivery) {
    sequencer.on_keepalive(L("0/150"));
    EXPECT_EQ(watermark.confirmed(), L("0/150")) << "idle: confirmed at once";
    feed(begin(5, "0/200", "0/230"));
    feed(insert(5, "0/1F0", 1));
    sequencer.on_keepalive(L("0/500"));  // mid-transaction: ignored
    feed(commit(5, "0/200", "0/230"));
    sequencer.on_keepalive(L("0/600"));  // after the transaction, but it is not delivered yet
    EXPECT_EQ(watermark.confirmed(), L("0/150"));
    ack_all();
    EXPECT_EQ(watermark.confirmed(), L("0/600"));
}

TEST_F(RecordSequencerTest, AfterAReconnectResentTransactionsAreSkippedAndACutOneIsTakenWhole) {
    feed(begin(5, "0/200", "0/230"));
    feed(insert(5, "0/1F0", 1));
    feed(commit(5, "0/200", "0/230"));
    feed(begin(6, "0/300", "0/330"));
    feed(insert(6, "0/2F0", 2));  // the connection breaks here
    sequencer.on_reconnect();
    EXPECT_EQ(sequencer.stats().transactions_cut, 1u);
    // The server starts again from the slot's confirmed position (0/100): everything is resent.
    feed(begin(5, "0/200", "0/230"));
    feed(insert(5, "0/1F0", 1));
    feed(commit(5, "0/200", "0/230"));
    feed(begin(6, "0/300", "0/330"));
    feed(insert(6, "0/2F0", 2));
    feed(insert(6, "0/2F8", 3));
    feed(commit(6, "0/300", "0/330"));
    std::vector<std::string> ids;
    for (const auto& event : output.events) ids.push_back(event->columns[0].value.text);
    EXPECT_EQ(ids, (std::vector<std::string>{"1", "2", "2", "3"}))
        << "transaction 5 once; the cut transaction 6 again in full";
    EXPECT_EQ(sequencer.stats().duplicates_skipped, 1u);
    ack_all();
    EXPECT_EQ(watermark.confirmed(), L("0/330"));
}

TEST_F(RecordSequencerTest, StandaloneMessagesAreTheirOwnUnitAndAreDeduplicated) {
    feed(message("0/180", "a"));
    feed(begin(5, "0/200", "0/230"));
    feed(message("0/1C0",
                 "b"));  // non-transactional messages are emitted as decoded, even inside a txn's span
    feed(insert(5, "0/1F0", 1));
    feed(commit(5, "0/200", "0/230"));
    ASSERT_EQ(output.events.size(), 3u);
    EXPECT_EQ(output.events[0]->commit_lsn, L("0/180"));
    watermark.acknowledge(*output.events[0]);
    acked = 1;
    EXPECT_EQ(watermark.confirmed(), L("0/180"));
    sequencer.on_reconnect();
    feed(message("0/180", "a"));
    EXPECT_EQ(output.events.size(), 3u) << "a resent message is skipped";
    feed(message("0/240", "c"));
    EXPECT_EQ(output.events.size(), 4u);
    ack_all();
    EXPECT_EQ(watermark.confirmed(), L("0/240"));
}

TEST_F(RecordSequencerTest, ShutdownMidTransactionDoesNotHoldTheWatermark) {
    feed(begin(5, "0/200", "0/230"));
    feed(commit(5, "0/200", "0/230"));
    feed(begin(6, "0/300", "0/330"));
    feed(insert(6, "0/2F0", 1));
    sequencer.on_shutdown();
    ack_all();
    EXPECT_TRUE(watermark.wait_drained(std::chrono::milliseconds(10)));
    EXPECT_EQ(watermark.confirmed(), L("0/230")) << "the cut transaction is not confirmed";
}

TEST_F(RecordSequencerTest, MalformedRecordsStopWithTheirPosition) {
    try {
        sequencer.on_data("{\"change\":[]}", L("0/ABC"));
        FAIL() << "expected an error";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("0/ABC"), std::string::npos) << e.what();
    }
}

// A record that is not JSON, in a transaction, holding row data that must not reach the log.
const std::string kUnreadable =
    R"({"action":"I","lsn":"0/1F4","schema":"public","table":"t","columns":[{"name":"secret","type":"text","value":"hunter2"}],})";

TEST_F(RecordSequencerTest, AnUnreadableRecordStopsNamingItsPositionAndHowToSkipItButNotItsData) {
    RecordSequencer stopping(output, watermark, UnreadableRecordRule{nullptr, "pgstream_app_slot"});
    stopping.on_data(begin(7, "0/200", "0/230"), L("0/1F0"));
    try {
        stopping.on_data(kUnreadable, L("0/1F4"));
        FAIL() << "expected an error";
    } catch (const std::runtime_error& e) {
        std::string message = e.what();
        EXPECT_NE(message.find("received at 0/1F4"), std::string::npos) << message;
        EXPECT_NE(message.find("in the transaction ending at 0/230"), std::string::npos) << message;
        EXPECT_NE(message.find("offset"), std::string::npos) << "the reason: " << message;
        EXPECT_NE(message.find("pg_replication_slot_advance('pgstream_app_slot', '0/230')"),
                  std::string::npos)
            << message;
        EXPECT_NE(message.find("PGSTREAM_POSTGRES_LISTENER_ON_UNREADABLE_RECORD=dead-letter"),
                  std::string::npos)
            << message;
        EXPECT_EQ(message.find("hunter2"), std::string::npos) << "row data in the error: " << message;
    }
    EXPECT_EQ(stopping.stats().unreadable_records, 1u);
}

TEST_F(RecordSequencerTest, AnUnreadableRecordIsDeadLetteredAndTheRestOfItsTransactionStreams) {
    char path[] = "/tmp/pgstream-dead-letters-XXXXXX";
    ::close(::mkstemp(path));
    struct Remove {
        const char* path;
        ~Remove() { ::unlink(path); }
    } remove{path};
    RecordSequencer sequencer(output, watermark,
                              UnreadableRecordRule{std::make_shared<UnreadableRecordFile>(path), "s"});
    sequencer.on_data(begin(7, "0/200", "0/230"), L("0/1F0"));
    sequencer.on_data(insert(7, "0/1F2", 1), L("0/1F2"));
    sequencer.on_data(kUnreadable + "\n" + insert(7, "0/1F8", 3), L("0/1F4"));
    sequencer.on_data(commit(7, "0/200", "0/230"), L("0/200"));
    // Outside a transaction too.
    sequencer.on_data("not json", L("0/240"));
    sequencer.on_data(message("0/250", "after"), L("0/250"));

    ASSERT_EQ(output.events.size(), 3u);
    EXPECT_EQ(output.events[0]->columns[0].value.text, "1");
    EXPECT_EQ(output.events[1]->columns[0].value.text, "3");
    EXPECT_EQ(output.events[2]->content, "after");
    EXPECT_EQ(sequencer.stats().unreadable_records, 2u);
    EXPECT_EQ(sequencer.stats().dead_lettered_records, 2u);
    ack_all();
    EXPECT_TRUE(watermark.wait_drained(std::chrono::milliseconds(10)));
    EXPECT_EQ(watermark.confirmed(), L("0/250")) << "the slot moves past the dead-lettered records";

    std::ifstream in(path);
    std::string line;
    std::vector<JsonValue> lines;
    while (std::getline(in, line)) lines.push_back(parse_json(line));
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0].find("received_at")->text, "0/1F4");
    EXPECT_EQ(lines[0].find("transaction_end_lsn")->text, "0/230");
    EXPECT_EQ(lines[0].find("record")->text, kUnreadable) << "the record is kept byte for byte";
    EXPECT_NE(lines[0].find("reason")->text.find("offset"), std::string::npos);
    EXPECT_EQ(lines[1].find("received_at")->text, "0/240");
    EXPECT_TRUE(lines[1].find("transaction_end_lsn")->is_null());
    EXPECT_EQ(lines[1].find("record")->text, "not json");
}

}  // namespace
}  // namespace pgstream
