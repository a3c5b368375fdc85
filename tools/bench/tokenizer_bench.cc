// g4-bench-tokenizer --tokenizer FILE --text FILE [--seconds S] [--threads N]
//
// Loads the tokenizer (timed; an uncompressed tokenizer.json is also timed through LoadFromJson
// alone), then encodes the whole text file repeatedly for at least S seconds and prints MB/s.
// With --threads N > 1 the text is cut at newlines into N parts encoded concurrently (newline is
// an added token for Gemma, so the ids are the same); ids are checked against one-thread output.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/flags/flag_set.h"
#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/tokenizer_json.h"

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string tok_path, text_path;
  double seconds = 3.0;
  int threads = 1;
  g4::FlagSet flags("g4-bench-tokenizer", "--tokenizer FILE --text FILE [flags]",
                    "Times loading a tokenizer and encoding a text file (MB/s). "
                    "docs/tokenizer.md.");
  flags.Add("tokenizer", &tok_path, "tokenizer.json (or .json.xz)").Value("FILE").Required();
  flags.Add("text", &text_path, "the text to encode").Value("FILE").Required();
  flags.Add("seconds", &seconds, "encode for at least S seconds")
      .Value("S")
      .RealRange(0.0, 1e6, /*exclusive_min=*/true);
  flags.Add("threads", &threads, "encode N parts of the text concurrently").Range(1, 1024);
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) {
    return g4::FlagError("g4-bench-tokenizer", s);
  }
  if (flags.help()) return g4::PrintUsage(flags.Usage());
  double t0 = Now();
  auto raw = g4::tokenizer_internal::ReadMaybeXzFile(tok_path);
  if (!raw.ok()) {
    std::fprintf(stderr, "%s\n", std::string(raw.status().message()).c_str());
    return 1;
  }
  const double read_s = Now() - t0;
  t0 = Now();
  auto tok = g4::Tokenizer::LoadFromJson(*raw);
  const double load_s = Now() - t0;
  if (!tok.ok()) {
    std::fprintf(stderr, "%s\n", std::string(tok.status().message()).c_str());
    return 1;
  }
  std::ifstream f(text_path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();

  // Parts cut after newlines.
  std::vector<absl::string_view> parts;
  {
    size_t begin = 0;
    for (int p = 1; p <= threads; ++p) {
      size_t end = p == threads ? text.size() : text.size() * p / threads;
      if (p != threads) {
        end = text.find('\n', end);
        end = end == std::string::npos ? text.size() : end + 1;
      }
      if (end < begin) end = begin;
      parts.emplace_back(text.data() + begin, end - begin);
      begin = end;
    }
  }
  const std::vector<int32_t> reference = (*tok)->Encode(text);
  size_t iters = 0, tokens = 0;
  const double start = Now();
  double elapsed = 0;
  while (elapsed < seconds || iters == 0) {
    std::vector<std::vector<int32_t>> out(parts.size());
    std::vector<std::thread> pool;
    if (threads == 1) {
      out[0] = (*tok)->Encode(parts[0]);
    } else {
      for (size_t p = 0; p < parts.size(); ++p) {
        pool.emplace_back([&, p] { out[p] = (*tok)->Encode(parts[p]); });
      }
      for (auto& t : pool) t.join();
    }
    size_t n = 0;
    for (auto& o : out) n += o.size();
    if (iters == 0) {
      std::vector<int32_t> all;
      for (auto& o : out) all.insert(all.end(), o.begin(), o.end());
      if (all != reference) {
        std::fprintf(stderr, "threaded ids differ from single-thread ids\n");
        return 1;
      }
    }
    tokens += n;
    ++iters;
    elapsed = Now() - start;
  }
  const double mb = static_cast<double>(text.size()) * iters / 1e6;
  std::printf(
      "{\"read_s\": %.3f, \"load_json_s\": %.3f, \"text_bytes\": %zu, \"tokens\": %zu, "
      "\"iters\": %zu, \"threads\": %d, \"seconds\": %.3f, \"mb_per_s\": %.2f, "
      "\"tokens_per_s\": %.0f}\n",
      read_s, load_s, text.size(), reference.size(), iters, threads, elapsed, mb / elapsed,
      tokens / elapsed);
  return 0;
}
