#include "common/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace g4 {
namespace {

// ordered_json keeps the header order, so tensors() lists tensors as the file does.
using Json = nlohmann::ordered_json;

// The reference reader's bound (safetensors/src/tensor.rs MAX_HEADER_SIZE).
constexpr uint64_t kMaxHeaderSize = 100'000'000;

// Every dtype name the reference knows; only the first three are supported here.
constexpr const char* kKnownUnsupportedDTypes[] = {
    "BOOL", "F4",  "F6_E2M3", "F6_E3M2", "U8",  "I8",  "F8_E5M2", "F8_E4M3", "F8_E8M0",
    "I16",  "U16", "I32",     "U32",     "F64", "I64", "U64",     "C64"};

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::Status FileError(absl::string_view path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

absl::Status TensorError(absl::string_view path, absl::string_view name, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": tensor \"", name, "\": ", what));
}

absl::Status ErrnoError(int err, absl::string_view what, absl::string_view path) {
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat(what, " ", path, ": ", std::strerror(err)));
}

// Non-negative integer JSON value as uint64 (nullopt-like false when it is not one).
bool AsUint64(const Json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer()) {
    const int64_t s = v.get<int64_t>();
    if (s < 0) return false;
    *out = static_cast<uint64_t>(s);
    return true;
  }
  return false;
}

absl::StatusOr<DType> ParseDType(const std::string& path, const std::string& name, const Json& v) {
  if (!v.is_string()) {
    return TensorError(path, name, absl::StrCat("`dtype` must be a string, got ", v.dump()));
  }
  const std::string s = v.get<std::string>();
  if (s == "F32") return DType::kF32;
  if (s == "F16") return DType::kF16;
  if (s == "BF16") return DType::kBf16;
  for (const char* known : kKnownUnsupportedDTypes) {
    if (s == known) {
      return TensorError(path, name,
                         absl::StrCat("unsupported dtype ", s, " (supported: F32, F16, BF16)"));
    }
  }
  return TensorError(path, name, absl::StrCat("unknown dtype \"", s, "\""));
}

// Parses one header entry (everything except the byte-buffer bounds checks).
absl::StatusOr<TensorInfo> ParseEntry(const std::string& path, const std::string& name,
                                      const Json& entry) {
  if (!entry.is_object()) {
    return TensorError(path, name, absl::StrCat("entry must be an object, got ", entry.dump()));
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(key)) return TensorError(path, name, absl::StrCat("missing `", key, "`"));
  }
  TensorInfo info;
  info.name = name;
  G4_ASSIGN_OR_RETURN(info.dtype, ParseDType(path, name, entry["dtype"]));

  const Json& shape = entry["shape"];
  if (!shape.is_array()) {
    return TensorError(path, name, absl::StrCat("`shape` must be a list, got ", shape.dump()));
  }
  uint64_t elements = 1;
  bool overflow = false;
  for (const Json& d : shape) {
    uint64_t dim = 0;
    if (!AsUint64(d, &dim) || dim > static_cast<uint64_t>(INT64_MAX)) {
      return TensorError(
          path, name, absl::StrCat("`shape` must hold non-negative integers, got ", shape.dump()));
    }
    info.shape.push_back(static_cast<int64_t>(dim));
    overflow |= __builtin_mul_overflow(elements, dim, &elements);
  }
  uint64_t bytes = 0;
  overflow |= __builtin_mul_overflow(elements, DTypeSize(info.dtype), &bytes);

  const Json& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !AsUint64(offsets[0], &info.begin) ||
      !AsUint64(offsets[1], &info.end)) {
    return TensorError(path, name,
                       absl::StrCat("`data_offsets` must be [begin, end] with non-negative "
                                    "integers, got ",
                                    offsets.dump()));
  }
  if (info.begin > info.end) {
    return TensorError(
        path, name,
        absl::StrCat("data_offsets [", info.begin, ", ", info.end, "] has begin > end"));
  }
  if (overflow) {
    return TensorError(path, name,
                       absl::StrCat("shape ", ShapeString(info.shape), " x ", DTypeName(info.dtype),
                                    " overflows 64 bits"));
  }
  if (bytes != info.end - info.begin) {
    return TensorError(path, name,
                       absl::StrCat("shape ", ShapeString(info.shape), " x ", DTypeName(info.dtype),
                                    " needs ", bytes, " bytes but data_offsets [", info.begin, ", ",
                                    info.end, "] span ", info.end - info.begin));
  }
  return info;
}

