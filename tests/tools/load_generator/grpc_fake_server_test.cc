// g4-load's gRPC client and runner against an in-process fake g4serve.v1.Inference server.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <atomic>
#include <chrono>
#include <limits>
#include <memory>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "g4serve/v1/inference.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tools/load_generator/load_client.h"
#include "tools/load_generator/load_runner.h"
#include "tools/load_generator/stats.h"

namespace g4::load {
namespace {

using ::testing::HasSubstr;

// Streams max_tokens tokens, tokens_per_chunk per message, a few ms apart, then a last message
// with only finish_reason and usage. Request "g4-load-<fail_index>" fails RESOURCE_EXHAUSTED.
class FakeInference final : public g4serve::v1::Inference::Service {
 public:
  int tokens_per_chunk = 2;
  int fail_index = -1;
  std::atomic<int> calls{0};
  std::atomic<int> in_flight{0};
  std::atomic<int> max_in_flight{0};
  std::atomic<int> bad_requests{0};

  grpc::Status Generate(grpc::ServerContext*, const g4serve::v1::GenerateRequest* request,
                        grpc::ServerWriter<g4serve::v1::GenerateResponse>* writer) override {
    ++calls;
    const int now = ++in_flight;
    int seen = max_in_flight.load();
    while (now > seen && !max_in_flight.compare_exchange_weak(seen, now)) {}
    struct Leave {
      std::atomic<int>* n;
      ~Leave() { --*n; }
    } leave{&in_flight};
    if (request->request_id() == absl::StrCat("g4-load-", fail_index)) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "queue full");
    }
    if (!request->has_token_ids() || request->sampling().temperature() != 0.0f ||
        !request->stopping().ignore_eos()) {
      ++bad_requests;
    }
    for (int id : request->token_ids().ids()) {
      if (id < 3 || id >= 100) ++bad_requests;
    }
    const int max_tokens = request->stopping().max_tokens();
    int sent = 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // "prefill"
    while (sent < max_tokens) {
      g4serve::v1::GenerateResponse response;
      response.set_request_id(request->request_id());
      for (int k = 0; k < tokens_per_chunk && sent < max_tokens; ++k, ++sent) {
        response.add_tokens()->set_token_id(1000 + sent);
      }
      writer->Write(response);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    g4serve::v1::GenerateResponse last;
    last.set_finish_reason(g4serve::v1::FINISH_REASON_LENGTH);
    last.mutable_usage()->set_prompt_tokens(request->token_ids().ids_size());
    last.mutable_usage()->set_completion_tokens(sent);
    writer->Write(last);
    return grpc::Status::OK;
  }
};

class GrpcLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }

  LoadOptions Options() const {
    LoadOptions o;
    o.backend = Backend::kGrpc;
    o.server = absl::StrCat("127.0.0.1:", port_);
    o.num_requests = 8;
    o.request_rate = std::numeric_limits<double>::infinity();
    o.prompt_len = 16;
    o.output_len = 6;
    o.vocab = 100;
    o.concurrency = 3;
    o.timeout = absl::Seconds(20);
    return o;
  }

  Report Run(const LoadOptions& o, RunOutcome* outcome = nullptr) {
    auto client = MakeLoadClient(o);
    EXPECT_TRUE(client.ok());
    RunOutcome out = RunLoad(o, **client);
    Report r = Aggregate(out.results, out.duration_s);
    if (outcome) *outcome = std::move(out);
    return r;
  }

  FakeInference service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(GrpcLoadTest, CountsTokensChunksAndLatencies) {
  RunOutcome outcome;
  const Report r = Run(Options(), &outcome);
  EXPECT_EQ(r.successful, 8) << r.first_error;
  EXPECT_EQ(r.failed, 0);
  EXPECT_EQ(service_.bad_requests.load(), 0);
  EXPECT_EQ(service_.calls.load(), 8);
  EXPECT_LE(service_.max_in_flight.load(), 3);
  EXPECT_EQ(r.total_input_tokens, 8 * 16);
  EXPECT_EQ(r.total_output_tokens, 8 * 6);
  EXPECT_DOUBLE_EQ(r.mean_tokens_per_chunk, 2.0);
  EXPECT_EQ(r.ttft_ms.count, 8u);
  EXPECT_EQ(r.itl_ms.count, 8u * 2);  // 3 chunks: 2 gaps each
  EXPECT_EQ(r.tpot_ms.count, 8u);
  EXPECT_GE(r.ttft_ms.min, 4.0);      // the fake's 5 ms prefill
  // No lower bound on ITL: a loaded client may read two chunks back to back.
  EXPECT_GE(r.e2e_ms.min, r.ttft_ms.min);
  EXPECT_GT(r.output_throughput, 0.0);
  for (const RequestResult& res : outcome.results) {
    EXPECT_TRUE(res.success);
    EXPECT_EQ(res.chunks, 3);
    EXPECT_GE(res.e2e_s, res.ttft_s);
  }
}

