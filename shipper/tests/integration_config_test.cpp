// `pgstream run` configuration handling, through the real binary: every bad configuration must end with exit
// code 2 and exactly one stderr line "pgstream: ..." that names the problem, before anything is started; a
// good configuration from the environment, a .env file or YAML must stream.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>

#include "support/stream_fixture.h"

namespace pgstream_it {
namespace {

// Nothing listens on port 1: a configuration error must be reported before any connection is attempted, so a
// shipper that gets this far fails the test with a connection error instead of the expected message.
constexpr const char* kUnusedUrl = "postgres://postgres@127.0.0.1:1/postgres";

std::string lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    return text;
}

std::string env_text(const Settings& settings) {
    std::string text = "# written by integration_config_test\n";
    for (const auto& [key, value] : settings) text += key + "=" + value + "\n";
    return text;
}

// Runs `pgstream run -c <file> [extra args]` and checks the one-line exit-2 contract; `needles` must all
// appear (case-insensitively) in that line.
void expect_config_error(const std::string& config_text, const std::vector<std::string>& needles,
                         const std::vector<std::string>& extra_args = {},
                         const std::string& file_name = "bad.env") {
    TempDir dir;
    std::string path = dir.file(file_name);
    write_file(path, config_text);
    std::vector<std::string> args{"run", "-c", path};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    auto result = run_pgstream(args, {}, std::chrono::seconds(20));
    SCOPED_TRACE("config:\n" + config_text + "\n" + result.describe());
    EXPECT_FALSE(result.timed_out) << "pgstream kept running on a bad configuration";
    EXPECT_EQ(result.exit_code, 2);
    auto lines = result.err_lines();
    ASSERT_EQ(lines.size(), 1u) << "expected exactly one stderr line";
    EXPECT_EQ(lines[0].rfind("pgstream: ", 0), 0u) << "the line must start with 'pgstream: '";
    for (const auto& needle : needles) {
        EXPECT_NE(lower(lines[0]).find(lower(needle)), std::string::npos)
            << "the error should name '" << needle << "'";
    }
    EXPECT_TRUE(result.out.empty()) << "nothing may reach stdout (it is the data stream)";
}

TEST(IntegrationConfig, NoProcessorIsRejected) {
    expect_config_error(env_text({{"PGSTREAM_POSTGRES_LISTENER_URL", kUnusedUrl}}), {"processor"});
}

TEST(IntegrationConfig, NoListenerIsRejected) {
    expect_config_error(env_text({{"PGSTREAM_STDOUT_WRITER_ENABLED", "true"}}), {"listener"});
}

TEST(IntegrationConfig, UnknownProcessorIsRejected) {
    // The only way to name a processor is YAML's target section; an unknown one must not be silently ignored.
    expect_config_error("source:\n  postgres:\n    url: \"" + std::string(kUnusedUrl) +
                            "\"\ntarget:\n  carrier_pigeon:\n    coop: roof\n",
                        {"carrier_pigeon"}, {}, "bad.yaml");
}

TEST(IntegrationConfig, MalformedListenerUrlIsRejected) {
    expect_config_error(env_text({{"PGSTREAM_POSTGRES_LISTENER_URL", "postgres://[::1/postgres"},
                                  {"PGSTREAM_STDOUT_WRITER_ENABLED", "true"}}),
                        {"PGSTREAM_POSTGRES_LISTENER_URL"});
}

TEST(IntegrationConfig, NegativeSizeIsRejected) {
    expect_config_error(env_text({{"PGSTREAM_POSTGRES_LISTENER_URL", kUnusedUrl},
                                  {"PGSTREAM_STDOUT_WRITER_ENABLED", "true"},
                                  {"PGSTREAM_STDOUT_WRITER_MAX_QUEUE_BYTES", "-5MiB"}}),
                        {"PGSTREAM_STDOUT_WRITER_MAX_QUEUE_BYTES"});
}

TEST(IntegrationConfig, BadSizeUnitIsRejected) {
    expect_config_error(env_text({{"PGSTREAM_POSTGRES_LISTENER_URL", kUnusedUrl},
                                  {"PGSTREAM_STDOUT_WRITER_ENABLED", "true"},
                                  {"PGSTREAM_STDOUT_WRITER_MAX_QUEUE_BYTES", "12 parsecs"}}),
                        {"PGSTREAM_STDOUT_WRITER_MAX_QUEUE_BYTES"});
}

TEST(IntegrationConfig, BadDurationIsRejected) {
    expect_config_error(env_text({{"PGSTREAM_POSTGRES_LISTENER_URL", kUnusedUrl},
                                  {"PGSTREAM_KAFKA_SERVERS", "127.0.0.1:1"},
                                  {"PGSTREAM_KAFKA_TOPIC_NAME", "events"},
                                  {"PGSTREAM_KAFKA_WRITER_BATCH_TIMEOUT", "soon"}}),
                        {"PGSTREAM_KAFKA_WRITER_BATCH_TIMEOUT"});
}

TEST(IntegrationConfig, UnreadableConfigFileIsRejected) {
    TempDir dir;
    std::string missing = dir.file("does-not-exist.env");
    auto result = run_pgstream({"run", "-c", missing}, {}, std::chrono::seconds(20));
    SCOPED_TRACE(result.describe());
    EXPECT_EQ(result.exit_code, 2);
    auto lines = result.err_lines();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].rfind("pgstream: ", 0), 0u);
    EXPECT_NE(lines[0].find(missing), std::string::npos) << "the error should name the file";
}

