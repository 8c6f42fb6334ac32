#include "wal/lsn.h"

#include <cstring>

namespace pgstream {

namespace {

std::optional<uint32_t> parse_hex32(std::string_view text) {
    if (text.empty() || text.size() > 8) return std::nullopt;
    uint32_t value = 0;
    for (char c : text) {
        uint32_t digit;
        if (c >= '0' && c <= '9')
            digit = c - '0';
        else if (c >= 'A' && c <= 'F')
            digit = c - 'A' + 10;
        else if (c >= 'a' && c <= 'f')
            digit = c - 'a' + 10;
        else
            return std::nullopt;
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

namespace {

// Writes "HIGH/LOW" in upper-case hex without padding (pg_lsn_out's format) so that it ends at `end`; returns
// where it starts. Hot path (every output line): no printf.
char* format_lsn(uint64_t value, char* end) {
    static const char kDigits[] = "0123456789ABCDEF";
    char* p = end;
    uint32_t low = uint32_t(value & 0xffffffffu), high = uint32_t(value >> 32);
    do {
        *--p = kDigits[low & 0xf];
        low >>= 4;
    } while (low);
    *--p = '/';
    do {
        *--p = kDigits[high & 0xf];
        high >>= 4;
    } while (high);
    return p;
}

}  // namespace

std::string Lsn::str() const {
    char buffer[17];
    char* end = buffer + sizeof buffer;
    char* start = format_lsn(value, end);
    return std::string(start, size_t(end - start));
}

void Lsn::append_to(std::string& out) const {
    char buffer[17];
    char* end = buffer + sizeof buffer;
    char* start = format_lsn(value, end);
    out.append(start, size_t(end - start));
}

char* Lsn::write_to(char* out) const {
    char buffer[kMaxTextSize];
    char* end = buffer + sizeof buffer;
    char* start = format_lsn(value, end);
    std::memcpy(out, start, size_t(end - start));
    return out + (end - start);
}

}  // namespace pgstream
