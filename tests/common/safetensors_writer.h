// Test-only helper: builds .safetensors files (valid or deliberately corrupt) in memory and
// writes them to disk.
//
//   SafetensorsWriter w;
//   w.AddF32("a", {2, 3}, {1, 2, 3, 4, 5, 6});
//   w.AddBf16("b", {4}, {1, -2, 0.5, 3});
//   ASSERT_TRUE(w.Write(path));
//
// Corruption: build the header yourself (Header() gives the valid one as a string to edit) and
// assemble with Assemble(header, buffer, declared_length), or use WriteOptions.
#ifndef G4SERVE_TESTS_COMMON_SAFETENSORS_WRITER_H_
#define G4SERVE_TESTS_COMMON_SAFETENSORS_WRITER_H_

#include <stdlib.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/dtype.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"
#include "nlohmann/json.hpp"

namespace g4::testing_util {

// n consecutive floats from `start`: tensor contents whose every element says where it came from.
inline std::vector<float> Iota(int n, float start = 0.f) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = start + static_cast<float>(i);
  return v;
}

struct WriteOptions {
  bool pad_header = true;                // pad the header with spaces to a multiple of 8
  std::string trailing_bytes;            // appended after the byte buffer
  std::optional<uint64_t> declared_len;  // overrides the 8-byte header length
  std::optional<size_t> truncate_to;     // cuts the file to this many bytes
};

class SafetensorsWriter {
 public:
  struct Entry {
    std::string name;
    std::string dtype;
    std::vector<int64_t> shape;
    std::string bytes;
  };

  SafetensorsWriter& AddRaw(std::string name, std::string dtype, std::vector<int64_t> shape,
                            std::string bytes) {
    entries_.push_back({std::move(name), std::move(dtype), std::move(shape), std::move(bytes)});
    return *this;
  }
  SafetensorsWriter& AddF32(std::string name, std::vector<int64_t> shape,
                            const std::vector<float>& v) {
    return AddRaw(std::move(name), "F32", std::move(shape), Bytes(v.data(), v.size() * 4));
  }
  // Values are rounded to bf16 (round-to-nearest-even).
  SafetensorsWriter& AddBf16(std::string name, std::vector<int64_t> shape,
                             const std::vector<float>& v) {
    std::vector<uint16_t> h;
    for (float f : v) h.push_back(F32ToBf16(f));
    return AddRaw(std::move(name), "BF16", std::move(shape), Bytes(h.data(), h.size() * 2));
  }
  // Raw IEEE half bit patterns.
  SafetensorsWriter& AddF16Bits(std::string name, std::vector<int64_t> shape,
                                const std::vector<uint16_t>& bits) {
    return AddRaw(std::move(name), "F16", std::move(shape), Bytes(bits.data(), bits.size() * 2));
  }
  SafetensorsWriter& SetMetadata(std::string key, std::string value) {
    metadata_[std::move(key)] = std::move(value);
    return *this;
  }

  // The header JSON (tensors in insertion order, offsets contiguous) without padding.
  std::string Header() const {
    nlohmann::ordered_json h = nlohmann::ordered_json::object();
    if (!metadata_.empty()) h["__metadata__"] = metadata_;
    uint64_t offset = 0;
    for (const Entry& e : entries_) {
      h[e.name] = {{"dtype", e.dtype},
                   {"shape", e.shape},
                   {"data_offsets", {offset, offset + e.bytes.size()}}};
      offset += e.bytes.size();
    }
    return h.dump();
  }
  std::string Buffer() const {
    std::string b;
    for (const Entry& e : entries_) b += e.bytes;
    return b;
  }

  std::string Build(const WriteOptions& opt = {}) const {
    std::string header = Header();
    if (opt.pad_header) header.resize((header.size() + 7) / 8 * 8, ' ');
    std::string file = Assemble(header, Buffer() + opt.trailing_bytes, opt.declared_len);
    if (opt.truncate_to && *opt.truncate_to < file.size()) file.resize(*opt.truncate_to);
    return file;
  }
  bool Write(const std::string& path, const WriteOptions& opt = {}) const {
    return WriteFile(path, Build(opt));
  }

  // 8-byte LE length (header.size() unless overridden) + header + buffer.
  static std::string Assemble(const std::string& header, const std::string& buffer,
                              std::optional<uint64_t> declared_len = std::nullopt) {
    const uint64_t n = declared_len.value_or(header.size());
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    return out + header + buffer;
  }
  static bool WriteFile(const std::string& path, const std::string& contents) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return false;
    const bool ok = std::fwrite(contents.data(), 1, contents.size(), f) == contents.size();
    return std::fclose(f) == 0 && ok;
  }

 private:
  static std::string Bytes(const void* p, size_t n) {
    return std::string(static_cast<const char*>(p), n);
  }

  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

using ::g4::testing::ScopedTempDir;

}  // namespace g4::testing_util

#endif  // G4SERVE_TESTS_COMMON_SAFETENSORS_WRITER_H_
