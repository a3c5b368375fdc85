// Shared helpers for the grammar tests: a small vocabulary shaped like Gemma's (specials, byte
// tokens, multi-byte tokens), a brute-force token mask, random generation under a grammar, and a
// generator of random schemas from the supported subset.
#ifndef G4SERVE_TESTS_COMMON_GRAMMAR_GRAMMAR_TEST_UTIL_H_
#define G4SERVE_TESTS_COMMON_GRAMMAR_GRAMMAR_TEST_UTIL_H_

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/grammar/compiler.h"
#include "common/grammar/json_grammar.h"
#include "common/grammar/matcher.h"
#include "common/grammar/token_vocab.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/grammar/small_vocab.h"

namespace g4::grammar::testing {

// Bit t set when AcceptToken(t) succeeds on a copy of `m`.
inline std::vector<uint32_t> BruteForceMask(const GrammarMatcher& m) {
  const TokenVocab& v = m.compiled().vocab();
  std::vector<uint32_t> bits(v.bitmask_words(), 0);
  for (int32_t id = 0; id < v.size(); ++id) {
    GrammarMatcher copy = m;
    if (copy.AcceptToken(id)) bits[id >> 5] |= uint32_t{1} << (id & 31);
  }
  return bits;
}

inline std::vector<int32_t> AllowedIds(const std::vector<uint32_t>& bits) {
  std::vector<int32_t> ids;
  for (size_t w = 0; w < bits.size(); ++w) {
    for (int b = 0; b < 32; ++b) {
      if ((bits[w] >> b) & 1) ids.push_back(static_cast<int32_t>(w * 32 + b));
    }
  }
  return ids;
}

struct Generation {
  std::string text;              // bytes of the accepted tokens (special tokens as their text)
  std::vector<int32_t> tokens;
  bool completed = false;        // an end token was accepted
};

// Samples uniformly among allowed tokens (an end token with probability `end_bias` when one is
// allowed) for at most `max_tokens` tokens. Optionally checks every mask against brute force.
inline Generation Generate(std::shared_ptr<const CompiledGrammar> compiled, std::mt19937& rng,
                           int max_tokens, double end_bias = 0.5, bool check_masks = false) {
  GrammarMatcher m(compiled, DefaultEnds());
  const TokenVocab& v = compiled->vocab();
  std::vector<uint32_t> bits(v.bitmask_words());
  Generation g;
  for (int step = 0; step < max_tokens; ++step) {
    m.FillNextTokenBitmask(absl::MakeSpan(bits));
    if (check_masks) {
      EXPECT_EQ(bits, BruteForceMask(m)) << "after " << g.text;
    }
    std::vector<int32_t> ids = AllowedIds(bits);
    EXPECT_FALSE(ids.empty()) << "dead end after " << g.text;
    if (ids.empty()) break;
    int32_t pick = ids[std::uniform_int_distribution<size_t>(0, ids.size() - 1)(rng)];
    const bool can_end = (bits[0] >> kEos) & 1;
    if (can_end && std::bernoulli_distribution(end_bias)(rng)) pick = kEos;
    EXPECT_TRUE(m.AcceptToken(pick)) << pick;
    if (m.IsTerminated()) {
      g.completed = true;
      break;
    }
    g.tokens.push_back(pick);
    g.text += v.text(pick);
  }
  return g;
}

// Random schemas from the supported subset, small enough that random generation finishes.
class SchemaGenerator {
 public:
  explicit SchemaGenerator(uint32_t seed) : rng_(seed) {}

  nlohmann::ordered_json Next() {
    defs_ = nlohmann::ordered_json::object();
    nlohmann::ordered_json s = Value(0);
    if (!defs_.empty()) {
      if (!s.is_object()) s = {{"anyOf", {s}}};
      s["$defs"] = defs_;
    }
    return s;
  }

 private:
  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool Coin(double p = 0.5) { return std::bernoulli_distribution(p)(rng_); }

