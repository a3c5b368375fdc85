// Property tests over random schemas from the supported subset (fixed seeds):
// * every output generated under a schema's grammar (random tokens of a Gemma-shaped vocabulary
//   with multi-byte and byte tokens) parses and validates with JsonSchema::Validate;
// * every random mutation of such an output that does not parse or validate is rejected by the
//   matcher (the grammar never accepts an invalid document);
// * Python's `jsonschema` agrees: the outputs, written to a JSONL file, are validated against the
//   original schemas by validate_with_jsonschema.py in the test venv (skipped without it).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/grammar/json_schema.h"
#include "gtest/gtest.h"
#include "tests/common/grammar/grammar_test_util.h"

namespace g4::grammar {
namespace {

struct Sample {
  nlohmann::ordered_json schema;
  std::vector<std::string> outputs;
};

// Schemas from `seed`, and the completed outputs for each (checked with the C++ validator).
std::vector<Sample> GenerateSamples(uint32_t seed, int schemas, int outputs_per_schema,
                                    int* incomplete) {
  testing::SchemaGenerator gen(seed);
  std::mt19937 rng(seed);
  auto vocab = testing::SmallVocab();
  std::vector<Sample> samples;
  for (int i = 0; i < schemas; ++i) {
    Sample s{gen.Next(), {}};
    SCOPED_TRACE(s.schema.dump());
    absl::StatusOr<Grammar> grammar = BuildGrammar(testing::SchemaSpec(s.schema), {});
    if (!grammar.ok() && absl::StrContains(grammar.status().message(), "unsatisfiable")) {
      continue;  // e.g. a required property that recurses forever: no finite value exists
    }
    auto compiled = testing::CompileOrDie(testing::SchemaSpec(s.schema), vocab);
    if (compiled == nullptr) continue;
    absl::StatusOr<JsonSchema> schema = JsonSchema::Parse(s.schema);
    EXPECT_TRUE(schema.ok()) << schema.status();
    if (!schema.ok()) continue;
    for (int k = 0; k < outputs_per_schema; ++k) {
      testing::Generation out = testing::Generate(compiled, rng, 400, 0.6);
      if (!out.completed) {
        ++*incomplete;
        continue;
      }
      const nlohmann::json value = nlohmann::json::parse(out.text, nullptr, false);
      EXPECT_FALSE(value.is_discarded()) << out.text;
      if (value.is_discarded()) continue;
      EXPECT_TRUE(schema->Validate(value).ok()) << schema->Validate(value) << "\n" << out.text;
      s.outputs.push_back(out.text);
    }
    samples.push_back(std::move(s));
  }
  return samples;
}

TEST(GrammarPropertyTest, GeneratedOutputsValidate) {
  int incomplete = 0;
  int total = 0;
  for (uint32_t seed : {1u, 2u, 3u}) {
    for (const Sample& s : GenerateSamples(seed, 150, 4, &incomplete)) {
      total += static_cast<int>(s.outputs.size());
    }
  }
  EXPECT_GT(total, 500);
  EXPECT_LT(incomplete * 20, total) << incomplete << " of " << total + incomplete
                                    << " generations hit the token limit";
}

TEST(GrammarPropertyTest, InvalidMutationsAreRejected) {
  int incomplete = 0, mutations = 0, rejected = 0;
  std::mt19937 rng(99);
  const std::string alphabet = "{}[]\",: 0123456789.-eEtrufalsn\\abc<|\xC3\xA9\x80";
  auto vocab = testing::SmallVocab();
  for (const Sample& s : GenerateSamples(7, 120, 3, &incomplete)) {
    auto compiled = testing::CompileOrDie(testing::SchemaSpec(s.schema), vocab);
    absl::StatusOr<JsonSchema> schema = JsonSchema::Parse(s.schema);
    ASSERT_TRUE(schema.ok());
    for (const std::string& text : s.outputs) {
      for (int k = 0; k < 8; ++k) {
        std::string m = text;
        const size_t pos = std::uniform_int_distribution<size_t>(0, m.size())(rng);
        const char c = alphabet[std::uniform_int_distribution<size_t>(0, alphabet.size() - 1)(rng)];
        switch (k % 3) {
          case 0:
            if (pos < m.size()) m.erase(pos, 1);
            break;
          case 1:
            m.insert(pos, 1, c);
            break;
          default:
            if (pos < m.size()) m[pos] = c;
            break;
        }
        if (m == text) continue;
        ++mutations;
        GrammarMatcher matcher(compiled, testing::DefaultEnds());
        const bool accepted = matcher.AcceptBytes(m) && matcher.CanEnd();
        const nlohmann::json value = nlohmann::json::parse(m, nullptr, false);
        const bool valid = !value.is_discarded() && schema->Validate(value).ok();
        if (!valid) {
          EXPECT_FALSE(accepted) << "invalid document accepted: " << m << "\nschema "
                                 << s.schema.dump();
        }
        rejected += !accepted;
      }
    }
  }
  EXPECT_GT(mutations, 500);
  EXPECT_GT(rejected * 10, mutations * 8);  // nearly all mutations break canonical JSON
}

TEST(GrammarPropertyTest, PythonJsonschemaAgrees) {
  const char* venv = std::getenv("G4_PYVENV");
  const std::string python = absl::StrCat(venv != nullptr ? venv : G4_DEFAULT_PYVENV,
                                          "/bin/python");
  if (!std::filesystem::exists(python)) {
    GTEST_SKIP() << python << " not found: run tools/test.sh (creates build/pyvenv)";
  }
  int incomplete = 0, outputs = 0;
  const std::string path = absl::StrCat(::testing::TempDir(), "/grammar_samples.jsonl");
  {
    std::ofstream f(path);
    for (uint32_t seed : {11u, 12u}) {
      for (const Sample& s : GenerateSamples(seed, 120, 3, &incomplete)) {
        f << nlohmann::ordered_json{{"schema", s.schema}, {"outputs", s.outputs}}.dump() << "\n";
        outputs += static_cast<int>(s.outputs.size());
      }
    }
  }
  ASSERT_GT(outputs, 200);
  const std::string cmd = absl::StrCat(python, " tests/common/grammar/validate_with_jsonschema.py ",
                                       path);
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

}  // namespace
}  // namespace g4::grammar
