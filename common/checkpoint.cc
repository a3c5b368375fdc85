#include "common/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace g4 {
namespace {

constexpr const char* kConfigFile = "config.json";
constexpr const char* kGenerationConfigFile = "generation_config.json";
constexpr const char* kIndexFile = "model.safetensors.index.json";
constexpr const char* kSingleFile = "model.safetensors";

// Prefixes tried, in order, to turn a canonical decoder name into a stored one.
constexpr const char* kPrefixes[] = {"model.language_model.", "model.", ""};
// Stored tensors under these prefixes belong to the vision/audio towers and are never indexed.
constexpr const char* kSkippedPrefixes[] = {"model.vision_tower.", "model.embed_vision.",
                                            "model.audio_tower.", "model.embed_audio."};

bool IsSkipped(absl::string_view stored_name) {
  for (const char* p : kSkippedPrefixes) {
    if (absl::StartsWith(stored_name, p)) return true;
  }
  return false;
}

std::string JoinPath(absl::string_view dir, absl::string_view file) {
  if (dir.empty()) return std::string(file);
  if (dir.back() == '/') return absl::StrCat(dir, file);
  return absl::StrCat(dir, "/", file);
}

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return absl::Status(absl::ErrnoToStatusCode(err),
                        absl::StrCat("cannot open ", path, ": ", std::strerror(err)));
  }
  std::string text;
  char buf[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return absl::Status(absl::ErrnoToStatusCode(err),
                          absl::StrCat("cannot read ", path, ": ", std::strerror(err)));
    }
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

std::string ShapeString(absl::Span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// A shard name from the index must name a file inside the checkpoint directory.
bool IsPlainFileName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

// The full tensor must have exactly `expected_shape` and a dtype the engine converts.
absl::Status CheckTensor(const TensorRef& ref, absl::Span<const int64_t> expected_shape) {
  const TensorInfo& info = *ref.info;
  if (!std::equal(info.shape.begin(), info.shape.end(), expected_shape.begin(),
                  expected_shape.end())) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor \"", info.name, "\" in ", ref.file->path(), ": expected shape ",
                     ShapeString(expected_shape), ", found ", ShapeString(info.shape)));
  }
  if (info.dtype != DType::kF32 && info.dtype != DType::kF16 && info.dtype != DType::kBf16) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", info.name, "\" in ",
                                                   ref.file->path(), ": unsupported dtype ",
                                                   DTypeName(info.dtype)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& dir) {
  std::unique_ptr<Checkpoint> ckpt(new Checkpoint());
  ckpt->dir_ = dir;

  const std::string config_path = JoinPath(dir, kConfigFile);
  if (!FileExists(config_path)) {
    return absl::NotFoundError(
        absl::StrCat("checkpoint ", dir, ": ", config_path, " does not exist"));
  }
  G4_ASSIGN_OR_RETURN(std::string config_text, ReadTextFile(config_path));
  G4_ASSIGN_OR_RETURN(ckpt->config_, ParseModelConfig(config_text, config_path));

  const std::string gen_path = JoinPath(dir, kGenerationConfigFile);
  if (FileExists(gen_path)) {
    G4_ASSIGN_OR_RETURN(std::string gen_text, ReadTextFile(gen_path));
    G4_ASSIGN_OR_RETURN(ckpt->generation_config_, ParseGenerationConfig(gen_text, gen_path));
  }

  const std::string index_path = JoinPath(dir, kIndexFile);
  const std::string single_path = JoinPath(dir, kSingleFile);
  if (FileExists(index_path)) {
    G4_ASSIGN_OR_RETURN(std::string index_text, ReadTextFile(index_path));
    const nlohmann::json index =
        nlohmann::json::parse(index_text, nullptr, /*allow_exceptions=*/false);
    if (index.is_discarded())
      return absl::InvalidArgumentError(absl::StrCat(index_path, ": invalid JSON"));
    if (!index.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": top level must be a JSON object"));
    }
    if (!index.contains("weight_map") || !index["weight_map"].is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": `weight_map` is required and must be an object"));
    }
    const nlohmann::json& weight_map = index["weight_map"];
    // shard file -> the first tensor (by name) that maps to it, for error messages.
    std::map<std::string, std::string> shards;
    for (const auto& [tensor, shard] : weight_map.items()) {
      if (!shard.is_string()) {
        return absl::InvalidArgumentError(absl::StrCat(index_path, ": `weight_map` entry for \"",
                                                       tensor, "\" must be a string, got ",
                                                       shard.dump()));
      }
      const std::string& shard_name = shard.get_ref<const std::string&>();
      if (!IsPlainFileName(shard_name)) {
        return absl::InvalidArgumentError(absl::StrCat(
            index_path, ": `weight_map` entry for \"", tensor, "\" names \"", shard_name,
            "\", which is not a file name inside the checkpoint directory"));
      }
      shards.emplace(shard_name, tensor);
    }
    if (shards.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(index_path, ": `weight_map` is empty"));
    }
    std::map<std::string, const SafetensorsFile*> opened;
    for (const auto& [shard_name, tensor] : shards) {
      const std::string shard_path = JoinPath(dir, shard_name);
      if (!FileExists(shard_path)) {
        return absl::NotFoundError(absl::StrCat("checkpoint ", dir, ": shard ", shard_path,
                                                " does not exist (", kIndexFile, " maps tensor \"",
                                                tensor, "\" to it)"));
      }
      G4_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Open(shard_path));
      opened[shard_name] = file.get();
      ckpt->files_.push_back(std::move(file));
    }
    for (const auto& [tensor, shard] : weight_map.items()) {
      const SafetensorsFile* file = opened[shard.get_ref<const std::string&>()];
      const TensorInfo* info = file->Find(tensor);
      if (info == nullptr) {
        return absl::NotFoundError(absl::StrCat(index_path, " maps tensor \"", tensor, "\" to ",
                                                file->path(), ", which does not contain it"));
      }
      if (!IsSkipped(tensor)) ckpt->names_.emplace_back(tensor, TensorRef{file, info});
    }
  } else if (FileExists(single_path)) {
    G4_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Open(single_path));
    for (const TensorInfo& info : file->tensors()) {
      if (!IsSkipped(info.name)) ckpt->names_.emplace_back(info.name, TensorRef{file.get(), &info});
    }
    ckpt->files_.push_back(std::move(file));
  } else {
    return absl::NotFoundError(absl::StrCat("checkpoint ", dir, ": neither ", kIndexFile, " nor ",
                                            kSingleFile, " exists"));
  }
  std::sort(ckpt->names_.begin(), ckpt->names_.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return ckpt;
}

