// SafetensorsFile::Open on arbitrary bytes: the 8-byte length, the JSON header, dtypes, shapes
// and offsets against the file size; then every accepted tensor is read back whole.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The loader maps a path: give it an in-memory file.
  static const int fd = memfd_create("safetensors_fuzz", 0);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (fd < 0 || ftruncate(fd, 0) != 0) __builtin_trap();
  if (size > 0 && pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) __builtin_trap();
  auto file = g4::SafetensorsFile::Open(path);
  if (!file.ok()) return 0;
  for (const g4::TensorInfo& t : (*file)->tensors()) {
    if ((*file)->Find(t.name) != &t) __builtin_trap();
    (void)(*file)->RawBytes(t);
    auto shape = g4::SliceShape(t, g4::TensorSlice::All());
    if (!shape.ok()) continue;
    const int64_t n = shape->first * shape->second;
    if (n < 0 || n > (1 << 20)) continue;
    std::vector<float> out(static_cast<size_t>(n));
    (void)(*file)->ReadSlice(t, g4::TensorSlice::All(), absl::MakeSpan(out));
  }
  return 0;
}
