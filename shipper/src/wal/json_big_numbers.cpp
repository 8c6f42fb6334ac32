#include <rapidjson/memorystream.h>

#include "wal/json_tree.h"

namespace pgstream::json_detail {

namespace {

// For a document whose numbers were stood in for (mask_number_tokens): takes each number's text from the
// original, in document order. A type of its own, so that the common path's reader is not slowed by the
// check.
class MaskedNumbersTreeBuilder : public TreeBuilder {
  public:
    MaskedNumbersTreeBuilder(JsonValue& root, const std::vector<std::string_view>& numbers)
        : TreeBuilder(root), numbers_(numbers) {}
    bool RawNumber(const char*, rapidjson::SizeType, bool) {
        if (next_number_ >= numbers_.size()) return false;  // cannot happen: the lexer saw every number
        return add(JsonValue::Kind::Number, numbers_[next_number_++]);
    }

  private:
    const std::vector<std::string_view>& numbers_;
    size_t next_number_ = 0;
};

// Length of the JSON number (RFC 8259 grammar) at the start of `text`, 0 when there is none.
size_t number_token_length(std::string_view text) {
    auto digit = [&](size_t i) { return i < text.size() && text[i] >= '0' && text[i] <= '9'; };
    size_t i = 0;
    if (i < text.size() && text[i] == '-') ++i;
    if (!digit(i)) return 0;
    if (text[i] == '0')
        ++i;
    else
        while (digit(i)) ++i;
    if (i < text.size() && text[i] == '.') {
        if (!digit(i + 1)) return 0;
        ++i;
        while (digit(i)) ++i;
    }
    if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
        size_t exponent = i + 1;
        if (exponent < text.size() && (text[exponent] == '+' || text[exponent] == '-')) ++exponent;
        if (!digit(exponent)) return 0;
        i = exponent;
        while (digit(i)) ++i;
    }
    return i;
}

// Overwrites, in `masked` (a copy of `text`, same offsets), every number token outside strings with a 0
// padded with spaces, and returns the numbers' original texts in document order (views into `text`). The
// reader reports numbers in document order, so its k-th number is the k-th token.
std::vector<std::string_view> mask_number_tokens(std::string_view text, char* masked) {
    std::vector<std::string_view> numbers;
    size_t i = 0;
    while (i < text.size()) {
        char c = text[i];
        if (c == '"') {  // a string (or key): numbers inside it are text
            for (++i; i < text.size() && text[i] != '"'; ++i)
                if (text[i] == '\\') ++i;
            ++i;
            continue;
        }
        if (c != '-' && !(c >= '0' && c <= '9')) {
            ++i;
            continue;
        }
        size_t length = number_token_length(text.substr(i));
        if (length == 0) {  // not a number: the reader reports it
            ++i;
            continue;
        }
        numbers.push_back(text.substr(i, length));
        masked[i] = '0';
        for (size_t j = 1; j < length; ++j) masked[i + j] = ' ';
        i += length;
    }
    return numbers;
}

}  // namespace

rapidjson::ParseResult parse_with_masked_numbers(std::string_view text, JsonValue& root, size_t& end) {
    std::string masked(text);
    std::vector<std::string_view> numbers = mask_number_tokens(text, masked.data());
    root = JsonValue();
    MaskedNumbersTreeBuilder builder(root, numbers);
    rapidjson::Reader reader;
    rapidjson::MemoryStream stream(masked.data(), masked.size());
    rapidjson::ParseResult result = reader.Parse<kTreeParseFlags>(stream, builder);
    end = stream.Tell();
    return result;
}

}  // namespace pgstream::json_detail
