// A strict, zero-copy reader for one .safetensors file.
//
// The file is mmapped; the header is validated the way the reference (huggingface/safetensors)
// validates it, plus bounds checks it leaves implicit: header length bound (100 MB), valid JSON
// object, known dtype, shape × dtype size == data_offsets span, offsets inside the file, tensors
// contiguous with no overlap and no gap, last end == byte-buffer length, no duplicate names.
//
// Workers load only their shard of a tensor, so reads go through ReadSlice(), which copies (and
// converts to fp32) exactly the rows / columns / expert asked for and counts the bytes it touched.
#ifndef G4SERVE_COMMON_SAFETENSORS_H_
#define G4SERVE_COMMON_SAFETENSORS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/dtype.h"

namespace g4 {

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets relative to the start of the byte buffer
  uint64_t end = 0;

  int64_t NumElements() const;
};

// Which part of a tensor to read. For a 3-D tensor [E, R, C], `index0` picks one leading slice
// (an expert); for a 2-D tensor [R, C] it must be -1. Rows [row_begin, row_end) and columns
// [col_begin, col_end) of the selected 2-D matrix are read; -1 ends mean "to the end".
// A 1-D tensor [N] is treated as [1, N] (select columns).
struct TensorSlice {
  int64_t index0 = -1;
  int64_t row_begin = 0;
  int64_t row_end = -1;
  int64_t col_begin = 0;
  int64_t col_end = -1;

  static TensorSlice All() { return {}; }
  static TensorSlice Rows(int64_t begin, int64_t end) { return {-1, begin, end, 0, -1}; }
  static TensorSlice Cols(int64_t begin, int64_t end) { return {-1, 0, -1, begin, end}; }
  static TensorSlice Expert(int64_t e) { return {e, 0, -1, 0, -1}; }
};

class SafetensorsFile {
 public:
  // Opens and validates `path`. Errors name the file and what is wrong.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

  // nullptr when absent.
  const TensorInfo* Find(absl::string_view name) const;

  // Zero-copy view of a tensor's raw bytes (little-endian, row-major) inside the mapping.
  absl::Span<const uint8_t> RawBytes(const TensorInfo& info) const;

  // Copies the selected part of `info` into `out` as fp32, row-major over the selected
  // [rows, cols]. `out` must hold exactly rows × cols floats. Touches only the selected bytes.
  absl::Status ReadSlice(const TensorInfo& info, const TensorSlice& slice,
                         absl::Span<float> out) const;

  // Total bytes of tensor data copied by ReadSlice so far (to test that shards read only theirs).
  uint64_t bytes_read() const { return bytes_read_.load(std::memory_order_relaxed); }

 private:
  SafetensorsFile() = default;

  std::string path_;
  int fd_ = -1;
  const uint8_t* map_ = nullptr;
  size_t map_size_ = 0;
  const uint8_t* data_ = nullptr;  // start of the byte buffer
  uint64_t data_size_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<TensorInfo> tensors_;  // in header order
  std::map<std::string, size_t, std::less<>> index_;
  mutable std::atomic<uint64_t> bytes_read_{0};
};

// Resolved selection: the shape ReadSlice produces for `slice` of `info` ([rows, cols]), or an
// error naming the tensor and the bad bound.
absl::StatusOr<std::pair<int64_t, int64_t>> SliceShape(const TensorInfo& info,
                                                        const TensorSlice& slice);

}  // namespace g4

#endif  // G4SERVE_COMMON_SAFETENSORS_H_
