// cos/sin of the RoPE angles per key position, computed once and kept, for the derived-K
// attention (KeyDerivation in kernels/ops.h).
//
// Deriving a K row from V needs cos/sin of float(p)·inv_freq[i] for every rotated pair of every
// key. Recomputed per call that costs more than the decode attention itself on the CPU (about
// 25 ns per pair, 64 pairs per key at head_dim 512), so CpuOps keeps one table that grows with
// the largest position seen and serves every layer, step and sequence. The values are those of
// Ops::Rope bit for bit (same RopeCosSin). Memory: 2 · rotated_pairs floats per position, from
// 0 to the largest position asked for (512 B per position for Gemma 4 global layers, 128 MiB at
// 262144 positions).
//
// Thread-compatible.
#ifndef G4SERVE_KERNELS_CPU_ROPE_TABLE_H_
#define G4SERVE_KERNELS_CPU_ROPE_TABLE_H_

#include <cstdint>
#include <vector>

namespace g4::cpu {

class RopeTable {
 public:
  // Makes Cos(p)/Sin(p) valid for p in [0, end) for `inv_freq` ([half] entries). A different
  // inv_freq (another layer type or model) replaces the table.
  void Cover(const float* inv_freq, int half, int64_t end);

  // Pairs [0, rotated_pairs()) rotate; the rest have inv_freq 0 (identity).
  int rotated_pairs() const { return rotated_; }
  int64_t size() const { return size_; }
  const float* Cos(int64_t p) const { return rows_.data() + p * 2 * rotated_; }
  const float* Sin(int64_t p) const { return rows_.data() + p * 2 * rotated_ + rotated_; }

 private:
  std::vector<float> inv_freq_;
  int rotated_ = 0;
  int64_t size_ = 0;
  std::vector<float> rows_;  // [position][cos of each rotated pair, then sin]
};

}  // namespace g4::cpu

#endif  // G4SERVE_KERNELS_CPU_ROPE_TABLE_H_