TEST(IntegrationConfig, BadLogLevelIsRejected) {
    TempDir dir;
    std::string path = dir.file("good.env");
    write_file(path, env_text({{"PGSTREAM_POSTGRES_LISTENER_URL", kUnusedUrl},
                               {"PGSTREAM_STDOUT_WRITER_ENABLED", "true"}}));
    auto result = run_pgstream({"run", "-c", path, "--log-level", "loudest"}, {}, std::chrono::seconds(20));
    SCOPED_TRACE(result.describe());
    EXPECT_EQ(result.exit_code, 2);
    auto lines = result.err_lines();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].rfind("pgstream: ", 0), 0u);
    EXPECT_NE(lower(lines[0]).find("log-level"), std::string::npos) << "the error should name --log-level";
}

TEST(IntegrationConfig, BadCommandLinesNameWhatWasNotUnderstood) {
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"--bogus"}, "--bogus"},
        {{"bogus"}, "bogus"},
        {{"run", "--bogus"}, "--bogus"},
        {{"init", "--pgurl", kUnusedUrl, "--plugin", "pgoutput"}, "--plugin"},
        {{}, "command is required"},
    };
    for (const auto& [args, needle] : cases) {
        auto result = run_pgstream(args, {}, std::chrono::seconds(20));
        SCOPED_TRACE(result.describe());
        EXPECT_EQ(result.exit_code, 2);
        auto lines = result.err_lines();
        ASSERT_EQ(lines.size(), 1u);
        EXPECT_EQ(lines[0].rfind("pgstream: ", 0), 0u);
        EXPECT_NE(lines[0].find(needle), std::string::npos) << "the error should name " << needle;
    }
}

// Values that used to abort the shipper (std::out_of_range from a 401-digit number), pass half-read
// ("2.5.9MiB" as 2.5MiB) or be misreported ("must be positive" for a duration that wrapped around).
TEST(IntegrationConfig, MalformedAndOverflowingValuesAreRejected) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"PGSTREAM_STDOUT_WRITER_MAX_QUEUE_BYTES", "1" + std::string(400, '0')},
        {"PGSTREAM_STDOUT_WRITER_BATCH_BYTES", "2.5.9MiB"},
        {"PGSTREAM_STDOUT_WRITER_BATCH_TIMEOUT", "1.5.5s"},
        {"PGSTREAM_CHECKPOINT_INTERVAL", "99999999999999999999h"},
        {"PGSTREAM_STDOUT_WRITER_BATCH_SIZE", "99999999999999999999"},
        {"PGSTREAM_STDOUT_WRITER_ENABLED", "yes please"},
        {"PGSTREAM_FILTER_INCLUDE_TABLES", "public.a,,public.b"},
    };
    for (const auto& [key, value] : cases) {
        Settings settings{{"PGSTREAM_POSTGRES_LISTENER_URL", kUnusedUrl},
                          {"PGSTREAM_STDOUT_WRITER_ENABLED", "true"}};
        settings[key] = value;
        expect_config_error(env_text(settings), {key, "expected"});
    }
}

