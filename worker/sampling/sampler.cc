#include "worker/sampling/sampler.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace g4 {
namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kMaxFinite = std::numeric_limits<float>::max();
constexpr float kMinFinite = std::numeric_limits<float>::lowest();

uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Distinct seeds for unseeded sequences: a random base per process, then a counter.
uint64_t NextProcessSeed() {
  static const uint64_t base = [] {
    std::random_device rd;
    const uint64_t t =
        static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    return Mix64((static_cast<uint64_t>(rd()) << 32) ^ rd() ^ t);
  }();
  static std::atomic<uint64_t> counter{0};
  return Mix64(base + kGolden * counter.fetch_add(1, std::memory_order_relaxed));
}

// "a ranks before b": larger value first, lower id on ties.
struct RanksBefore {
  const float* v;
  bool operator()(int32_t a, int32_t b) const { return v[a] > v[b] || (v[a] == v[b] && a < b); }
};

// The `n` best indices of v[0, size) in rank order. Small n: a bounded heap, about `size`
// comparisons for typical logits. Large n: nth_element over all indices, then sort the prefix.
std::vector<int32_t> TopIndices(const float* v, int64_t size, int64_t n) {
  n = std::min(n, size);
  std::vector<int32_t> heap;
  if (n <= 0) return heap;
  if (n > 1024 && n * 32 > size) {
    std::vector<int32_t> all(size);
    for (int64_t i = 0; i < size; ++i) all[i] = static_cast<int32_t>(i);
    const RanksBefore before{v};
    std::nth_element(all.begin(), all.begin() + (n - 1), all.end(), before);
    all.resize(n);
    std::sort(all.begin(), all.end(), before);
    return all;
  }
  heap.reserve(n);
  const RanksBefore before{v};
  // With `before` as the heap's "less", the front is the worst kept index.
  for (int64_t i = 0; i < size; ++i) {
    const int32_t id = static_cast<int32_t>(i);
    if (static_cast<int64_t>(heap.size()) < n) {
      heap.push_back(id);
      std::push_heap(heap.begin(), heap.end(), before);
    } else if (before(id, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), before);
      heap.back() = id;
      std::push_heap(heap.begin(), heap.end(), before);
    }
  }
  std::sort_heap(heap.begin(), heap.end(), before);
  return heap;
}

// log(sum(exp(v))) over the row, NaN-free input, with `max` the row's maximum.
double LogSumExp(const float* v, int64_t size, float max, double scale) {
  if (max == kNegInf) return -std::numeric_limits<double>::infinity();
  double sum = 0;
  for (int64_t i = 0; i < size; ++i) {
    sum += std::exp(static_cast<float>((static_cast<double>(v[i]) - max) * scale));
  }
  return max * scale + std::log(sum);
}

struct RowStats {
  float max = kNegInf;
  int32_t argmax = 0;  // lowest id among the maxima
};

absl::StatusOr<RowStats> Scan(const float* v, int64_t size) {
  RowStats s;
  for (int64_t i = 0; i < size; ++i) {
    if (std::isnan(v[i])) {
      return absl::InvalidArgumentError(absl::StrCat("logits: NaN at token ", i));
    }
    if (v[i] > s.max) {
      s.max = v[i];
      s.argmax = static_cast<int32_t>(i);
    }
  }
  return s;
}

}  // namespace

SequenceSamplingState::SequenceSamplingState(SamplingParams params,
                                             absl::Span<const int32_t> prompt_token_ids)
    : params_(std::move(params)),
      seed_(params_.seed.has_value() ? *params_.seed : NextProcessSeed()) {
  if (params_.repetition_penalty != 1.0) {
    prompt_tokens_.insert(prompt_token_ids.begin(), prompt_token_ids.end());
  }
}