// Tracks the keys of every open JSON object to find duplicates, which nlohmann would silently
// collapse (last one wins) and the reference rejects.
class DuplicateKeyDetector {
 public:
  bool Callback(int /*depth*/, nlohmann::detail::parse_event_t event, Json& parsed) {
    using E = nlohmann::detail::parse_event_t;
    if (event == E::object_start) {
      keys_.emplace_back();
    } else if (event == E::object_end) {
      if (!keys_.empty()) keys_.pop_back();
    } else if (event == E::key && !keys_.empty() && parsed.is_string()) {
      const std::string& k = parsed.get_ref<const std::string&>();
      if (!keys_.back().insert(k).second && !found_) {
        found_ = true;
        duplicate_ = k;
        depth_ = static_cast<int>(keys_.size());
      }
    }
    return true;
  }
  bool found() const { return found_; }
  const std::string& duplicate() const { return duplicate_; }
  int depth() const { return depth_; }

 private:
  std::vector<std::set<std::string>> keys_;
  bool found_ = false;
  std::string duplicate_;
  int depth_ = 0;
};

}  // namespace

int64_t TensorInfo::NumElements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  f->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f->fd_ < 0) return ErrnoError(errno, "cannot open", path);
  struct stat st;
  if (::fstat(f->fd_, &st) != 0) return ErrnoError(errno, "cannot stat", path);
  if (!S_ISREG(st.st_mode)) return FileError(path, "not a regular file");
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    return FileError(
        path, absl::StrCat("file is ", file_size, " bytes, shorter than the 8-byte header length"));
  }
  void* map = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, f->fd_, 0);
  if (map == MAP_FAILED) return ErrnoError(errno, "cannot mmap", path);
  f->map_ = static_cast<const uint8_t*>(map);
  f->map_size_ = file_size;
  // The mapping keeps the file alive; no need to hold the descriptor.
  ::close(f->fd_);
  f->fd_ = -1;

  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | f->map_[i];
  if (n > kMaxHeaderSize) {
    return FileError(path, absl::StrCat("header length ", n, " exceeds the limit of ",
                                        kMaxHeaderSize, " bytes"));
  }
  if (n > file_size - 8) {
    return FileError(path, absl::StrCat("header length ", n, " runs past the end of the file (",
                                        file_size, " bytes, so at most ", file_size - 8, ")"));
  }
  f->data_ = f->map_ + 8 + n;
  f->data_size_ = file_size - 8 - n;

  const char* hb = reinterpret_cast<const char*>(f->map_ + 8);
  DuplicateKeyDetector dups;
  Json header = Json::parse(
      hb, hb + n,
      [&dups](int depth, nlohmann::detail::parse_event_t event, Json& parsed) {
        return dups.Callback(depth, event, parsed);
      },
      /*allow_exceptions=*/false);
  if (header.is_discarded()) return FileError(path, "header is not valid JSON");
  if (!header.is_object()) return FileError(path, "header is not a JSON object");
  if (dups.found()) {
    if (dups.depth() == 1) {
      return TensorError(path, dups.duplicate(), "duplicate name in header");
    }
    return FileError(path, absl::StrCat("duplicate key \"", dups.duplicate(), "\" in header"));
  }

  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (value.is_null()) continue;
      if (!value.is_object()) {
        return FileError(path,
                         absl::StrCat("`__metadata__` must be an object, got ", value.dump()));
      }
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) {
          return FileError(path, absl::StrCat("`__metadata__` value for \"", mk,
                                              "\" must be a string, got ", mv.dump()));
        }
        f->metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    G4_ASSIGN_OR_RETURN(TensorInfo info, ParseEntry(path, key, value));
    if (info.end > f->data_size_) {
      return TensorError(
          path, key,
          absl::StrCat("data_offsets [", info.begin, ", ", info.end,
                       "] lie outside the byte buffer of ", f->data_size_, " bytes"));
    }
    f->index_.emplace(info.name, f->tensors_.size());
    f->tensors_.push_back(std::move(info));
  }

  // Sorted by offset, the tensors must tile [0, data_size) exactly.
  std::vector<const TensorInfo*> sorted;
  sorted.reserve(f->tensors_.size());
  for (const TensorInfo& t : f->tensors_) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return std::tie(a->begin, a->end, a->name) < std::tie(b->begin, b->end, b->name);
  });
  uint64_t expected = 0;
  const TensorInfo* prev = nullptr;
  for (const TensorInfo* t : sorted) {
    if (t->begin > expected) {
      return TensorError(
          path, t->name,
          absl::StrCat("gap in the byte buffer: data starts at ", t->begin, ", expected ", expected,
                       prev ? absl::StrCat(" (end of \"", prev->name, "\")")
                            : std::string(" (start of the buffer)")));
    }
    if (t->begin < expected) {
      return TensorError(path, t->name,
                         absl::StrCat("overlaps \"", prev->name, "\": data starts at ", t->begin,
                                      ", expected ", expected));
    }
    expected = t->end;
    prev = t;
  }
  if (expected != f->data_size_) {
    return FileError(
        path, absl::StrCat("byte buffer is ", f->data_size_, " bytes but the tensors end at ",
                           expected, " (", f->data_size_ - expected, " trailing bytes)"));
  }
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(const_cast<uint8_t*>(map_), map_size_);
  if (fd_ >= 0) ::close(fd_);
}

