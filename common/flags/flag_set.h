// One declarative command-line parser for every g4serve binary (docs/cli.md, "Flags").
//
// A binary declares each flag once — name, the variable it sets, what it means, its value's
// bounds — and gets parsing, errors and the --help text from that one declaration:
//
//   CoordinatorFlags f;
//   FlagSet flags("g4-coordinator", "--model DIR [flags]");
//   flags.Add("model", &f.model, "model directory").Value("DIR").Required();
//   flags.Add("port", &f.port, "listen port; 0 = pick a free one").Range(0, 65535);
//   G4_RETURN_IF_ERROR(flags.Parse(args));
//   if (flags.help()) ...  // print flags.Usage(), exit 0
//
// The contract every binary shares:
// - `--name value` and `--name=value`; names are dashed, and vLLM's underscore spelling
//   (`--max_model_len`) is accepted for the same flag.
// - Switches (bool) take no value; `--name=true|false` also works.
// - Durations: "30s", "500ms", "10m", "1h30m", or a bare number of seconds ("1.5").
// - `--help` and `-h` stop parsing: help() is true, nothing is required.
// - Positional arguments only where a binary declares them (AddPositional), all required.
// - Errors are one line naming the flag: `unknown flag "--x"`, `--port needs a value`,
//   `--port: "x" is not an integer`, `--port: 70000 is out of range [0, 65535]`,
//   `--model is required`, `--model given twice` (only with RejectDuplicates()).
//   FlagError() prints it as the binaries do (`prog: <error> (see --help)`, exit code 2).
// - A flag given twice: the last one wins (argparse's rule), unless RejectDuplicates() or the
//   flag is repeatable (a std::vector target, which appends).
//
// Why not absl::flags (Debian's Abseil has it): its flag names are C++ identifiers, so
// `--max-model-len` cannot exist; its parser exits the process with code 1 and multi-line
// messages on a bad flag (the CLI contract is one line and code 2); and its flags are globals,
// so a binary's parsing cannot be unit tested twice in one process. See docs/cli.md.
#ifndef G4SERVE_COMMON_FLAGS_FLAG_SET_H_
#define G4SERVE_COMMON_FLAGS_FLAG_SET_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace g4 {

class FlagSet;

// One declared flag; the setters refine the declaration and return *this for chaining.
class Flag {
 public:
  // How the value is written in the usage ("N", "DIR", "DURATION"); each type has a default.
  Flag& Value(std::string value_name);
  // The default as the usage shows it, when the target's initial value does not say it well
  // ("the model's max_position_embeddings"). Without it the usage prints the initial value.
  Flag& Default(std::string text);
  // Parse fails (`--name is required`) unless the flag is given.
  Flag& Required();
  // An empty value is an error (`--name: empty value`).
  Flag& NonEmpty();
  // Integer bounds, inclusive (integer targets only).
  Flag& Range(int64_t min, int64_t max);
  Flag& Min(int64_t min);
  // Floating-point bounds (double targets only); `exclusive_min` makes min itself invalid.
  Flag& RealRange(double min, double max, bool exclusive_min = false);
  // Duration bounds (absl::Duration targets only), inclusive: Min(absl::ZeroDuration())
  // accepts 0; MinExclusive(absl::ZeroDuration()) requires a positive duration.
  Flag& Min(absl::Duration min);
  Flag& MinExclusive(absl::Duration min);
  // Extra validation after the value is parsed and stored; its error is prefixed "--name: ".
  Flag& Check(std::function<absl::Status()> check);

  const std::string& name() const { return name_; }

 private:
  friend class FlagSet;
  using Setter = std::function<absl::Status(const Flag& flag, absl::string_view value)>;

  std::string name_;
  std::string value_name_;  // empty: a switch (no value)
  std::string help_;
  std::string default_text_;
  bool required_ = false;
  bool non_empty_ = false;
  bool repeatable_ = false;
  std::optional<int64_t> int_min_, int_max_;
  std::optional<double> double_min_, double_max_;
  bool double_min_exclusive_ = false;
  std::optional<absl::Duration> duration_min_;
  bool duration_min_exclusive_ = false;
  std::function<absl::Status()> check_;
  Setter set_;
  bool seen_ = false;
};

class FlagSet {
 public:
  // `program`: "g4-coordinator"; `synopsis`: what follows the program name on the usage line,
  // e.g. "--model DIR [flags]"; `description`: an optional paragraph printed under it.
  FlagSet(std::string program, std::string synopsis, std::string description = "");
  FlagSet(const FlagSet&) = delete;
  FlagSet& operator=(const FlagSet&) = delete;

