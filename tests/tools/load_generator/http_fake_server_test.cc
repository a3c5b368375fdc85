// g4-load's HTTP client (OpenAI /v1/completions with SSE) against an in-process httplib server.
#include <atomic>
#include <chrono>
#include <limits>
#include <string>
#include <thread>

#include <httplib.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tools/load_generator/http_client.h"
#include "tools/load_generator/load_runner.h"
#include "tools/load_generator/stats.h"

namespace g4::load {
namespace {

using ::testing::HasSubstr;

class HttpLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      const nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
      if (body.is_discarded() || body.value("model", "") != "gemma") {
        res.status = 404;
        res.set_content(R"({"error":{"message":"model not found"}})", "application/json");
        return;
      }
      if (!body.value("stream", false) || !body["prompt"].is_array() ||
          body.value("temperature", -1.0) != 0.0 || !body.value("ignore_eos", false) ||
          !body["stream_options"].value("include_usage", false)) {
        ++bad_requests_;
      }
      const int max_tokens = body.value("max_tokens", 0);
      const int prompt_tokens = static_cast<int>(body["prompt"].size());
      res.set_chunked_content_provider(
          "text/event-stream", [max_tokens, prompt_tokens](size_t, httplib::DataSink& sink) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
            for (int i = 0; i < max_tokens; ++i) {
              nlohmann::json chunk = {
                  {"object", "text_completion"},
                  {"choices", {{{"index", 0}, {"text", absl::StrCat(" t", i)},
                                {"finish_reason", i + 1 == max_tokens ? nlohmann::json("length") : nlohmann::json()}}}}};
              const std::string event = absl::StrCat("data: ", chunk.dump(), "\n\n");
              sink.write(event.data(), event.size());
              std::this_thread::sleep_for(std::chrono::milliseconds(2));
            }
            nlohmann::json usage = {
                {"choices", nlohmann::json::array()},
                {"usage", {{"prompt_tokens", prompt_tokens}, {"completion_tokens", max_tokens}}}};
            const std::string tail =
                absl::StrCat("data: ", usage.dump(), "\n\n", "data: [DONE]\n\n");
            sink.write(tail.data(), tail.size());
            sink.done();
            return true;
          });
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  void TearDown() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  LoadOptions Options() const {
    LoadOptions o;
    o.backend = Backend::kHttp;
    o.server = absl::StrCat("127.0.0.1:", port_);
    o.model = "gemma";
    o.num_requests = 6;
    o.request_rate = std::numeric_limits<double>::infinity();
    o.prompt_len = 12;
    o.output_len = 5;
    o.vocab = 100;
    o.concurrency = 3;
    o.timeout = absl::Seconds(20);
    return o;
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<int> bad_requests_{0};
};

TEST_F(HttpLoadTest, CountsTokensFromTheStream) {
  const LoadOptions o = Options();
  HttpLoadClient client(o);
  const RunOutcome out = RunLoad(o, client);
  const Report r = Aggregate(out.results, out.duration_s);
  EXPECT_EQ(r.successful, 6) << r.first_error;
  EXPECT_EQ(bad_requests_.load(), 0);
  EXPECT_EQ(r.total_input_tokens, 6 * 12);
  EXPECT_EQ(r.total_output_tokens, 6 * 5);
  EXPECT_EQ(r.itl_ms.count, 6u * 4);
  EXPECT_GE(r.ttft_ms.min, 4.0);
}

TEST_F(HttpLoadTest, HttpErrorsAreFailures) {
  LoadOptions o = Options();
  o.model = "other";
  o.num_requests = 2;
  HttpLoadClient client(o);
  const RunOutcome out = RunLoad(o, client);
  const Report r = Aggregate(out.results, out.duration_s);
  EXPECT_EQ(r.failed, 2);
  EXPECT_THAT(r.first_error, HasSubstr("HTTP 404"));
  EXPECT_THAT(r.first_error, HasSubstr("model not found"));
}

TEST(HttpRequestBodyTest, FollowsTheOpenAiSpec) {
  LoadOptions o;
  o.server = "http://localhost:8000/";
  o.model = "gemma";
  HttpLoadClient client(o);
  RequestSpec spec;
  spec.prompt_ids = {5, 6};
  spec.max_tokens = 7;
  const nlohmann::json body = nlohmann::json::parse(client.RequestBody(spec));
  EXPECT_EQ(body["model"], "gemma");
  EXPECT_EQ(body["prompt"], nlohmann::json::array({5, 6}));
  EXPECT_EQ(body["max_tokens"], 7);
  EXPECT_EQ(body["temperature"], 0.0);
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["stream_options"]["include_usage"], true);
  EXPECT_EQ(body["ignore_eos"], true);
  spec.prompt_text = "hello";
  EXPECT_EQ(nlohmann::json::parse(client.RequestBody(spec))["prompt"], "hello");
}

}  // namespace
}  // namespace g4::load