double SequenceSamplingState::UniformForStep(int64_t step) const {
  // SplitMix64: the state after step+1 increments of a generator seeded with Mix64(seed).
  const uint64_t z = Mix64(Mix64(seed_) + kGolden * (static_cast<uint64_t>(step) + 1));
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

FinishReason SequenceSamplingState::AppendOutputToken(int32_t token) {
  ++output_counts_[token];
  output_token_ids_.push_back(token);
  ++num_output_tokens_;
  const auto& stops = params_.stop_token_ids;
  if (std::find(stops.begin(), stops.end(), token) != stops.end()) {
    finish_reason_ = FinishReason::kStopToken;
  } else if (params_.max_tokens.has_value() && num_output_tokens_ >= *params_.max_tokens) {
    finish_reason_ = FinishReason::kLength;
  }
  return finish_reason_;
}

class SamplerInternal {
 public:
  // Everything but the append: the result for `row` given `state` as it is now.
  static absl::StatusOr<SampleResult> Compute(absl::Span<const float> row,
                                              const SequenceSamplingState& state);
};

absl::StatusOr<SampleResult> SamplerInternal::Compute(absl::Span<const float> row,
                                                      const SequenceSamplingState& state) {
  const SamplingParams& p = state.params_;
  const int64_t vocab = static_cast<int64_t>(row.size());
  if (vocab == 0) return absl::InvalidArgumentError("logits: empty row");
  if (state.finished()) {
    return absl::FailedPreconditionError("Sample: the sequence has already finished");
  }
  G4_ASSIGN_OR_RETURN(const RowStats raw_stats, Scan(row.data(), vocab));

  // 1. min_tokens mask and penalties, on a copy only when something changes the row.
  const bool mask_stops = state.num_output_tokens_ < p.min_tokens && !p.stop_token_ids.empty();
  const bool repetition = p.repetition_penalty != 1.0;
  const bool additive =
      (p.presence_penalty != 0.0 || p.frequency_penalty != 0.0) && !state.output_counts_.empty();
  std::vector<float> work;
  const float* logits = row.data();
  RowStats stats = raw_stats;
  if (mask_stops ||
      (repetition && (!state.prompt_tokens_.empty() || !state.output_counts_.empty())) ||
      additive) {
    work.assign(row.begin(), row.end());
    auto check = [&](int32_t id, absl::string_view what) -> absl::Status {
      if (id < 0 || id >= vocab) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, " token id ", id, " is outside the logits row [0, ", vocab, ")"));
      }
      return absl::OkStatus();
    };
    if (repetition) {
      const float r = static_cast<float>(p.repetition_penalty);
      // Clamped: an extreme penalty (a denormal one divides to inf) must not make a logit
      // infinite, which would turn the weights into NaN (found by tests/fuzz).
      auto penalize = [&](int32_t id) {
        work[id] = std::clamp(work[id] > 0 ? work[id] / r : work[id] * r, kMinFinite, kMaxFinite);
      };
      for (int32_t id : state.prompt_tokens_) {
        G4_RETURN_IF_ERROR(check(id, "prompt"));
        penalize(id);
      }
      for (const auto& [id, count] : state.output_counts_) {
        G4_RETURN_IF_ERROR(check(id, "output"));
        if (!state.prompt_tokens_.contains(id)) penalize(id);
      }
    }
    if (additive) {
      for (const auto& [id, count] : state.output_counts_) {
        G4_RETURN_IF_ERROR(check(id, "output"));
        work[id] = std::clamp(
            work[id] - static_cast<float>(p.frequency_penalty * count + p.presence_penalty),
            kMinFinite, kMaxFinite);
      }
    }
    if (mask_stops) {
      for (int id : p.stop_token_ids) {
        G4_RETURN_IF_ERROR(check(id, "stop"));
        work[id] = kNegInf;
      }
    }
    logits = work.data();
    G4_ASSIGN_OR_RETURN(stats, Scan(logits, vocab));
  }
  if (stats.max == kNegInf) {
    return absl::FailedPreconditionError("Sample: every token is masked");
  }

  SampleResult result;
  const double t = p.temperature;
  if (t == 0) {
    // 2. Greedy.
    result.token = stats.argmax;
  } else {
    // 2. Temperature: weights w_i = exp((l_i - max) / t), so the best token weighs 1.
    const double inv_t = 1.0 / t;
    const double max = stats.max;
    auto weight = [&](int32_t id) {
      const double d = static_cast<double>(logits[id]) - max;
      if (d == 0) return 1.0f;  // the best token, also when inv_t is inf (a denormal t)
      return std::exp(static_cast<float>(d * inv_t));
    };
    // Candidates in rank order (or, with no top-k/top-p, all tokens in id order).
    std::vector<int32_t> cand;
    std::vector<double> cum;  // cumulative weights of cand
    bool have_cand = false;
    auto accumulate = [&](size_t from) {
      double c = from == 0 ? 0.0 : cum[from - 1];
      cum.resize(cand.size());
      for (size_t i = from; i < cand.size(); ++i) cum[i] = (c += weight(cand[i]));
    };
    // Keeps the shortest prefix whose mass reaches top_p of `total`.
    auto cut_top_p = [&](double total) {
      const double target = p.top_p * total;
      const size_t keep = std::lower_bound(cum.begin(), cum.end(), target) - cum.begin() + 1;
      if (keep < cand.size()) {
        cand.resize(keep);
        cum.resize(keep);
      }
    };
    // 3. Top-k.
    if (p.top_k > 0 && p.top_k < vocab) {
      cand = TopIndices(logits, vocab, p.top_k);
      accumulate(0);
      have_cand = true;
      // 4. Top-p over the top-k renormalized distribution.
      if (p.top_p < 1.0) cut_top_p(cum.back());
    } else if (p.top_p < 1.0) {
      // 4. Top-p alone: grow the ranked prefix until it holds top_p of the full mass.
      double total = 0;
      for (int64_t i = 0; i < vocab; ++i) total += weight(static_cast<int32_t>(i));
      for (int64_t n = std::min<int64_t>(vocab, 256);; n = std::min(vocab, n * 4)) {
        cand = TopIndices(logits, vocab, n);
        accumulate(0);
        if (cum.back() >= p.top_p * total || n == vocab) break;
      }
      cut_top_p(total);
      have_cand = true;
    }
    // 5. Min-p: drop tokens whose probability is below min_p times the best one's (weight < min_p;
    // renormalization by earlier steps does not change the ratio).
    if (p.min_p > 0) {
      if (have_cand) {
        size_t keep = 0;
        while (keep < cand.size() && weight(cand[keep]) >= p.min_p) ++keep;
        cand.resize(std::max<size_t>(keep, 1));
        cum.resize(cand.size());
      } else {
        for (int64_t i = 0; i < vocab; ++i) {
          if (weight(static_cast<int32_t>(i)) >= p.min_p) cand.push_back(static_cast<int32_t>(i));
        }
        if (cand.empty()) cand.push_back(stats.argmax);  // as above: min-p keeps the best token
        accumulate(0);
        have_cand = true;
      }
    }
    // 6. Draw: the first candidate whose cumulative weight exceeds u * total.
    const double u = state.UniformForStep(state.num_output_tokens_);
    if (have_cand) {
      const double target = u * cum.back();
      size_t i = std::upper_bound(cum.begin(), cum.end(), target) - cum.begin();
      if (i >= cand.size()) i = cand.size() - 1;  // rounding
      result.token = cand[i];
    } else {
      std::vector<float> w(vocab);
      double total = 0;
      for (int64_t i = 0; i < vocab; ++i) total += (w[i] = weight(static_cast<int32_t>(i)));
      const double target = u * total;
      double c = 0;
      result.token = stats.argmax;  // rounding fallback
      for (int64_t i = 0; i < vocab; ++i) {
        c += w[i];
        if (c > target && w[i] > 0) {
          result.token = static_cast<int32_t>(i);
          break;
        }
      }
    }
  }

  // Logprobs of the raw or processed distribution.
  if (p.logprobs.has_value()) {
    const bool processed = p.logprobs_mode == LogprobsMode::kProcessed;
    const float* v = processed ? logits : row.data();
    const float vmax = processed ? stats.max : raw_stats.max;
    const double scale = processed && t > 0 ? 1.0 / t : 1.0;
    const double lse = LogSumExp(v, vocab, vmax, scale);
    auto logprob = [&](int32_t id) {
      return static_cast<float>(static_cast<double>(v[id]) * scale - lse);
    };
    result.logprob = logprob(result.token);
    const float chosen = v[result.token];
    int64_t better = 0;
    for (int64_t i = 0; i < vocab; ++i) better += v[i] > chosen;
    result.rank = better + 1;
    for (int32_t id : TopIndices(v, vocab, *p.logprobs)) {
      // Masked tokens (a structured-output constraint, or min_tokens) are not alternatives.
      if (v[id] == kNegInf) break;
      result.top_logprobs.push_back({id, logprob(id)});
    }
  }
  return result;
}