bool Checkpoint::Has(absl::string_view name) const { return Find(name).ok(); }

absl::StatusOr<TensorRef> Checkpoint::Find(absl::string_view name) const {
  std::vector<std::string> tried;
  for (const char* prefix : kPrefixes) {
    std::string full = absl::StrCat(prefix, name);
    if (IsSkipped(full)) continue;
    auto it = std::lower_bound(names_.begin(), names_.end(), full,
                               [](const std::pair<std::string, TensorRef>& e,
                                  const std::string& n) { return e.first < n; });
    if (it != names_.end() && it->first == full) return it->second;
    tried.push_back(absl::StrCat("\"", full, "\""));
  }
  return absl::NotFoundError(absl::StrCat("tensor \"", name, "\" not found in checkpoint ", dir_,
                                          " (tried ", absl::StrJoin(tried, ", "), ")"));
}

absl::Status Checkpoint::Read(absl::string_view name, absl::Span<const int64_t> expected_shape,
                              const TensorSlice& slice, absl::Span<float> out) const {
  G4_ASSIGN_OR_RETURN(TensorRef ref, Find(name));
  G4_RETURN_IF_ERROR(CheckTensor(ref, expected_shape));
  return ref.file->ReadSlice(*ref.info, slice, out);
}

absl::StatusOr<std::vector<float>> Checkpoint::ReadAll(
    absl::string_view name, absl::Span<const int64_t> expected_shape) const {
  G4_ASSIGN_OR_RETURN(TensorRef ref, Find(name));
  G4_RETURN_IF_ERROR(CheckTensor(ref, expected_shape));
  const TensorInfo& info = *ref.info;
  if (info.shape.size() > 3) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", info.name, "\" in ",
                                                   ref.file->path(), ": rank ", info.shape.size(),
                                                   " > 3 is not supported"));
  }
  std::vector<float> out(static_cast<size_t>(info.NumElements()));
  if (info.shape.size() == 3) {
    // A 3-D tensor is read one leading slice (expert) at a time.
    const int64_t per = info.shape[1] * info.shape[2];
    for (int64_t e = 0; e < info.shape[0]; ++e) {
      G4_RETURN_IF_ERROR(ref.file->ReadSlice(info, TensorSlice::Expert(e),
                                             absl::Span<float>(out.data() + e * per, per)));
    }
    return out;
  }
  G4_RETURN_IF_ERROR(ref.file->ReadSlice(info, TensorSlice::All(), absl::Span<float>(out)));
  return out;
}

uint64_t Checkpoint::bytes_read() const {
  uint64_t total = 0;
  for (const auto& f : files_) total += f->bytes_read();
  return total;
}

}  // namespace g4