const TensorInfo* SafetensorsFile::Find(absl::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

absl::Span<const uint8_t> SafetensorsFile::RawBytes(const TensorInfo& info) const {
  return absl::Span<const uint8_t>(data_ + info.begin, info.end - info.begin);
}

absl::StatusOr<std::pair<int64_t, int64_t>> SliceShape(const TensorInfo& info,
                                                       const TensorSlice& slice) {
  const std::vector<int64_t>& s = info.shape;
  auto error = [&](absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor \"", info.name, "\" ", ShapeString(s), ": ", what));
  };
  if (s.size() > 3) return error("rank > 3 cannot be sliced");
  int64_t rows = 1;
  int64_t cols = 1;
  if (s.size() == 3) {
    if (slice.index0 < 0 || slice.index0 >= s[0]) {
      return error(absl::StrCat("index0 ", slice.index0, " out of range [0, ", s[0], ")"));
    }
    rows = s[1];
    cols = s[2];
  } else {
    if (slice.index0 != -1) {
      return error(
          absl::StrCat("index0 must be -1 for a rank-", s.size(), " tensor, got ", slice.index0));
    }
    if (s.size() == 2) {
      rows = s[0];
      cols = s[1];
    } else if (s.size() == 1) {
      cols = s[0];
    }
  }
  auto range = [&](const char* what, int64_t begin, int64_t end, int64_t dim,
                   int64_t* n) -> absl::Status {
    if (end == -1) end = dim;
    if (begin < 0 || end < begin || end > dim) {
      return error(absl::StrCat(what, " [", begin, ", ", end, ") out of range [0, ", dim, "]"));
    }
    *n = end - begin;
    return absl::OkStatus();
  };
  int64_t nr = 0;
  int64_t nc = 0;
  G4_RETURN_IF_ERROR(range("rows", slice.row_begin, slice.row_end, rows, &nr));
  G4_RETURN_IF_ERROR(range("cols", slice.col_begin, slice.col_end, cols, &nc));
  return std::make_pair(nr, nc);
}

absl::Status SafetensorsFile::ReadSlice(const TensorInfo& info, const TensorSlice& slice,
                                        absl::Span<float> out) const {
  G4_ASSIGN_OR_RETURN(auto rc, SliceShape(info, slice));
  const auto [rows, cols] = rc;
  if (static_cast<uint64_t>(out.size()) != static_cast<uint64_t>(rows * cols)) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": tensor \"", info.name,
                                                   "\": output holds ", out.size(),
                                                   " floats, the slice is ", rows, " x ", cols));
  }
  if (info.end > data_size_ ||
      info.end - info.begin != info.NumElements() * DTypeSize(info.dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": tensor \"", info.name, "\" does not belong to this file"));
  }
  if (rows == 0 || cols == 0) return absl::OkStatus();
  const std::vector<int64_t>& s = info.shape;
  const int64_t full_rows = s.size() == 3 ? s[1] : (s.size() == 2 ? s[0] : 1);
  const int64_t full_cols = s.size() >= 2 ? s.back() : (s.size() == 1 ? s[0] : 1);
  const int64_t index0 = s.size() == 3 ? slice.index0 : 0;
  const size_t es = DTypeSize(info.dtype);
  const uint8_t* base = data_ + info.begin;
  const bool aligned = reinterpret_cast<uintptr_t>(base) % es == 0;
  std::vector<uint8_t> bounce;  // only for a misaligned buffer (odd header length)
  if (!aligned) bounce.resize(cols * es);

  auto convert = [&](const uint8_t* src, int64_t n, float* dst) {
    if (aligned || info.dtype == DType::kF32) {
      ConvertToF32(info.dtype, src, n, dst);
    } else {
      std::memcpy(bounce.data(), src, n * es);
      ConvertToF32(info.dtype, bounce.data(), n, dst);
    }
  };
  const int64_t row0 = index0 * full_rows + slice.row_begin;
  if (cols == full_cols && aligned) {
    // Whole rows: one contiguous block.
    convert(base + row0 * full_cols * es, rows * cols, out.data());
  } else {
    for (int64_t r = 0; r < rows; ++r) {
      convert(base + ((row0 + r) * full_cols + slice.col_begin) * es, cols, out.data() + r * cols);
    }
  }
  bytes_read_.fetch_add(static_cast<uint64_t>(rows * cols) * es, std::memory_order_relaxed);
  return absl::OkStatus();
}

}  // namespace g4
