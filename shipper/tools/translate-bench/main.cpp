// pgstream-translate-bench: the shipper's cost per DDL at N tables: decoding the record the stream carries
// for a schema version (wal2json v2 JSON) and translating it, for a whole version (0.4.0's default; also
// `full` mode) and for a delta of one table (0.5.0's default), which the translator composes with the version
// it holds and forwards as the whole document. Prints the median and the range of REPEATS runs of each, in
// ms.
//   pgstream-translate-bench [TABLES=5000] [REPEATS=21]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "checkpoint/acknowledger.h"
#include "processor/translator/translator.h"
#include "wal/json.h"
#include "wal/record_parser.h"

namespace {

using namespace pgstream;

// A table as pgstream describes bench/ddl's tables (id bigserial primary key, name text unique not null, qty,
// note), in the member order of jsonb's text output.
std::string table_json(const std::string& name, int oid, int extra_columns) {
    std::string id = "d" + std::to_string(100000000 + oid) + "bench00";
    auto column = [&](int attnum, const std::string& column_name, const std::string& type, bool nullable,
                      bool unique, const std::string& default_value) {
        return "{\"name\": \"" + column_name + "\", \"type\": \"" + type +
               "\", \"unique\": " + (unique ? "true" : "false") + ", \"default\": " + default_value +
               ", \"identity\": \"\", \"metadata\": null, \"nullable\": " + (nullable ? "true" : "false") +
               ", \"generated\": false, \"pgstream_id\": \"" + id + "-" + std::to_string(attnum) +
               "\", \"generated_kind\": \"\"}";
    };
    std::string columns =
        column(1, "id", "bigint", false, true, "\"nextval('bench." + name + "_id_seq'::regclass)\"") + ", " +
        column(2, "name", "text", false, true, "null") + ", " +
        column(3, "qty", "integer", true, false, "0") + ", " + column(4, "note", "text", true, false, "null");
    for (int i = 0; i < extra_columns; ++i)
        columns += ", " + column(5 + i, "extra_" + std::to_string(i), "text", true, false, "null");
    return "{\"oid\": \"" + std::to_string(oid) + "\", \"name\": \"" + name + "\", \"columns\": [" + columns +
           "], \"indexes\": [{\"name\": \"" + name +
           "_pkey\", \"unique\": true, \"columns\": [\"id\"], \"primary\": true, \"definition\": \"CREATE "
           "UNIQUE "
           "INDEX " +
           name + "_pkey ON bench." + name + " USING btree (id)\"}, {\"name\": \"" + name +
           "_name_key\", \"unique\": true, \"columns\": [\"name\"], \"primary\": false, \"definition\": "
           "\"CREATE "
           "UNIQUE INDEX " +
           name + "_name_key ON bench." + name + " USING btree (name)\"}], \"pgstream_id\": \"" + id +
           "\", \"foreign_keys\": [], \"partition_of\": null, \"partition_key\": null, \"partition_bound\": "
           "null, "
           "\"check_constraints\": [], \"primary_key_columns\": [\"id\"], \"unique_not_null_columns\": "
           "[\"id\", "
           "\"name\"]}";
}

std::string whole_document(int tables, int extra_columns_of_first) {
    std::vector<std::string> names;
    for (int i = 1; i <= tables; ++i) names.push_back("t_" + std::to_string(i));
    std::sort(names.begin(), names.end());
    std::string out = "{\"tables\": [";
    for (size_t i = 0; i < names.size(); ++i) {
        if (i > 0) out += ", ";
        int oid = 20000 + std::stoi(names[i].substr(2));
        out += table_json(names[i], oid, names[i] == "t_1" ? extra_columns_of_first : 0);
    }
    return out + "]}";
}

std::string version_record(const std::string& table, int version, const std::string& document,
                           const std::string& lsn) {
    std::string out = "{\"action\":\"I\",\"lsn\":\"" + lsn + "\",\"schema\":\"pgstream\",\"table\":\"" +
                      table + "\",\"columns\":[{\"name\":\"id\",\"type\":\"pgstream.xid\",\"value\":\"v" +
                      std::to_string(version) +
                      "\"},{\"name\":\"version\",\"type\":\"bigint\",\"value\":" + std::to_string(version) +
                      "},{\"name\":\"schema_name\",\"type\":\"text\",\"value\":\"bench\"},"
                      "{\"name\":\"schema\",\"type\":\"jsonb\",\"value\":";
    append_json_string(out, document);
    return out +
           "},{\"name\":\"acked\",\"type\":\"boolean\",\"value\":false},{\"name\":\"wal_position\","
           "\"type\":\"pg_lsn\",\"value\":\"" +
           lsn + "\"}]}";
}

// Holds version 1 of schema bench, as the store would give it.
class HeldStore : public SchemaLogStore {
  public:
    explicit HeldStore(SchemaLogEntry base) : base_(std::move(base)) {}
    SchemaVersions versions_from(const std::string&, Lsn, size_t) override {
        SchemaVersions found;
        found.entries.push_back(base_);
        return found;
    }
    void ack(const SchemaLogEntry&) override {}

