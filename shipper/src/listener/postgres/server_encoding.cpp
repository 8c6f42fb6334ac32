#include "listener/postgres/server_encoding.h"

#include <iconv.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <stdexcept>

namespace pgstream {

namespace {

void append_code_point_below_800(std::string& out, unsigned code_point) {
    if (code_point < 0x80) {
        out += char(code_point);
    } else {
        out += char(0xC0 | (code_point >> 6));
        out += char(0x80 | (code_point & 0x3F));
    }
}

// Length of the valid UTF-8 sequence at the start of `text` (RFC 3629: no overlongs, no surrogates, at most
// U+10FFFF), 0 when there is none.
size_t utf8_sequence_length(std::string_view text) {
    auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
    auto continuation = [&](size_t i) { return i < text.size() && (byte(i) & 0xC0) == 0x80; };
    unsigned char lead = byte(0);
    if (lead < 0x80) return 1;
    if (lead >= 0xC2 && lead <= 0xDF) return continuation(1) ? 2 : 0;
    if (lead >= 0xE0 && lead <= 0xEF) {
        if (!continuation(1) || !continuation(2)) return 0;
        if (lead == 0xE0 && byte(1) < 0xA0) return 0;   // overlong
        if (lead == 0xED && byte(1) >= 0xA0) return 0;  // surrogate
        return 3;
    }
    if (lead >= 0xF0 && lead <= 0xF4) {
        if (!continuation(1) || !continuation(2) || !continuation(3)) return 0;
        if (lead == 0xF0 && byte(1) < 0x90) return 0;   // overlong
        if (lead == 0xF4 && byte(1) >= 0x90) return 0;  // above U+10FFFF
        return 4;
    }
    return 0;
}

// SQL_ASCII stores whatever bytes clients sent, with no encoding to know them by. Most such databases hold
// UTF-8 (kept as it is); any other byte is read as LATIN1, so it stays visible and nothing is dropped.
class SqlAsciiConverter : public Utf8Converter {
  public:
    SqlAsciiConverter() : Utf8Converter("SQL_ASCII") {}
    size_t append(std::string& out, std::string_view text) override {
        size_t not_utf8 = 0, run_start = 0, i = 0;
        while (i < text.size()) {
            if (static_cast<unsigned char>(text[i]) < 0x80) {
                ++i;
                continue;
            }
            size_t length = utf8_sequence_length(text.substr(i));
            if (length > 0) {
                i += length;
                continue;
            }
            out.append(text.data() + run_start, i - run_start);
            append_code_point_below_800(out, static_cast<unsigned char>(text[i]));
            ++not_utf8;
            run_start = ++i;
        }
        out.append(text.data() + run_start, text.size() - run_start);
        return not_utf8;
    }
};

class IconvConverter : public Utf8Converter {
  public:
    IconvConverter(const std::string& server_encoding, const std::string& iconv_name)
        : Utf8Converter(server_encoding), descriptor_(iconv_open("UTF-8", iconv_name.c_str())) {
        if (descriptor_ == iconv_t(-1))
            throw std::runtime_error("the database encoding " + server_encoding + " (" + iconv_name +
                                     ") cannot be converted to UTF-8 here: " + std::strerror(errno));
    }
    ~IconvConverter() override { iconv_close(descriptor_); }

    size_t append(std::string& out, std::string_view text) override {
        iconv(descriptor_, nullptr, nullptr, nullptr, nullptr);  // a message starts in the initial state
        size_t invalid = 0;
        char* in = const_cast<char*>(text.data());
        size_t in_left = text.size();
        while (in_left > 0) {
            size_t offset = out.size();
            // A character grows to at most 4 UTF-8 bytes from at least 1 byte.
            size_t room = in_left * 4 + 16;
            out.resize(offset + room);
            char* next = out.data() + offset;
            size_t out_left = room;
            size_t result = iconv(descriptor_, &in, &in_left, &next, &out_left);
            int error = errno;
            out.resize(offset + (room - out_left));
            if (result != size_t(-1)) break;
            if (error == E2BIG) continue;
            // EILSEQ / EINVAL: a byte the encoding does not define (or a cut multi-byte character).
            out += "\xEF\xBF\xBD";
            ++invalid;
            ++in;
            --in_left;
            iconv(descriptor_, nullptr, nullptr, nullptr, nullptr);
        }
        return invalid;
    }

  private:
    iconv_t descriptor_;
};

// PostgreSQL's server encodings (pg_enc2name) other than UTF8, SQL_ASCII and MULE_INTERNAL, by glibc name.
const std::map<std::string, std::string>& iconv_names() {
    static const std::map<std::string, std::string> names = {
        {"EUC_JP", "EUC-JP"},
        {"EUC_CN", "EUC-CN"},
        {"EUC_KR", "EUC-KR"},
        {"EUC_TW", "EUC-TW"},
        {"EUC_JIS_2004", "EUC-JISX0213"},
        {"LATIN1", "ISO-8859-1"},
        {"LATIN2", "ISO-8859-2"},
        {"LATIN3", "ISO-8859-3"},
        {"LATIN4", "ISO-8859-4"},
        {"LATIN5", "ISO-8859-9"},
        {"LATIN6", "ISO-8859-10"},
        {"LATIN7", "ISO-8859-13"},
        {"LATIN8", "ISO-8859-14"},
        {"LATIN9", "ISO-8859-15"},
        {"LATIN10", "ISO-8859-16"},
        {"WIN1256", "CP1256"},
        {"WIN1258", "CP1258"},
        {"WIN866", "CP866"},
        {"WIN874", "CP874"},
        {"KOI8R", "KOI8-R"},
        {"WIN1251", "CP1251"},
        {"WIN1252", "CP1252"},
        {"ISO_8859_5", "ISO-8859-5"},
        {"ISO_8859_6", "ISO-8859-6"},
        {"ISO_8859_7", "ISO-8859-7"},
        {"ISO_8859_8", "ISO-8859-8"},
        {"WIN1250", "CP1250"},
        {"WIN1253", "CP1253"},
        {"WIN1254", "CP1254"},
        {"WIN1255", "CP1255"},
        {"WIN1257", "CP1257"},
        {"KOI8U", "KOI8-U"},
    };
    return names;
}

}  // namespace

std::unique_ptr<Utf8Converter> Utf8Converter::for_server_encoding(const std::string& server_encoding) {
    if (server_encoding.empty() || server_encoding == "UTF8") return nullptr;
    if (server_encoding == "SQL_ASCII") return std::make_unique<SqlAsciiConverter>();
    auto name = iconv_names().find(server_encoding);
    if (name == iconv_names().end())
        throw std::runtime_error(
            "the database encoding " + server_encoding +
            " cannot be converted to UTF-8 (pgstream converts UTF8, SQL_ASCII, the EUC, LATIN, "
            "ISO_8859, WIN and KOI8 encodings)");
    return std::make_unique<IconvConverter>(server_encoding, name->second);
}

}  // namespace pgstream
