#include "ConfigValue.h"

#include <cctype>
#include <sstream>

namespace lumen::models::config {

namespace {

class LiteralParser {
 public:
  explicit LiteralParser(const std::string& s) : s_(s) {}

  Result<json> parse() {
    auto v = value();
    if (!v) return v;
    skipSpace();
    if (pos_ != s_.size()) return fail("unexpected text after the value");
    return v;
  }

 private:
  Result<json> fail(const std::string& why) const {
    std::ostringstream m;
    m << why << " at character " << pos_;
    return Error(ErrorCode::Model, m.str());
  }
  void skipSpace() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool word(const char* w) {
    const std::size_t n = std::char_traits<char>::length(w);
    if (s_.compare(pos_, n, w) != 0) return false;
    if (pos_ + n < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_ + n])) || s_[pos_ + n] == '_')) return false;
    pos_ += n;
    return true;
  }
  Result<json> value() {
    skipSpace();
    if (pos_ >= s_.size()) return fail("value expected");
    const char c = s_[pos_];
    if (c == '[' || c == '(') return sequence(c == '[' ? ']' : ')');
    if (c == '\'' || c == '"') return string(c);
    if (word("True")) return json(true);
    if (word("False")) return json(false);
    if (word("None")) return json(nullptr);
    if (c == '-' || c == '+' || c == '.' || std::isdigit(static_cast<unsigned char>(c))) return number();
    return fail("not a literal (Lumen evaluates no Python code)");
  }
  Result<json> sequence(char close) {
    ++pos_;
    json arr = json::array();
    for (;;) {
      skipSpace();
      if (pos_ < s_.size() && s_[pos_] == close) {
        ++pos_;
        return arr;
      }
      auto v = value();
      if (!v) return v;
      arr.push_back(*v);
      skipSpace();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == close) {
        ++pos_;
        return arr;
      }
      return fail("',' or closing bracket expected");
    }
  }
  Result<json> string(char quote) {
    ++pos_;
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != quote) {
      if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) ++pos_;
      out += s_[pos_++];
    }
    if (pos_ >= s_.size()) return fail("unterminated string");
    ++pos_;
    return json(out);
  }
  Result<json> number() {
    const std::size_t start = pos_;
    if (s_[pos_] == '-' || s_[pos_] == '+') ++pos_;
    bool isFloat = false;
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (std::isdigit(static_cast<unsigned char>(c))) ++pos_;
      else if (c == '.' || c == 'e' || c == 'E') {
        isFloat = true;
        ++pos_;
        if ((c == 'e' || c == 'E') && pos_ < s_.size() && (s_[pos_] == '-' || s_[pos_] == '+')) ++pos_;
      } else {
        break;
      }
    }
    const std::string t = s_.substr(start, pos_ - start);
    try {
      std::size_t used = 0;
      if (isFloat) {
        const double d = std::stod(t, &used);
        if (used != t.size()) return fail("malformed number");
        return json(d);
      }
      const long long i = std::stoll(t, &used);
      if (used != t.size()) return fail("malformed number");
      return json(i);
    } catch (const std::exception&) {
      return fail("malformed number");
    }
  }

  const std::string& s_;
  std::size_t pos_ = 0;
};

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return {};
  const auto b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

Result<json> lookup(const std::string& ref, const json& root, const std::string& key, const std::string& file) {
  const json* cur = &root;
  std::stringstream ss(ref);
  std::string part;
  while (std::getline(ss, part, '#')) {
    if (cur->is_object() && cur->contains(part)) {
      cur = &(*cur)[part];
    } else if (cur->is_array() && !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit) &&
               std::stoul(part) < cur->size()) {
      cur = &(*cur)[std::stoul(part)];
    } else {
      return Error(ErrorCode::Model, key + ": reference '@" + ref + "' names nothing in the config", file);
    }
  }
  return *cur;
}

Result<json> resolveDepth(const json& v, const json& root, const std::string& key, const std::string& file, int depth) {
  if (depth > 32) return Error(ErrorCode::Model, key + ": references nest too deep (a cycle?)", file);
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (!s.empty() && s[0] == '@') {
      auto target = lookup(s.substr(1), root, key, file);
      if (!target) return target;
      return resolveDepth(*target, root, key, file, depth + 1);
    }
    if (!s.empty() && s[0] == '$') {
      const std::string expr = trim(s.substr(1));
      // A plain reference written as an expression: "$@roi_size".
      if (!expr.empty() && expr[0] == '@' &&
          std::all_of(expr.begin() + 1, expr.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '#'; })) {
        auto target = lookup(expr.substr(1), root, key, file);
        if (!target) return target;
        return resolveDepth(*target, root, key, file, depth + 1);
      }
      auto lit = parsePythonLiteral(expr);
      if (!lit)
        return Error(ErrorCode::Model,
                     key + ": the Python expression \"" + s + "\" is neither a plain reference nor a literal; Lumen does not run Python",
                     file);
      return lit;
    }
    return v;
  }
  if (v.is_array()) {
    json out = json::array();
    for (std::size_t i = 0; i < v.size(); ++i) {
      auto r = resolveDepth(v[i], root, key + "#" + std::to_string(i), file, depth + 1);
      if (!r) return r;
      out.push_back(*r);
    }
    return out;
  }
  if (v.is_object()) {
    json out = json::object();
    for (auto it = v.begin(); it != v.end(); ++it) {
      auto r = resolveDepth(it.value(), root, key + "#" + it.key(), file, depth + 1);
      if (!r) return r;
      out[it.key()] = *r;
    }
    return out;
  }
  return v;
}

}  // namespace

Result<json> parsePythonLiteral(const std::string& text) { return LiteralParser(text).parse(); }

Result<json> follow(const json& value, const json& root, const std::string& key, const std::string& file) {
  json v = value;
  for (int depth = 0; depth < 32; ++depth) {
    if (!v.is_string()) return v;
    std::string s = v.get<std::string>();
    if (!s.empty() && s[0] == '$') s = trim(s.substr(1));
    if (s.empty() || s[0] != '@') return v;
    auto target = lookup(s.substr(1), root, key, file);
    if (!target) return target;
    v = *target;
  }
  return Error(ErrorCode::Model, key + ": references nest too deep (a cycle?)", file);
}

Result<json> resolve(const json& value, const json& root, const std::string& key, const std::string& file) {
  return resolveDepth(value, root, key, file, 0);
}

}  // namespace lumen::models::config