  private:
    SchemaLogEntry base_;
};

class Discard : public Processor {
  public:
    std::string name() const override { return "discard"; }
    void process(EventPtr event) override { last = std::move(event); }
    EventPtr last;
};

class NoAcknowledger : public Acknowledger {
  public:
    void acknowledge(const Event&) override {}
    void retain(const Event&, int) override {}
};

struct Result {
    double median, low, high;
};

// ms to decode `record` and translate it with a translator that holds version 1.
Result measure(const SchemaLogEntry& base, const std::string& record, int repeats, size_t* forwarded_bytes) {
    std::vector<double> ms;
    for (int run = 0; run < repeats; ++run) {
        Discard next;
        NoAcknowledger acknowledger;
        Translator translator(std::make_unique<HeldStore>(base), next, acknowledger);
        // A row of the schema first: the translator reads (holds) version 1, untimed.
        translator.process(parse_wal2json_record(
                               "{\"action\":\"I\",\"lsn\":\"0/150\",\"schema\":\"bench\",\"table\":\"t_1\","
                               "\"columns\":[{\"name\":\"id\",\"type\":\"bigint\",\"value\":1}]}")
                               .event);
        auto start = std::chrono::steady_clock::now();
        translator.process(parse_wal2json_record(record).event);
        ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
        const Column* schema = next.last ? next.last->find_column("schema") : nullptr;
        *forwarded_bytes = schema ? schema->value.text.size() : 0;
    }
    std::sort(ms.begin(), ms.end());
    return {ms[ms.size() / 2], ms.front(), ms.back()};
}

}  // namespace

int main(int argc, char** argv) {
    int tables = argc > 1 ? std::atoi(argv[1]) : 5000;
    int repeats = argc > 2 ? std::atoi(argv[2]) : 21;
    if (tables < 1 || repeats < 1) {
        std::fprintf(stderr, "usage: pgstream-translate-bench [TABLES>=1] [REPEATS>=1]\n");
        return 2;
    }
    SchemaLogEntry base;
    base.id = "v1";
    base.version = 1;
    base.schema_name = "bench";
    base.wal_position = *Lsn::parse("0/100");
    parse_schema_document(whole_document(tables, 0), base);

    // Version 2: ALTER TABLE bench.t_1 ADD COLUMN extra_0 text.
    std::string whole = whole_document(tables, 1);
    std::string delta = "{\"delta\": {\"removed\": [], \"base_version\": 1}, \"changed\": [" +
                        table_json("t_1", 20001, 1) + "]}";
    size_t whole_forwarded = 0, delta_forwarded = 0;
    Result whole_ms =
        measure(base, version_record("schema_log", 2, whole, "0/200"), repeats, &whole_forwarded);
    Result delta_ms =
        measure(base, version_record("schema_log_entries", 2, delta, "0/200"), repeats, &delta_forwarded);
    std::printf("translate-bench: %d tables, %d runs; ms to decode and translate one schema version\n",
                tables, repeats);
    std::printf("%-34s %9s %9s %9s %12s %14s\n", "version in the stream", "median", "min", "max",
                "record bytes", "forwarded bytes");
    std::printf("%-34s %9.2f %9.2f %9.2f %12zu %14zu\n", "whole document (0.4.0 default)", whole_ms.median,
                whole_ms.low, whole_ms.high, version_record("schema_log", 2, whole, "0/200").size(),
                whole_forwarded);
    std::printf("%-34s %9.2f %9.2f %9.2f %12zu %14zu\n", "delta of one table (0.5.0 default)",
                delta_ms.median, delta_ms.low, delta_ms.high,
                version_record("schema_log_entries", 2, delta, "0/200").size(), delta_forwarded);
    return whole_forwarded == delta_forwarded ? 0 : 1;
}
