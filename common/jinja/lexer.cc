#include "common/jinja/lexer.h"

#include <cctype>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/jinja/py_string.h"

namespace g4::jinja {
namespace {

absl::Status LexError(int line, absl::string_view msg) {
  return absl::InvalidArgumentError(absl::StrCat("template line ", line, ": ", msg));
}

// Normalizes \r\n and \r to \n and drops one trailing newline (jinja2 keep_trailing_newline=False).
std::string NormalizeSource(std::string_view source, bool keep_trailing_newline) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    char c = source[i];
    if (c == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(c);
    }
  }
  if (!keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

bool IsSpaceByte(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Length of the Python-whitespace prefix of s[pos:] (regex \s*).
size_t WhitespaceRun(const std::string& s, size_t pos) {
  std::vector<char32_t> cps;
  size_t p = pos;
  while (p < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[p]);
    if (c < 0x80) {
      if (!IsPyWhitespace(c)) break;
      ++p;
      continue;
    }
    size_t n = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    std::vector<char32_t> one = DecodeUtf8(std::string_view(s).substr(p, n));
    if (one.size() != 1 || !IsPyWhitespace(one[0])) break;
    p += n;
  }
  return p - pos;
}

int CountLines(const std::string& s, size_t from, size_t to) {
  int n = 0;
  for (size_t i = from; i < to && i < s.size(); ++i) {
    if (s[i] == '\n') ++n;
  }
  return n;
}

// Unescapes a string literal body like Python's "unicode-escape" codec does.
absl::StatusOr<std::string> Unescape(std::string_view body, int line) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c != '\\' || i + 1 >= body.size()) {
      out.push_back(c);
      continue;
    }
    char e = body[++i];
    switch (e) {
      case '\n':
        break;
      case '\\':
        out.push_back('\\');
        break;
      case '\'':
        out.push_back('\'');
        break;
      case '"':
        out.push_back('"');
        break;
      case 'a':
        out.push_back('\a');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'v':
        out.push_back('\v');
        break;
      case 'x':
      case 'u':
      case 'U': {
        size_t len = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        std::string hex(body.substr(i + 1, len));
        if (hex.size() != len) return LexError(line, "truncated escape in string literal");
        for (char h : hex) {
          if (!std::isxdigit(static_cast<unsigned char>(h))) {
            return LexError(line, "invalid escape in string literal");
          }
        }
        AppendUtf8(static_cast<char32_t>(std::stoul(hex, nullptr, 16)), out);
        i += len;
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          unsigned v = 0;
          size_t k = 0;
          while (k < 3 && i < body.size() && body[i] >= '0' && body[i] <= '7') {
            v = v * 8 + (body[i] - '0');
            ++i;
            ++k;
          }
          --i;
          AppendUtf8(v, out);
        } else {
          out.push_back('\\');
          out.push_back(e);
        }
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<Token>> Tokenize(std::string_view raw_source,
                                            const LexerOptions& options) {
  const std::string src = NormalizeSource(raw_source, options.keep_trailing_newline);
  std::vector<Token> tokens;
  size_t pos = 0;
  int line = 1;
  bool line_starting = true;
  const size_t n = src.size();

  while (pos < n) {
    // Find the next tag start.
    size_t start = std::string::npos;
    for (size_t p = src.find('{', pos); p != std::string::npos; p = src.find('{', p + 1)) {
      if (p + 1 < n && (src[p + 1] == '{' || src[p + 1] == '%' || src[p + 1] == '#')) {
        start = p;
        break;
      }
    }
    if (start == std::string::npos) {
      tokens.push_back({TokenType::kText, src.substr(pos), line});
      break;
    }
    std::string text = src.substr(pos, start - pos);
    const char kind = src[start + 1];
    const char sign = (start + 2 < n && (src[start + 2] == '-' || src[start + 2] == '+'))
                          ? src[start + 2]
                          : 0;
    if (sign == '-') {
      text = PyStrip(text, nullptr, /*left=*/false, /*right=*/true);
    } else if (sign != '+' && options.lstrip_blocks && kind != '{') {
      size_t l_pos = text.rfind('\n');
      l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
      if (l_pos > 0 || line_starting) {
        std::string_view rest = std::string_view(text).substr(l_pos);
        if (!rest.empty() && WhitespaceRun(text, l_pos) == rest.size()) text.resize(l_pos);
      }
    }
    if (!text.empty()) tokens.push_back({TokenType::kText, text, line});
    line += CountLines(src, pos, start);
    size_t p = start + 2 + (sign ? 1 : 0);

    if (kind == '#') {
      size_t end = std::string::npos;
      for (size_t q = p; q + 1 < n; ++q) {
        if ((src[q] == '-' || src[q] == '+') && q + 2 < n && src[q + 1] == '#' &&
            src[q + 2] == '}') {
          end = q + 3;
          if (src[q] == '-') end += WhitespaceRun(src, end);
          break;
        }
        if (src[q] == '#' && src[q + 1] == '}') {
          end = q + 2;
          if (options.trim_blocks && end < n && src[end] == '\n') ++end;
          break;
        }
      }
      if (end == std::string::npos) return LexError(line, "unterminated comment");
      line_starting = src[end - 1] == '\n';
      line += CountLines(src, start, end);
      pos = end;
      continue;
    }

    const bool is_var = kind == '{';
    tokens.push_back({is_var ? TokenType::kVarBegin : TokenType::kBlockBegin, "", line});
    int depth = 0;
    bool closed = false;
    while (p < n) {
      // Whitespace inside tags.
      if (IsSpaceByte(src[p])) {
        if (src[p] == '\n') ++line;
        ++p;
        continue;
      }
      if (depth == 0) {
        const char close = is_var ? '}' : '%';
        size_t end = std::string::npos;
        if (src[p] == '-' && p + 2 < n && src[p + 1] == close && src[p + 2] == '}') {
          end = p + 3;
          end += WhitespaceRun(src, end);
        } else if (!is_var && src[p] == '+' && p + 2 < n && src[p + 1] == '%' &&
                   src[p + 2] == '}') {
          end = p + 3;
        } else if (src[p] == close && p + 1 < n && src[p + 1] == '}') {
          end = p + 2;
          if (!is_var && options.trim_blocks && end < n && src[end] == '\n') ++end;
        }
        if (end != std::string::npos) {
          tokens.push_back({is_var ? TokenType::kVarEnd : TokenType::kBlockEnd, "", line});
          line += CountLines(src, p, end);
          line_starting = src[end - 1] == '\n';
          pos = end;
          closed = true;
          break;
        }
      }
      const char c = src[p];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t q = p;
        while (q < n && (std::isalnum(static_cast<unsigned char>(src[q])) || src[q] == '_')) ++q;
        tokens.push_back({TokenType::kName, src.substr(p, q - p), line});
        p = q;
        continue;
      }
      if (std::isdigit(static_cast<unsigned char>(c))) {
        auto digits = [&](size_t q) {
          while (q < n && (std::isdigit(static_cast<unsigned char>(src[q])) ||
                           (src[q] == '_' && q + 1 < n &&
                            std::isdigit(static_cast<unsigned char>(src[q + 1]))))) {
            ++q;
          }
          return q;
        };
        size_t q = digits(p);
        bool is_float = false;
        const bool after_dot = p > 0 && src[p - 1] == '.';
        if (!after_dot) {
          if (q + 1 < n && src[q] == '.' && std::isdigit(static_cast<unsigned char>(src[q + 1]))) {
            q = digits(q + 1);
            is_float = true;
          }
          if (q < n && (src[q] == 'e' || src[q] == 'E')) {
            size_t r = q + 1;
            if (r < n && (src[r] == '+' || src[r] == '-')) ++r;
            if (r < n && std::isdigit(static_cast<unsigned char>(src[r]))) {
              q = digits(r);
              is_float = true;
            }
          }
        }
        std::string num;
        for (size_t k = p; k < q; ++k) {
          if (src[k] != '_') num.push_back(src[k]);
        }
        tokens.push_back({is_float ? TokenType::kFloat : TokenType::kInt, num, line});
        p = q;
        continue;
      }
      if (c == '\'' || c == '"') {
        size_t q = p + 1;
        while (q < n && src[q] != c) {
          if (src[q] == '\\') ++q;
          ++q;
        }
        if (q >= n) return LexError(line, "unterminated string literal");
        auto body = Unescape(std::string_view(src).substr(p + 1, q - p - 1), line);
        if (!body.ok()) return body.status();
        tokens.push_back({TokenType::kString, *body, line});
        line += CountLines(src, p, q);
        p = q + 1;
        continue;
      }
      static constexpr std::string_view kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
      bool matched = false;
      for (std::string_view op : kTwo) {
        if (src.compare(p, 2, op) == 0) {
          tokens.push_back({TokenType::kOperator, std::string(op), line});
          p += 2;
          matched = true;
          break;
        }
      }
      if (matched) continue;
      static constexpr std::string_view kOne = "+-*/%~<>=.,:|()[]{}";
      if (kOne.find(c) != std::string_view::npos) {
        if (c == '(' || c == '[' || c == '{') ++depth;
        if ((c == ')' || c == ']' || c == '}') && depth > 0) --depth;
        tokens.push_back({TokenType::kOperator, std::string(1, c), line});
        ++p;
        continue;
      }
      return LexError(line, absl::StrCat("unexpected character '", std::string(1, c), "'"));
    }
    if (!closed) {
      return LexError(line, is_var ? "unterminated '{{' (missing '}}')"
                                   : "unterminated '{%' (missing '%}')");
    }
  }
  tokens.push_back({TokenType::kEof, "", line});
  return tokens;
}

}  // namespace g4::jinja
