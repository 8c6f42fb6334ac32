#include "date_format.h"

#include <cctype>
#include <map>

namespace search_mock {

namespace {

enum class Field { kYear, kMonth, kDay, kHour, kMinute, kSecond, kFraction, kOffset, kLiteral, kOptional };

// How an offset pattern letter reads the zone: "Z" for UTC allowed or not, minutes required, colon.
struct OffsetStyle {
    bool allow_z = true;
    bool minutes_required = true;
    bool colon = true;
    bool seconds_allowed = false;
};

struct Parsed {
    int64_t year = 1970;
    int month = 1, day = 1, hour = 0, minute = 0, second = 0;
    int64_t nanos = 0;
    int offset_seconds = 0;
};

int64_t daysFromCivil(int64_t y, int m, int d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

bool leap(int64_t y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int daysInMonth(int64_t y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : days[m - 1];
}

std::optional<int64_t> toMillis(const Parsed& p) {
    if (p.month < 1 || p.month > 12 || p.day < 1 || p.day > daysInMonth(p.year, p.month)) return std::nullopt;
    if (p.hour > 23 || p.minute > 59 || p.second > 59) return std::nullopt;
    int64_t seconds = daysFromCivil(p.year, p.month, p.day) * 86400 + p.hour * 3600 + p.minute * 60 +
                      p.second - p.offset_seconds;
    return seconds * 1000 + p.nanos / 1000000;
}

}  // namespace

struct DateFormat::Token {
    Field field = Field::kLiteral;
    int min_digits = 1, max_digits = 2;
    std::string literal;
    OffsetStyle offset;
    std::vector<Token> optional;  // kOptional: a [...] section
};

struct DateFormat::Alternative {
    enum class Kind { kEpochMillis, kEpochSecond, kOptionalTime, kPattern } kind = Kind::kPattern;
    bool strict = true;
    std::vector<Token> tokens;
};

namespace {

using Token = DateFormat::Token;

// Reads between min and max digits at pos; returns the digit count read or 0.
int readDigits(const std::string& text, size_t pos, int min_digits, int max_digits, int64_t& value) {
    int count = 0;
    value = 0;
    while (count < max_digits && pos + count < text.size() &&
           std::isdigit(static_cast<unsigned char>(text[pos + count]))) {
        value = value * 10 + (text[pos + count] - '0');
        ++count;
    }
    return count >= min_digits ? count : 0;
}

bool readOffset(const std::string& text, size_t& pos, const OffsetStyle& style, int& offset_seconds) {
    if (pos < text.size() && text[pos] == 'Z' && style.allow_z) {
        ++pos;
        offset_seconds = 0;
        return true;
    }
    if (pos >= text.size() || (text[pos] != '+' && text[pos] != '-')) return false;
    int sign = text[pos] == '-' ? -1 : 1;
    size_t at = pos + 1;
    int64_t hours = 0, minutes = 0, seconds = 0;
    if (readDigits(text, at, 2, 2, hours) == 0 || hours > 18) return false;
    at += 2;
    bool has_minutes = false;
    if (style.colon) {
        if (at < text.size() && text[at] == ':' && readDigits(text, at + 1, 2, 2, minutes) != 0) {
            at += 3;
            has_minutes = true;
        }
    } else if (readDigits(text, at, 2, 2, minutes) != 0) {
        at += 2;
        has_minutes = true;
    }
    if (style.minutes_required && !has_minutes) return false;
    if (has_minutes && minutes > 59) return false;
    if (has_minutes && style.seconds_allowed && at < text.size() && text[at] == ':' &&
        readDigits(text, at + 1, 2, 2, seconds) != 0) {
        at += 3;
    }
    offset_seconds = sign * static_cast<int>(hours * 3600 + minutes * 60 + seconds);
    pos = at;
    return true;
}

// Matches tokens from pos; returns false with fail_at set to how far the text was understood.
bool matchTokens(const std::vector<Token>& tokens, const std::string& text, size_t& pos, Parsed& out,
                 size_t& fail_at) {
    for (const Token& token : tokens) {
        fail_at = pos;
        int64_t value = 0;
        switch (token.field) {
            case Field::kLiteral:
                if (text.compare(pos, token.literal.size(), token.literal) != 0) return false;
                pos += token.literal.size();
                break;
            case Field::kOptional: {
                size_t attempt = pos;
                Parsed saved = out;
                size_t ignored = 0;
                if (matchTokens(token.optional, text, attempt, out, ignored))
                    pos = attempt;
                else
                    out = saved;
                break;
            }
            case Field::kOffset:
                if (!readOffset(text, pos, token.offset, out.offset_seconds)) return false;
                break;
            case Field::kFraction: {
                int read = readDigits(text, pos, token.min_digits, token.max_digits, value);
                if (read == 0) return false;
                for (int i = read; i < 9; ++i) value *= 10;
                out.nanos = value;
                pos += read;
                break;
            }
            default: {
                int read = readDigits(text, pos, token.min_digits, token.max_digits, value);
                if (read == 0) return false;
                pos += read;
                if (token.field == Field::kYear) out.year = value;
                if (token.field == Field::kMonth) out.month = static_cast<int>(value);
                if (token.field == Field::kDay) out.day = static_cast<int>(value);
                if (token.field == Field::kHour) out.hour = static_cast<int>(value);
                if (token.field == Field::kMinute) out.minute = static_cast<int>(value);
                if (token.field == Field::kSecond) out.second = static_cast<int>(value);
            }
        }
    }
    fail_at = pos;
    return true;
}

Token digits(Field field, int min_digits, int max_digits) {
    Token token;
    token.field = field;
    token.min_digits = min_digits;
    token.max_digits = max_digits;
    return token;
}

Token literal(std::string text) {
    Token token;
    token.field = Field::kLiteral;
    token.literal = std::move(text);
    return token;
}

// java.time pattern letters the mock understands; anything else is refused when the mapping is created.
bool compilePattern(const std::string& pattern, size_t& pos, bool in_optional, std::vector<Token>& tokens,
                    std::string& error) {
    while (pos < pattern.size()) {
        char c = pattern[pos];
        if (c == ']') {
            if (!in_optional) {
                error = "Pattern invalid as it contains ] without previous [";
                return false;
            }
            ++pos;
            return true;
        }
        if (c == '[') {
            Token section;
            section.field = Field::kOptional;
            ++pos;
            if (!compilePattern(pattern, pos, true, section.optional, error)) return false;
            tokens.push_back(std::move(section));
            continue;
        }
        if (c == '\'') {
            size_t end = pattern.find('\'', pos + 1);
            if (end == std::string::npos) {
                error = "Pattern ends with an incomplete string literal: " + pattern;
                return false;
            }
            tokens.push_back(literal(end == pos + 1 ? "'" : pattern.substr(pos + 1, end - pos - 1)));
            pos = end + 1;
            continue;
        }
        if (!std::isalpha(static_cast<unsigned char>(c))) {
            tokens.push_back(literal(std::string(1, c)));
            ++pos;
            continue;
        }
        size_t run = 1;
        while (pos + run < pattern.size() && pattern[pos + run] == c) ++run;
        int count = static_cast<int>(run);
        pos += run;
        switch (c) {
            case 'y':
            case 'u':
                tokens.push_back(count == 2 ? digits(Field::kYear, 2, 2) : digits(Field::kYear, 4, 9));
                break;
            case 'M':
                if (count > 2) {
                    error = "Unsupported month text pattern: " + std::string(run, c);
                    return false;
                }
                tokens.push_back(digits(Field::kMonth, count, 2));
                break;
            case 'd':
                tokens.push_back(digits(Field::kDay, count, 2));
                break;
            case 'H':
                tokens.push_back(digits(Field::kHour, count, 2));
                break;
            case 'm':
                tokens.push_back(digits(Field::kMinute, count, 2));
                break;
            case 's':
                tokens.push_back(digits(Field::kSecond, count, 2));
                break;
            case 'S':
                if (count > 9) {
                    error = "Too many pattern letters: S";
                    return false;
                }
                tokens.push_back(digits(Field::kFraction, count, count));
                break;
            case 'Z':
            case 'X':
            case 'x': {
                Token token;
                token.field = Field::kOffset;
                if (c == 'Z' && count <= 3) {
                    token.offset = OffsetStyle{false, true, false, false};
                } else if (c == 'Z' && count == 5) {
                    token.offset = OffsetStyle{true, true, true, true};
                } else if (c != 'Z' && count <= 3) {
                    token.offset = OffsetStyle{c == 'X', count >= 2, count == 3, false};
                } else {
                    error = "Unsupported offset pattern: " + std::string(run, c);
                    return false;
                }
                tokens.push_back(token);
                break;
            }
            default:
                error = "Unknown pattern letter: " + std::string(1, c);
                return false;
        }
    }
    if (in_optional) {
        error = "Pattern invalid as it contains [ without matching ]";
        return false;
    }
    return true;
}

// strict_date_optional_time: yyyy[-MM[-dd]] then optionally 'T'HH[:mm[:ss[.S{1,9}]]] and an offset.
std::vector<Token> optionalTimeTokens(bool strict) {
    int two = strict ? 2 : 1;
    auto optional = [](std::vector<Token> inner) {
        Token token;
        token.field = Field::kOptional;
        token.optional = std::move(inner);
        return token;
    };
    Token offset;
    offset.field = Field::kOffset;
    offset.offset = OffsetStyle{true, false, true, false};
    // +HHmm is tried before +HH[:mm] so that "+0530" is not read as "+05" followed by junk.
    Token offset_no_colon;
    offset_no_colon.field = Field::kOffset;
    offset_no_colon.offset = OffsetStyle{true, true, false, false};
    std::vector<Token> fraction = {literal("."), digits(Field::kFraction, 1, 9)};
    std::vector<Token> seconds = {literal(":"), digits(Field::kSecond, two, 2), optional(fraction)};
    std::vector<Token> minutes = {literal(":"), digits(Field::kMinute, two, 2), optional(seconds)};
    std::vector<Token> time = {literal("T"), digits(Field::kHour, two, 2), optional(minutes),
                               optional({offset_no_colon}), optional({offset})};
    std::vector<Token> day = {literal("-"), digits(Field::kDay, two, 2)};
    std::vector<Token> month = {literal("-"), digits(Field::kMonth, two, 2), optional(day)};
    return {digits(Field::kYear, 4, strict ? 4 : 9), optional(month), optional(time)};
}

const std::map<std::string, std::string>& namedPatterns() {
    static const std::map<std::string, std::string> patterns = {
        {"strict_date", "yyyy-MM-dd"},
        {"date", "yyyy-MM-dd"},
        {"strict_year_month_day", "yyyy-MM-dd"},
        {"year_month_day", "yyyy-MM-dd"},
        {"strict_year_month", "yyyy-MM"},
        {"year_month", "yyyy-MM"},
        {"strict_year", "yyyy"},
        {"year", "yyyy"},
        {"basic_date", "yyyyMMdd"},
        {"strict_date_time", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"},
        {"date_time", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"},
        {"strict_date_time_no_millis", "yyyy-MM-dd'T'HH:mm:ssXXX"},
        {"date_time_no_millis", "yyyy-MM-dd'T'HH:mm:ssXXX"},
        {"strict_date_hour_minute_second", "yyyy-MM-dd'T'HH:mm:ss"},
        {"date_hour_minute_second", "yyyy-MM-dd'T'HH:mm:ss"},
        {"strict_date_hour_minute_second_millis", "yyyy-MM-dd'T'HH:mm:ss.SSS"},
        {"date_hour_minute_second_millis", "yyyy-MM-dd'T'HH:mm:ss.SSS"},
    };
    return patterns;
}

bool parseEpoch(const std::string& text, int64_t scale, int64_t& millis) {
    size_t pos = 0;
    bool negative = false;
    if (pos < text.size() && text[pos] == '-') {
        negative = true;
        ++pos;
    }
    size_t start = pos;
    int64_t whole = 0;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
        if (whole > (INT64_MAX - 9) / 10) return false;
        whole = whole * 10 + (text[pos++] - '0');
    }
    if (pos == start) return false;
    int64_t fraction_millis = 0;
    if (pos < text.size() && text[pos] == '.') {
        ++pos;
        size_t fraction_start = pos;
        int64_t fraction = 0, divisor = 1;
        while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
            if (divisor < 1000000000) {
                fraction = fraction * 10 + (text[pos] - '0');
                divisor *= 10;
            }
            ++pos;
        }
        if (pos == fraction_start) return false;
        fraction_millis = fraction * scale / divisor;
    }
    if (pos != text.size()) return false;
    if (whole > INT64_MAX / scale) return false;
    millis = whole * scale + fraction_millis;
    if (negative) millis = -millis;
    return true;
}

std::vector<std::string> splitAlternatives(const std::string& spec) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (true) {
        size_t bar = spec.find("||", start);
        parts.push_back(spec.substr(start, bar == std::string::npos ? std::string::npos : bar - start));
        if (bar == std::string::npos) break;
        start = bar + 2;
    }
    return parts;
}

}  // namespace

std::optional<DateFormat> DateFormat::compile(const std::string& spec, std::string& error) {
    DateFormat format;
    format.spec_ = spec;
    for (const std::string& part : splitAlternatives(spec)) {
        auto alternative = std::make_shared<Alternative>();
        if (part.empty()) {
            error = "Invalid format: [" + spec + "]: empty pattern";
            return std::nullopt;
        }
        if (part == "epoch_millis") {
            alternative->kind = Alternative::Kind::kEpochMillis;
        } else if (part == "epoch_second") {
            alternative->kind = Alternative::Kind::kEpochSecond;
        } else if (part == "strict_date_optional_time" || part == "strict_date_optional_time_nanos" ||
                   part == "date_optional_time") {
            alternative->kind = Alternative::Kind::kOptionalTime;
            alternative->strict = part != "date_optional_time";
            alternative->tokens = optionalTimeTokens(alternative->strict);
        } else {
            const auto& named = namedPatterns();
            auto found = named.find(part);
            std::string pattern = found != named.end() ? found->second : part;
            size_t pos = 0;
            std::string why;
            if (!compilePattern(pattern, pos, false, alternative->tokens, why)) {
                error = "Invalid format: [" + part + "]: " + why;
                return std::nullopt;
            }
        }
        format.alternatives_.push_back(alternative);
    }
    return format;
}

std::optional<int64_t> DateFormat::parse(const std::string& text) const {
    for (const auto& alternative : alternatives_) {
        int64_t millis = 0;
        if (alternative->kind == Alternative::Kind::kEpochMillis) {
            if (parseEpoch(text, 1, millis)) return millis;
            continue;
        }
        if (alternative->kind == Alternative::Kind::kEpochSecond) {
            if (parseEpoch(text, 1000, millis)) return millis;
            continue;
        }
        Parsed parsed;
        size_t pos = 0, fail_at = 0;
        if (matchTokens(alternative->tokens, text, pos, parsed, fail_at) && pos == text.size()) {
            if (auto result = toMillis(parsed)) return result;
        }
    }
    return std::nullopt;
}

std::string DateFormat::failureCause(const std::string& text) const {
    if (alternatives_.size() != 1) return "Failed to parse with all enclosed parsers";
    const auto& alternative = *alternatives_.front();
    size_t fail_at = 0;
    if (alternative.kind == Alternative::Kind::kPattern ||
        alternative.kind == Alternative::Kind::kOptionalTime) {
        Parsed parsed;
        size_t pos = 0;
        if (matchTokens(alternative.tokens, text, pos, parsed, fail_at)) {
            if (pos != text.size())
                return "Text '" + text + "' could not be parsed, unparsed text found at index " +
                       std::to_string(pos);
            return "Text '" + text + "' could not be parsed: Invalid date";
        }
    }
    return "Text '" + text + "' could not be parsed at index " + std::to_string(fail_at);
}

}  // namespace search_mock