TEST_F(GrpcLoadTest, PoissonArrivalsSpreadStarts) {
  LoadOptions o = Options();
  o.num_requests = 10;
  o.request_rate = 100.0;
  o.concurrency = 0;
  o.seed = 5;
  RunOutcome outcome;
  const Report r = Run(o, &outcome);
  EXPECT_EQ(r.successful, 10) << r.first_error;
  EXPECT_GT(outcome.results.back().start_s, 0.0);
  EXPECT_LT(r.duration_s, 10.0);
}

TEST_F(GrpcLoadTest, FailuresAreCountedWithTheirError) {
  service_.fail_index = 3;
  const Report r = Run(Options());
  EXPECT_EQ(r.successful, 7);
  EXPECT_EQ(r.failed, 1);
  EXPECT_THAT(r.first_error, HasSubstr("queue full"));
  EXPECT_EQ(r.total_output_tokens, 7 * 6);
}

TEST_F(GrpcLoadTest, CommandLineWritesTableAndJson) {
  const std::string json_path = ::testing::TempDir() + "/g4_load_cli.json";
  const std::string cmd = absl::StrCat(
      G4_LOAD_BIN, " --server 127.0.0.1:", port_,
      " --num-requests 5 --request-rate 200 --prompt-len 4 --output-len 3 --vocab 100"
      " --concurrency 2 --seed 1 --json ", json_path, " 2>/dev/null");
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string table;
  char buf[256];
  while (fgets(buf, sizeof(buf), pipe)) table += buf;
  EXPECT_EQ(pclose(pipe), 0) << table;
  EXPECT_THAT(table, HasSubstr("Successful requests:                     5\n"));
  EXPECT_THAT(table, HasSubstr("Total generated tokens:                  15\n"));
  EXPECT_THAT(table, HasSubstr("P99 ITL (ms):"));
  std::ifstream in(json_path);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["completed"], 5);
  EXPECT_EQ(j["total_output_tokens"], 15);
  EXPECT_EQ(j["config"]["request_rate"], 200.0);
  EXPECT_EQ(j["itls_s"].size(), 5u);
}

TEST(GrpcLoadUnreachableTest, FailsFast) {
  LoadOptions o;
  o.server = "127.0.0.1:1";
  o.num_requests = 2;
  o.request_rate = std::numeric_limits<double>::infinity();
  o.prompt_len = 4;
  o.output_len = 4;
  o.vocab = 100;
  o.timeout = absl::Seconds(10);
  auto client = MakeLoadClient(o);
  ASSERT_TRUE(client.ok());
  const RunOutcome out = RunLoad(o, **client);
  const Report r = Aggregate(out.results, out.duration_s);
  EXPECT_EQ(r.failed, 2);
  EXPECT_THAT(r.first_error, HasSubstr("gRPC 14"));  // UNAVAILABLE
}

}  // namespace
}  // namespace g4::load
