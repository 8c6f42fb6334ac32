#include "wal/lsn.h"

#include <cstdio>

namespace pgstream {

namespace {

std::optional<uint32_t> parse_hex32(std::string_view text) {
    if (text.empty() || text.size() > 8) return std::nullopt;
    uint32_t value = 0;
    for (char c : text) {
        uint32_t digit;
        if (c >= '0' && c <= '9') digit = c - '0';
        else if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
        else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
        else return std::nullopt;
        value = (value << 4) | digit;
    }
    return value;
}

}  // namespace

std::optional<Lsn> Lsn::parse(std::string_view text) {
    auto slash = text.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    auto high = parse_hex32(text.substr(0, slash));
    auto low = parse_hex32(text.substr(slash + 1));
    if (!high || !low) return std::nullopt;
    return Lsn((uint64_t(*high) << 32) | *low);
}

std::string Lsn::str() const {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%X/%X", unsigned(value >> 32), unsigned(value & 0xffffffffu));
    return buffer;
}

}  // namespace pgstream
