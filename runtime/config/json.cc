#include "runtime/config/json.h"

#include <cstdlib>
#include <string>

#include "runtime/core/error.h"
#include "runtime/core/hex.h"

namespace zshard::config {

namespace {

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  JsonValue parseDocument() {
    skipSpace();
    JsonValue value = parseValue(0);
    skipSpace();
    if (pos_ < text_.size()) fail("end of input after the JSON value");
    return value;
  }

 private:
  [[noreturn]] void fail(const std::string& expected) const {
    failAt(line_, column_, expectedGot(expected, foundHere()));
  }

  [[noreturn]] static void failAt(int line, int column, const std::string& message) {
    throw ConfigError("line " + std::to_string(line) + ", column " + std::to_string(column) + ": " +
                      message);
  }

  std::string foundHere() const {
    if (pos_ >= text_.size()) return "end of input";
    const unsigned char c = static_cast<unsigned char>(text_[pos_]);
    if (c < 0x20 || c >= 0x7f) return "byte 0x" + toHex(std::string(1, static_cast<char>(c)));
    return "'" + std::string(1, static_cast<char>(c)) + "'";
  }

  bool atEnd() const { return pos_ >= text_.size(); }
  char peek() const { return atEnd() ? '\0' : text_[pos_]; }

  void advance() {
    if (text_[pos_] == '\n') {
      ++line_;
      column_ = 1;
    } else {
      ++column_;
    }
    ++pos_;
  }

  void expect(char c, const char* what) {
    if (peek() != c || atEnd()) fail(what);
    advance();
  }

  void skipSpace() {
    while (!atEnd() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) {
      advance();
    }
  }

  JsonValue start(JsonValue::Kind kind) const {
    JsonValue v;
    v.kind = kind;
    v.line = line_;
    v.column = column_;
    return v;
  }

  JsonValue parseValue(int depth) {
    if (depth > kMaxJsonDepth) {
      fail("at most " + std::to_string(kMaxJsonDepth) + " levels of nesting");
    }
    switch (peek()) {
      case '{': return parseObject(depth);
      case '[': return parseArray(depth);
      case '"': return parseStringValue();
      case 't': return parseWord("true", JsonValue::Kind::kBool, true);
      case 'f': return parseWord("false", JsonValue::Kind::kBool, false);
      case 'n': return parseWord("null", JsonValue::Kind::kNull, false);
      default: break;
    }
    if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return parseNumber();
    fail("a JSON value (object, array, string, number, true, false or null)");
  }

  JsonValue parseWord(std::string_view word, JsonValue::Kind kind, bool b) {
    JsonValue v = start(kind);
    if (text_.substr(pos_, word.size()) != word) {
      fail("a JSON value (object, array, string, number, true, false or null)");
    }
    for (size_t i = 0; i < word.size(); ++i) advance();
    v.boolean = b;
    return v;
  }

  JsonValue parseObject(int depth) {
    JsonValue v = start(JsonValue::Kind::kObject);
    advance();  // '{'
    skipSpace();
    if (peek() == '}') {
      advance();
      return v;
    }
    while (true) {
      skipSpace();
      if (peek() != '"') fail("a quoted key");
      const int key_line = line_, key_column = column_;
      std::string key = parseString();
      if (const JsonValue* first = v.find(key)) {
        failAt(key_line, key_column,
               "duplicate key \"" + key + "\" (first at line " + std::to_string(first->line) +
                   "); give each key once");
      }
      skipSpace();
      expect(':', "':' after the key");
      skipSpace();
      JsonValue member = parseValue(depth + 1);
      v.members.emplace_back(std::move(key), std::move(member));
      skipSpace();
      if (peek() == ',') {
        advance();
        continue;
      }
      expect('}', "',' or '}' in the object");
      return v;
    }
  }

