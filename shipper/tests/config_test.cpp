#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "config/config.h"

namespace pgstream {
namespace {

using std::chrono::milliseconds;

std::string temp_file(const std::string& name, const std::string& text) {
    std::string path = testing::TempDir() + "/" + name;
    std::ofstream(path) << text;
    return path;
}

TEST(ConfigParsers, Durations) {
    EXPECT_EQ(parse_duration("1s"), milliseconds(1000));
    EXPECT_EQ(parse_duration("500ms"), milliseconds(500));
    EXPECT_EQ(parse_duration("1min"), milliseconds(60000));
    EXPECT_EQ(parse_duration("2m"), milliseconds(120000));
    EXPECT_EQ(parse_duration("1h"), milliseconds(3600000));
    EXPECT_EQ(parse_duration("1m30s"), milliseconds(90000));
    EXPECT_EQ(parse_duration("1.5s"), milliseconds(1500));
    EXPECT_EQ(parse_duration("0"), milliseconds(0));
    for (const char* bad : {"", "soon", "10", "-1s", "5 parsecs", "1x", "s"})
        EXPECT_THROW(parse_duration(bad), std::invalid_argument) << bad;
}

TEST(ConfigParsers, Sizes) {
    EXPECT_EQ(parse_size("4096"), 4096u);
    EXPECT_EQ(parse_size("100MiB"), 100u << 20);
    EXPECT_EQ(parse_size("1MB"), 1000000u);
    EXPECT_EQ(parse_size("1.5KiB"), 1536u);
    EXPECT_EQ(parse_size("2 GiB"), 2ull << 30);
    EXPECT_EQ(parse_size("10b"), 10u);
    for (const char* bad : {"", "-5MiB", "12 parsecs", "MiB", "1ZB"})
        EXPECT_THROW(parse_size(bad), std::invalid_argument) << bad;
}

TEST(ConfigParsers, Booleans) {
    for (const char* yes : {"true", "TRUE", "1", "yes", "on"}) EXPECT_TRUE(parse_bool(yes)) << yes;
    for (const char* no : {"false", "False", "0", "no", "off"}) EXPECT_FALSE(parse_bool(no)) << no;
    EXPECT_THROW(parse_bool("maybe"), std::invalid_argument);
}

TEST(ConfigEnvFile, ParsesCommentsQuotesAndExport) {
    auto values = Config::parse_env_file(
        "# a comment\n"
        "\n"
        "PGSTREAM_A=plain\n"
        "export PGSTREAM_B = \"double # not a comment\"\n"
        "PGSTREAM_C='single'\n"
        "PGSTREAM_D=value # trailing comment\n"
        "PGSTREAM_E=postgres://u:p@h:5432/db?sslmode=disable\n"
        "PGSTREAM_F=\n",
        "test.env");
    EXPECT_EQ(values["PGSTREAM_A"], "plain");
    EXPECT_EQ(values["PGSTREAM_B"], "double # not a comment");
    EXPECT_EQ(values["PGSTREAM_C"], "single");
    EXPECT_EQ(values["PGSTREAM_D"], "value");
    EXPECT_EQ(values["PGSTREAM_E"], "postgres://u:p@h:5432/db?sslmode=disable");
    EXPECT_EQ(values["PGSTREAM_F"], "");
}

TEST(ConfigEnvFile, RejectsLinesWithoutEquals) {
    try {
        Config::parse_env_file("PGSTREAM_A=1\nnonsense\n", "bad.env");
        FAIL() << "expected ConfigError";
    } catch (const ConfigError& e) {
        EXPECT_STREQ(e.what(), "bad.env:2: expected KEY=VALUE");
    }
}

TEST(ConfigYaml, FlatNestedAndGoStyleLayoutsMapOntoTheSameKeys) {
    auto flat = Config::parse_yaml("PGSTREAM_POSTGRES_LISTENER_URL: \"postgres://a\"\n", "f.yaml");
    EXPECT_EQ(flat["PGSTREAM_POSTGRES_LISTENER_URL"], "postgres://a");

    auto nested = Config::parse_yaml(
        "postgres:\n  listener:\n    url: postgres://b\n    slot_name: s1\n"
        "stdout:\n  writer:\n    enabled: true\n    batch_size: 5\n"
        "filter:\n  include_tables: [public.a, \"b.*\"]\n",
        "n.yaml");
    EXPECT_EQ(nested["PGSTREAM_POSTGRES_LISTENER_URL"], "postgres://b");
    EXPECT_EQ(nested["PGSTREAM_POSTGRES_LISTENER_SLOT_NAME"], "s1");
    EXPECT_EQ(nested["PGSTREAM_STDOUT_WRITER_ENABLED"], "true");
    EXPECT_EQ(nested["PGSTREAM_STDOUT_WRITER_BATCH_SIZE"], "5");
    EXPECT_EQ(nested["PGSTREAM_FILTER_INCLUDE_TABLES"], "public.a,b.*");

    auto go = Config::parse_yaml(
        "source:\n  postgres:\n    url: postgres://c\n    replication:\n      replication_slot: s2\n"
        "target:\n  stdout:\n  kafka:\n    servers: [\"k1:9092\", \"k2:9092\"]\n    topic:\n      name: events\n"
        "    batch:\n      timeout: 2s\n      max_queue_bytes: 1MiB\n"
        "modifiers:\n  filter:\n    exclude_tables: [audit.*]\n  translator:\n    store_url: postgres://d\n",
        "g.yaml");
    EXPECT_EQ(go["PGSTREAM_POSTGRES_LISTENER_URL"], "postgres://c");
    EXPECT_EQ(go["PGSTREAM_POSTGRES_LISTENER_SLOT_NAME"], "s2");
    EXPECT_EQ(go["PGSTREAM_STDOUT_WRITER_ENABLED"], "true");
    EXPECT_EQ(go["PGSTREAM_KAFKA_SERVERS"], "k1:9092,k2:9092");
    EXPECT_EQ(go["PGSTREAM_KAFKA_TOPIC_NAME"], "events");
    EXPECT_EQ(go["PGSTREAM_KAFKA_WRITER_BATCH_TIMEOUT"], "2s");
    EXPECT_EQ(go["PGSTREAM_KAFKA_WRITER_MAX_QUEUE_BYTES"], "1MiB");
    EXPECT_EQ(go["PGSTREAM_FILTER_EXCLUDE_TABLES"], "audit.*");
    EXPECT_EQ(go["PGSTREAM_TRANSLATOR_STORE_POSTGRES_URL"], "postgres://d");
}

TEST(ConfigYaml, RejectsUnknownTargetsAndMalformedDocuments) {
    try {
        Config::parse_yaml("target:\n  carrier_pigeon:\n    coop: roof\n", "p.yaml");
        FAIL() << "expected ConfigError";
    } catch (const ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("carrier_pigeon"), std::string::npos) << e.what();
    }
    EXPECT_THROW(Config::parse_yaml("target:\n  carrier_pigeon:\n", "p.yaml"), ConfigError);
    EXPECT_THROW(Config::parse_yaml("a: [unclosed\n", "m.yaml"), ConfigError);
    EXPECT_THROW(Config::parse_yaml("- just\n- a list\n", "l.yaml"), ConfigError);
}

TEST(ConfigLoad, EnvironmentOverridesTheFile) {
    std::string path = temp_file("override.env", "PGSTREAM_STDOUT_WRITER_FILE=from-file\nPGSTREAM_LOG_FORMAT=json\n");
    std::string a = "PGSTREAM_STDOUT_WRITER_FILE=from-env", b = "UNRELATED=x";
    char* environment[] = {a.data(), b.data(), nullptr};
    Config config = Config::load(path, environment);
    EXPECT_EQ(config.get_string("PGSTREAM_STDOUT_WRITER_FILE"), "from-env");
    EXPECT_EQ(config.get_string("PGSTREAM_LOG_FORMAT"), "json");
    EXPECT_FALSE(config.has("UNRELATED"));
}

TEST(ConfigLoad, YamlByExtensionAndUnreadableFiles) {
    std::string path = temp_file("c.yml", "postgres:\n  listener:\n    url: postgres://y\n");
    char* environment[] = {nullptr};
    EXPECT_EQ(Config::load(path, environment).get_string("PGSTREAM_POSTGRES_LISTENER_URL"), "postgres://y");
    try {
        Config::load("/nonexistent/pgstream.env", environment);
        FAIL() << "expected ConfigError";
    } catch (const ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/pgstream.env"), std::string::npos);
    }
}

TEST(ConfigAccessors, TypedValuesAndOneLineErrorsNamingTheKey) {
    Config config({{"PGSTREAM_X_SIZE", "-5MiB"},
                   {"PGSTREAM_X_TIMEOUT", "soon"},
                   {"PGSTREAM_X_COUNT", "12abc"},
                   {"PGSTREAM_X_FLAG", "maybe"},
                   {"PGSTREAM_X_LIST", " a, b ,,c "},
                   {"PGSTREAM_X_URL", "postgres://[::1/postgres"},
                   {"PGSTREAM_X_GOOD_URL", "postgres://u@localhost:5432/db"}});
    auto message = [](auto&& fn) {
        try {
            fn();
        } catch (const ConfigError& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_EQ(message([&] { config.get_size("PGSTREAM_X_SIZE", 1); }).rfind("invalid PGSTREAM_X_SIZE: ", 0), 0u);
    EXPECT_EQ(message([&] { config.get_duration("PGSTREAM_X_TIMEOUT", milliseconds(1)); })
                  .rfind("invalid PGSTREAM_X_TIMEOUT: ", 0),
              0u);
    EXPECT_EQ(message([&] { config.get_int("PGSTREAM_X_COUNT", 1); }).rfind("invalid PGSTREAM_X_COUNT: ", 0), 0u);
    EXPECT_EQ(message([&] { config.get_bool("PGSTREAM_X_FLAG", true); }).rfind("invalid PGSTREAM_X_FLAG: ", 0), 0u);
    EXPECT_EQ(message([&] { config.get_url("PGSTREAM_X_URL"); }).rfind("invalid PGSTREAM_X_URL: ", 0), 0u);
    EXPECT_EQ(config.get_url("PGSTREAM_X_GOOD_URL"), "postgres://u@localhost:5432/db");
    EXPECT_EQ(config.get_list("PGSTREAM_X_LIST"), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(config.get_int("PGSTREAM_MISSING", 7), 7);
    EXPECT_EQ(message([&] { Config(std::map<std::string, std::string>{{"K", "0"}}).get_int("K", 5, 1); }), "invalid K: must be at least 1, got 0");
}

TEST(ConfigAccessors, UnknownKeysAreReportedButTestVariablesAreNot) {
    Config config({{"PGSTREAM_POSTGRES_LISTENER_URL", "x"},
                   {"PGSTREAM_STDOUT_WRITER_ENABLD", "true"},
                   {"PGSTREAM_TEST_PGURL", "y"}});
    EXPECT_EQ(config.unknown_keys(), std::vector<std::string>{"PGSTREAM_STDOUT_WRITER_ENABLD"});
    register_config_keys({"PGSTREAM_STDOUT_WRITER_ENABLD"});
    EXPECT_TRUE(config.unknown_keys().empty());
}

}  // namespace
}  // namespace pgstream
