#include "filter_path.h"

#include "json.h"

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <cstdlib>
#include <deque>

namespace search_mock {

namespace {

// Java's String.trim(): every character up to U+0020 at either end.
std::string_view javaTrim(std::string_view text) {
    while (!text.empty() && static_cast<unsigned char>(text.front()) <= ' ') text.remove_prefix(1);
    while (!text.empty() && static_cast<unsigned char>(text.back()) <= ' ') text.remove_suffix(1);
    return text;
}

// FilterPath.parse: segments split at '.', "\." a dot within a segment. FilterPath replaces a backslash and
// whatever character follows it with a dot (a regular expression's "any character"), Elasticsearch 8's keeps
// it: the mock refuses a backslash that is not before a dot. An empty segment (a leading, trailing or doubled
// dot) is refused too: OpenSearch matches it against an empty name, Elasticsearch 8 takes ".a" as one name.
bool splitSegments(std::string_view expression, FilterPath::Path& segments, std::string& refusal) {
    std::string segment;
    for (size_t i = 0; i < expression.size(); ++i) {
        char c = expression[i];
        if (c == '\\') {
            if (i + 1 < expression.size() && expression[i + 1] == '.') {
                segment += '.';
                ++i;
                continue;
            }
            refusal = "a backslash that does not escape a dot in filter_path [" + std::string(expression) +
                      "] is not implemented by pgstream-search-mock";
            return false;
        }
        if (c == '.') {
            if (segment.empty()) break;
            segments.push_back(std::move(segment));
            segment.clear();
            continue;
        }
        segment += c;
    }
    if (segment.empty()) {
        refusal = "an empty name in filter_path [" + std::string(expression) +
                  "] (a leading, trailing or doubled dot) is not implemented by pgstream-search-mock";
        return false;
    }
    segments.push_back(std::move(segment));
    return true;
}

// A receiver of JSON events; scalars come serialised.
class Sink {
  public:
    virtual ~Sink() = default;
    virtual void startObject() = 0;
    virtual void endObject() = 0;
    virtual void startArray() = 0;
    virtual void endArray() = 0;
    virtual void key(std::string_view name) = 0;
    virtual void scalar(std::string_view json) = 0;
};

class TextSink : public Sink {
  public:
    void startObject() override { writer_.StartObject(); }
    void endObject() override { writer_.EndObject(); }
    void startArray() override { writer_.StartArray(); }
    void endArray() override { writer_.EndArray(); }
    void key(std::string_view name) override {
        writer_.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
    }
    void scalar(std::string_view json) override {
        writer_.RawValue(json.data(), json.size(), rapidjson::kStringType);
    }
    std::string text() const { return std::string(buffer_.GetString(), buffer_.GetSize()); }

  private:
    rapidjson::StringBuffer buffer_;
    rapidjson::Writer<rapidjson::StringBuffer> writer_{buffer_};
};

// FilterPathBasedFilter over Jackson's FilteringGeneratorDelegate (includePath = true, allowMultipleMatches =
// true), for the events of one JSON value.
class PathFilter : public Sink {
  public:
    PathFilter(const std::vector<FilterPath::Path>& paths, bool inclusive, Sink& out)
        : inclusive_(inclusive), out_(out) {
        std::vector<Position> all;
        for (const auto& path : paths) all.push_back({&path, 0});
        State root{Kind::kPartial, &arena_.emplace_back(std::move(all))};
        stack_.push_back({Type::kRoot, root, true, {}, false});
        item_ = root;
    }

    void startObject() override { start(Type::kObject); }
    void startArray() override { start(Type::kArray); }
    void endObject() override { end(); }
    void endArray() override { end(); }

    void key(std::string_view name) override {
        Context& context = stack_.back();
        context.name.assign(name);
        context.need_name = true;
        if (context.filter.kind == Kind::kSkip) {
            item_ = context.filter;
            return;
        }
        if (context.filter.kind == Kind::kAll) {
            item_ = context.filter;
            context.need_name = false;
            out_.key(name);
            return;
        }
        item_ = includeProperty(name, *context.filter.positions);
        if (item_.kind == Kind::kAll) writePath();
    }

