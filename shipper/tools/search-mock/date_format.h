// Date formats of `date` fields: alternatives joined by "||", each a built-in name
// (strict_date_optional_time, epoch_millis, ...) or a java.time pattern ("yyyy-MM-dd HH:mm:ss.SSSSSSZZZZZ"),
// parsed strictly as the search engine does: fixed digit counts, no lenient offsets, real calendar dates.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace search_mock {

class DateFormat {
  public:
    static constexpr const char* kDefault = "strict_date_optional_time||epoch_millis";

    // Compiles spec; on an unsupported or malformed pattern returns nullopt and sets error.
    static std::optional<DateFormat> compile(const std::string& spec, std::string& error);

    // Milliseconds since the epoch (UTC unless the text carries an offset), or nullopt.
    std::optional<int64_t> parse(const std::string& text) const;

    // The innermost cause reported when parse() failed: "Failed to parse with all enclosed parsers" for
    // several alternatives, "Text '...' could not be parsed at index N" for one.
    std::string failureCause(const std::string& text) const;

    const std::string& spec() const { return spec_; }

    struct Token;
    struct Alternative;

  private:
    std::string spec_;
    std::vector<std::shared_ptr<Alternative>> alternatives_;
};

}  // namespace search_mock
