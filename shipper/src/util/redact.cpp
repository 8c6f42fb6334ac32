#include "util/redact.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <set>

namespace pgstream::redact {

namespace {

// A part of the text that holds a secret: [begin, end).
struct Span {
    size_t begin;
    size_t end;
};

bool is_space(char c) {
    return std::isspace(static_cast<unsigned char>(c)) != 0;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = char(std::tolower(static_cast<unsigned char>(c)));
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

std::string percent_decoded(std::string_view text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
            hex_value(text[i + 2]) >= 0) {
            out += char(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
            i += 2;
        } else {
            out += text[i];
        }
    }
    return out;
}

// The password of each "scheme://user:password@" in `text`. In a whole URL (`whole`) the user info runs to
// the last '@', so that a password with an unescaped '@' or '/' is hidden whole; in free text a URL ends at
// whitespace or a quote.
std::vector<Span> userinfo_passwords(std::string_view text, bool whole) {
    std::vector<Span> spans;
    for (size_t scheme = text.find("://"); scheme != std::string_view::npos;
         scheme = text.find("://", scheme + 3)) {
        size_t start = scheme + 3;
        size_t end = start;
        if (whole)
            end = text.size();
        else
            while (end < text.size() && !is_space(text[end]) && text[end] != '"' && text[end] != '\'') ++end;
        size_t at = text.substr(start, end - start).rfind('@');
        if (at == std::string_view::npos) continue;
        at += start;
        size_t colon = text.substr(start, at - start).find(':');
        if (colon == std::string_view::npos || start + colon + 1 == at) continue;
        spans.push_back({start + colon + 1, at});
        if (whole) break;
    }
    return spans;
}

// The value of each "password=value" (also sslpassword, any case, spaces around '='): quoted values run to
// their closing quote, others to whitespace or '&' (a URL query).
std::vector<Span> keyword_passwords(std::string_view text) {
    std::vector<Span> spans;
    std::string lowered(text);
    std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                   [](unsigned char c) { return char(std::tolower(c)); });
    for (size_t found = lowered.find("password"); found != std::string::npos;
         found = lowered.find("password", found + 8)) {
        size_t i = found + 8;
        while (i < text.size() && is_space(text[i])) ++i;
        if (i >= text.size() || text[i] != '=') continue;
        ++i;
        while (i < text.size() && is_space(text[i])) ++i;
        size_t begin = i;
        if (i < text.size() && (text[i] == '\'' || text[i] == '"')) {
            char quote = text[i++];
            while (i < text.size() && text[i] != quote) i += text[i] == '\\' ? 2 : 1;
            i = std::min(i + 1, text.size());
        } else {
            while (i < text.size() && !is_space(text[i]) && text[i] != '&') ++i;
        }
        if (i > begin) spans.push_back({begin, i});
    }
    return spans;
}

std::string masked(std::string_view text, std::vector<Span> spans) {
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
    std::string out;
    size_t copied = 0;
    for (const Span& span : spans) {
        if (span.end <= copied) continue;
        out.append(text.substr(copied, std::max(span.begin, copied) - copied));
        out.append(kMask);
        copied = span.end;
    }
    out.append(text.substr(copied));
    return out;
}

std::string unquoted(std::string_view value) {
    if (value.size() < 2 || (value.front() != '\'' && value.front() != '"')) return std::string(value);
    std::string out;
    for (size_t i = 1; i + 1 < value.size(); ++i) {
        if (value[i] == '\\' && i + 2 < value.size()) ++i;
        out += value[i];
    }
    return out;
}

void add_secret(std::set<std::string>& secrets, const std::string& secret) {
    if (secret.empty()) return;
    secrets.insert(secret);
    secrets.insert(percent_decoded(secret));
    // libpq cuts the user info at the first '@' and quotes the rest as the host name: hide those pieces too
    // (long enough not to mask ordinary words of the message).
    size_t begin = 0;
    for (size_t at = secret.find('@'); at != std::string::npos; begin = at + 1, at = secret.find('@', begin))
        if (at - begin >= 3) secrets.insert(secret.substr(begin, at - begin));
    if (begin != 0 && secret.size() - begin >= 3) secrets.insert(secret.substr(begin));
}

std::mutex g_mutex;
std::set<std::string> g_remembered;

// Replaces every occurrence of each secret, longest first, so that no part of a longer one survives.
std::string without_secrets(std::string text, const std::set<std::string>& secrets) {
    std::vector<std::string> ordered(secrets.begin(), secrets.end());
    std::sort(ordered.begin(), ordered.end(),
              [](const auto& a, const auto& b) { return a.size() > b.size(); });
    for (const auto& secret : ordered) {
        if (secret.empty()) continue;
        for (size_t at = text.find(secret); at != std::string::npos;
             at = text.find(secret, at + kMask.size()))
            text.replace(at, secret.size(), kMask);
    }
    return text;
}

}  // namespace

std::string url(std::string_view url) {
    auto spans = userinfo_passwords(url, true);
    auto keywords = keyword_passwords(url);
    spans.insert(spans.end(), keywords.begin(), keywords.end());
    return masked(url, spans);
}

std::vector<std::string> secrets_of(std::string_view url) {
    std::set<std::string> secrets;
    for (const Span& span : userinfo_passwords(url, true))
        add_secret(secrets, std::string(url.substr(span.begin, span.end - span.begin)));
    for (const Span& span : keyword_passwords(url)) {
        std::string_view value = url.substr(span.begin, span.end - span.begin);
        add_secret(secrets, std::string(value));
        add_secret(secrets, unquoted(value));
    }
    // What libpq itself makes of it (escapes resolved), when it parses.
    if (url.find('=') != std::string_view::npos || url.find("://") != std::string_view::npos) {
        std::string text(url);
        if (PQconninfoOption* options = PQconninfoParse(text.c_str(), nullptr)) {
            for (PQconninfoOption* option = options; option->keyword; ++option) {
                std::string keyword = option->keyword;
                if (option->val && (keyword == "password" || keyword == "sslpassword"))
                    add_secret(secrets, option->val);
            }
            PQconninfoFree(options);
        }
    }
    return {secrets.begin(), secrets.end()};
}

void remember(std::string_view text) {
    auto secrets = secrets_of(text);
    if (secrets.empty()) return;
    std::lock_guard<std::mutex> lock(g_mutex);
    g_remembered.insert(secrets.begin(), secrets.end());
}

std::string scrub(std::string_view text, std::string_view url) {
    std::set<std::string> secrets;
    {
        std::lock_guard<std::mutex> lock(g_mutex);
        secrets = g_remembered;
    }
    if (!url.empty())
        for (auto& secret : secrets_of(url)) secrets.insert(std::move(secret));
    std::string out = without_secrets(std::string(text), secrets);
    auto spans = userinfo_passwords(out, false);
    auto keywords = keyword_passwords(out);
    spans.insert(spans.end(), keywords.begin(), keywords.end());
    return masked(out, spans);
}

}  // namespace pgstream::redact
