#include "io/npy_header.hpp"

#include <cstdint>
#include <limits>
#include <optional>

#include "sparq/error.hpp"

namespace sparq::io {

std::string printable(std::string_view s, std::size_t max_chars) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i == max_chars) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

namespace {

// A recursive-descent parser over the small subset of Python literals numpy headers use.
// No recursion on input structure (the only nesting is one tuple inside the dict), so
// no input can exhaust the stack.
class Parser {
 public:
  Parser(std::string_view text, std::string_view name) : s_(text), name_(name) {}

  NpyHeader parse() {
    NpyHeader h;
    bool have_descr = false, have_fortran = false, have_shape = false;
    skip_ws();
    expect('{', "the header must be a dict starting with '{'");
    skip_ws();
    while (!at('}')) {
      const std::string key = parse_string("a quoted key");
      skip_ws();
      expect(':', "expected ':' after key '" + printable(key) + "'");
      skip_ws();
      if (key == "descr") {
        if (have_descr) fail("duplicate key 'descr'");
        have_descr = true;
        if (at('[')) fail("'descr' is a structured dtype (a list of fields): only '<f4' and '<f8' are supported");
        h.descr = parse_string("a dtype string for 'descr'");
      } else if (key == "fortran_order") {
        if (have_fortran) fail("duplicate key 'fortran_order'");
        have_fortran = true;
        h.fortran_order = parse_bool();
      } else if (key == "shape") {
        if (have_shape) fail("duplicate key 'shape'");
        have_shape = true;
        h.shape = parse_shape();
      } else {
        fail("unexpected key '" + printable(key) + "': a .npy header has only 'descr', 'fortran_order', 'shape'");
      }
      skip_ws();
      if (at(',')) {
        ++pos_;
        skip_ws();
      } else if (!at('}')) {
        fail("expected ',' or '}' after the value of '" + printable(key) + "'");
      }
    }
    ++pos_;  // '}'
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected text after the closing '}'");
    if (!have_descr) fail("missing key 'descr'");
    if (!have_fortran) fail("missing key 'fortran_order'");
    if (!have_shape) fail("missing key 'shape'");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(ErrorCode::bad_file,
                std::string(name_) + ": malformed .npy header at offset " + std::to_string(pos_) + ": " + what);
  }
  [[nodiscard]] bool at(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
  [[nodiscard]] bool at_digit() const { return pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9'; }
  void expect(char c, const std::string& what) {
    if (!at(c)) fail(what);
    ++pos_;
  }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }

  std::string parse_string(const std::string& what) {
    if (!at('\'') && !at('"')) fail("expected " + what);
    const char quote = s_[pos_++];
    const std::size_t begin = pos_;
    while (pos_ < s_.size() && s_[pos_] != quote) {
      // Escapes never occur in the strings we accept; refusing them keeps this simple.
      if (s_[pos_] == '\\' || s_[pos_] == '\n') fail("unsupported character in a string");
      ++pos_;
    }
    if (pos_ == s_.size()) fail("unterminated string");
    return std::string(s_.substr(begin, pos_++ - begin));
  }

  bool parse_bool() {
    for (auto [word, value] :
         {std::pair{std::string_view("True"), true}, std::pair{std::string_view("False"), false}}) {
      if (s_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return value;
      }
    }
    fail("'fortran_order' must be True or False");
  }

  std::size_t parse_dim() {
    if (at('-')) fail("negative dimension in 'shape'");
    if (!at_digit()) fail("expected a non-negative integer in 'shape'");
    std::size_t v = 0;
    while (at_digit()) {
      const auto digit = static_cast<std::size_t>(s_[pos_] - '0');
      if (v > (std::numeric_limits<std::size_t>::max() - digit) / 10) fail("a dimension of 'shape' overflows 64 bits");
      v = v * 10 + digit;
      ++pos_;
    }
    if (at('L') || at('l')) ++pos_;  // Python 2 long literal, as old numpy wrote
    return v;
  }

  std::vector<std::size_t> parse_shape() {
    // Python: () is empty, (3,) one element, (3) is the int 3 (not a tuple), (3, 4) two.
    expect('(', "'shape' must be a tuple such as (3, 4)");
    std::vector<std::size_t> dims;
    bool trailing_comma = false;
    skip_ws();
    while (!at(')')) {
      if (dims.size() == kMaxDims) fail("'shape' has more than 64 dimensions");
      dims.push_back(parse_dim());
      skip_ws();
      trailing_comma = false;
      if (at(',')) {
        ++pos_;
        trailing_comma = true;
        skip_ws();
      } else if (!at(')')) {
        fail("expected ',' or ')' in 'shape'");
      }
    }
    if (dims.size() == 1 && !trailing_comma) fail("'shape' must be a tuple: a single dimension is written (n,)");
    ++pos_;  // ')'
    return dims;
  }

  static constexpr std::size_t kMaxDims = 64;  // numpy 2's limit (numpy 1: 32)
  std::string_view s_;
  std::string_view name_;
  std::size_t pos_ = 0;
};

}  // namespace

NpyHeader parse_header_dict(std::string_view text, std::string_view name) {
  return Parser(text, name).parse();
}

std::string format_header_dict(const std::vector<std::size_t>& shape) {
  std::string s = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ',';
  s += "), }";
  return s;
}

}  // namespace sparq::io
