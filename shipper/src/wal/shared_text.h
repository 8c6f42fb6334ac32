// Immutable texts shared by reference between events. Every row of a table repeats the same column heads
// (name, type, pgstream id), metadata ids and, within a transaction, the same commit time; copying them into
// each event as std::strings cost an allocation and a copy per text per row. A SharedText is one reference
// count away from the text the first row of the table (or schema version) made.
//
// Reading one is what reading a std::string was: it converts to `const std::string&`, compares with strings,
// prints with <<. Writing one replaces the whole text (there is no in-place modification: other events may
// hold the same text).
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace pgstream {

class SharedText {
  public:
    SharedText() = default;
    SharedText(std::string text)  // NOLINT(google-explicit-constructor): a drop-in for std::string fields
        : text_(text.empty() ? nullptr : std::make_shared<const std::string>(std::move(text))) {}
    SharedText(const char* text) : SharedText(std::string(text)) {}  // NOLINT(google-explicit-constructor)
    explicit SharedText(std::string_view text) : SharedText(std::string(text)) {}

    // The same text kept for the life of the process and shared without a reference count: copies made and
    // dropped on different threads (a snapshot's readers and the writer) touch no common cache line. For
    // texts of a bounded set (column heads of the tables read); equal texts are kept once.
    static SharedText interned(std::string_view text) {
        static std::mutex mutex;
        static std::unordered_set<std::string>* texts = new std::unordered_set<std::string>();  // never freed
        SharedText shared;
        if (text.empty()) return shared;
        std::lock_guard<std::mutex> lock(mutex);
        const std::string& kept = *texts->emplace(text).first;  // set nodes never move
        // Aliasing an empty owner: a non-null pointer without a control block.
        shared.text_ = std::shared_ptr<const std::string>(std::shared_ptr<const std::string>(), &kept);
        return shared;
    }

    const std::string& str() const { return text_ ? *text_ : empty_text(); }
    operator const std::string&() const { return str(); }  // NOLINT(google-explicit-constructor)
    std::string_view view() const { return str(); }

    bool empty() const { return !text_ || text_->empty(); }
    size_t size() const { return str().size(); }
    const char* data() const { return str().data(); }
    const char* c_str() const { return str().c_str(); }
    char operator[](size_t i) const { return str()[i]; }
    std::string::const_iterator begin() const { return str().begin(); }
    std::string::const_iterator end() const { return str().end(); }

    void clear() { text_.reset(); }  // this handle now reads "" (others keep the text)

    // The very same shared text (both empty counts too): equal without comparing characters.
    bool same_as(const SharedText& other) const { return text_ == other.text_; }

    friend bool operator==(const SharedText& a, const SharedText& b) {
        return a.same_as(b) || a.str() == b.str();
    }
    friend bool operator!=(const SharedText& a, const SharedText& b) { return !(a == b); }
    friend bool operator==(const SharedText& a, std::string_view b) { return a.view() == b; }
    friend bool operator!=(const SharedText& a, std::string_view b) { return a.view() != b; }
    friend bool operator==(std::string_view a, const SharedText& b) { return a == b.view(); }
    friend bool operator!=(std::string_view a, const SharedText& b) { return a != b.view(); }
    friend bool operator==(const SharedText& a, const std::string& b) { return a.str() == b; }
    friend bool operator!=(const SharedText& a, const std::string& b) { return a.str() != b; }
    friend bool operator==(const std::string& a, const SharedText& b) { return a == b.str(); }
    friend bool operator!=(const std::string& a, const SharedText& b) { return a != b.str(); }
    friend bool operator==(const SharedText& a, const char* b) { return a.str() == b; }
    friend bool operator!=(const SharedText& a, const char* b) { return a.str() != b; }
    friend bool operator<(const SharedText& a, const SharedText& b) { return a.str() < b.str(); }
    friend std::string operator+(const SharedText& a, std::string_view b) {
        std::string out = a.str();
        out += b;
        return out;
    }
    friend std::string operator+(std::string a, const SharedText& b) { return std::move(a += b.str()); }
    friend std::string operator+(const char* a, const SharedText& b) { return std::string(a) + b.str(); }
    friend std::ostream& operator<<(std::ostream& out, const SharedText& text) { return out << text.str(); }

  private:
    static const std::string& empty_text() {
        static const std::string empty;
        return empty;
    }

    std::shared_ptr<const std::string> text_;
};

// An immutable list of texts shared by reference (an event's identity column ids: the same list for every row
// of a table). Reads like a const std::vector<std::string>.
class SharedTextList {
  public:
    using value_type = std::string;
    using const_iterator = std::vector<std::string>::const_iterator;

    SharedTextList() = default;
    SharedTextList(std::vector<std::string> items)  // NOLINT(google-explicit-constructor)
        : items_(items.empty() ? nullptr
                               : std::make_shared<const std::vector<std::string>>(std::move(items))) {}
    SharedTextList(std::initializer_list<std::string> items)
        : SharedTextList(std::vector<std::string>(items)) {}

    const std::vector<std::string>& vector() const { return items_ ? *items_ : empty_list(); }
    operator const std::vector<std::string>&() const {
        return vector();
    }  // NOLINT(google-explicit-constructor)

    bool empty() const { return !items_ || items_->empty(); }
    size_t size() const { return vector().size(); }
    const std::string& operator[](size_t i) const { return vector()[i]; }
    const std::string& front() const { return vector().front(); }
    const std::string& back() const { return vector().back(); }
    const_iterator begin() const { return vector().begin(); }
    const_iterator end() const { return vector().end(); }

    bool same_as(const SharedTextList& other) const { return items_ == other.items_; }
    friend bool operator==(const SharedTextList& a, const SharedTextList& b) {
        return a.same_as(b) || a.vector() == b.vector();
    }
    friend bool operator!=(const SharedTextList& a, const SharedTextList& b) { return !(a == b); }
    friend bool operator==(const SharedTextList& a, const std::vector<std::string>& b) {
        return a.vector() == b;
    }
    friend bool operator!=(const SharedTextList& a, const std::vector<std::string>& b) {
        return a.vector() != b;
    }

  private:
    static const std::vector<std::string>& empty_list() {
        static const std::vector<std::string> empty;
        return empty;
    }

    std::shared_ptr<const std::vector<std::string>> items_;
};

}  // namespace pgstream
