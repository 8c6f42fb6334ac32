// The output is UTF-8 JSON whatever the database's encoding: the output plugin writes text in the server
// encoding (a LATIN1 database sends é as the byte 0xE9), so the listener converts each replication message
// to UTF-8 before it is parsed (docs/operations.md, "Database encodings").
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace pgstream {

class Utf8Converter {
  public:
    // For the server_encoding PostgreSQL reports; nullptr when the text is UTF-8 already. Throws
    // std::runtime_error naming the encoding when it cannot be converted (MULE_INTERNAL).
    static std::unique_ptr<Utf8Converter> for_server_encoding(const std::string& server_encoding);
    virtual ~Utf8Converter() = default;

    // Appends `text` converted to UTF-8. Returns how many bytes were not characters of the encoding:
    // SQL_ASCII declares none, so its bytes that are not UTF-8 are read as LATIN1; elsewhere they become
    // U+FFFD.
    virtual size_t append(std::string& out, std::string_view text) = 0;
    const std::string& encoding() const { return encoding_; }

  protected:
    explicit Utf8Converter(std::string encoding) : encoding_(std::move(encoding)) {}

  private:
    std::string encoding_;
};

}  // namespace pgstream
