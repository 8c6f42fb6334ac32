#include "json.h"

#include <rapidjson/error/en.h>

#include <emmintrin.h>

#include <cmath>
#include <cstring>
#include <set>

namespace search_mock {

namespace {

// scanLine's reader: one pass over the line, recursive over objects and arrays (nested up to kMaxDepth).
class LineScanner {
  public:
    LineScanner(char* text, std::vector<LineEvent>& events) : p_(text), events_(events) {}

    // The root object; p_ is left after it.
    bool root() {
        skipSpace();
        return *p_ == '{' && value();
    }
    const char* position() const { return p_; }

  private:
    static constexpr int kMaxDepth = 64;
    using Kind = LineEvent::Kind;

    static bool digit(char c) { return c >= '0' && c <= '9'; }
    // rapidjson's whitespace (the line's own end is a NUL, which stops it).
    void skipSpace() {
        if (static_cast<unsigned char>(*p_) > ' ') return;  // the usual case: no space between tokens
        while (*p_ == ' ' || *p_ == '\t' || *p_ == '\r' || *p_ == '\n') ++p_;
    }
    // Whether the eight bytes at `at` are all digits, and their value (fast_float's SWAR reading).
    static bool eightDigits(const char* at, uint64_t& value) {
        uint64_t word;
        std::memcpy(&word, at, 8);
        if (((word & 0xF0F0F0F0F0F0F0F0ull) |
             (((word + 0x0606060606060606ull) & 0xF0F0F0F0F0F0F0F0ull) >> 4)) != 0x3333333333333333ull)
            return false;
        word -= 0x3030303030303030ull;
        word = (word * 10) + (word >> 8);
        value = (((word & 0x000000FF000000FFull) * (100 + (1000000ull << 32))) +
                 (((word >> 16) & 0x000000FF000000FFull) * (1 + (10000ull << 32)))) >>
                32;
        return true;
    }
    LineEvent& push(Kind kind) {
        LineEvent& event = events_.emplace_back();
        event.kind = kind;
        event.length = 0;
        event.uint_value = 0;
        return event;
    }

    bool value() {
        switch (*p_) {
            case '{':
                return container('}', Kind::kStartObject, Kind::kEndObject);
            case '[':
                return container(']', Kind::kStartArray, Kind::kEndArray);
            case '"':
                return string(Kind::kString);
            case 't':
                return literal("true", 4, Kind::kBool, true);
            case 'f':
                return literal("false", 5, Kind::kBool, false);
            case 'n':
                return literal("null", 4, Kind::kNull, false);
            default:
                return number();
        }
    }

    bool literal(const char* word, size_t length, Kind kind, bool truth) {
        if (std::memcmp(p_, word, length) != 0) return false;  // the NUL and padding keep the read in bounds
        p_ += length;
        push(kind).bool_value = truth;
        return true;
    }

    // An object's members or an array's elements; p_ is at the opening bracket.
    bool container(char close, Kind start, Kind end) {
        if (++depth_ > kMaxDepth) return false;
        bool object = start == Kind::kStartObject;
        ++p_;
        push(start);
        skipSpace();
        uint32_t count = 0;
        if (*p_ != close) {
            for (;;) {
                if (object) {
                    if (*p_ != '"' || !string(Kind::kKey)) return false;
                    skipSpace();
                    if (*p_ != ':') return false;
                    ++p_;
                    skipSpace();
                }
                if (!value()) return false;
                ++count;
                skipSpace();
                if (*p_ == close) break;
                if (*p_ != ',') return false;
                ++p_;
                skipSpace();
            }
        }
        ++p_;
        push(end).length = count;
        --depth_;
        return true;
    }

