// What one g4-load request measured, and the clock-to-metrics bookkeeping both clients share.
#ifndef G4SERVE_TOOLS_LOAD_GENERATOR_REQUEST_RESULT_H_
#define G4SERVE_TOOLS_LOAD_GENERATOR_REQUEST_RESULT_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace g4::load {

// One request as sent: either token ids or text, and the number of tokens to generate.
struct RequestSpec {
  int index = 0;
  std::vector<int32_t> prompt_ids;  // used when prompt_text is empty
  std::string prompt_text;
  int prompt_len = 0;               // prompt tokens when known up front (ids), else 0
  int max_tokens = 0;
};

struct RequestResult {
  bool success = false;
  std::string error;            // when !success
  int prompt_tokens = 0;        // from the server's usage when reported, else the spec's
  int output_tokens = 0;
  int chunks = 0;               // stream messages that carried output
  double start_s = 0;           // send time, seconds since the run started
  double ttft_s = 0;            // first output chunk - send
  double e2e_s = 0;             // last byte - send
  std::vector<double> itl_s;    // gaps between consecutive output chunks (chunks - 1 entries)
};

// Turns arrival times of output chunks into TTFT / ITL / e2e. ITL follows vLLM's
// benchmark_serving: one sample per chunk gap, whatever the number of tokens in a chunk (TPOT
// is the token-normalised figure).
class ChunkTimer {
 public:
  using Clock = std::chrono::steady_clock;
  explicit ChunkTimer(Clock::time_point sent) : sent_(sent), last_(sent) {}

  // A stream message arrived carrying `tokens` output tokens (chunks with 0 tokens, such as a
  // trailing usage message, only count for e2e).
  void OnChunk(int tokens, Clock::time_point now = Clock::now());
  // The stream ended successfully.
  void Finish(RequestResult* result, Clock::time_point now = Clock::now()) const;

  int tokens() const { return tokens_; }

 private:
  Clock::time_point sent_;
  Clock::time_point last_;
  Clock::time_point first_{};
  bool have_first_ = false;
  int tokens_ = 0;
  int chunks_ = 0;
  std::vector<double> itl_s_;
};

}  // namespace g4::load

#endif  // G4SERVE_TOOLS_LOAD_GENERATOR_REQUEST_RESULT_H_