  // Declares --name setting *out (which must outlive Parse). Supported targets: std::string,
  // std::optional<std::string>, std::vector<std::string> (repeatable: each use appends), bool
  // (a switch), int, int64_t, uint64_t, double, std::optional of int / uint64_t / double / bool,
  // absl::Duration. The usage's default is *out's value now, unless Default() says otherwise.
  Flag& Add(std::string name, std::string* out, std::string help);
  Flag& Add(std::string name, std::optional<std::string>* out, std::string help);
  Flag& Add(std::string name, std::vector<std::string>* out, std::string help);
  Flag& Add(std::string name, bool* out, std::string help);
  Flag& Add(std::string name, std::optional<bool>* out, std::string help);
  Flag& Add(std::string name, int* out, std::string help);
  Flag& Add(std::string name, int64_t* out, std::string help);
  Flag& Add(std::string name, uint64_t* out, std::string help);
  Flag& Add(std::string name, std::optional<int>* out, std::string help);
  Flag& Add(std::string name, std::optional<uint64_t>* out, std::string help);
  Flag& Add(std::string name, double* out, std::string help);
  Flag& Add(std::string name, std::optional<double>* out, std::string help);
  Flag& Add(std::string name, absl::Duration* out, std::string help);

  // A flag with its own parsing: `set` gets the raw value (its error is prefixed "--name: ").
  Flag& AddCustom(std::string name, std::string value_name, std::string help,
                  std::function<absl::Status(absl::string_view value)> set);
  // A switch with its own action: `set(true)` for `--name` or `--name=true`, `set(false)` for
  // `--name=false`.
  Flag& AddSwitch(std::string name, std::string help, std::function<void(bool)> set);

  // A positional argument (one that does not start with "--"), filled in declaration order;
  // each one is required (`IF_A is required`), one too many is `unexpected argument "x"`. The
  // usage lists them under "arguments:" with `help`; `name` is how they are written there.
  void AddPositional(std::string name, std::string* out, std::string help);

  // `--name` given twice is an error (`--name given twice`), for tools whose flags name one
  // input each. Repeatable flags are exempt.
  void RejectDuplicates() { reject_duplicates_ = true; }

  // Parses the arguments after the program name. Errors as in the file comment.
  absl::Status Parse(absl::Span<const char* const> args);
  absl::Status Parse(absl::Span<const std::string> args);
  absl::Status Parse(int argc, char** argv) {
    return Parse(absl::MakeConstSpan(argv + (argc > 0 ? 1 : 0), argc > 0 ? argc - 1 : 0));
  }

  // --help or -h was given (parsing stopped there).
  bool help() const { return help_; }
  // True if --name was given.
  bool Given(absl::string_view name) const;

  // The full usage: the synopsis line, the description, one entry per flag (value, meaning,
  // default or "required"), in declaration order, then -h/--help.
  std::string Usage() const;
  const std::string& program() const { return program_; }

 private:
  Flag& NewFlag(std::string name, std::string value_name, std::string help,
                std::string default_text, Flag::Setter set);
  absl::Status ParseViews(absl::Span<const absl::string_view> args);
  Flag* Find(absl::string_view name);

  std::string program_, synopsis_, description_;
  std::vector<std::unique_ptr<Flag>> flags_;
  struct Positional {
    std::string name, help;
    std::string* out;
  };
  std::vector<Positional> positionals_;
  bool reject_duplicates_ = false;
  bool help_ = false;
};

// A binary whose flags fill an options struct T (with a `bool help`): what its usage says, and
// the function that declares its flags on a FlagSet, bound to a T. One place for both the parser
// and the --help text:
//
//   constexpr FlagSpec<PlanOptions> kSpec = {"g4-plan", "--model DIR ...", "Prints ...", Declare};
//   PlanOptions o;  // defaults
//   G4_RETURN_IF_ERROR(kSpec.Parse(args, &o));
//   if (o.help) ...  // kSpec.Usage()
template <typename T>
struct FlagSpec {
  const char* program;
  const char* synopsis;
  const char* description;
  void (*declare)(FlagSet& flags, T& options);

  // Parses into `*options` (its values before are the defaults); --help sets options->help and
  // stops there.
  template <typename Args>
  absl::Status Parse(const Args& args, T* options) const {
    FlagSet flags(program, synopsis, description);
    declare(flags, *options);
    absl::Status status = flags.Parse(args);
    options->help = flags.help();
    return status;
  }
  // The --help text, with the defaults of a default-constructed T.
  std::string Usage() const {
    T options;
    FlagSet flags(program, synopsis, description);
    declare(flags, options);
    return flags.Usage();
  }
};

// For main(): prints "<program>: <status message> (see --help)" as one line on stderr and
// returns 2, the exit code of a bad command line.
int FlagError(absl::string_view program, const absl::Status& status);

// For main(): prints `usage` to stdout and returns 0.
int PrintUsage(const std::string& usage);

}  // namespace g4

#endif  // G4SERVE_COMMON_FLAGS_FLAG_SET_H_
