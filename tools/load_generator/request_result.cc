#include "tools/load_generator/request_result.h"

namespace g4::load {

namespace {
double Seconds(ChunkTimer::Clock::duration d) { return std::chrono::duration<double>(d).count(); }
}  // namespace

void ChunkTimer::OnChunk(int tokens, Clock::time_point now) {
  if (tokens <= 0) return;
  if (!have_first_) {
    have_first_ = true;
    first_ = now;
  } else {
    itl_s_.push_back(Seconds(now - last_));
  }
  last_ = now;
  tokens_ += tokens;
  ++chunks_;
}

void ChunkTimer::Finish(RequestResult* result, Clock::time_point now) const {
  result->output_tokens = tokens_;
  result->chunks = chunks_;
  result->ttft_s = have_first_ ? Seconds(first_ - sent_) : 0.0;
  result->e2e_s = Seconds(now - sent_);
  result->itl_s = itl_s_;
}

}  // namespace g4::load
