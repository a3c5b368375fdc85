// Constrained generation in the engine on the tiny golden model with its 512-token tokenizer:
// the mask step keeps every sampled token inside the grammar (with temperature, top-k/top-p and
// logprobs), outputs validate, the constraint ends the output once complete (also with no stop
// tokens), and preemption by recompute keeps the constraint's state.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/grammar/compiler.h"
#include "common/grammar/json_schema.h"
#include "common/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "kernels/ops.h"
#include "tests/worker/model/golden_reference.h"
#include "worker/engine/engine.h"

namespace g4 {
namespace {

using OJson = nlohmann::ordered_json;

struct Collector {
  absl::Mutex mu;
  std::vector<int32_t> tokens;
  std::vector<SampleResult> results;
  EngineFinish finish = EngineFinish::kNone;
  int32_t matched_stop = -1;
  absl::Status error;
  absl::Notification done;

  OutputCallback Callback() {
    return [this](const EngineOutput& out) {
      absl::MutexLock lock(&mu);
      for (const auto& t : out.tokens) {
        tokens.push_back(t.token);
        results.push_back(t);
      }
      if (out.finish != EngineFinish::kNone) {
        finish = out.finish;
        matched_stop = out.matched_stop_token;
        error = out.error;
        done.Notify();
      }
    };
    // Tests shut the engine down before their collectors go away.
  }
};

class EngineStructuredOutputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto model = Gemma4Model::Load(testing::GoldenDir("dense"), CreateCpuOps());
    ASSERT_TRUE(model.ok()) << model.status();
    vocab_size_ = (*model)->config().vocab_size;
    model_ = std::move(*model);
    auto tok = Tokenizer::LoadFromFile(testing::GoldenDir("dense") + "/tokenizer.json");
    ASSERT_TRUE(tok.ok()) << tok.status();
    tokenizer_ = std::move(*tok);
    auto vocab = grammar::TokenVocab::FromTokenizer(*tokenizer_, vocab_size_);
    ASSERT_TRUE(vocab.ok()) << vocab.status();
    compiler_ = std::make_unique<grammar::GrammarCompiler>(*vocab);
  }

  std::shared_ptr<grammar::GrammarMatcher> Matcher(const OJson& schema,
                                                   std::vector<int32_t> ends = {1, 106}) {
    grammar::StructuredOutputSpec spec;
    spec.kind = grammar::StructuredOutputSpec::Kind::kJsonSchema;
    spec.schema = schema;
    auto compiled = compiler_->Compile(spec);
    EXPECT_TRUE(compiled.ok()) << compiled.status();
    return std::make_shared<grammar::GrammarMatcher>(*compiled, std::move(ends));
  }

  // The output text without the final end token.
  std::string Text(const Collector& c) {
    std::vector<int32_t> ids = c.tokens;
    if (c.finish == EngineFinish::kStop && !ids.empty()) ids.pop_back();
    auto text = tokenizer_->Decode(ids);
    EXPECT_TRUE(text.ok());
    return text.ok() ? *text : "";
  }

  void ExpectValid(const OJson& schema, const std::string& text) {
    auto parsed = grammar::JsonSchema::Parse(schema);
    ASSERT_TRUE(parsed.ok());
    const nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
    ASSERT_FALSE(value.is_discarded()) << text;
    EXPECT_TRUE(parsed->Validate(value).ok()) << parsed->Validate(value) << ": " << text;
  }

  int64_t vocab_size_ = 0;
  std::unique_ptr<Gemma4Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<grammar::GrammarCompiler> compiler_;
};

