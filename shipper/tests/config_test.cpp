#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>

#include "config/config.h"
#include "pipeline/module.h"
#include "util/redact.h"

namespace pgstream {
namespace {

// As in the CLI: the built-in modules' keys and YAML sections are known once they are registered.
class BuiltinModules : public ::testing::Environment {
  public:
    void SetUp() override { register_builtin_modules(); }
};
const auto* const kBuiltinModules = ::testing::AddGlobalTestEnvironment(new BuiltinModules);

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
        EXPECT_STREQ(e.what(), "bad.env:2: expected KEY=VALUE (KEY of letters, digits and _)");
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
        "target:\n  stdout:\n  kafka:\n    servers: [\"k1:9092\", \"k2:9092\"]\n    topic:\n      name: "
        "events\n"
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

// The core list holds no module's keys: search is not built, so its keys and YAML section
// are unknown; a registered module's section maps onto its keys.
TEST(ConfigModules, KeysAndYamlSectionsComeWithTheirModule) {
    Config config({{"PGSTREAM_OPENSEARCH_STORE_URL", "http://x"}, {"PGSTREAM_KAFKA_SERVERS", "k:9092"}});
    EXPECT_EQ(config.unknown_keys(), std::vector<std::string>{"PGSTREAM_OPENSEARCH_STORE_URL"});
    EXPECT_THROW(Config::parse_yaml("target:\n  search:\n    url: http://x\n", "s.yaml"), ConfigError);
    EXPECT_FALSE(is_known_config_key("PGSTREAM_ECHO_WRITER_LEVEL"));
    OutputModule echo;
    echo.name = "echo writer";
    echo.settings = {{"PGSTREAM_ECHO_WRITER_LEVEL", "1", "how loud"}};
    echo.yaml = YamlSection{"target", "echo",
                            [](const std::string& rest) { return "PGSTREAM_ECHO_WRITER_" + rest; }, ""};
    echo.configured = [](const Config&) { return false; };
    register_output_module(echo);
    EXPECT_TRUE(is_known_config_key("PGSTREAM_ECHO_WRITER_LEVEL"));
    EXPECT_EQ(Config::parse_yaml("target:\n  echo:\n    level: 3\n", "e.yaml")["PGSTREAM_ECHO_WRITER_LEVEL"],
              "3");
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
    std::string path =
        temp_file("override.env", "PGSTREAM_STDOUT_WRITER_FILE=from-file\nPGSTREAM_LOG_FORMAT=json\n");
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
                   {"PGSTREAM_X_LIST", " a, b , c "},
                   {"PGSTREAM_X_EMPTY_ITEM", "a,,c"},
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
    EXPECT_EQ(message([&] { config.get_size("PGSTREAM_X_SIZE", 1); }).rfind("invalid PGSTREAM_X_SIZE: ", 0),
              0u);
    EXPECT_EQ(message([&] {
                  config.get_duration("PGSTREAM_X_TIMEOUT", milliseconds(1));
              }).rfind("invalid PGSTREAM_X_TIMEOUT: ", 0),
              0u);
    EXPECT_EQ(message([&] { config.get_int("PGSTREAM_X_COUNT", 1); }).rfind("invalid PGSTREAM_X_COUNT: ", 0),
              0u);
    EXPECT_EQ(
        message([&] { config.get_bool("PGSTREAM_X_FLAG", true); }).rfind("invalid PGSTREAM_X_FLAG: ", 0), 0u);
    EXPECT_EQ(message([&] { config.get_url("PGSTREAM_X_URL"); }).rfind("invalid PGSTREAM_X_URL: ", 0), 0u);
    EXPECT_EQ(config.get_url("PGSTREAM_X_GOOD_URL"), "postgres://u@localhost:5432/db");
    EXPECT_EQ(config.get_list("PGSTREAM_X_LIST"), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(message([&] {
                  config.get_list("PGSTREAM_X_EMPTY_ITEM");
              }).rfind("invalid PGSTREAM_X_EMPTY_ITEM: ", 0),
              0u);
    EXPECT_EQ(config.get_int("PGSTREAM_MISSING", 7), 7);
    EXPECT_EQ(message([&] {
                  Config(std::map<std::string, std::string>{{"K", "0"}}).get_int("K", 5, 1);
              }),
              "invalid K: must be at least 1, got 0");
}

TEST(ConfigAccessors, UnknownKeysAreReportedButTestVariablesAreNot) {
    Config config({{"PGSTREAM_POSTGRES_LISTENER_URL", "x"},
                   {"PGSTREAM_STDOUT_WRITER_ENABLD", "true"},
                   {"PGSTREAM_TEST_PGURL", "y"}});
    EXPECT_EQ(config.unknown_keys(), std::vector<std::string>{"PGSTREAM_STDOUT_WRITER_ENABLD"});
    register_config_keys({"PGSTREAM_STDOUT_WRITER_ENABLD"});
    EXPECT_TRUE(config.unknown_keys().empty());
}

// Every malformed or overflowing value of every typed accessor: a ConfigError (never another exception, never
// an abort) whose one line names the key, says what is wrong and shows the accepted form.
TEST(ConfigAccessors, EveryBadValueIsOneLineNamingTheKeyAndTheAcceptedForm) {
    const std::string huge = "1" + std::string(400, '0');
    const std::string enormous = "1" + std::string(6000, '0');  // past long double's range
    struct Case {
        const char* kind;
        std::string value;
        const char* says;  // what the line must contain besides the key and "expected"
    };
    const std::vector<Case> cases = {
        {"size", "", "not a size"},
        {"size", ".", "not a size"},
        {"size", "2.5.9MiB", "not a size"},
        {"size", "1.", "not a size"},
        {"size", ".5MiB", "not a size"},
        {"size", "MiB", "not a size"},
        {"size", "1ZB", "not a size"},
        {"size", "12 parsecs", "not a size"},
        {"size", "0x10", "not a size"},
        {"size", "1e3", "not a size"},
        {"size", "+5", "not a size"},
        {"size", "-5MiB", "negative"},
        {"size", huge, "too large"},
        {"size", enormous, "too large"},
        {"size", "9223372036854775808", "too large"},
        {"size", "8589934592GiB", "too large"},
        {"duration", "", "not a duration"},
        {"duration", ".", "not a duration"},
        {"duration", "1.5.5s", "not a duration"},
        {"duration", "1.s", "not a duration"},
        {"duration", "soon", "not a duration"},
        {"duration", "10", "not a duration"},
        {"duration", "5 parsecs", "not a duration"},
        {"duration", "1x", "not a duration"},
        {"duration", "s", "not a duration"},
        {"duration", "1m30", "not a duration"},
        {"duration", "1s 2s", "not a duration"},
        {"duration", "-1s", "negative"},
        {"duration", "99999999999999999999h", "too large"},
        {"duration", huge + "ms", "too large"},
        {"duration", enormous + "s", "too large"},
        {"duration", "876001h", "too large"},
        {"int", "12abc", "not a whole number"},
        {"int", "1.5", "not a whole number"},
        {"int", "", "not a whole number"},
        {"int", "-", "not a whole number"},
        {"int", "0x10", "not a whole number"},
        {"int", "1e3", "not a whole number"},
        {"int", "1 000", "not a whole number"},
        {"int", "99999999999999999999", "out of range"},
        {"int", huge, "out of range"},
        {"int", "-99999999999999999999", "out of range"},
        {"bool", "maybe", "not a boolean"},
        {"bool", "2", "not a boolean"},
        {"bool", "yes please", "not a boolean"},
        {"list", "a,,b", "empty item"},
        {"list", ",a", "empty item"},
        {"list", "a,", "empty item"},
        {"list", " , ", "empty item"},
    };
    for (const auto& bad : cases) {
        SCOPED_TRACE(std::string(bad.kind) + " \"" + bad.value.substr(0, 60) + "\"");
        // A value of spaces only is a value here (get() treats only "" as unset).
        std::string value = bad.value.empty() ? " " : bad.value;
        Config config({{"PGSTREAM_X", value}});
        std::string line;
        try {
            std::string kind = bad.kind;
            if (kind == "size") config.get_size("PGSTREAM_X", 1);
            if (kind == "duration") config.get_duration("PGSTREAM_X", milliseconds(1));
            if (kind == "int") config.get_int("PGSTREAM_X", 1, INT64_MIN);
            if (kind == "bool") config.get_bool("PGSTREAM_X", true);
            if (kind == "list") config.get_list("PGSTREAM_X");
            ADD_FAILURE() << "accepted";
            continue;
        } catch (const ConfigError& e) {
            line = e.what();
        } catch (const std::exception& e) {
            ADD_FAILURE() << "not a ConfigError: " << e.what();
            continue;
        }
        EXPECT_EQ(line.rfind("invalid PGSTREAM_X: ", 0), 0u) << line;
        EXPECT_NE(line.find(bad.says), std::string::npos) << line;
        EXPECT_NE(line.find("expected"), std::string::npos) << "the accepted form is missing: " << line;
        EXPECT_EQ(line.find('\n'), std::string::npos) << line;
        EXPECT_LT(line.size(), 400u) << "a long value must be cut, not echoed whole";
    }
}

TEST(ConfigParsers, LimitsAndPrecision) {
    EXPECT_EQ(parse_size("9223372036854775807"), 9223372036854775807ull);
    EXPECT_EQ(parse_size("8589934591GiB"), 8589934591ull << 30);
    EXPECT_EQ(parse_size("0.5KiB"), 512u);
    EXPECT_EQ(parse_duration("876000h"), milliseconds(876000LL * 3600 * 1000));
    EXPECT_EQ(parse_duration("1h30m15s500ms"), milliseconds(5415500));
    EXPECT_EQ(parse_duration("1500us"), milliseconds(2));
    EXPECT_EQ(parse_duration("0s"), milliseconds(0));
    Config config({{"PGSTREAM_X", "-9223372036854775808"}, {"PGSTREAM_Y", "+7"}});
    EXPECT_EQ(config.get_int("PGSTREAM_X", 0, INT64_MIN), INT64_MIN);
    EXPECT_EQ(config.get_int("PGSTREAM_Y", 0), 7);
}

std::string config_error(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "no error";
}

TEST(ConfigEnvFile, RejectsKeysSetTwiceUnclosedQuotesAndBadKeys) {
    EXPECT_EQ(config_error(
                  [] { Config::parse_env_file("PGSTREAM_A=1\n# x\nPGSTREAM_B=2\nPGSTREAM_A=3\n", "d.env"); }),
              "d.env:4: PGSTREAM_A is set twice (also on line 1): keep one");
    std::string unclosed =
        config_error([] { Config::parse_env_file("PGSTREAM_URL=\"postgres://u:hunter2@h/db\n", "q.env"); });
    EXPECT_EQ(unclosed.rfind("q.env:1: the value of PGSTREAM_URL has no closing \"", 0), 0u) << unclosed;
    EXPECT_EQ(unclosed.find("hunter2"), std::string::npos) << unclosed;
    EXPECT_NE(
        config_error([] { Config::parse_env_file("PGSTREAM_A='x' trailing\n", "t.env"); }).find("closing '"),
        std::string::npos);
    // A key with a space or a ':' is most likely a value pasted on its own: refused without echoing it.
    std::string bad_key =
        config_error([] { Config::parse_env_file("postgres://u:hunter2@h/db?x=1\n", "k.env"); });
    EXPECT_EQ(bad_key, "k.env:1: expected KEY=VALUE (KEY of letters, digits and _)");
    auto values = Config::parse_env_file("PGSTREAM_A=\"quoted\" # comment\nPGSTREAM_B='a \"b\"'\n", "ok.env");
    EXPECT_EQ(values["PGSTREAM_A"], "quoted");
    EXPECT_EQ(values["PGSTREAM_B"], "a \"b\"");
}

TEST(ConfigYaml, RejectsAKeySetTwiceInAnySpelling) {
    EXPECT_EQ(
        config_error([] { Config::parse_yaml("stdout:\n  writer:\n    file: a\n    file: b\n", "d.yaml"); }),
        "d.yaml:4: PGSTREAM_STDOUT_WRITER_FILE is set twice (also on line 3): keep one");
    EXPECT_EQ(config_error([] {
                  Config::parse_yaml(
                      "PGSTREAM_POSTGRES_LISTENER_URL: postgres://a\n"
                      "source:\n  postgres:\n    url: postgres://b\n",
                      "s.yaml");
              }),
              "s.yaml:4: PGSTREAM_POSTGRES_LISTENER_URL is set twice (also on line 1): keep one");
    // An empty target section enables its output; an explicit enabled: key is not a second setting of it.
    auto values = Config::parse_yaml("target:\n  stdout:\n    enabled: false\n", "t.yaml");
    EXPECT_EQ(values["PGSTREAM_STDOUT_WRITER_ENABLED"], "false");
}

TEST(ConfigLoad, ADirectoryIsRefusedNamingIt) {
    char* environment[] = {nullptr};
    std::string dir = testing::TempDir();
    std::string line = config_error([&] { Config::load(dir, environment); });
    EXPECT_NE(line.find(dir), std::string::npos) << line;
    EXPECT_NE(line.find("is a directory"), std::string::npos) << line;
}

TEST(ConfigConflicts, TwoListenersOrTwoBackoffPoliciesAreRefusedNamingBothSettings) {
    Config two_listeners({{"PGSTREAM_POSTGRES_LISTENER_URL", "postgres://h/db"},
                          {"PGSTREAM_KAFKA_SERVERS", "k:9092"},
                          {"PGSTREAM_KAFKA_TOPIC_NAME", "t"},
                          {"PGSTREAM_KAFKA_READER_CONSUMER_GROUP_ID", "g"}});
    std::string line = config_error([&] { two_listeners.check_conflicts(); });
    EXPECT_EQ(line.rfind("conflicting settings: ", 0), 0u) << line;
    EXPECT_NE(line.find("PGSTREAM_POSTGRES_LISTENER_URL"), std::string::npos) << line;
    EXPECT_NE(line.find("PGSTREAM_KAFKA_READER_CONSUMER_GROUP_ID"), std::string::npos) << line;

    for (const std::string component :
         {"PGSTREAM_KAFKA_COMMIT", "PGSTREAM_SEARCH_STORE", "PGSTREAM_SEARCH_INDEXER_CLEANUP"}) {
        for (const std::string exponential : {"_EXP_BACKOFF_INITIAL_INTERVAL", "_EXP_BACKOFF_MAX_RETRIES"}) {
            for (const std::string constant : {"_BACKOFF_INTERVAL", "_BACKOFF_MAX_RETRIES"}) {
                Config both({{component + exponential, "1"}, {component + constant, "1"}});
                std::string conflict = config_error([&] { both.check_conflicts(); });
                EXPECT_NE(conflict.find(component + exponential), std::string::npos) << conflict;
                EXPECT_NE(conflict.find(component + constant), std::string::npos) << conflict;
            }
        }
        Config exponential_only({{component + "_EXP_BACKOFF_INITIAL_INTERVAL", "1s"},
                                 {component + "_EXP_BACKOFF_MAX_INTERVAL", "1min"}});
        EXPECT_NO_THROW(exponential_only.check_conflicts());
        Config constant_only(
            {{component + "_BACKOFF_INTERVAL", "1s"}, {component + "_BACKOFF_MAX_RETRIES", "3"}});
        EXPECT_NO_THROW(constant_only.check_conflicts());
    }
    // Policies of different components do not conflict.
    Config different({{"PGSTREAM_KAFKA_COMMIT_EXP_BACKOFF_INITIAL_INTERVAL", "1s"},
                      {"PGSTREAM_SEARCH_STORE_BACKOFF_INTERVAL", "1s"}});
    EXPECT_NO_THROW(different.check_conflicts());
}

// The three shapes a password takes, well-formed and malformed: url() prints them masked, secrets_of() finds
// them, scrub() masks them in any text that quotes them.
TEST(Redact, PasswordsInEveryShapeAreMasked) {
    const std::vector<std::pair<std::string, std::string>> urls = {
        {"postgres://user:hunter2@host:5432/db", "hunter2"},
        {"postgresql://user:hun%zzter2@host/db", "hun%zzter2"},
        {"postgres://user:hun@ter2@host/db", "hun@ter2"},
        {" postgres://user:hunter2@host/db", "hunter2"},
        {"\"postgres://user:hunter2@host/db", "hunter2"},
        {"postgres://user@host/db?sslmode=disable&password=hunter2&x=1", "hunter2"},
        {"host=h password=hunter2 dbname=db", "hunter2"},
        {"host=h password = 'hunter 2' dbname=db", "hunter 2"},
        {"host=h PASSWORD=hunter2", "hunter2"},
        {"host=h sslpassword=hunter2", "hunter2"},
    };
    for (const auto& [url, password] : urls) {
        SCOPED_TRACE(url);
        std::string shown = redact::url(url);
        EXPECT_EQ(shown.find(password), std::string::npos) << shown;
        EXPECT_NE(shown.find(redact::kMask), std::string::npos) << shown;
        auto secrets = redact::secrets_of(url);
        EXPECT_NE(std::find(secrets.begin(), secrets.end(), password), secrets.end());
        std::string message = "libpq says: \"" + password + "\" is bad in \"" + url + "\"";
        EXPECT_EQ(redact::scrub(message, url).find(password), std::string::npos)
            << redact::scrub(message, url);
    }
    // The pieces a stray '@' splits a password into: libpq takes the tail for the host name.
    EXPECT_EQ(redact::scrub("could not translate host name \"swordfish@host\"",
                            "postgres://u:hunter2@swordfish@host/db")
                  .find("swordfish"),
              std::string::npos);
    // Without a URL to go by, password-shaped parts of free text are still masked.
    EXPECT_EQ(redact::scrub("argument postgres://u:hunter2@h/db was not expected"),
              "argument postgres://u:*****@h/db was not expected");
    EXPECT_EQ(redact::scrub("conninfo host=h password=hunter2 rejected"),
              "conninfo host=h password=***** rejected");
    // Text without secrets is left alone.
    EXPECT_EQ(redact::url("postgres://user@host:5432/db?sslmode=disable"),
              "postgres://user@host:5432/db?sslmode=disable");
    EXPECT_EQ(redact::scrub("password authentication failed for user \"u\""),
              "password authentication failed for user \"u\"");
    EXPECT_TRUE(redact::secrets_of("postgres://user@host/db").empty());
}

TEST(Redact, RememberedSecretsAreMaskedInLaterMessages) {
    redact::remember("postgres://u:b1ack-c0ffee@h/db");
    EXPECT_EQ(redact::scrub("host \"b1ack-c0ffee\" unknown"), "host \"*****\" unknown");
}

TEST(ConfigAccessors, MalformedUrlErrorsNeverQuoteThePassword) {
    const std::vector<std::string> urls = {
        "postgres://user:hunter2%zz@host/db",         // bad percent-encoding (libpq quotes the token)
        "postgres://user:hunter2@swordfish@host/db",  // unescaped '@'
        " postgres://user:hunter2@host/db",           // leading space (libpq then reads key=value pairs)
        "\"postgres://user:hunter2@host/db",          // an unclosed quote
        "postgres://user:hunter2/x@host/db",          // unescaped '/'
        "postgres://user@host/db?password=hunter2%zz",
        "host=h password=hunter2 junk",
    };
    for (const auto& url : urls) {
        SCOPED_TRACE(url);
        Config config({{"PGSTREAM_X_URL", url}});
        std::string line = config_error([&] { config.get_url("PGSTREAM_X_URL"); });
        EXPECT_EQ(line.rfind("invalid PGSTREAM_X_URL: ", 0), 0u) << line;
        EXPECT_NE(line.find("expected postgres://"), std::string::npos) << line;
        EXPECT_EQ(line.find("hunter2"), std::string::npos) << line;
        EXPECT_EQ(line.find("swordfish"), std::string::npos) << line;
    }
}

}  // namespace
}  // namespace pgstream
