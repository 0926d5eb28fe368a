#pragma once
// A small, strict JSON parser for the tests (RFC 8259 values; numbers as double).
#include <cctype>
#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace mlt::json {

struct Value {
  enum class Kind { null, boolean, number, string, array, object } kind = Kind::null;
  bool b = false;
  double n = 0;
  std::string s;
  std::vector<Value> a;
  std::map<std::string, Value> o;

  bool has(const std::string& key) const { return kind == Kind::object && o.count(key) > 0; }
  const Value& operator[](const std::string& key) const {
    if (!has(key)) throw std::runtime_error("json: no key '" + key + "'");
    return o.at(key);
  }
  const Value& operator[](std::size_t i) const { return a.at(i); }
};

class Parser {
 public:
  explicit Parser(const std::string& text) : t_(text) {}
  Value parse() {
    Value v = value();
    space();
    if (i_ != t_.size()) fail("trailing characters");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("json: " + what + " at offset " + std::to_string(i_));
  }
  void space() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\n' || t_[i_] == '\t' || t_[i_] == '\r')) ++i_;
  }
  bool take(char c) {
    space();
    if (i_ < t_.size() && t_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!take(c)) fail(std::string("expected '") + c + "'");
  }
  bool word(const char* w) {
    const std::string s(w);
    if (t_.compare(i_, s.size(), s) == 0) {
      i_ += s.size();
      return true;
    }
    return false;
  }
  std::string string() {
    expect('"');
    std::string out;
    while (i_ < t_.size() && t_[i_] != '"') {
      char c = t_[i_++];
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      if (c == '\\') {
        if (i_ >= t_.size()) fail("bad escape");
        const char e = t_[i_++];
        switch (e) {
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          case '/': out += '/'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'n': out += '\n'; break;
          case 'r': out += '\r'; break;
          case 't': out += '\t'; break;
          case 'u': {
            if (i_ + 4 > t_.size()) fail("bad \\u escape");
            const long code = std::strtol(t_.substr(i_, 4).c_str(), nullptr, 16);
            i_ += 4;
            if (code < 0x80) out += static_cast<char>(code);
            else out += '?';  // enough for the tests
            break;
          }
          default: fail("bad escape");
        }
      } else {
        out += c;
      }
    }
    expect('"');
    return out;
  }
  Value value() {
    space();
    if (i_ >= t_.size()) fail("unexpected end");
    Value v;
    const char c = t_[i_];
    if (c == '{') {
      ++i_;
      v.kind = Value::Kind::object;
      if (take('}')) return v;
      do {
        space();
        const std::string key = string();
        expect(':');
        v.o[key] = value();
      } while (take(','));
      expect('}');
    } else if (c == '[') {
      ++i_;
      v.kind = Value::Kind::array;
      if (take(']')) return v;
      do v.a.push_back(value());
      while (take(','));
      expect(']');
    } else if (c == '"') {
      v.kind = Value::Kind::string;
      v.s = string();
    } else if (word("true")) {
      v.kind = Value::Kind::boolean;
      v.b = true;
    } else if (word("false")) {
      v.kind = Value::Kind::boolean;
    } else if (word("null")) {
      v.kind = Value::Kind::null;
    } else {
      const char* start = t_.c_str() + i_;
      char* end = nullptr;
      v.n = std::strtod(start, &end);
      if (end == start) fail("bad value");
      i_ += static_cast<std::size_t>(end - start);
      v.kind = Value::Kind::number;
    }
    return v;
  }

  const std::string& t_;
  std::size_t i_ = 0;
};

inline Value parse(const std::string& text) { return Parser(text).parse(); }

}  // namespace mlt::json