TEST_F(EngineStructuredOutputTest, SampledOutputsValidateWithEverySamplerSetting) {
  const OJson schema = OJson::parse(R"({"type": "object", "properties": {
      "name": {"type": "string", "maxLength": 6}, "n": {"type": "integer", "minimum": -9,
      "maximum": 99}, "t": {"type": "array", "items": {"enum": ["x", "y"]}, "maxItems": 2}},
      "required": ["name", "n"]})");
  Engine engine(std::make_unique<ModelRunner>(std::move(model_)), nullptr, EngineOptions{});
  engine.Start();
  std::vector<std::unique_ptr<Collector>> collectors;
  for (int i = 0; i < 6; ++i) {
    SamplingParams p;
    p.temperature = i == 0 ? 0.0 : 1.0;
    p.seed = i;
    p.max_tokens = 300;
    p.stop_token_ids = {1, 106};
    if (i == 2) p.top_k = 5;
    if (i == 3) p.top_p = 0.8;
    if (i == 4) p.min_p = 0.05;
    if (i == 5) {
      p.repetition_penalty = 1.3;
      p.presence_penalty = 1.0;
    }
    p.logprobs = 3;
    collectors.push_back(std::make_unique<Collector>());
    EngineRequest r{absl::StrCat("s", i), {2, 10, 20, 30}, p, 0, collectors.back()->Callback()};
    r.grammar = Matcher(schema);
    ASSERT_TRUE(engine.Submit(std::move(r)).ok());
  }
  for (auto& c : collectors) {
    ASSERT_TRUE(c->done.WaitForNotificationWithTimeout(absl::Seconds(60)));
    ASSERT_EQ(c->finish, EngineFinish::kStop) << c->error;
    ExpectValid(schema, Text(*c));
    for (const SampleResult& r : c->results) {
      ASSERT_TRUE(r.logprob.has_value());
      EXPECT_LE(*r.logprob, 0.0f);
      EXPECT_GT(*r.logprob, -1e30f);  // of the masked distribution: the token was allowed
      for (const TokenLogprob& alt : r.top_logprobs) EXPECT_GT(alt.logprob, -1e30f);
    }
  }
  engine.Shutdown();
}

TEST_F(EngineStructuredOutputTest, ConstraintEndsTheOutputWithoutStopTokens) {
  const OJson schema = OJson::parse(R"({"enum": ["yes", "no"]})");
  Engine engine(std::make_unique<ModelRunner>(std::move(model_)), nullptr, EngineOptions{});
  engine.Start();
  Collector c;
  SamplingParams p;
  p.temperature = 1.0;
  p.seed = 5;
  p.max_tokens = 50;  // ignore_eos: no stop tokens; the constraint's end tokens still end it
  EngineRequest r{"e", {2, 10, 20}, p, 0, c.Callback()};
  r.grammar = Matcher(schema, {1});
  ASSERT_TRUE(engine.Submit(std::move(r)).ok());
  ASSERT_TRUE(c.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(c.finish, EngineFinish::kStop);
  EXPECT_EQ(c.matched_stop, 1);
  ExpectValid(schema, Text(c));
  engine.Shutdown();
}

// A migrated request (resume_output: tokens an earlier attempt produced) continues the
// constraint from where that attempt left it: the resumed and the new tokens together validate,
// and resumed tokens the constraint never allowed are refused at submit.
TEST_F(EngineStructuredOutputTest, ResumedTokensAdvanceTheConstraint) {
  const OJson schema = OJson::parse(R"({"type": "object", "properties": {
      "a": {"type": "integer", "minimum": 0, "maximum": 999}, "b": {"type": "boolean"}},
      "required": ["a", "b"]})");
  Engine engine(std::make_unique<ModelRunner>(std::move(model_)), nullptr, EngineOptions{});
  engine.Start();
  SamplingParams p;
  p.temperature = 1.0;
  p.seed = 11;
  p.max_tokens = 200;
  p.stop_token_ids = {1, 106};
  Collector full;
  EngineRequest first{"full", {2, 10, 20}, p, 0, full.Callback()};
  first.grammar = Matcher(schema);
  ASSERT_TRUE(engine.Submit(std::move(first)).ok());
  ASSERT_TRUE(full.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  ASSERT_EQ(full.finish, EngineFinish::kStop) << full.error;
  ASSERT_GE(full.tokens.size(), 4u);

  const size_t k = full.tokens.size() / 2;
  Collector rest;
  EngineRequest resumed{"resumed", {2, 10, 20}, p, 0, rest.Callback()};
  resumed.grammar = Matcher(schema);
  resumed.resume_output.assign(full.tokens.begin(), full.tokens.begin() + k);
  ASSERT_TRUE(engine.Submit(std::move(resumed)).ok());
  ASSERT_TRUE(rest.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  ASSERT_EQ(rest.finish, EngineFinish::kStop) << rest.error;
  Collector joined;
  joined.tokens.assign(full.tokens.begin(), full.tokens.begin() + k);
  joined.tokens.insert(joined.tokens.end(), rest.tokens.begin(), rest.tokens.end());
  joined.finish = EngineFinish::kStop;
  ExpectValid(schema, Text(joined));

  // `}` cannot start an object's output: refused, naming the field.
  const std::vector<int32_t> close = tokenizer_->Encode("}");
  ASSERT_FALSE(close.empty());
  EngineRequest bad{"bad", {2, 10, 20}, p, 0, nullptr};
  bad.grammar = Matcher(schema);
  bad.resume_output = {close[0]};
  const absl::Status status = engine.Submit(std::move(bad));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("resume_output_token_ids[0]"), std::string::npos) << status;
  engine.Shutdown();
}