    // A string without escapes or control characters, sixteen bytes at a step (unaligned loads); p_ is at
    // the opening quote. The closing quote becomes the string's NUL, as in rapidjson's in situ parse.
    bool string(Kind kind) {
        char* start = ++p_;
        const __m128i quote = _mm_set1_epi8('"');
        const __m128i backslash = _mm_set1_epi8('\\');
        const __m128i last_control = _mm_set1_epi8(0x1F);
        for (;;) {
            __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p_));
            // A byte is a control character when its unsigned minimum with 0x1F is itself.
            __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(block, last_control), block);
            __m128i stop = _mm_or_si128(
                control, _mm_or_si128(_mm_cmpeq_epi8(block, quote), _mm_cmpeq_epi8(block, backslash)));
            int mask = _mm_movemask_epi8(stop);
            if (mask != 0) {
                p_ += __builtin_ctz(static_cast<unsigned>(mask));
                break;
            }
            p_ += 16;
        }
        if (*p_ != '"') return false;  // an escape, a control character or the line's end
        LineEvent& event = push(kind);
        event.text = start;
        event.length = static_cast<uint32_t>(p_ - start);
        *p_++ = '\0';
        return true;
    }

    // An integer as rapidjson reads it; fractions, exponents, leading zeros and more than 18 digits are left
    // to rapidjson.
    // Out of line: inlined, its registers made every value() call (recursive) save more.
    __attribute__((noinline)) bool number() {
        bool minus = *p_ == '-';
        if (minus) ++p_;
        if (!digit(*p_)) return false;
        uint64_t magnitude = 0;
        if (*p_ == '0') {
            ++p_;
            if (minus || digit(*p_)) return false;
        } else {
            int digits = 0;
            // Eight digits at a step while they fit in 18 (the NUL and padding keep the reads in bounds).
            for (uint64_t eight = 0; digits <= 10 && eightDigits(p_, eight); p_ += 8, digits += 8)
                magnitude = magnitude * 100000000 + eight;
            for (; digit(*p_); ++p_) {
                if (++digits > 18) return false;
                magnitude = magnitude * 10 + static_cast<uint64_t>(*p_ - '0');
            }
        }
        if (*p_ == '.' || *p_ == 'e' || *p_ == 'E') return false;
        if (!minus)
            push(magnitude <= 0xFFFFFFFFu ? Kind::kUint : Kind::kUint64).uint_value = magnitude;
        else
            push(magnitude <= 0x80000000u ? Kind::kInt : Kind::kInt64).int_value =
                -static_cast<int64_t>(magnitude);
        return true;
    }

    char* p_;
    std::vector<LineEvent>& events_;
    int depth_ = 0;
};

}  // namespace

LineScan scanLine(char* text, size_t size, std::vector<LineEvent>& events) {
    size_t first = events.size();
    LineScanner scanner(text, events);
    if (!scanner.root()) {
        events.resize(first);
        return LineScan::kUnsupported;
    }
    // parseLine's test of what follows the value.
    for (const char* at = scanner.position(); at < text + size; ++at)
        if (*at != ' ' && *at != '\t' && *at != '\r') return LineScan::kValueThenMore;
    return LineScan::kValue;
}

JsonWriter& JsonWriter::dbl(double value) {
    // The cluster prints whole doubles with a fraction ("1.0"), which Writer::Double does too; infinities
    // (missing values in a descending double sort) are printed as strings by Jackson's lenient mode.
    if (std::isinf(value)) return str(value > 0 ? "Infinity" : "-Infinity");
    writer_.Double(value);
    return *this;
}

std::string jsonString(std::string_view text) {
    JsonWriter out;
    out.str(text);
    return out.text();
}

std::string toJson(const rapidjson::Value& value) {
    JsonWriter out;
    out.value(value);
    return out.text();
}

bool isJdkException(const std::string& type) {
    static const std::set<std::string> jdk = {"illegal_argument_exception", "number_format_exception",
                                              "date_time_parse_exception",  "json_parse_exception",
                                              "illegal_state_exception",    "arithmetic_exception"};
    return jdk.count(type) != 0;
}

void Failure::writeBody(JsonWriter& out) const {
    out.beginObject();
    writeMembers(out);
    out.endObject();
}

void Failure::writeMembers(JsonWriter& out) const {
    out.key("type").str(type);
    out.key("reason").str(reason);
    for (const auto& [name, value] : extra) out.key(name).raw(value);
    if (cause) {
        out.key("caused_by");
        cause->writeBody(out);
    }
}

std::string Failure::responseBody() const {
    // The root cause is the innermost search engine exception; a JDK exception only when nothing wraps it.
    // search_phase_execution_exception reports its shard failure as the root cause, whatever its type.
    const Failure* root = this;
    if (type == "search_phase_execution_exception" && cause) root = cause.get();
    for (const Failure* inner = root->cause.get(); inner != nullptr; inner = inner->cause.get()) {
        if (!isJdkException(inner->type)) root = inner;
    }
    JsonWriter out;
    out.beginObject().key("error").beginObject();
    out.key("root_cause").beginArray();
    Failure root_only = *root;
    root_only.cause.reset();
    root_only.writeBody(out);
    out.endArray();
    writeMembers(out);
    out.endObject();
    out.key("status").num(status);
    out.endObject();
    return out.text();
}

