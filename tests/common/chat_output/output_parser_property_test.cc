// Property tests: random texts from a grammar of content / reasoning / tool
// calls (with a known expected parse), random chunkings, and random byte
// mutations. All seeds are fixed.
#include <random>
#include <string>
#include <vector>

#include "common/chat_output/gemma_tool_args.h"
#include "common/chat_output/output_parser.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace g4 {
namespace {

using Json = nlohmann::json;

bool IsValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    size_t n = c < 0x80             ? 1
               : (c & 0xE0) == 0xC0 ? 2
               : (c & 0xF0) == 0xE0 ? 3
               : (c & 0xF8) == 0xF0 ? 4
                                    : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

// Literal pieces for content, reasoning and string arguments. Every '<' that
// starts something that looks like a marker is followed by a space, so no piece
// (or concatenation of pieces) forms a marker by accident.
const std::vector<std::string>& TextPieces() {
  static const auto* pieces = new std::vector<std::string>{
      "hello",       " ",
      "world",       "\n",
      "\n\n",        ",",
      ":",           "{",
      "}",           "[",
      "]",           "\"",
      "\\",          "'",
      "|",           ">",
      "<",           "< ",
      "<| ",         "<|channel ",
      "<channel ",   "<|tool_call ",
      "<tool_call ", "<tool_call| ",
      "<e ",         "<eo ",
      "<t ",         "<tu ",
      "<|turn ",     "<b>",
      "a<b",         "x < y",
      "<|\"| ",      "é",
      "ß",           "日本語",
      "🎉",           "𝄞",
      "Ω",           "\t",
      "call:",       "thought",
      "123",         "-4.5",
      "true",        "null",
      "<|think|>",   "<|image|>",
      "<bos>",       "<pad>",
      "<unk>",       "<|",
  };
  return *pieces;
}

class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  std::mt19937& rng() { return rng_; }

  // Text that contains no marker.
  std::string Text(int max_pieces) {
    std::string s;
    const int n = Uniform(0, max_pieces);
    const auto& pieces = TextPieces();
    for (int i = 0; i < n; ++i) s += pieces[Uniform(0, static_cast<int>(pieces.size()) - 1)];
    return s;
  }

  std::string Identifier() {
    static const char kChars[] = "abcdefghijklmnopqrstuvwxyz_0123456789";
    std::string s(1, "abcdefghijklmnopqrstuvwxyz_"[Uniform(0, 26)]);
    const int n = Uniform(0, 8);
    for (int i = 0; i < n; ++i) s += kChars[Uniform(0, 36)];
    return s;
  }

  // A random JSON value and its Gemma rendering.
  void Value(int depth, Json* json, std::string* gemma) {
    const int kind = depth >= 3 ? Uniform(0, 4) : Uniform(0, 6);
    switch (kind) {
      case 0: {
        std::string s = Text(6);
        while (s.find("<|\"|>") != std::string::npos) s = Text(6);  // pieces may form it
        *gemma = "<|\"|>" + s + "<|\"|>";
        *json = s;
        return;
      }
      case 1: {
        const int64_t v =
            std::uniform_int_distribution<int64_t>(-1'000'000'000'000, 1'000'000'000'000)(rng_);
        *gemma = std::to_string(v);
        *json = v;
        return;
      }
      case 2: {
        static const char* kFloats[] = {"0.5", "-2.25", "1e3", "3.125E-2", "0", "-0.0"};
        const char* f = kFloats[Uniform(0, 5)];
        *gemma = f;
        *json = Json::parse(f);
        return;
      }
      case 3: {
        const bool b = Chance(0.5);
        *gemma = b ? "true" : "false";
        *json = b;
        return;
      }
      case 4:
        *gemma = "null";
        *json = nullptr;
        return;
      case 5:
        Object(depth + 1, json, gemma);
        return;
      default: {
        *json = Json::array();
        *gemma = "[";
        const int n = Uniform(0, 4);
        for (int i = 0; i < n; ++i) {
          Json v;
          std::string g;
          Value(depth + 1, &v, &g);
          if (i > 0) *gemma += Chance(0.2) ? " , " : ",";
          *gemma += g;
          json->push_back(v);
        }
        *gemma += "]";
        return;
      }
    }
  }