TEST_F(EngineStructuredOutputTest, MaxTokensCutIsLength) {
  const OJson schema = OJson::parse(R"({"type": "array", "items": {"type": "integer",
      "minimum": 100000, "maximum": 999999}, "minItems": 20, "maxItems": 20})");
  Engine engine(std::make_unique<ModelRunner>(std::move(model_)), nullptr, EngineOptions{});
  engine.Start();
  Collector c;
  SamplingParams p;
  p.temperature = 1.0;
  p.seed = 1;
  p.max_tokens = 10;
  p.stop_token_ids = {1, 106};
  EngineRequest r{"l", {2, 10}, p, 0, c.Callback()};
  r.grammar = Matcher(schema);
  ASSERT_TRUE(engine.Submit(std::move(r)).ok());
  ASSERT_TRUE(c.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(c.finish, EngineFinish::kLength);
  EXPECT_EQ(c.tokens.size(), 10u);
  EXPECT_EQ(Text(c).rfind("[", 0), 0u);
  engine.Shutdown();
}

// Four long constrained outputs in a page pool that holds one: sequences are preempted and
// recomputed, and their constraint state survives (every output is complete and valid).
TEST_F(EngineStructuredOutputTest, PreemptionKeepsTheConstraintState) {
  const OJson schema = OJson::parse(R"({"type": "array", "items": {"type": "integer",
      "minimum": 100000, "maximum": 999999}, "minItems": 12, "maxItems": 12})");
  EngineOptions options;
  options.block_size = 4;
  options.num_global_pages = 40;
  options.num_sliding_pages = 4;
  options.enable_prefix_caching = false;
  options.scheduler.max_num_batched_tokens = 6;
  Engine engine(std::make_unique<ModelRunner>(std::move(model_)), nullptr, options);
  engine.Start();
  std::vector<std::unique_ptr<Collector>> collectors;
  for (int i = 0; i < 4; ++i) {
    SamplingParams p;
    p.temperature = 1.0;
    p.seed = 100 + i;
    p.max_tokens = 150;
    p.stop_token_ids = {1, 106};
    collectors.push_back(std::make_unique<Collector>());
    EngineRequest r{absl::StrCat("p", i), {2, 10, 20, 30, 40}, p, 0,
                    collectors.back()->Callback()};
    r.grammar = Matcher(schema);
    ASSERT_TRUE(engine.Submit(std::move(r)).ok());
  }
  for (auto& c : collectors) {
    ASSERT_TRUE(c->done.WaitForNotificationWithTimeout(absl::Seconds(120)));
    ASSERT_EQ(c->finish, EngineFinish::kStop) << c->error;
    ExpectValid(schema, Text(*c));
  }
  EXPECT_GT(engine.Stats().preemptions, 0u);
  engine.Shutdown();
}

}  // namespace
}  // namespace g4