Failure illegalArgument(std::string reason) {
    Failure failure;
    failure.status = 400;
    failure.type = "illegal_argument_exception";
    failure.reason = std::move(reason);
    return failure;
}

Failure indexNotFound(const std::string& index) {
    Failure failure;
    failure.status = 404;
    failure.type = "index_not_found_exception";
    failure.reason = "no such index [" + index + "]";
    failure.with("index", jsonString(index))
        .with("resource.id", jsonString(index))
        .with("resource.type", jsonString("index_or_alias"))
        .with("index_uuid", jsonString("_na_"));
    return failure;
}

Failure resourceAlreadyExists(const std::string& index, const std::string& uuid) {
    Failure failure;
    failure.status = 400;
    failure.type = "resource_already_exists_exception";
    failure.reason = "index [" + index + "/" + uuid + "] already exists";
    failure.with("index", jsonString(index)).with("index_uuid", jsonString(uuid));
    return failure;
}

Failure invalidIndexName(const std::string& index, const std::string& why) {
    Failure failure;
    failure.status = 400;
    failure.type = "invalid_index_name_exception";
    failure.reason = "Invalid index name [" + index + "], " + why;
    failure.with("index", jsonString(index)).with("index_uuid", jsonString("_na_"));
    return failure;
}

Failure versionConflict(const std::string& index, const std::string& uuid, const std::string& id,
                        const std::string& explanation) {
    Failure failure;
    failure.status = 409;
    failure.type = "version_conflict_engine_exception";
    failure.reason = "[" + id + "]: version conflict, " + explanation;
    failure.with("index", jsonString(index))
        .with("shard", jsonString("0"))
        .with("index_uuid", jsonString(uuid));
    return failure;
}

Failure validationFailed(const std::vector<std::string>& problems) {
    Failure failure;
    failure.status = 400;
    failure.type = "action_request_validation_exception";
    failure.reason = "Validation Failed: ";
    int number = 0;
    for (const auto& problem : problems) failure.reason += std::to_string(++number) + ": " + problem + ";";
    return failure;
}

Failure parsingException(std::string reason, int line, int col) {
    Failure failure;
    failure.status = 400;
    failure.type = "parsing_exception";
    failure.reason = std::move(reason);
    failure.with("line", std::to_string(line)).with("col", std::to_string(col));
    return failure;
}

Failure mapperParsing(std::string reason) {
    Failure failure;
    failure.status = 400;
    failure.type = "mapper_parsing_exception";
    failure.reason = std::move(reason);
    return failure;
}

Failure searchPhaseFailure(const std::string& index, const std::string& uuid, Failure shard_failure) {
    JsonWriter shards;
    shards.beginArray().beginObject();
    shards.key("shard").num(0);
    shards.key("index").str(index);
    shards.key("node").str(uuid.substr(0, 22));
    shards.key("reason");
    shard_failure.writeBody(shards);
    shards.endObject().endArray();
    Failure failure;
    failure.status = shard_failure.status;
    failure.type = "search_phase_execution_exception";
    failure.reason = "all shards failed";
    failure.with("phase", jsonString("query")).with("grouped", "true").with("failed_shards", shards.text());
    failure.causedBy(std::move(shard_failure));
    return failure;
}

bool parseJson(std::string_view text, rapidjson::Document& into, Failure& error) {
    into.Parse<rapidjson::kParseFullPrecisionFlag>(text.data(), text.size());
    if (!into.HasParseError()) return true;
    error = Failure();
    error.status = 400;
    error.type = "json_parse_exception";
    error.reason = std::string(rapidjson::GetParseError_En(into.GetParseError())) + " at offset " +
                   std::to_string(into.GetErrorOffset());
    return false;
}

bool globMatch(std::string_view pattern, std::string_view text) {
    size_t p = 0, t = 0, star = std::string_view::npos, resume = 0;
    while (t < text.size()) {
        if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            resume = t;
        } else if (p < pattern.size() && pattern[p] == text[t]) {
            ++p;
            ++t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++resume;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') ++p;
    return p == pattern.size();
}

}  // namespace search_mock
