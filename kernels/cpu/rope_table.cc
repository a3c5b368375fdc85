#include "kernels/cpu/rope_table.h"

#include <algorithm>

#include "kernels/cpu/attention_workspace.h"
#include "kernels/cpu/rope_math.h"

namespace g4::cpu {

void RopeTable::Cover(const float* inv_freq, int half, int64_t end) {
  if (static_cast<int>(inv_freq_.size()) != half ||
      !std::equal(inv_freq_.begin(), inv_freq_.end(), inv_freq)) {
    inv_freq_.assign(inv_freq, inv_freq + half);
    rotated_ = 0;
    for (int i = 0; i < half; ++i) {
      if (inv_freq[i] != 0.0f) rotated_ = i + 1;
    }
    size_ = 0;
    rows_.clear();
  }
  if (end <= size_) return;
  // Grown in kRopeGranule positions (decode adds one position per step), exactly, so the plan's
  // term (RopeTablePeakFloats) holds.
  const int64_t need = end * 2 * rotated_;
  if (static_cast<int64_t>(rows_.capacity()) < need) {
    rows_.reserve(RoundUp(end, kRopeGranule) * 2 * rotated_);
  }
  rows_.resize(need);
  for (int64_t p = size_; p < end; ++p) {
    float* row = rows_.data() + p * 2 * rotated_;
    RopeCosSin(p, inv_freq_.data(), rotated_, row, row + rotated_);
  }
  size_ = end;
}

}  // namespace g4::cpu
