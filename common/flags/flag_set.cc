#include "common/flags/flag_set.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

namespace g4 {
namespace {

constexpr size_t kUsageWidth = 100;    // help text wraps here
constexpr size_t kMaxFlagColumn = 32;  // a longer "--name VALUE" puts its help on the next line

absl::Status BadValue(const Flag& f, absl::string_view expected, absl::string_view value) {
  return absl::InvalidArgumentError(
      absl::StrCat("--", f.name(), ": expected ", expected, ", got \"", value, "\""));
}

std::string FormatDouble(double d) {
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  return absl::StrCat(d);
}

// vLLM's underscore spelling (--max_model_len) names the dashed flag.
std::string Canonical(absl::string_view name) {
  std::string n(name);
  std::replace(n.begin(), n.end(), '_', '-');
  return n;
}

}  // namespace

// --- Flag -------------------------------------------------------------------------------------

Flag& Flag::Value(std::string value_name) {
  if (!value_name_.empty()) value_name_ = std::move(value_name);  // a switch stays a switch
  return *this;
}
Flag& Flag::Default(std::string text) {
  default_text_ = std::move(text);
  return *this;
}
Flag& Flag::Required() {
  required_ = true;
  return *this;
}
Flag& Flag::NonEmpty() {
  non_empty_ = true;
  return *this;
}
Flag& Flag::Range(int64_t min, int64_t max) {
  int_min_ = min;
  int_max_ = max;
  return *this;
}
Flag& Flag::Min(int64_t min) {
  int_min_ = min;
  return *this;
}
Flag& Flag::RealRange(double min, double max, bool exclusive_min) {
  double_min_ = min;
  double_max_ = max;
  double_min_exclusive_ = exclusive_min;
  return *this;
}
Flag& Flag::Min(absl::Duration min) {
  duration_min_ = min;
  duration_min_exclusive_ = false;
  return *this;
}
Flag& Flag::MinExclusive(absl::Duration min) {
  duration_min_ = min;
  duration_min_exclusive_ = true;
  return *this;
}
Flag& Flag::Check(std::function<absl::Status()> check) {
  check_ = std::move(check);
  return *this;
}

// --- typed values -----------------------------------------------------------------------------

namespace {

// Parses an integer of type I within the flag's bounds (and I's own).
template <typename I>
absl::Status ParseInt(const Flag& f, std::optional<int64_t> min, std::optional<int64_t> max,
                      absl::string_view v, I* out) {
  std::string expected = "an integer";
  if (min.has_value() && max.has_value()) {
    absl::StrAppend(&expected, " in [", *min, ", ", *max, "]");
  } else if (min.has_value()) {
    absl::StrAppend(&expected, " >= ", *min);
  } else if (max.has_value()) {
    absl::StrAppend(&expected, " <= ", *max);
  }
  I n{};
  if (!absl::SimpleAtoi(v, &n)) return BadValue(f, expected, v);  // also: out of I's range
  if constexpr (std::is_signed_v<I>) {
    if ((min.has_value() && n < *min) || (max.has_value() && n > *max)) {
      return BadValue(f, expected, v);
    }
  } else {
    if (max.has_value() && n > static_cast<uint64_t>(*max)) return BadValue(f, expected, v);
  }
  *out = n;
  return absl::OkStatus();
}

absl::Status ParseDouble(const Flag& f, std::optional<double> min, std::optional<double> max,
                         bool exclusive_min, absl::string_view v, double* out) {
  std::string expected = "a number";
  if (min.has_value() && max.has_value()) {
    absl::StrAppend(&expected, " in ", exclusive_min ? "(" : "[", FormatDouble(*min), ", ",
                    FormatDouble(*max), "]");
  } else if (min.has_value()) {
    absl::StrAppend(&expected, exclusive_min ? " > " : " >= ", FormatDouble(*min));
  }
  double d = 0;
  if (!absl::SimpleAtod(v, &d) || std::isnan(d)) return BadValue(f, expected, v);
  if (min.has_value() && (d < *min || (exclusive_min && d == *min))) {
    return BadValue(f, expected, v);
  }
  if (max.has_value() && d > *max) return BadValue(f, expected, v);
  *out = d;
  return absl::OkStatus();
}

absl::Status ParseDurationValue(const Flag& f, std::optional<absl::Duration> min, bool exclusive,
                                absl::string_view v, absl::Duration* out) {
  std::string expected = "a duration like 30s or 500ms";
  if (min.has_value()) {
    expected = absl::StrCat("a duration ", exclusive ? "> " : ">= ", absl::FormatDuration(*min),
                            " like 30s or 500ms");
  }
  absl::Duration d;
  double seconds = 0;
  if (absl::SimpleAtod(v, &seconds) && std::isfinite(seconds)) {
    d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(v, &d) || d == absl::InfiniteDuration() ||
             d == -absl::InfiniteDuration()) {
    return BadValue(f, expected, v);
  }
  if (min.has_value() && (d < *min || (exclusive && d == *min))) return BadValue(f, expected, v);
  *out = d;
  return absl::OkStatus();
}

}  // namespace

Flag& FlagSet::Add(std::string name, std::string* out, std::string help) {
  return NewFlag(std::move(name), "TEXT", std::move(help), out->empty() ? "none" : *out,
                 [out](const Flag&, absl::string_view v) {
                   *out = std::string(v);
                   return absl::OkStatus();
                 });
}

Flag& FlagSet::Add(std::string name, std::optional<std::string>* out, std::string help) {
  return NewFlag(std::move(name), "TEXT", std::move(help), out->value_or("none"),
                 [out](const Flag&, absl::string_view v) {
                   *out = std::string(v);
                   return absl::OkStatus();
                 });
}

Flag& FlagSet::Add(std::string name, std::vector<std::string>* out, std::string help) {
  Flag& f = NewFlag(std::move(name), "TEXT", std::move(help),
                    out->empty() ? "none" : absl::StrJoin(*out, ","),
                    [out](const Flag&, absl::string_view v) {
                      out->emplace_back(v);
                      return absl::OkStatus();
                    });
  f.repeatable_ = true;
  return f;
}

Flag& FlagSet::Add(std::string name, bool* out, std::string help) {
  return NewFlag(std::move(name), "", std::move(help), *out ? "on" : "off",
                 [out](const Flag& f, absl::string_view v) {
                   if (v.empty()) {
                     *out = true;
                   } else if (!absl::SimpleAtob(v, out)) {
                     return BadValue(f, "true or false", v);
                   }
                   return absl::OkStatus();
                 });
}

Flag& FlagSet::Add(std::string name, std::optional<bool>* out, std::string help) {
  return NewFlag(std::move(name), "", std::move(help),
                 out->has_value() ? (**out ? "on" : "off") : "unset",
                 [out](const Flag& f, absl::string_view v) {
                   bool b = true;
                   if (!v.empty() && !absl::SimpleAtob(v, &b)) {
                     return BadValue(f, "true or false", v);
                   }
                   *out = b;
                   return absl::OkStatus();
                 });
}

Flag& FlagSet::Add(std::string name, int* out, std::string help) {
  return NewFlag(std::move(name), "N", std::move(help), absl::StrCat(*out),
                 [out](const Flag& f, absl::string_view v) {
                   return ParseInt(f, f.int_min_, f.int_max_, v, out);
                 });
}

Flag& FlagSet::Add(std::string name, int64_t* out, std::string help) {
  return NewFlag(std::move(name), "N", std::move(help), absl::StrCat(*out),
                 [out](const Flag& f, absl::string_view v) {
                   return ParseInt(f, f.int_min_, f.int_max_, v, out);
                 });
}

Flag& FlagSet::Add(std::string name, uint64_t* out, std::string help) {
  return NewFlag(std::move(name), "N", std::move(help), absl::StrCat(*out),
                 [out](const Flag& f, absl::string_view v) {
                   return ParseInt(f, std::nullopt, f.int_max_, v, out);
                 });
}

Flag& FlagSet::Add(std::string name, std::optional<int>* out, std::string help) {
  return NewFlag(std::move(name), "N", std::move(help),
                 out->has_value() ? absl::StrCat(**out) : "unset",
                 [out](const Flag& f, absl::string_view v) {
                   int n = 0;
                   absl::Status s = ParseInt(f, f.int_min_, f.int_max_, v, &n);
                   if (s.ok()) *out = n;
                   return s;
                 });
}

Flag& FlagSet::Add(std::string name, std::optional<uint64_t>* out, std::string help) {
  return NewFlag(std::move(name), "N", std::move(help),
                 out->has_value() ? absl::StrCat(**out) : "unset",
                 [out](const Flag& f, absl::string_view v) {
                   uint64_t n = 0;
                   absl::Status s = ParseInt(f, std::nullopt, f.int_max_, v, &n);
                   if (s.ok()) *out = n;
                   return s;
                 });
}

Flag& FlagSet::Add(std::string name, double* out, std::string help) {
  return NewFlag(std::move(name), "X", std::move(help), FormatDouble(*out),
                 [out](const Flag& f, absl::string_view v) {
                   return ParseDouble(f, f.double_min_, f.double_max_, f.double_min_exclusive_, v,
                                      out);
                 });
}

Flag& FlagSet::Add(std::string name, std::optional<double>* out, std::string help) {
  return NewFlag(std::move(name), "X", std::move(help),
                 out->has_value() ? FormatDouble(**out) : "unset",
                 [out](const Flag& f, absl::string_view v) {
                   double d = 0;
                   absl::Status s =
                       ParseDouble(f, f.double_min_, f.double_max_, f.double_min_exclusive_, v, &d);
                   if (s.ok()) *out = d;
                   return s;
                 });
}

Flag& FlagSet::Add(std::string name, absl::Duration* out, std::string help) {
  return NewFlag(std::move(name), "DURATION", std::move(help), absl::FormatDuration(*out),
                 [out](const Flag& f, absl::string_view v) {
                   return ParseDurationValue(f, f.duration_min_, f.duration_min_exclusive_, v, out);
                 });
}

Flag& FlagSet::AddCustom(std::string name, std::string value_name, std::string help,
                         std::function<absl::Status(absl::string_view value)> set) {
  return NewFlag(std::move(name), value_name.empty() ? "VALUE" : std::move(value_name),
                 std::move(help), "none",
                 [set = std::move(set)](const Flag& f, absl::string_view v) -> absl::Status {
                   absl::Status s = set(v);
                   if (s.ok()) return s;
                   return absl::Status(s.code(), absl::StrCat("--", f.name(), ": ", s.message()));
                 });
}

Flag& FlagSet::AddSwitch(std::string name, std::string help, std::function<void(bool)> set) {
  return NewFlag(std::move(name), "", std::move(help), "off",
                 [set = std::move(set)](const Flag& f, absl::string_view v) {
                   bool b = true;
                   if (!v.empty() && !absl::SimpleAtob(v, &b)) {
                     return BadValue(f, "true or false", v);
                   }
                   set(b);
                   return absl::OkStatus();
                 });
}

// --- FlagSet ----------------------------------------------------------------------------------

FlagSet::FlagSet(std::string program, std::string synopsis, std::string description)
    : program_(std::move(program)),
      synopsis_(std::move(synopsis)),
      description_(std::move(description)) {}

Flag& FlagSet::NewFlag(std::string name, std::string value_name, std::string help,
                       std::string default_text, Flag::Setter set) {
  auto f = std::make_unique<Flag>();
  f->name_ = Canonical(name);
  f->value_name_ = std::move(value_name);
  f->help_ = std::move(help);
  f->default_text_ = std::move(default_text);
  f->set_ = std::move(set);
  flags_.push_back(std::move(f));
  return *flags_.back();
}

void FlagSet::AddPositional(std::string name, std::string* out, std::string help) {
  positionals_.push_back({std::move(name), std::move(help), out});
}

Flag* FlagSet::Find(absl::string_view name) {
  const std::string canonical = Canonical(name);
  for (auto& f : flags_) {
    if (f->name_ == canonical) return f.get();
  }
  return nullptr;
}

bool FlagSet::Given(absl::string_view name) const {
  const std::string canonical = Canonical(name);
  for (const auto& f : flags_) {
    if (f->name_ == canonical) return f->seen_;
  }
  return false;
}

absl::Status FlagSet::Parse(absl::Span<const char* const> args) {
  std::vector<absl::string_view> views(args.begin(), args.end());
  return ParseViews(views);
}

absl::Status FlagSet::Parse(absl::Span<const std::string> args) {
  std::vector<absl::string_view> views(args.begin(), args.end());
  return ParseViews(views);
}

absl::Status FlagSet::ParseViews(absl::Span<const absl::string_view> args) {
  help_ = false;
  for (auto& f : flags_) f->seen_ = false;
  size_t positionals = 0;  // filled so far
  for (size_t i = 0; i < args.size(); ++i) {
    const absl::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") {
      help_ = true;
      return absl::OkStatus();
    }
    if (!absl::StartsWith(arg, "-") && positionals < positionals_.size()) {
      *positionals_[positionals++].out = std::string(arg);
      continue;
    }
    if (!absl::StartsWith(arg, "--") || arg.size() == 2) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", arg, "\""));
    }
    absl::string_view name = arg.substr(2);
    absl::string_view value;
    bool inline_value = false;
    if (const size_t eq = name.find('='); eq != absl::string_view::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    Flag* f = Find(name);
    if (f == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag \"--", name, "\""));
    }
    if (f->seen_ && reject_duplicates_ && !f->repeatable_) {
      return absl::InvalidArgumentError(absl::StrCat("--", f->name_, " given twice"));
    }
    const bool is_switch = f->value_name_.empty();
    if (!is_switch && !inline_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--", f->name_, " needs a value"));
      }
      value = args[++i];
    }
    if (is_switch && inline_value && value.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", f->name_, ": expected true or false, got \"\""));
    }
    if (f->non_empty_ && value.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--", f->name_, ": empty value"));
    }
    absl::Status s = f->set_(*f, value);
    if (!s.ok()) return s;
    if (f->check_) {
      s = f->check_();
      if (!s.ok()) {
        return absl::Status(s.code(), absl::StrCat("--", f->name_, ": ", s.message()));
      }
    }
    f->seen_ = true;
  }
  if (positionals < positionals_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(positionals_[positionals].name, " is required"));
  }
  for (const auto& f : flags_) {
    if (f->required_ && !f->seen_) {
      return absl::InvalidArgumentError(absl::StrCat("--", f->name_, " is required"));
    }
  }
  return absl::OkStatus();
}

