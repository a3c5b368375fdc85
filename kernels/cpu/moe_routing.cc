#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"

namespace g4::cpu {

// Gemma 4 router tail (transformers Gemma4TextRouter): softmax over all experts in fp32, top-k
// by probability (ties: lower expert index first, as torch.topk on CPU), renormalize the k
// probabilities to sum 1, then multiply by per_expert_scale.
void RouteTopK(int32_t* experts, float* weights, const float* logits,
               const float* per_expert_scale, int64_t tokens, int num_experts, int k) {
  std::vector<float> prob(num_experts);
  std::vector<int> order(num_experts);
  for (int64_t t = 0; t < tokens; ++t) {
    const float* z = logits + t * num_experts;
    const float mx = *std::max_element(z, z + num_experts);
    double sum = 0.0;
    for (int e = 0; e < num_experts; ++e) {
      prob[e] = std::exp(z[e] - mx);
      sum += prob[e];
    }
    for (int e = 0; e < num_experts; ++e) prob[e] = static_cast<float>(prob[e] / sum);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int a, int b) {
      return prob[a] != prob[b] ? prob[a] > prob[b] : a < b;
    });
    float top_sum = 0.0f;
    for (int j = 0; j < k; ++j) top_sum += prob[order[j]];
    for (int j = 0; j < k; ++j) {
      const int e = order[j];
      experts[t * k + j] = e;
      weights[t * k + j] = prob[e] / top_sum * per_expert_scale[e];
    }
  }
}

}  // namespace g4::cpu
