// Keeps passwords out of every error and log line. A password can reach a message in three shapes: a URL's
// user info (postgres://user:secret@host), a keyword/value conninfo (password=secret) or a URL query
// (?password=secret). Malformed URLs matter most: libpq quotes the part it could not parse, which is often
// the password itself. So each URL the program is given is remembered, and scrub() masks its secrets (as
// written, percent-decoded and in the pieces a stray '@' splits them into) as well as every password-shaped
// part of the text. The logger and the CLI's error printer scrub every line.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pgstream::redact {

// What stands for a hidden password.
inline constexpr std::string_view kMask = "*****";

// `url` (a postgres:// URL or a keyword/value conninfo, well-formed or not) with its passwords masked: safe
// to print whole.
std::string url(std::string_view url);

// The secret strings that `url` carries: each password as written and percent-decoded, and the pieces a
// stray '@' splits it into. Empty when it carries none.
std::vector<std::string> secrets_of(std::string_view url);

// Remembers secrets_of(text) for the life of the process, so that scrub() masks them in any later message.
// Thread-safe; called with each configuration value and command-line argument.
void remember(std::string_view text);

// `text` with every remembered secret, every secret of `url`, and every password-shaped part (user:pw@ after
// "://", password=value) masked.
std::string scrub(std::string_view text, std::string_view url = {});

}  // namespace pgstream::redact
