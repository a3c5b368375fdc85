// g4-bench-coordinator: the coordinator alone, in front of stand-in workers that stream tokens
// without a model (stand_in_worker.h). For each API (gRPC, OpenAI HTTP SSE) and each
// concurrency level, closed-loop clients stream requests for --duration; the table gives the
// coordinator's CPU time per streamed token (utime + stime of the g4-coordinator process from
// /proc), the tokens/s carried, and the inter-token latency (ITL) the clients see next to the
// baseline of the same run: the same number of streams read straight from a stand-in worker
// (no coordinator). Capacity = the largest tokens/s whose ITL p99 stays within +1 ms of that
// baseline. docs/performance.md ("Coordinator capacity").
//
//   g4-bench-coordinator [--model DIR] [--replicas N] [--itl 20ms] [--max-tokens N]
//                        [--prompt-len N] [--duration 5s] [--concurrency 1,8,32,...]
//                        [--api grpc,http] [--coordinator PATH] [--internal-tls-dir DIR]
//                        (--help lists the flags)
//
// --internal-tls-dir runs the internal plane (registration, the coordinator's Generate streams
// to the stand-ins) with mutual TLS, from the certificates tests/testing/make_test_certificates.sh
// makes in DIR: run it with and without to see what TLS costs the coordinator per token.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/flags/flag_set.h"
#include "g4serve/v1/inference.grpc.pb.h"
#include "g4serve/worker/v1/worker.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "proto/internal_tls.h"
#include "tests/integration/process.h"
#include "tools/bench/bench_util.h"
#include "tools/bench/stand_in_worker.h"
#include "tools/load_generator/load_client.h"
#include "tools/load_generator/stats.h"

namespace g4 {
namespace {

namespace wpb = ::g4serve::worker::v1;
using load::ChunkTimer;
using load::RequestResult;
using load::RequestSpec;

struct Options {
  std::string coordinator = G4_COORDINATOR_BIN;
  std::string model = "tests/data/golden/dense";
  int replicas = 4;
  absl::Duration itl = absl::Milliseconds(20);
  int max_tokens = 64;
  int prompt_len = 16;
  absl::Duration duration = absl::Seconds(5);
  std::vector<int> concurrency = {1, 8, 32, 64, 128, 256};
  std::vector<std::string> apis = {"grpc", "http"};
  std::string internal_tls_dir;  // empty: the internal plane in plaintext
};

void DeclareFlags(FlagSet& flags, Options& o) {
  flags.Add("model", &o.model, "model directory the coordinator reads (config, tokenizer)")
      .Value("DIR")
      .NonEmpty();
  flags.Add("replicas", &o.replicas, "stand-in workers (one replica each)").Min(1);
  flags.Add("itl", &o.itl, "the stand-in workers' inter-token latency")
      .MinExclusive(absl::ZeroDuration());
  flags.Add("max-tokens", &o.max_tokens, "tokens per request").Min(1);
  flags.Add("prompt-len", &o.prompt_len, "prompt tokens per request").Min(1);
  flags.Add("duration", &o.duration, "closed-loop time per level")
      .MinExclusive(absl::ZeroDuration());
  flags
      .AddCustom("concurrency", "N,N,...", "concurrent streams, one level each",
                 [&o](absl::string_view v) {
                   if (bench::ParsePositiveInts(v, &o.concurrency)) return absl::OkStatus();
                   return absl::InvalidArgumentError(
                       absl::StrCat("expected positive integers like 1,8,32, got \"", v, "\""));
                 })
      .Default(absl::StrJoin(o.concurrency, ","));
  flags
      .AddCustom("api", "grpc,http", "the APIs to measure",
                 [&o](absl::string_view v) {
                   o.apis = absl::StrSplit(v, ',');
                   for (const std::string& a : o.apis) {
                     if (a != "grpc" && a != "http") {
                       return absl::InvalidArgumentError(
                           absl::StrCat("expected grpc and/or http, got \"", v, "\""));
                     }
                   }
                   return absl::OkStatus();
                 })
      .Default(absl::StrJoin(o.apis, ","));
  flags.Add("internal-tls-dir", &o.internal_tls_dir,
            "mutual TLS on the internal plane with DIR/{ca,coordinator,worker}.{crt,key} "
            "(tests/testing/make_test_certificates.sh DIR)")
      .Value("DIR")
      .Default("plaintext");
  flags.Add("coordinator", &o.coordinator, "the g4-coordinator binary")
      .Value("PATH")
      .NonEmpty()
      .Default("the one built with this benchmark");
}

double CpuSeconds(pid_t pid) { return bench::ProcessCpuSeconds(pid); }

int ReadPort(const std::string& path) {
  return testing::WaitForPortFile(path, absl::Seconds(20));
}

struct Level {
  std::string api;
  int concurrency = 0;
  double tokens_per_s = 0;
  double cpu_us_per_token = 0;  // beyond the idle coordinator's CPU
  double cpu_percent = 0;  // of one core
  load::Distribution itl_ms;
  load::Distribution direct_itl_ms;
  int failed = 0;
  std::string first_error;
};

// Closed loop: `concurrency` threads send requests back to back for `duration`.
std::vector<RequestResult> RunClosedLoop(int concurrency, absl::Duration duration,
                                         const std::function<RequestResult(int)>& send) {
  std::vector<std::vector<RequestResult>> per_thread(concurrency);
  const absl::Time end = absl::Now() + duration;
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; absl::Now() < end; ++i) per_thread[t].push_back(send(t * 1000000 + i));
    });
  }
  for (std::thread& t : threads) t.join();
  std::vector<RequestResult> all;
  for (auto& v : per_thread) all.insert(all.end(), v.begin(), v.end());
  return all;
}