TEST(IntegrationConfig, ConflictingSettingsAreRejectedNamingBoth) {
    // The Kafka consumer group used to be ignored next to a Postgres URL, and the Kafka settings then started
    // a writer into the very topic meant to be read.
    expect_config_error(env_text({{"PGSTREAM_POSTGRES_LISTENER_URL", kUnusedUrl},
                                  {"PGSTREAM_KAFKA_SERVERS", "127.0.0.1:1"},
                                  {"PGSTREAM_KAFKA_TOPIC_NAME", "events"},
                                  {"PGSTREAM_KAFKA_READER_CONSUMER_GROUP_ID", "relay"},
                                  {"PGSTREAM_STDOUT_WRITER_ENABLED", "true"}}),
                        {"PGSTREAM_POSTGRES_LISTENER_URL", "PGSTREAM_KAFKA_READER_CONSUMER_GROUP_ID"});
    // Both retry policies of one component, also when that component is not in use.
    expect_config_error(
        env_text({{"PGSTREAM_POSTGRES_LISTENER_URL", kUnusedUrl},
                  {"PGSTREAM_STDOUT_WRITER_ENABLED", "true"},
                  {"PGSTREAM_KAFKA_COMMIT_EXP_BACKOFF_MAX_RETRIES", "5"},
                  {"PGSTREAM_KAFKA_COMMIT_BACKOFF_INTERVAL", "1s"}}),
        {"PGSTREAM_KAFKA_COMMIT_EXP_BACKOFF_MAX_RETRIES", "PGSTREAM_KAFKA_COMMIT_BACKOFF_INTERVAL"});
    // The same key twice: in a .env file, and in YAML (flat and nested spellings of one setting).
    expect_config_error(env_text({{"PGSTREAM_POSTGRES_LISTENER_URL", kUnusedUrl},
                                  {"PGSTREAM_STDOUT_WRITER_ENABLED", "true"}}) +
                            "PGSTREAM_STDOUT_WRITER_ENABLED=false\n",
                        {"PGSTREAM_STDOUT_WRITER_ENABLED", "twice"});
    expect_config_error("PGSTREAM_POSTGRES_LISTENER_URL: \"" + std::string(kUnusedUrl) +
                            "\"\nstdout:\n  writer:\n    enabled: true\n    enabled: false\n",
                        {"PGSTREAM_STDOUT_WRITER_ENABLED", "twice"}, {}, "bad.yaml");
}

TEST(IntegrationConfig, DirectoryAsConfigFileIsRejected) {
    TempDir dir;
    auto result = run_pgstream({"run", "-c", dir.path()}, {}, std::chrono::seconds(20));
    SCOPED_TRACE(result.describe());
    EXPECT_EQ(result.exit_code, 2);
    auto lines = result.err_lines();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].rfind("pgstream: ", 0), 0u);
    EXPECT_NE(lines[0].find(dir.path()), std::string::npos) << "the error should name the path";
    EXPECT_NE(lines[0].find("directory"), std::string::npos);
}

// A password the tests put into malformed URLs, and the tail that an unescaped '@' cuts off it (libpq takes
// that for the host name and quotes it).
constexpr const char* kPassword = "hunter2";
constexpr const char* kPasswordTail = "swordfish";

void expect_no_password(const CommandResult& result) {
    for (const char* secret : {kPassword, kPasswordTail}) {
        EXPECT_EQ(result.err.find(secret), std::string::npos) << "stderr shows the password";
        EXPECT_EQ(result.out.find(secret), std::string::npos) << "stdout shows the password";
    }
}

