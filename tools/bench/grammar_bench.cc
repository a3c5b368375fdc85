// g4-bench-grammar --tokenizer FILE [--runs N] [--seed S] [--baseline-states K]
//
// Structured-output engine on a real tokenizer: for each benchmark schema, the compile time
// (schema -> grammar -> bound to the vocabulary), then token-mask time per generated token over
// N random generations (each token drawn uniformly from the allowed ones), split into masks
// served from the per-node cache (p50 / p99 / max) and masks that first had to compute a node's
// cache (count, p50, max); a batch of 16 masks (one step of 16 constrained sequences, cached);
// and, in the same run, the baseline: a naive mask that tries every token of the vocabulary.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/flags/flag_set.h"
#include "common/grammar/json_grammar.h"
#include "common/grammar/matcher.h"
#include "common/grammar/token_vocab.h"
#include "common/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace {

using g4::grammar::CompiledGrammar;
using g4::grammar::GrammarMatcher;
using g4::grammar::StructuredOutputSpec;
using OJson = nlohmann::ordered_json;

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

OJson FlatObject() {
  return OJson::parse(R"({"type": "object", "properties": {
      "name": {"type": "string", "maxLength": 40},
      "age": {"type": "integer", "minimum": 0, "maximum": 150},
      "email": {"type": "string", "maxLength": 60},
      "active": {"type": "boolean"},
      "score": {"type": "number"},
      "role": {"enum": ["admin", "user", "guest"]}},
    "required": ["name", "age", "email", "active", "score", "role"],
    "additionalProperties": false})");
}

OJson NestedArrays() {
  return OJson::parse(R"({"type": "object", "properties": {
      "orders": {"type": "array", "maxItems": 4, "items": {"type": "object", "properties": {
          "id": {"type": "integer", "minimum": 1, "maximum": 99999},
          "items": {"type": "array", "maxItems": 3, "items": {"type": "object", "properties": {
              "sku": {"type": "string", "maxLength": 12},
              "qty": {"type": "integer", "minimum": 1, "maximum": 100},
              "tags": {"type": "array", "maxItems": 3, "items": {"type": "string",
                                                                  "maxLength": 8}}},
            "required": ["sku", "qty"]}}},
        "required": ["id", "items"]}}},
    "required": ["orders"]})");
}

OJson TwentyToolAnyOf() {
  OJson any = OJson::array();
  for (int i = 0; i < 20; ++i) {
    OJson props = OJson::object();
    props["query"] = {{"type", "string"}, {"maxLength", 30}};
    props["limit_" + std::to_string(i)] = {{"type", "integer"}, {"minimum", 1},
                                           {"maximum", 50}};
    props["verbose"] = {{"type", "boolean"}};
    any.push_back({{"type", "object"},
                   {"properties", {{"name", {{"const", "tool_" + std::to_string(i)}}},
                                   {"arguments", {{"type", "object"},
                                                  {"properties", props},
                                                  {"required", {"query"}}}}}},
                   {"required", {"name", "arguments"}}});
  }
  return {{"anyOf", any}};
}

struct Run {
  std::vector<double> mask_us;       // served from the node cache
  std::vector<double> computing_us;  // computed at least one node's cache
  int tokens = 0;
  bool completed = false;
};