// One stream straight from a stand-in worker (the baseline: no coordinator in the path).
RequestResult SendDirect(wpb::Worker::Stub* stub, const Options& o, int index) {
  wpb::WorkerGenerateRequest request;
  request.set_request_id(absl::StrCat("direct-", index));
  for (int i = 0; i < o.prompt_len; ++i) request.add_prompt_token_ids(10 + i);
  request.mutable_stopping()->set_max_tokens(o.max_tokens);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  RequestResult result;
  ChunkTimer timer(ChunkTimer::Clock::now());
  auto reader = stub->Generate(&ctx, request);
  wpb::WorkerGenerateResponse m;
  while (reader->Read(&m)) timer.OnChunk(m.tokens_size());
  const grpc::Status s = reader->Finish();
  timer.Finish(&result);
  result.success = s.ok();
  if (!s.ok()) result.error = s.error_message();
  return result;
}

std::vector<double> AllItlMs(const std::vector<RequestResult>& results, int64_t* tokens,
                             int* failed, std::string* first_error) {
  std::vector<double> itl;
  for (const RequestResult& r : results) {
    if (!r.success) {
      ++*failed;
      if (first_error->empty()) *first_error = r.error;
      continue;
    }
    *tokens += r.output_tokens;
    for (double s : r.itl_s) itl.push_back(s * 1000);
  }
  return itl;
}