    void scalar(std::string_view json) override {
        if (item_.kind == Kind::kSkip) return;
        if (item_.kind == Kind::kPartial) {
            if (inclusive_) return;  // FilterPathBasedFilter._includeScalar()
            writePath();
        }
        out_.scalar(json);
    }

  private:
    enum class Kind : uint8_t { kSkip, kAll, kPartial };
    enum class Type : uint8_t { kRoot, kObject, kArray };
    struct Position {
        const FilterPath::Path* path;
        size_t segment;
    };
    struct State {
        Kind kind;
        const std::vector<Position>* positions;  // kPartial: the expressions still matching
    };
    struct Context {
        Type type;
        State filter;
        bool start_handled;
        std::string name;
        bool need_name;
    };

    // FilterPathBasedFilter.evaluate + includeProperty.
    State includeProperty(std::string_view name, const std::vector<Position>& positions) {
        std::vector<Position> next;
        for (const Position& position : positions) {
            const std::string& segment = (*position.path)[position.segment];
            bool double_wildcard = segment == "**";
            if (!(segment == "*" || double_wildcard || globMatch(segment, name))) continue;
            if (position.segment + 1 == position.path->size())  // matched to its end
                return {inclusive_ ? Kind::kAll : Kind::kSkip, nullptr};
            if (double_wildcard) next.push_back(position);
            next.push_back({position.path, position.segment + 1});
        }
        if (next.empty()) return {inclusive_ ? Kind::kSkip : Kind::kAll, nullptr};
        return {Kind::kPartial, &arena_.emplace_back(std::move(next))};
    }

    void start(Type type) {
        // An array's elements take the array's filter (TokenFilter.includeElement); filterStartObject and
        // filterStartArray keep the filter. A partly matched value is written once something in it is.
        bool all = item_.kind == Kind::kAll;
        stack_.push_back({type, item_, all, {}, false});
        if (all) type == Type::kObject ? out_.startObject() : out_.startArray();
    }

    void end() {
        // An object or array never started (nothing in it was included) is dropped: TokenFilter's
        // includeEmptyObject/includeEmptyArray answer false, and FilterPathBasedFilter keeps them.
        Context context = std::move(stack_.back());
        stack_.pop_back();
        if (context.start_handled) context.type == Type::kObject ? out_.endObject() : out_.endArray();
        item_ = stack_.back().filter;
    }

    // TokenFilterContext.writePath: the enclosing objects and arrays not yet written, and their names.
    void writePath() {
        for (Context& context : stack_) {
            if (context.filter.kind != Kind::kPartial) return;
            if (!context.start_handled) {
                context.start_handled = true;
                if (context.type == Type::kObject)
                    out_.startObject();
                else if (context.type == Type::kArray)
                    out_.startArray();
            }
            if (context.need_name) {
                context.need_name = false;
                out_.key(context.name);
            }
        }
    }

    bool inclusive_;
    Sink& out_;
    std::deque<std::vector<Position>> arena_;
    std::vector<Context> stack_;
    State item_;
};

// Reads the answer with rapidjson and hands its events on; the root object is written to `text` directly,
// as JsonXContentGenerator does (written even when nothing in it is included).
class Feeder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, Feeder> {
  public:
    Feeder(Sink& filtered, Sink& text) : filtered_(filtered), text_(text) {}