absl::StatusOr<SampleResult> Sample(absl::Span<const float> logits_row,
                                    SequenceSamplingState& state) {
  G4_ASSIGN_OR_RETURN(SampleResult result, SamplerInternal::Compute(logits_row, state));
  result.finish_reason = state.AppendOutputToken(result.token);
  return result;
}

absl::StatusOr<std::vector<SampleResult>> SampleBatch(
    absl::Span<const float> logits, int64_t vocab_size,
    absl::Span<SequenceSamplingState* const> states) {
  if (vocab_size <= 0 ||
      static_cast<int64_t>(logits.size()) != vocab_size * static_cast<int64_t>(states.size())) {
    return absl::InvalidArgumentError(absl::StrCat("SampleBatch: ", logits.size(),
                                                   " logits are not ", states.size(), " rows of ",
                                                   vocab_size));
  }
  absl::flat_hash_set<const SequenceSamplingState*> seen;
  for (const SequenceSamplingState* state : states) {
    if (state == nullptr || !seen.insert(state).second) {
      return absl::InvalidArgumentError("SampleBatch: states must be distinct and non-null");
    }
  }
  std::vector<SampleResult> results;
  results.reserve(states.size());
  for (size_t r = 0; r < states.size(); ++r) {
    G4_ASSIGN_OR_RETURN(
        SampleResult result,
        SamplerInternal::Compute(logits.subspan(r * vocab_size, vocab_size), *states[r]));
    results.push_back(std::move(result));
  }
  for (size_t r = 0; r < states.size(); ++r) {
    results[r].finish_reason = states[r]->AppendOutputToken(results[r].token);
  }
  return results;
}

}  // namespace g4