  nlohmann::ordered_json String() {
    nlohmann::ordered_json s = {{"type", "string"}};
    const int min = Uniform(0, 3);
    s["maxLength"] = min + Uniform(0, 5);
    if (Coin()) s["minLength"] = min;
    return s;
  }

  nlohmann::ordered_json Value(int depth) {
    const int kind = Uniform(0, depth >= 3 ? 5 : 10);
    switch (kind) {
      case 0: return String();
      case 1: {
        nlohmann::ordered_json s = {{"type", "integer"}};
        if (Coin()) s["minimum"] = Uniform(-50, 10);
        if (Coin()) s["maximum"] = Uniform(11, 2000);
        if (Coin(0.2)) s["exclusiveMinimum"] = Uniform(-100, 0);
        return s;
      }
      case 2: return {{"type", Coin() ? "boolean" : "null"}};
      case 3: return {{"enum", {"a", 1, nullptr, "x<tool", nlohmann::ordered_json::array({1, "b"}),
                                {{"k", "v"}}}}};
      case 4: return {{"const", Coin() ? nlohmann::ordered_json("fixed")
                                       : nlohmann::ordered_json(42)}};
      case 5: return {{"type", nlohmann::ordered_json::array({"string", "null"})},
                      {"maxLength", 4}};
      case 6:
      case 7: {
        nlohmann::ordered_json props = nlohmann::ordered_json::object();
        std::vector<std::string> names;
        const int n = Uniform(1, 4);
        for (int i = 0; i < n; ++i) {
          const std::string name = std::string(1, static_cast<char>('a' + i)) +
                                   (Coin(0.2) ? " x" : "");
          props[name] = Value(depth + 1);
          names.push_back(name);
        }
        if (depth > 0 && Coin(0.15)) {
          props["r"] = {{"$ref", "#"}};  // recursion through an optional property
        }
        nlohmann::ordered_json s = {{"type", "object"}, {"properties", props}};
        nlohmann::ordered_json req = nlohmann::ordered_json::array();
        for (const auto& name : names) {
          if (Coin(0.6)) req.push_back(name);
        }
        s["required"] = req;
        if (Coin()) s["additionalProperties"] = false;
        return s;
      }
      case 8: {
        nlohmann::ordered_json s = {{"type", "array"}, {"items", Value(depth + 1)}};
        const int min = Uniform(0, 2);
        s["maxItems"] = min + Uniform(0, 2);
        if (Coin()) s["minItems"] = min;
        return s;
      }
      case 9: {
        nlohmann::ordered_json alts = nlohmann::ordered_json::array();
        const int n = Uniform(2, 3);
        for (int i = 0; i < n; ++i) alts.push_back(Value(depth + 1));
        return {{"anyOf", alts}};
      }
      default: {
        const std::string name = "d" + std::to_string(defs_.size());
        defs_[name] = true;  // reserve the name: nested calls add their own
        defs_[name] = Value(depth + 1);
        return {{"$ref", "#/$defs/" + name}};
      }
    }
  }

  std::mt19937 rng_;
  nlohmann::ordered_json defs_;
};

inline std::shared_ptr<const CompiledGrammar> CompileOrDie(const StructuredOutputSpec& spec,
                                                           std::shared_ptr<const TokenVocab> vocab) {
  absl::flat_hash_set<std::string> specials;
  for (const auto& [text, id] : vocab->special_tokens()) specials.insert(text);
  absl::StatusOr<Grammar> g = BuildGrammar(spec, specials);
  EXPECT_TRUE(g.ok()) << g.status();
  if (!g.ok()) return nullptr;
  auto c = CompiledGrammar::Create(*std::move(g), vocab);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : nullptr;
}

inline StructuredOutputSpec SchemaSpec(nlohmann::ordered_json schema) {
  StructuredOutputSpec spec;
  spec.kind = StructuredOutputSpec::Kind::kJsonSchema;
  spec.schema = std::move(schema);
  return spec;
}

}  // namespace g4::grammar::testing

#endif  // G4SERVE_TESTS_COMMON_GRAMMAR_GRAMMAR_TEST_UTIL_H_