Run Generate(std::shared_ptr<const CompiledGrammar> g, std::mt19937& rng, int max_tokens,
             const std::vector<int32_t>& ends) {
  GrammarMatcher m(g, ends);
  std::vector<uint32_t> bits(g->vocab().bitmask_words());
  std::vector<int32_t> allowed;
  Run run;
  for (int step = 0; step < max_tokens; ++step) {
    const int64_t cached = g->cached_nodes();
    const double t0 = Now();
    m.FillNextTokenBitmask(absl::MakeSpan(bits));
    (g->cached_nodes() == cached ? run.mask_us : run.computing_us).push_back((Now() - t0) * 1e6);
    allowed.clear();
    bool end_allowed = false;
    for (size_t w = 0; w < bits.size(); ++w) {
      for (uint32_t x = bits[w]; x != 0; x &= x - 1) {
        const int32_t id = static_cast<int32_t>(w * 32 + __builtin_ctz(x));
        if (std::find(ends.begin(), ends.end(), id) != ends.end()) {
          end_allowed = true;
        } else {
          allowed.push_back(id);
        }
      }
    }
    if (end_allowed || allowed.empty()) {
      run.completed = end_allowed;
      break;
    }
    const int32_t pick = allowed[std::uniform_int_distribution<size_t>(0, allowed.size() - 1)(rng)];
    if (!m.AcceptToken(pick)) {
      std::fprintf(stderr, "g4-bench-grammar: allowed token %d was rejected\n", pick);
      std::exit(1);
    }
    ++run.tokens;
  }
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  std::string tok_path;
  int runs = 10, baseline_states = 3;
  uint64_t seed_flag = 1;
  g4::FlagSet flags("g4-bench-grammar", "--tokenizer FILE [flags]",
                    "Structured-output compile and token-mask times on a real tokenizer, next to "
                    "a naive mask over the whole vocabulary (docs/performance.md).");
  flags.Add("tokenizer", &tok_path, "tokenizer.json").Value("FILE").Required().NonEmpty();
  flags.Add("runs", &runs, "random generations per schema").Min(1);
  flags.Add("seed", &seed_flag, "random seed").Value("S").Range(0, UINT32_MAX);
  flags.Add("baseline-states", &baseline_states,
            "grammar states the naive whole-vocabulary mask is timed at; 0 = no baseline")
      .Value("K")
      .Min(0);
  if (absl::Status st = flags.Parse(argc, argv); !st.ok()) {
    return g4::FlagError("g4-bench-grammar", st);
  }
  if (flags.help()) return g4::PrintUsage(flags.Usage());
  const uint32_t seed = static_cast<uint32_t>(seed_flag);
  double t0 = Now();
  auto tok = g4::Tokenizer::LoadFromFile(tok_path);
  if (!tok.ok()) {
    std::fprintf(stderr, "%s\n", tok.status().ToString().c_str());
    return 1;
  }
  const double load_s = Now() - t0;
  t0 = Now();
  auto vocab = g4::grammar::TokenVocab::FromTokenizer(**tok, 262144);
  if (!vocab.ok()) {
    std::fprintf(stderr, "%s\n", vocab.status().ToString().c_str());
    return 1;
  }
  const double vocab_s = Now() - t0;
  std::printf("tokenizer load %.2f s; vocabulary + trie %.3f s (%d byte tokens, %zu trie nodes, "
              "longest %d bytes)\n\n",
              load_s, vocab_s, (*vocab)->num_byte_tokens(), (*vocab)->trie().size(),
              (*vocab)->max_token_bytes());
  absl::flat_hash_set<std::string> specials;
  for (const auto& [text, id] : (*vocab)->special_tokens()) specials.insert(text);
  const std::vector<int32_t> ends = {1, 106};

  StructuredOutputSpec tools;
  tools.kind = StructuredOutputSpec::Kind::kToolCalls;
  for (int i = 0; i < 20; ++i) {
    tools.tools.push_back({"tool_" + std::to_string(i),
                           OJson::parse(R"({"type": "object", "properties": {
                               "query": {"type": "string", "maxLength": 30},
                               "limit": {"type": "integer", "minimum": 1, "maximum": 50}},
                             "required": ["query"]})")});
  }
  struct Case {
    const char* name;
    StructuredOutputSpec spec;
  };
  std::vector<Case> cases;
  for (auto [name, schema] : {std::pair{"flat object", FlatObject()},
                              std::pair{"nested arrays of objects", NestedArrays()},
                              std::pair{"20-tool anyOf", TwentyToolAnyOf()}}) {
    StructuredOutputSpec s;
    s.kind = StructuredOutputSpec::Kind::kJsonSchema;
    s.schema = schema;
    cases.push_back({name, s});
  }
  cases.push_back({"20 forced tools (Gemma calls)", tools});

  std::printf("%-30s %8s %6s %6s | %-28s | %-26s | %10s | %s\n", "schema", "compile", "states",
              "tokens", "cached mask us p50/p99/max", "computing: n, ms p50/max", "batch16 us",
              "nodes cached / MiB");
  for (const Case& c : cases) {
    t0 = Now();
    auto grammar = g4::grammar::BuildGrammar(c.spec, specials);
    if (!grammar.ok()) {
      std::fprintf(stderr, "%s: %s\n", c.name, grammar.status().ToString().c_str());
      return 1;
    }
    const int32_t nodes = grammar->num_nodes();
    auto compiled = CompiledGrammar::Create(*std::move(grammar), *vocab);
    const double compile_ms = (Now() - t0) * 1e3;
    if (!compiled.ok()) {
      std::fprintf(stderr, "%s: %s\n", c.name, compiled.status().ToString().c_str());
      return 1;
    }
    std::mt19937 rng(seed);
    std::vector<double> cached_us, computing_us;
    int tokens = 0, completed = 0;
    for (int r = 0; r < runs; ++r) {
      Run w = Generate(*compiled, rng, 400, ends);
      cached_us.insert(cached_us.end(), w.mask_us.begin(), w.mask_us.end());
      computing_us.insert(computing_us.end(), w.computing_us.begin(), w.computing_us.end());
      tokens += w.tokens;
      completed += w.completed;
    }
    // One step of 16 sequences at different points of their output.
    std::vector<GrammarMatcher> batch;
    for (int s = 0; s < 16; ++s) {
      GrammarMatcher m(*compiled, ends);
      std::vector<uint32_t> bits((*vocab)->bitmask_words());
      const int steps = std::uniform_int_distribution<int>(0, 30)(rng);
      for (int k = 0; k < steps; ++k) {
        m.FillNextTokenBitmask(absl::MakeSpan(bits));
        std::vector<int32_t> allowed;
        for (size_t w = 0; w < bits.size(); ++w) {
          for (uint32_t x = bits[w]; x != 0; x &= x - 1) {
            const int32_t id = static_cast<int32_t>(w * 32 + __builtin_ctz(x));
            if (id != 1 && id != 106) allowed.push_back(id);
          }
        }
        if (allowed.empty()) break;
        m.AcceptToken(allowed[std::uniform_int_distribution<size_t>(0, allowed.size() - 1)(rng)]);
      }
      batch.push_back(std::move(m));
    }
    std::vector<double> batch_us;
    std::vector<uint32_t> bits((*vocab)->bitmask_words());
    for (int rep = 0; rep < 20; ++rep) {
      const double b0 = Now();
      for (GrammarMatcher& m : batch) m.FillNextTokenBitmask(absl::MakeSpan(bits));
      batch_us.push_back((Now() - b0) * 1e6);
    }
    std::printf("%-30s %6.1fms %6d %6d | %7.1f / %7.1f / %8.1f | %4zu, %6.1f / %7.1f | %10.1f | "
                "%lld / %.1f  (%d/%d completed)\n",
                c.name, compile_ms, nodes, tokens, Percentile(cached_us, 0.5),
                Percentile(cached_us, 0.99), Percentile(cached_us, 1.0), computing_us.size(),
                Percentile(computing_us, 0.5) / 1e3, Percentile(computing_us, 1.0) / 1e3,
                Percentile(batch_us, 0.5), static_cast<long long>((*compiled)->cached_nodes()),
                (*compiled)->cached_bytes() / 1048576.0, completed, runs);

    if (baseline_states > 0) {
      // Baseline: try every token of the vocabulary at a few states of one generation.
      GrammarMatcher m(*compiled, ends);
      std::vector<double> naive_us;
      std::mt19937 brng(seed);
      for (int s = 0; s < baseline_states; ++s) {
        const double b0 = Now();
        std::vector<int32_t> allowed;
        for (int32_t id = 0; id < (*vocab)->size(); ++id) {
          GrammarMatcher copy = m;
          if (copy.AcceptToken(id) && id != 1 && id != 106) allowed.push_back(id);
        }
        naive_us.push_back((Now() - b0) * 1e6);
        if (allowed.empty()) break;
        m.AcceptToken(allowed[std::uniform_int_distribution<size_t>(0, allowed.size() - 1)(brng)]);
      }
      std::printf("%-30s baseline (try all %d tokens): p50 %.0f us per mask over %zu states\n", "",
                  (*vocab)->size(), Percentile(naive_us, 0.5), naive_us.size());
    }
  }
  return 0;
}