TEST(IntegrationConfig, MalformedUrlsInTheConfigurationNeverShowTheirPassword) {
    const std::string listener = "PGSTREAM_POSTGRES_LISTENER_URL=";
    const std::vector<std::string> url_lines = {
        listener + "postgres://u:hunter2%zz@127.0.0.1:1/db",           // bad percent-encoding
        listener + "postgres://u:hunter2@swordfish@127.0.0.1:1/db",    // unescaped '@'
        listener + "\" postgres://u:hunter2@127.0.0.1:1/db\"",         // leading space
        listener + "\"postgres://u:hunter2@127.0.0.1:1/db",            // unclosed quote
        listener + "postgres://u@127.0.0.1:1/db?password=hunter2%zz",  // password in the query
        listener + "host=127.0.0.1 port=1 password=hunter2 dbname",    // keyword/value
        listener + std::string(kUnusedUrl) +
            "\nPGSTREAM_TRANSLATOR_STORE_POSTGRES_URL=postgres://u:hunter2@swordfish@127.0.0.1:1/db",
    };
    for (const auto& url_line : url_lines) {
        TempDir dir;
        std::string path = dir.file("secret.env");
        write_file(path, url_line + "\nPGSTREAM_STDOUT_WRITER_ENABLED=true\n");
        auto result = run_pgstream({"run", "-c", path}, {}, std::chrono::seconds(20));
        SCOPED_TRACE(url_line + "\n" + result.describe());
        EXPECT_EQ(result.exit_code, 2);
        EXPECT_EQ(result.err_lines().size(), 1u);
        expect_no_password(result);
    }
}

TEST(IntegrationConfig, MalformedUrlsOnTheCommandLineNeverShowTheirPassword) {
    const std::vector<std::vector<std::string>> commands = {
        {"init", "--pgurl", " postgres://u:hunter2@127.0.0.1:1/db"},
        {"init", "--pgurl", "postgres://u:hunter2%zz@127.0.0.1:1/db"},
        {"init", "--pgurl", "postgres://u:hunter2@swordfish@127.0.0.1:1/db"},
        {"init", "--pgurl", "\"postgres://u:hunter2@127.0.0.1:1/db"},
        {"init", "--pgurl", "postgres://u@127.0.0.1:1/db?password=hunter2%zz"},
        {"status", "--pgurl", "postgres://u:hunter2@swordfish@127.0.0.1:1/db"},
        {"tear-down", "--pgurl", "postgres://u:hunter2%zz@127.0.0.1:1/db"},
        // A URL where no argument is expected is echoed by the argument parser.
        {"init", "--pgurl", kUnusedUrl, "postgres://u:hunter2@127.0.0.1:1/db"},
    };
    for (const auto& args : commands) {
        auto result = run_pgstream(args, {}, std::chrono::seconds(20));
        SCOPED_TRACE(args.back() + "\n" + result.describe());
        EXPECT_EQ(result.exit_code, 2);
        EXPECT_EQ(result.err_lines().size(), 1u);
        expect_no_password(result);
    }
}

// Starts a shipper, inserts a row, and returns the output lines of `output_path` once the row is there.
std::vector<std::string> stream_one_row(PgCluster& cluster, ShipperProcess& shipper,
                                        const std::string& output_path, int id) {
    shipper.start();
    PgConnection db(cluster.url());
    bool connected =
        wait_until([&] { return slot_state(db).active || !shipper.running(); }, std::chrono::seconds(30)) &&
        shipper.running();
    EXPECT_TRUE(connected) << shipper_diagnostics(shipper);
    if (!connected) return {};
    db.exec("INSERT INTO config_rows VALUES (" + std::to_string(id) + ")");
    std::vector<std::string> lines;
    bool arrived = wait_until(
        [&] {
            lines = read_complete_lines(output_path);
            for (const auto& line : lines) {
                auto event = parse_event(line);
                if (event && event->table == "config_rows" && event->value("id") == std::to_string(id))
                    return true;
            }
            return false;
        },
        std::chrono::seconds(30), std::chrono::milliseconds(100));
    EXPECT_TRUE(arrived) << "row " << id << " did not reach " << output_path << "\n"
                         << shipper_diagnostics(shipper);
    return lines;
}