namespace {

// Written for a space that must not become a line break ("(default 30s)" stays on one line,
// where tests and readers look for it); a space when printed.
constexpr absl::string_view kNoBreakSpace = "\x1f";

// Appends `text` wrapped at kUsageWidth, continuation lines indented by `indent`; the first line
// starts at column `column`.
void AppendWrapped(std::string* out, absl::string_view text, size_t column, size_t indent) {
  std::vector<absl::string_view> words = absl::StrSplit(text, ' ', absl::SkipEmpty());
  bool first = true;
  for (absl::string_view w : words) {
    if (!first && column + 1 + w.size() > kUsageWidth) {
      absl::StrAppend(out, "\n", std::string(indent, ' '));
      column = indent;
    } else if (!first) {
      out->push_back(' ');
      ++column;
    }
    absl::StrAppend(out, absl::StrReplaceAll(w, {{kNoBreakSpace, " "}}));
    column += w.size();
    first = false;
  }
}

}  // namespace

std::string FlagSet::Usage() const {
  std::string out = absl::StrCat("usage: ", program_, " ");
  const size_t synopsis_column = out.size();
  AppendWrapped(&out, synopsis_, synopsis_column, synopsis_column);
  out.push_back('\n');
  if (!description_.empty()) {
    out.push_back('\n');
    for (absl::string_view paragraph : absl::StrSplit(description_, '\n')) {
      AppendWrapped(&out, paragraph, 0, 0);
      out.push_back('\n');
    }
  }
  struct Entry {
    std::string head, help;
  };
  // Entries in two columns: the heads, then each one's help wrapped in the second column.
  auto append_entries = [&out](const std::vector<Entry>& entries) {
    size_t column = 0;
    for (const Entry& e : entries) {
      if (e.head.size() + 2 <= kMaxFlagColumn) column = std::max(column, e.head.size() + 2);
    }
    for (const Entry& e : entries) {
      out += e.head;
      if (e.head.size() + 2 <= column) {
        out += std::string(column - e.head.size(), ' ');
      } else {
        out += "\n" + std::string(column, ' ');
      }
      AppendWrapped(&out, e.help, column, column);
      out.push_back('\n');
    }
  };
  if (!positionals_.empty()) {
    out += "\narguments:\n";
    std::vector<Entry> entries;
    for (const Positional& p : positionals_) entries.push_back({"  " + p.name, p.help});
    append_entries(entries);
  }
  out += "\nflags:\n";
  std::vector<Entry> entries;
  for (const auto& f : flags_) {
    Entry e;
    e.head = absl::StrCat("  --", f->name_, f->value_name_.empty() ? "" : " ", f->value_name_);
    e.help = f->help_;
    if (f->required_) {
      absl::StrAppend(&e.help, " (required)");
    } else if (f->repeatable_) {
      absl::StrAppend(&e.help, " (repeatable; default", kNoBreakSpace, f->default_text_, ")");
    } else {
      absl::StrAppend(&e.help, " (default", kNoBreakSpace, f->default_text_, ")");
    }
    entries.push_back(std::move(e));
  }
  entries.push_back({"  -h, --help", "print this help and exit"});
  append_entries(entries);
  return out;
}

int FlagError(absl::string_view program, const absl::Status& status) {
  std::string message(status.message());
  std::replace(message.begin(), message.end(), '\n', ' ');  // one line, whatever the message
  std::fprintf(stderr, "%s: %s (see --help)\n", std::string(program).c_str(), message.c_str());
  return 2;
}

int PrintUsage(const std::string& usage) {
  std::fputs(usage.c_str(), stdout);
  return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace g4
