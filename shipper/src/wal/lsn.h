// A PostgreSQL WAL position (XLogRecPtr) and its "X/Y" text form.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pgstream {

struct Lsn {
    uint64_t value = 0;

    constexpr Lsn() = default;
    constexpr explicit Lsn(uint64_t v) : value(v) {}

    // Accepts what pg_lsn_out prints ("16/B374D848", upper or lower case hex, zero-padded or not).
    static std::optional<Lsn> parse(std::string_view text);
    // Upper-case hex without padding, like PostgreSQL up to 18: "0/2962EF0".
    std::string str() const;
    // Appends str() to `out` without making a string of it (every output line has two).
    void append_to(std::string& out) const;
    // Writes str() at `out` (room for kMaxTextSize bytes); returns the end of what it wrote.
    char* write_to(char* out) const;
    static constexpr size_t kMaxTextSize = 17;  // "FFFFFFFF/FFFFFFFF"

    bool valid() const { return value != 0; }
    friend bool operator==(Lsn a, Lsn b) { return a.value == b.value; }
    friend bool operator!=(Lsn a, Lsn b) { return a.value != b.value; }
    friend bool operator<(Lsn a, Lsn b) { return a.value < b.value; }
    friend bool operator<=(Lsn a, Lsn b) { return a.value <= b.value; }
    friend bool operator>(Lsn a, Lsn b) { return a.value > b.value; }
    friend bool operator>=(Lsn a, Lsn b) { return a.value >= b.value; }
};

}  // namespace pgstream
