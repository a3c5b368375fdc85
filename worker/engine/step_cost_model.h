// What a chunk of a step costs, in token-equivalents: the work of one token at context 0 (its
// projections and MLP) is 1, and every (query, key) pair the chunk's attention computes adds
// `per_pair` of its layer kind. Attention over a long context thus costs far more than the
// chunk's token count: a 2048-token chunk at position 30 000 of a global layer computes ~63M
// pairs.
//
// The scheduler (scheduler.h) spends a per-step cost budget (max_num_batched_tokens
// token-equivalents) instead of counting tokens only, so a prefill chunk deep into a long prompt
// shrinks and the decodes batched with it keep their step time. Analytic, from the model config
// (FromConfig): per-token linear FLOPs against the attention FLOPs of one pair, plus a constant
// for the softmax of each score. Details and the measured effect: docs/long_context.md.
#ifndef G4SERVE_WORKER_ENGINE_STEP_COST_MODEL_H_
#define G4SERVE_WORKER_ENGINE_STEP_COST_MODEL_H_

#include <cstdint>

#include "common/model_config.h"

namespace g4 {

struct StepCostModel {
  // Token-equivalents per (query, key) pair, summed over the layers of each kind. 0 and 0: a
  // chunk costs its token count (attention ignored).
  double global_per_pair = 0;
  double sliding_per_pair = 0;
  int64_t sliding_window = 0;  // keys a sliding-layer query sees at most (0: none)

  bool enabled() const { return global_per_pair > 0 || sliding_per_pair > 0; }

  // Cost of feeding positions [begin, begin + len) of one sequence (causal attention; a decode
  // is len 1 at begin = its context).
  double ChunkCost(int64_t begin, int64_t len) const;

  // The largest len in [0, max_len] with ChunkCost(begin, len) <= budget (cost is increasing in
  // len).
  int64_t MaxLenWithin(int64_t begin, int64_t max_len, double budget) const;

  // FLOP-equivalents charged per attention score besides its two multiply-adds per head dim
  // (QKᵀ and PV): the softmax's exp, max, sum and scale, which on the CPU backend cost about as
  // much as a 16-wide dot product.
  static constexpr double kSoftmaxFlopsPerScore = 32;

  // The analytic model of `config`: per_pair = Σ_layers of that kind  heads · (4·head_dim +
  // kSoftmaxFlopsPerScore) / (per-token linear FLOPs of the whole model: 2 · (q, k, v, o
  // projections + MLP or experts) over all layers). Tensor parallelism divides both alike.
  // `attention_scale` multiplies both per_pair values (calibration; 1 = analytic).
  static StepCostModel FromConfig(const ModelConfig& config, double attention_scale = 1.0);
};

// Calibrates the cost model against the clock: fits step time = overhead + seconds_per_cost ·
// cost, where cost is the step's total StepCostModel cost. The fixed overhead (step descriptor
// broadcast, the collectives of a forward, kernel launches) does not depend on the batch;
// OverheadCost() expresses it in cost units. The scheduler lets prefill chunks that share a step
// with decodes add at most a share of what the step would take without them
// (SchedulerOptions::decode_step_slowdown), so the decodes' inter-token latency stays within 2x.
//
// Robust against its own feedback: the scheduler picks the prefill steps' costs from the
// estimate, so during a long prefill nearly every step costs the same and a plain least-squares
// fit over recent steps loses the slope (the estimate then random-walks with the costs it chose,
// measured: 0 to 80 000 within 100 steps). So steps are kept per cost class (powers of two), each
// class with an exponentially weighted mean of its steps, and the line is fitted through the
// classes: decode-only steps seen before a prefill still anchor the fit while it runs. A step more
// than kOutlierFactor times its class's mean (a machine hiccup) counts as that bound. A class
// nobody visits fades slowly (kAging per step); when the classes left do not determine a line
// (one class, or costs within 2x), the last good estimate is kept. Not thread-safe (the engine
// thread).
class StepTimeEstimator {
 public:
  // `decay` weighs a class's previous steps per new step of that class (0.9: about the last 10
  // count).
  explicit StepTimeEstimator(double decay = 0.9) : decay_(decay) {}

  void Observe(double cost, double seconds);
  // overhead / seconds_per_cost in cost units; 0 until a meaningful fit (classes of costs at
  // least 2x apart, a positive slope and overhead) has been seen.
  double OverheadCost() const { return overhead_cost_; }

  static constexpr int kClasses = 48;  // class k: cost in [2^(k-1), 2^k); class 0: cost < 1
  static constexpr double kOutlierFactor = 4;
  static constexpr double kAging = 0.998;  // per step, for every class (~1 500 steps to 5 %)

 private:
  struct CostClass {
    double weight = 0;   // decayed number of steps
    double cost = 0;     // their weighted mean cost
    double seconds = 0;  // and mean time
  };
  void Refit();

  double decay_;
  CostClass classes_[kClasses];
  double overhead_cost_ = 0;
};

}  // namespace g4

#endif  // G4SERVE_WORKER_ENGINE_STEP_COST_MODEL_H_