  void Object(int depth, Json* json, std::string* gemma) {
    *json = Json::object();
    *gemma = "{";
    const int n = Uniform(0, 4);
    bool first = true;
    for (int i = 0; i < n; ++i) {
      std::string key = Identifier();
      if (json->contains(key)) continue;
      std::string rendered_key = key;
      if (Chance(0.1)) {
        key = Text(3);
        if (json->contains(key)) continue;
        rendered_key = "<|\"|>" + key + "<|\"|>";
      }
      Json v;
      std::string g;
      Value(depth, &v, &g);
      if (!first) *gemma += ",";
      first = false;
      *gemma += rendered_key + ":" + g;
      (*json)[key] = v;
    }
    *gemma += "}";
  }

  struct Case {
    std::string text;
    ParsedOutput expected;
  };

  // A well-formed output: a sequence of content, thought blocks and tool calls.
  Case WellFormed() {
    Case c;
    const int segments = Uniform(0, 6);
    int calls = 0;
    for (int i = 0; i < segments; ++i) {
      const int kind = Uniform(0, 3);
      if (kind <= 1) {
        const std::string t = Text(8);
        c.text += t;
        c.expected.content += t;
      } else if (kind == 2) {
        std::string r = Text(8);
        if (r.rfind("thought", 0) == 0) r = " " + r;
        const int header = Uniform(0, 2);
        c.text += header == 0   ? "<|channel>thought\n"
                  : header == 1 ? "<|channel>"
                                : "<|channel>thought";
        if (header == 2 && !r.empty() && r[0] == '\n') r = " " + r;
        c.text += r + "<channel|>";
        c.expected.reasoning += r;
      } else {
        Json args;
        std::string gemma;
        Object(0, &args, &gemma);
        const std::string name = Identifier();
        c.text += "<|tool_call>call:" + name + gemma + "<tool_call|>";
        c.expected.tool_calls.push_back(
            ToolCall{"call_" + std::to_string(calls++), name, ToolArgumentsToJsonString(args)});
      }
    }
    // Sometimes: end with an unterminated thought block, a partial marker, or
    // an end marker.
    const int tail = Uniform(0, 5);
    if (tail == 0) {
      const std::string r = Text(4);
      c.text += "<|channel>thought\n" + r;
      c.expected.reasoning += r;
    } else if (tail == 1) {
      static const char* kPartial[] = {
          "<",  "<|",   "<|tool_", "<|channel", "<channel|",      "<tool_call",
          "<e", "<eos", "<turn|",  "<|turn",    "<|tool_response"};
      const std::string p = kPartial[Uniform(0, 10)];
      c.text += p;
      c.expected.content += p;
    } else if (tail == 2) {
      static const char* kEnd[] = {"<turn|>", "<eos>", "<|tool_response>", "<|turn>"};
      c.text += std::string(kEnd[Uniform(0, 3)]) + Text(5) + "<|tool_call>call:f{}<tool_call|>";
    }
    return c;
  }

  // A random mutation of `text`.
  std::string Mutate(std::string text) {
    static const std::vector<std::string> kInserts = {"<",
                                                      ">",
                                                      "|",
                                                      "{",
                                                      "}",
                                                      "[",
                                                      "]",
                                                      ":",
                                                      ",",
                                                      "\"",
                                                      "<|\"|>",
                                                      "<|tool_call>",
                                                      "<tool_call|>",
                                                      "<|channel>",
                                                      "<channel|>",
                                                      "<turn|>",
                                                      "<|tool_response>",
                                                      "call:",
                                                      "\xff",
                                                      "\xe2\x82",
                                                      "\x80",
                                                      std::string(1, '\0'),
                                                      "\n"};
    const int ops = Uniform(1, 4);
    for (int i = 0; i < ops; ++i) {
      const int pos = text.empty() ? 0 : Uniform(0, static_cast<int>(text.size()));
      switch (Uniform(0, 4)) {
        case 0:
          if (!text.empty() && pos < static_cast<int>(text.size())) {
            text.erase(pos, Uniform(1, 6));
          }
          break;
        case 1:
          text.insert(pos, kInserts[Uniform(0, static_cast<int>(kInserts.size()) - 1)]);
          break;
        case 2:
          text.insert(text.begin() + pos, static_cast<char>(Uniform(0, 255)));
          break;
        case 3:
          text.resize(pos);
          break;
        default:
          if (!text.empty()) {
            const int a = Uniform(0, static_cast<int>(text.size()) - 1);
            text.insert(pos, text.substr(a, Uniform(1, 12)));
          }
          break;
      }
    }
    return text;
  }