  JsonValue parseArray(int depth) {
    JsonValue v = start(JsonValue::Kind::kArray);
    advance();  // '['
    skipSpace();
    if (peek() == ']') {
      advance();
      return v;
    }
    while (true) {
      skipSpace();
      v.items.push_back(parseValue(depth + 1));
      skipSpace();
      if (peek() == ',') {
        advance();
        continue;
      }
      expect(']', "',' or ']' in the array");
      return v;
    }
  }

  JsonValue parseStringValue() {
    JsonValue v = start(JsonValue::Kind::kString);
    v.text = parseString();
    return v;
  }

  std::string parseString() {
    advance();  // opening quote
    std::string out;
    while (true) {
      if (atEnd()) fail("a closing '\"'");
      const unsigned char c = static_cast<unsigned char>(peek());
      if (c == '"') {
        advance();
        return out;
      }
      if (c < 0x20) fail("no raw control characters in a string (use \\n, \\t)");
      if (c == '\\') {
        advance();
        appendEscape(out);
        continue;
      }
      out.push_back(static_cast<char>(c));
      advance();
    }
  }

  void appendEscape(std::string& out) {
    const char c = peek();
    const char* simple = "\"\\/bfnrt";
    const char* decoded = "\"\\/\b\f\n\r\t";
    for (int i = 0; simple[i] != '\0'; ++i) {
      if (c == simple[i] && !atEnd()) {
        out.push_back(decoded[i]);
        advance();
        return;
      }
    }
    if (c != 'u' || atEnd()) fail("an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
    advance();
    unsigned code = parseHex4();
    if (code >= 0xD800 && code <= 0xDBFF && text_.substr(pos_, 2) == "\\u") {
      advance();
      advance();
      const unsigned low = parseHex4();
      if (low < 0xDC00 || low > 0xDFFF) fail("a low surrogate \\uDC00..\\uDFFF");
      code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
    }
    appendUtf8(out, code);
  }

  unsigned parseHex4() {
    unsigned value = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = peek();
      int digit = -1;
      if (c >= '0' && c <= '9') digit = c - '0';
      if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
      if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
      if (digit < 0 || atEnd()) fail("four hex digits after \\u");
      value = value * 16 + static_cast<unsigned>(digit);
      advance();
    }
    return value;
  }

  static void appendUtf8(std::string& out, unsigned code) {
    if (code < 0x80) {
      out.push_back(static_cast<char>(code));
    } else if (code < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (code >> 6)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else if (code < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (code >> 12)));
      out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (code >> 18)));
      out.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    }
  }

  void digits(const char* what) {
    if (peek() < '0' || peek() > '9' || atEnd()) fail(what);
    while (!atEnd() && peek() >= '0' && peek() <= '9') advance();
  }

  JsonValue parseNumber() {
    JsonValue v = start(JsonValue::Kind::kNumber);
    const size_t begin = pos_;
    if (peek() == '-') advance();
    if (peek() == '0') {
      advance();
    } else {
      digits("a digit");
    }
    if (peek() == '.') {
      advance();
      digits("a digit after '.'");
    }
    if (peek() == 'e' || peek() == 'E') {
      advance();
      if (peek() == '+' || peek() == '-') advance();
      digits("a digit in the exponent");
    }
    v.text = std::string(text_.substr(begin, pos_ - begin));
    v.number = std::strtod(v.text.c_str(), nullptr);
    return v;
  }

  std::string_view text_;
  size_t pos_ = 0;
  int line_ = 1;
  int column_ = 1;
};

}  // namespace

const JsonValue* JsonValue::find(std::string_view key) const {
  for (const auto& [name, value] : members) {
    if (name == key) return &value;
  }
  return nullptr;
}

std::string JsonValue::describe() const {
  switch (kind) {
    case Kind::kNull: return "null";
    case Kind::kBool: return boolean ? "true" : "false";
    case Kind::kNumber: return "the number " + text;
    case Kind::kString: return "the string \"" + text + "\"";
    case Kind::kArray: return "an array of " + std::to_string(items.size());
    case Kind::kObject: return "an object";
  }
  return "a value";
}

JsonValue parseJson(std::string_view text) {
  return Parser(text).parseDocument();
}

}  // namespace zshard::config