    bool StartObject() {
        (depth_++ == 0 ? text_ : filtered_).startObject();
        return true;
    }
    bool EndObject(rapidjson::SizeType) {
        (--depth_ == 0 ? text_ : filtered_).endObject();
        return true;
    }
    bool StartArray() {
        ++depth_;
        filtered_.startArray();
        return true;
    }
    bool EndArray(rapidjson::SizeType) {
        --depth_;
        filtered_.endArray();
        return true;
    }
    bool Key(const char* text, rapidjson::SizeType length, bool) {
        filtered_.key(std::string_view(text, length));
        return true;
    }
    bool String(const char* text, rapidjson::SizeType length, bool) {
        scratch_.Clear();
        rapidjson::Writer<rapidjson::StringBuffer> writer(scratch_);
        writer.String(text, length);
        return scalar();
    }
    bool Null() { return literal("null"); }
    bool Bool(bool value) { return literal(value ? "true" : "false"); }
    // Numbers come as their text (kParseNumbersAsStringsFlag): integers of any size are copied as they are
    // (Jackson keeps them exact, "-0" is 0), others are read as doubles and written as the mock writes them.
    bool RawNumber(const char* text, rapidjson::SizeType length, bool) {
        std::string_view number(text, length);
        if (number.find_first_of(".eE") == std::string_view::npos)
            return literal(number == "-0" ? std::string_view("0") : number);
        double value = std::strtod(std::string(number).c_str(), nullptr);
        scratch_.Clear();
        rapidjson::Writer<rapidjson::StringBuffer> writer(scratch_);
        if (std::isinf(value))
            writer.String(value > 0 ? "Infinity" : "-Infinity");
        else
            writer.Double(value);
        return scalar();
    }

  private:
    bool literal(std::string_view json) {
        filtered_.scalar(json);
        return true;
    }
    bool scalar() { return literal(std::string_view(scratch_.GetString(), scratch_.GetSize())); }

    Sink& filtered_;
    Sink& text_;
    int depth_ = 0;
    rapidjson::StringBuffer scratch_;
};

}  // namespace

std::optional<FilterPath> FilterPath::parse(std::string_view value, std::string& refusal) {
    // Strings.tokenizeByCommaToSet, then AbstractRestChannel's INCLUDE_FILTER/EXCLUDE_FILTER (on the token as
    // it is), then FilterPath.compile (which trims each expression and skips those left empty).
    std::set<std::string> include_tokens, exclude_tokens;
    size_t start = 0;
    while (start <= value.size()) {
        size_t comma = value.find(',', start);
        std::string_view token =
            value.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        if (!token.empty()) {
            if (token.front() == '-')
                exclude_tokens.emplace(token.substr(1));
            else
                include_tokens.emplace(token);
        }
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    FilterPath filter;
    auto compile = [&](const std::set<std::string>& tokens, std::set<std::string>& texts,
                       std::vector<Path>& paths) {
        for (const auto& token : tokens) {
            std::string_view expression = javaTrim(token);
            if (expression.empty() || !texts.emplace(expression).second) continue;
            Path segments;
            if (!splitSegments(expression, segments, refusal)) return false;
            paths.push_back(std::move(segments));
        }
        // Upstream, expressions that all compile to nothing make FilterPathBasedFilter throw ("filters
        // cannot be null or empty") while the answer is written, after the request was applied.
        if (!tokens.empty() && paths.empty()) {
            refusal = "filter_path [" + std::string(value) +
                      "] has only empty expressions; that is not implemented by pgstream-search-mock";
            return false;
        }
        return true;
    };
    if (!compile(include_tokens, filter.include_texts_, filter.includes_)) return std::nullopt;
    if (!compile(exclude_tokens, filter.exclude_texts_, filter.excludes_)) return std::nullopt;
    return filter;
}

bool FilterPath::isBulkStatusAndErrors() const {
    static const std::set<std::string> kLogstash = {"errors", "items.*.status", "items.*.error"};
    return excludes_.empty() && include_texts_ == kLogstash;
}

std::string FilterPath::apply(std::string_view json) const {
    if (empty()) return std::string(json);
    TextSink text;
    // The include filter's output goes through the exclude filter (JsonXContentGenerator wraps the
    // generator in the exclude filter first, then in the include filter).
    std::optional<PathFilter> exclude, include;
    Sink* chain = &text;
    if (!excludes_.empty()) chain = &exclude.emplace(excludes_, false, *chain);
    if (!includes_.empty()) chain = &include.emplace(includes_, true, *chain);
    Feeder feeder(*chain, text);
    rapidjson::Reader reader;
    rapidjson::MemoryStream stream(json.data(), json.size());
    constexpr unsigned kFlags = rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseStopWhenDoneFlag;
    if (reader.Parse<kFlags>(stream, feeder).IsError()) return std::string(json);
    return text.text();
}

}  // namespace search_mock