 private:
  std::mt19937 rng_;
};

std::string Dump(const ParsedOutput& p) {
  Json j = {{"reasoning", p.reasoning}, {"content", p.content}, {"tool_calls", Json::array()}};
  for (const ToolCall& c : p.tool_calls) {
    j["tool_calls"].push_back({{"id", c.id}, {"name", c.name}, {"arguments", c.arguments_json}});
  }
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Feeds `text` in the given chunk sizes (cycling) and returns the concatenated
// deltas.
ParsedOutput ParseChunked(const std::string& text, const std::vector<size_t>& cuts,
                          bool check_utf8) {
  StreamingOutputParser parser;
  ParsedOutput out;
  size_t prev = 0;
  auto add = [&](const OutputDelta& d, bool last) {
    if (check_utf8) {
      EXPECT_TRUE(IsValidUtf8(d.content)) << "content delta not UTF-8";
      EXPECT_TRUE(IsValidUtf8(d.reasoning)) << "reasoning delta not UTF-8";
    }
    AppendDelta(d, &out);
  };
  for (size_t cut : cuts) {
    add(parser.Feed(absl::string_view(text).substr(prev, cut - prev)), false);
    prev = cut;
  }
  add(parser.Feed(absl::string_view(text).substr(prev)), false);
  add(parser.Finish(), true);
  return out;
}

std::vector<size_t> RandomCuts(size_t size, std::mt19937& rng) {
  std::vector<size_t> cuts;
  const int mode = std::uniform_int_distribution<int>(0, 3)(rng);
  size_t pos = 0;
  while (true) {
    size_t step;
    if (mode == 0) {
      step = 1;
    } else if (mode == 1) {
      step = std::uniform_int_distribution<size_t>(1, 3)(rng);
    } else if (mode == 2) {
      step = std::uniform_int_distribution<size_t>(1, 16)(rng);
    } else {
      step = std::uniform_int_distribution<size_t>(0, 64)(rng);  // includes empty chunks
    }
    pos += step;
    if (pos >= size) break;
    cuts.push_back(pos);
  }
  return cuts;
}

void CheckSplitInvariance(const std::string& text, const ParsedOutput& complete, std::mt19937& rng,
                          int random_splits, bool check_utf8) {
  // Every single split point.
  if (text.size() <= 400) {
    for (size_t cut = 0; cut <= text.size(); ++cut) {
      const ParsedOutput got = ParseChunked(text, {cut}, check_utf8);
      ASSERT_EQ(got, complete) << "split at " << cut << " of " << Dump(ParsedOutput{"", text, {}})
                               << "\n got " << Dump(got) << "\nwant " << Dump(complete);
    }
  }
  for (int i = 0; i < random_splits; ++i) {
    const ParsedOutput got = ParseChunked(text, RandomCuts(text.size(), rng), check_utf8);
    ASSERT_EQ(got, complete) << Dump(ParsedOutput{"", text, {}}) << "\n got " << Dump(got)
                             << "\nwant " << Dump(complete);
  }
}

void CheckToolCallsAreJson(const ParsedOutput& p) {
  for (const ToolCall& c : p.tool_calls) {
    const Json j = Json::parse(c.arguments_json, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << c.arguments_json;
    ASSERT_TRUE(j.is_object()) << c.arguments_json;
    EXPECT_FALSE(c.name.empty());
    EXPECT_FALSE(c.id.empty());
  }
}

TEST(OutputParserPropertyTest, WellFormedMatchesGrammarAndAnySplit) {
  Generator gen(20240601);
  std::mt19937 split_rng(7);
  int checked_calls = 0;
  for (int iter = 0; iter < 1500; ++iter) {
    const Generator::Case c = gen.WellFormed();
    ASSERT_TRUE(IsValidUtf8(c.text));
    const ParsedOutput complete = ParseCompleteOutput(c.text);
    ASSERT_EQ(complete, c.expected) << "text: " << Dump(ParsedOutput{"", c.text, {}}) << "\n got "
                                    << Dump(complete) << "\nwant " << Dump(c.expected);
    CheckToolCallsAreJson(complete);
    checked_calls += static_cast<int>(complete.tool_calls.size());
    CheckSplitInvariance(c.text, complete, split_rng, 20, /*check_utf8=*/true);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(checked_calls, 500);
}

TEST(OutputParserPropertyTest, ArgumentsRoundTrip) {
  Generator gen(99);
  for (int iter = 0; iter < 3000; ++iter) {
    Json expected;
    std::string gemma;
    gen.Object(0, &expected, &gemma);
    absl::StatusOr<Json> got = ParseGemmaToolArguments(gemma);
    ASSERT_TRUE(got.ok()) << gemma << ": " << got.status();
    ASSERT_EQ(*got, expected) << gemma;
    const Json reparsed = Json::parse(ToolArgumentsToJsonString(*got), nullptr, false);
    ASSERT_EQ(reparsed, expected) << gemma;
  }
}

TEST(OutputParserPropertyTest, MutatedOutputsNeverCrashAndStaySplitInvariant) {
  Generator gen(31337);
  std::mt19937 split_rng(11);
  for (int iter = 0; iter < 3000; ++iter) {
    const std::string text = gen.Mutate(gen.WellFormed().text);
    const ParsedOutput complete = ParseCompleteOutput(text);
    CheckToolCallsAreJson(complete);
    // Nothing is invented: every output byte comes from the input, so sizes are
    // bounded.
    EXPECT_LE(complete.content.size() + complete.reasoning.size(), text.size());
    CheckSplitInvariance(text, complete, split_rng, 5,
                         /*check_utf8=*/IsValidUtf8(text));
    if (HasFatalFailure()) return;
  }
}

TEST(OutputParserPropertyTest, MutatedArgumentsNeverCrash) {
  Generator gen(4242);
  int ok = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    Json expected;
    std::string gemma;
    gen.Object(0, &expected, &gemma);
    absl::StatusOr<Json> got = ParseGemmaToolArguments(gen.Mutate(gemma));
    if (got.ok()) {
      ++ok;
      ASSERT_TRUE(got->is_object());
      const std::string text = ToolArgumentsToJsonString(*got);
      ASSERT_FALSE(Json::parse(text, nullptr, false).is_discarded()) << text;
    }
  }
  EXPECT_GT(ok, 0);
}

TEST(OutputParserPropertyTest, RandomBytesNeverCrash) {
  std::mt19937 rng(5);
  const std::string alphabet = "<|>{}[]:,\"\\ ab\nchanneltool_callthoughtturneos";
  for (int iter = 0; iter < 3000; ++iter) {
    std::string text;
    const int n = std::uniform_int_distribution<int>(0, 120)(rng);
    for (int i = 0; i < n; ++i) {
      text += std::bernoulli_distribution(0.9)(rng)
                  ? alphabet[std::uniform_int_distribution<size_t>(0, alphabet.size() - 1)(rng)]
                  : static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng));
    }
    const ParsedOutput complete = ParseCompleteOutput(text);
    CheckToolCallsAreJson(complete);
    CheckSplitInvariance(text, complete, rng, 3, /*check_utf8=*/false);
    if (HasFatalFailure()) return;
    (void)ParseGemmaToolArguments(text);
  }
}

}  // namespace
}  // namespace g4
