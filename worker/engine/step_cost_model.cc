#include "worker/engine/step_cost_model.h"

#include <algorithm>
#include <cmath>

namespace g4 {
namespace {

// Σ_{p=0}^{n-1} keys(p): the (query, key) pairs of the first n positions, where position p sees
// p + 1 keys, at most `window` (0: unbounded).
double PairsUpTo(int64_t n, int64_t window) {
  const double nn = static_cast<double>(n);
  if (window <= 0 || n <= window) return nn * (nn + 1) / 2;
  const double w = static_cast<double>(window);
  return w * (w + 1) / 2 + (nn - w) * w;
}

}  // namespace

double StepCostModel::ChunkCost(int64_t begin, int64_t len) const {
  if (len <= 0) return 0;
  double cost = static_cast<double>(len);
  if (global_per_pair > 0) {
    cost += global_per_pair * (PairsUpTo(begin + len, 0) - PairsUpTo(begin, 0));
  }
  if (sliding_per_pair > 0) {
    cost += sliding_per_pair * (PairsUpTo(begin + len, sliding_window) -
                                PairsUpTo(begin, sliding_window));
  }
  return cost;
}

int64_t StepCostModel::MaxLenWithin(int64_t begin, int64_t max_len, double budget) const {
  if (max_len <= 0 || budget < ChunkCost(begin, 1)) return 0;
  if (ChunkCost(begin, max_len) <= budget) return max_len;
  int64_t lo = 1, hi = max_len;  // lo fits, hi does not
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (ChunkCost(begin, mid) <= budget ? lo : hi) = mid;
  }
  return lo;
}

StepCostModel StepCostModel::FromConfig(const ModelConfig& c, double attention_scale) {
  StepCostModel m;
  const double h = static_cast<double>(c.hidden_size);
  double linear = 0, global = 0, sliding = 0;
  for (int l = 0; l < c.num_layers; ++l) {
    const double d = c.HeadDim(l);
    const double q = c.num_heads * d;
    const double kv = (c.IsKvShared(l) ? 0 : c.NumKvHeads(l) * d) * (c.HasVProj(l) ? 2 : 1);
    double mlp = 3 * h * static_cast<double>(c.MlpWidth(l));
    if (c.enable_moe_block) {
      mlp += 3 * h * static_cast<double>(c.moe_intermediate_size) * c.top_k_experts;
    }
    linear += 2 * (h * q + h * kv + q * h + mlp);
    const double per_pair = c.num_heads * (4 * d + kSoftmaxFlopsPerScore);
    (c.IsGlobal(l) ? global : sliding) += per_pair;
  }
  if (linear <= 0) return m;
  m.global_per_pair = attention_scale * global / linear;
  m.sliding_per_pair = attention_scale * sliding / linear;
  m.sliding_window = c.sliding_window;
  return m;
}

void StepTimeEstimator::Observe(double cost, double seconds) {
  if (!(cost >= 0) || !(seconds >= 0) || !std::isfinite(cost) || !std::isfinite(seconds)) return;
  for (CostClass& c : classes_) {
    c.weight *= kAging;
    if (c.weight < 0.05) c = CostClass{};
  }
  const int k = cost < 1 ? 0 : std::min(kClasses - 1, 1 + static_cast<int>(std::log2(cost)));
  CostClass& c = classes_[k];
  if (c.weight >= 2) seconds = std::min(seconds, kOutlierFactor * c.seconds);
  c.weight = decay_ * c.weight + 1;
  c.cost += (cost - c.cost) / c.weight;
  c.seconds += (seconds - c.seconds) / c.weight;
  Refit();
}

void StepTimeEstimator::Refit() {
  // Least squares through the classes' means, each class counting once: the classes the steps
  // happen to crowd into do not outweigh the others.
  double n = 0, sc = 0, scc = 0, st = 0, sct = 0, lo = 0, hi = 0;
  for (const CostClass& c : classes_) {
    if (c.weight == 0) continue;
    lo = n == 0 ? c.cost : std::min(lo, c.cost);
    hi = n == 0 ? c.cost : std::max(hi, c.cost);
    n += 1;
    sc += c.cost;
    scc += c.cost * c.cost;
    st += c.seconds;
    sct += c.cost * c.seconds;
  }
  if (n < 2 || !(hi >= 2 * lo) || hi <= 0) return;  // no line: keep the last estimate
  const double det = n * scc - sc * sc;
  if (!(det > 0)) return;
  const double slope = (n * sct - sc * st) / det;
  const double overhead = (st - slope * sc) / n;
  if (!(slope > 0) || !(overhead > 0)) return;
  overhead_cost_ = overhead / slope;
}

}  // namespace g4