TEST(IntegrationConfig, EnvironmentOverridesFile) {
    PgCluster cluster;
    init_stream(cluster);
    cluster.exec("CREATE TABLE config_rows (id int PRIMARY KEY)");
    TempDir work;
    std::string from_file = work.file("from-file.jsonl");
    std::string from_env = work.file("from-env.jsonl");
    Settings settings = shipper_settings(cluster);
    // The file's listener URL is unusable and its output path is the wrong one: only the environment makes it
    // work.
    settings["PGSTREAM_POSTGRES_LISTENER_URL"] = "postgres://[::1/broken";
    settings["PGSTREAM_STDOUT_WRITER_FILE"] = from_file;
    ShipperProcess shipper(work.path(), settings);
    shipper.env()["PGSTREAM_POSTGRES_LISTENER_URL"] = cluster.url();
    shipper.env()["PGSTREAM_STDOUT_WRITER_FILE"] = from_env;
    auto lines = stream_one_row(cluster, shipper, from_env, 7);
    EXPECT_FALSE(lines.empty());
    EXPECT_EQ(file_size(from_file), 0)
        << "the file's PGSTREAM_STDOUT_WRITER_FILE should have been overridden";
    EXPECT_EQ(shipper.stop(), 0) << shipper.stderr_tail();
}

TEST(IntegrationConfig, FlatYamlConfigurationStreams) {
    PgCluster cluster;
    init_stream(cluster);
    cluster.exec("CREATE TABLE config_rows (id int PRIMARY KEY)");
    TempDir work;
    std::string output = work.file("yaml.jsonl");
    Settings settings = shipper_settings(cluster);
    settings["PGSTREAM_STDOUT_WRITER_FILE"] = output;
    ShipperProcess shipper(work.path(), settings);
    shipper.set_config_format(ShipperProcess::ConfigFormat::kYaml);
    auto lines = stream_one_row(cluster, shipper, output, 11);
    EXPECT_FALSE(lines.empty());
    EXPECT_EQ(file_size(shipper.output_path()), 0) << "stdout should stay empty when the writer has a file";
    EXPECT_EQ(shipper.stop(), 0) << shipper.stderr_tail();
}

// The Go pgstream's sectioned YAML (source / target / modifiers), which existing users' files use.
TEST(IntegrationConfig, SectionedYamlConfigurationStreams) {
    PgCluster cluster;
    init_stream(cluster);
    cluster.exec("CREATE TABLE config_rows (id int PRIMARY KEY)");
    TempDir work;
    ShipperProcess shipper(work.path(), {});
    shipper.set_raw_config("pgstream.yaml",
                           "source:\n"
                           "  postgres:\n"
                           "    url: \"" +
                               cluster.url() +
                               "\"\n"
                               "    replication:\n"
                               "      replication_slot: " +
                               std::string(kSlot) +
                               "\n"
                               "target:\n"
                               "  stdout:\n"
                               "modifiers:\n"
                               "  translator:\n"
                               "    store_postgres_url: \"" +
                               cluster.url() + "\"\n");
    auto lines = stream_one_row(cluster, shipper, shipper.output_path(), 12);
    ASSERT_FALSE(lines.empty());
    // The translator section took effect: events carry pgstream metadata.
    bool has_metadata = false;
    for (const auto& line : lines) {
        auto event = parse_event(line);
        if (event && event->table == "config_rows") has_metadata = !event->table_pgstream_id.empty();
    }
    EXPECT_TRUE(has_metadata) << "modifiers.translator did not enable the translator";
    EXPECT_EQ(shipper.stop(), 0) << shipper.stderr_tail();
}

}  // namespace
}  // namespace pgstream_it