int Main(int argc, char** argv) {
  Options o;
  FlagSet flags("g4-bench-coordinator", "[flags]",
                "The coordinator alone in front of stand-in workers: its CPU per streamed token "
                "and the ITL clients see, against streams read straight from a stand-in worker "
                "(docs/performance.md, \"Coordinator capacity\").");
  DeclareFlags(flags, o);
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) {
    return FlagError("g4-bench-coordinator", s);
  }
  if (flags.help()) return PrintUsage(flags.Usage());
  const std::string dir = absl::StrCat("/tmp/g4-bench-coordinator.", getpid());
  std::system(absl::StrCat("mkdir -p ", dir).c_str());
  testing::Process coordinator;
  const std::string port_file = dir + "/port", http_port_file = dir + "/http_port";
  const std::string internal_port_file = dir + "/internal_port";
  std::vector<std::string> coordinator_argv = {o.coordinator, "--model", o.model, "--host",
                                               "127.0.0.1", "--port", "0", "--port-file",
                                               port_file};
  coordinator_argv.insert(coordinator_argv.end(), {"--http-port", "0", "--http-port-file",
                                                   http_port_file, "--num-replicas",
                                                   absl::StrCat(o.replicas)});
  // The stand-ins' side of the internal plane, and the baseline's client (as the coordinator).
  std::shared_ptr<const InternalTls> worker_tls, client_tls;
  if (!o.internal_tls_dir.empty()) {
    const std::string& d = o.internal_tls_dir;
    coordinator_argv.insert(coordinator_argv.end(), {"--internal-port", "0", "--internal-port-file", internal_port_file,
                             "--internal-tls-cert", d + "/coordinator.crt", "--internal-tls-key",
                             d + "/coordinator.key", "--internal-tls-ca", d + "/ca.crt"});
    absl::StatusOr<std::unique_ptr<InternalTls>> w = InternalTls::Create(
        {d + "/worker.crt", d + "/worker.key", d + "/ca.crt", kDefaultCoordinatorIdentity});
    absl::StatusOr<std::unique_ptr<InternalTls>> c = InternalTls::Create(
        {d + "/coordinator.crt", d + "/coordinator.key", d + "/ca.crt", kDefaultWorkerIdentity});
    if (!w.ok() || !c.ok()) {
      std::fprintf(stderr, "--internal-tls-dir: %s\n",
                   (!w.ok() ? w.status() : c.status()).ToString().c_str());
      return 2;
    }
    worker_tls = *std::move(w);
    client_tls = *std::move(c);
  }
  if (!coordinator.Start(coordinator_argv, dir + "/coordinator.log")) {
    std::fprintf(stderr, "cannot start %s\n", o.coordinator.c_str());
    return 1;
  }
  const int port = ReadPort(port_file), http_port = ReadPort(http_port_file);
  if (port <= 0 || http_port <= 0) {
    std::fprintf(stderr, "coordinator did not start:\n%s\n", coordinator.Log().c_str());
    return 1;
  }
  const std::string address = absl::StrCat("127.0.0.1:", port);
  std::string internal_address = address;
  if (worker_tls != nullptr) {
    const int internal_port = ReadPort(internal_port_file);
    if (internal_port <= 0) {
      std::fprintf(stderr, "no internal port:\n%s\n", coordinator.Log().c_str());
      return 1;
    }
    internal_address = absl::StrCat("127.0.0.1:", internal_port);
  }
  std::vector<std::unique_ptr<StandInWorker>> workers;
  for (int i = 0; i < o.replicas; ++i) {
    StandInWorkerOptions so;
    so.coordinator = internal_address;
    so.itl = o.itl;
    so.tls = worker_tls;
    absl::StatusOr<std::unique_ptr<StandInWorker>> w = StandInWorker::Start(so);
    if (!w.ok()) {
      std::fprintf(stderr, "%s\n", w.status().ToString().c_str());
      return 1;
    }
    workers.push_back(*std::move(w));
  }
  auto inference = g4serve::v1::Inference::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  for (const absl::Time deadline = absl::Now() + absl::Seconds(30);;) {
    grpc::ClientContext ctx;
    g4serve::v1::ListModelsResponse models;
    if (inference->ListModels(&ctx, {}, &models).ok() && models.models_size() > 0 &&
        models.models(0).replicas_ready() == o.replicas) {
      break;
    }
    if (absl::Now() > deadline) {
      std::fprintf(stderr, "replicas not ready:\n%s\n", coordinator.Log().c_str());
      return 1;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  const std::string model = std::string(absl::StripSuffix(
      o.model.substr(o.model.find_last_of('/') == std::string::npos
                         ? 0
                         : o.model.find_last_of('/') + 1),
      "/"));
  auto direct = wpb::Worker::NewStub(
      client_tls != nullptr
          ? client_tls->Dial(workers[0]->address(), grpc::ChannelArguments())
          : grpc::CreateChannel(workers[0]->address(), grpc::InsecureChannelCredentials()));

  // The idle coordinator's own CPU (health loop, cancellation watcher), subtracted below so that
  // the per-token figure is what streaming adds.
  const double idle_before = CpuSeconds(coordinator.pid());
  const absl::Time idle_start = absl::Now();
  absl::SleepFor(absl::Seconds(3));
  const double idle_rate = (CpuSeconds(coordinator.pid()) - idle_before) /
                           absl::ToDoubleSeconds(absl::Now() - idle_start);
  std::printf("# g4-bench-coordinator: %d stand-in replicas, stand-in ITL %s, %d tokens per "
              "request, prompt %d tokens, %s per level; internal plane %s; idle coordinator "
              "CPU %.1f%% of a core\n",
              o.replicas, absl::FormatDuration(o.itl).c_str(), o.max_tokens, o.prompt_len,
              absl::FormatDuration(o.duration).c_str(),
              worker_tls != nullptr ? "mutual TLS" : "plaintext", 100 * idle_rate);
  std::vector<Level> levels;
  for (const std::string& api : o.apis) {
    load::LoadOptions lo;
    lo.backend = api == "grpc" ? load::Backend::kGrpc : load::Backend::kHttp;
    lo.server = api == "grpc" ? address : absl::StrCat("127.0.0.1:", http_port);
    lo.model = model;
    lo.timeout = absl::Seconds(60);
    absl::StatusOr<std::unique_ptr<load::LoadClient>> client = load::MakeLoadClient(lo);
    if (!client.ok()) {
      std::fprintf(stderr, "%s\n", client.status().ToString().c_str());
      return 1;
    }
    for (int c : o.concurrency) {
      Level level;
      level.api = api;
      level.concurrency = c;
      // Baseline: the same streams straight from one stand-in worker.
      {
        int64_t tokens = 0;
        std::vector<RequestResult> results = RunClosedLoop(
            c, std::min(o.duration, absl::Seconds(3)),
            [&](int i) { return SendDirect(direct.get(), o, i); });
        std::string error;
        std::vector<double> itl = AllItlMs(results, &tokens, &level.failed, &error);
        level.direct_itl_ms = load::Summarize(itl);
      }
      const double cpu_before = CpuSeconds(coordinator.pid());
      const absl::Time start = absl::Now();
      std::vector<RequestResult> results =
          RunClosedLoop(c, o.duration, [&](int i) {
            RequestSpec spec;
            spec.index = i;
            for (int k = 0; k < o.prompt_len; ++k) spec.prompt_ids.push_back(10 + k);
            spec.prompt_len = o.prompt_len;
            spec.max_tokens = o.max_tokens;
            return (*client)->Send(spec);
          });
      const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
      const double cpu = CpuSeconds(coordinator.pid()) - cpu_before;
      int64_t tokens = 0;
      std::vector<double> itl = AllItlMs(results, &tokens, &level.failed, &level.first_error);
      level.itl_ms = load::Summarize(itl);
      level.tokens_per_s = static_cast<double>(tokens) / seconds;
      level.cpu_us_per_token =
          tokens > 0 ? std::max(0.0, cpu - idle_rate * seconds) * 1e6 / static_cast<double>(tokens)
                     : 0;
      level.cpu_percent = 100.0 * cpu / seconds;
      levels.push_back(level);
      std::fprintf(stderr, "  %s c=%d: %.0f tokens/s, %.1f us/token, ITL p99 %.2f ms (direct %.2f)\n",
                   api.c_str(), c, level.tokens_per_s, level.cpu_us_per_token,
                   level.itl_ms.p99, level.direct_itl_ms.p99);
    }
  }
  std::printf("\n| API | streams | tokens/s | coordinator CPU us/token (above idle) | coordinator CPU %% "
              "| ITL p50 ms | ITL p99 ms | direct ITL p99 ms | p99 added ms | failed |\n"
              "|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Level& l : levels) {
    std::printf("| %s | %d | %.0f | %.1f | %.0f | %.2f | %.2f | %.2f | %+.2f | %d |\n",
                l.api.c_str(), l.concurrency, l.tokens_per_s, l.cpu_us_per_token, l.cpu_percent,
                l.itl_ms.median, l.itl_ms.p99, l.direct_itl_ms.p99,
                l.itl_ms.p99 - l.direct_itl_ms.p99, l.failed);
  }
  std::printf("\n");
  for (const std::string& api : o.apis) {
    double best = 0;
    int at = 0;
    for (const Level& l : levels) {
      if (l.api == api && l.failed == 0 && l.itl_ms.p99 - l.direct_itl_ms.p99 <= 1.0 &&
          l.tokens_per_s > best) {
        best = l.tokens_per_s;
        at = l.concurrency;
      }
    }
    std::printf("capacity (%s): %.0f tokens/s at ITL p99 within +1 ms of the baseline (%d "
                "streams)%s\n",
                api.c_str(), best, at, best == 0 ? " -- no level stayed within +1 ms" : "");
  }
  for (const Level& l : levels) {
    if (!l.first_error.empty()) {
      std::printf("first error (%s, %d streams): %s\n", l.api.c_str(), l.concurrency,
                  l.first_error.c_str());
    }
  }
  for (auto& w : workers) w->Stop();
  coordinator.Kill(SIGTERM);
  std::system(absl::StrCat("rm -rf ", dir).c_str());
  return 0;
}

}  // namespace
}  // namespace g4

int main(int argc, char** argv) { return g4::Main(argc, argv); }
