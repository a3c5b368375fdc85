#include "worker/engine/step_descriptor.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace g4 {
namespace {

constexpr uint32_t kMagic = 0x47345344;  // "G4SD"
constexpr uint16_t kVersion = 1;

template <typename T>
void Put(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));  // little-endian hosts only (x86-64, aarch64)
  out.append(buf, sizeof(T));
}

class Reader {
 public:
  explicit Reader(absl::string_view b) : b_(b) {}
  template <typename T>
  bool Get(T* v) {
    if (b_.size() < sizeof(T)) return false;
    std::memcpy(v, b_.data(), sizeof(T));
    b_.remove_prefix(sizeof(T));
    return true;
  }
  size_t remaining() const { return b_.size(); }

 private:
  absl::string_view b_;
};

}  // namespace

std::string StepDescriptor::Serialize() const {
  std::string out;
  size_t n = 4 + 2 + 1 + 8 + 4 + freed.size() * 8 + 4;
  for (const StepChunk& c : chunks) n += 8 + 8 + 4 + c.tokens.size() * 4;
  out.reserve(n);
  Put(out, kMagic);
  Put(out, kVersion);
  Put(out, static_cast<uint8_t>(kind));
  Put(out, step);
  Put(out, static_cast<uint32_t>(freed.size()));
  for (uint64_t id : freed) Put(out, id);
  Put(out, static_cast<uint32_t>(chunks.size()));
  for (const StepChunk& c : chunks) {
    Put(out, c.seq_id);
    Put(out, c.start);
    Put(out, static_cast<uint32_t>(c.tokens.size()));
    out.append(reinterpret_cast<const char*>(c.tokens.data()), c.tokens.size() * 4);
  }
  return out;
}

absl::StatusOr<StepDescriptor> StepDescriptor::Parse(absl::string_view bytes) {
  auto bad = [](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("step descriptor: ", what));
  };
  Reader r(bytes);
  uint32_t magic;
  uint16_t version;
  uint8_t kind;
  StepDescriptor d;
  if (!r.Get(&magic) || magic != kMagic) return bad("bad magic");
  if (!r.Get(&version) || version != kVersion) return bad("unsupported version");
  if (!r.Get(&kind) || kind < 1 || kind > 3) return bad("bad kind");
  d.kind = static_cast<Kind>(kind);
  uint32_t n_freed, n_chunks;
  if (!r.Get(&d.step) || !r.Get(&n_freed)) return bad("truncated header");
  if (n_freed > r.remaining() / 8) return bad("freed list longer than the message");
  d.freed.resize(n_freed);
  for (uint64_t& id : d.freed) r.Get(&id);
  if (!r.Get(&n_chunks)) return bad("truncated chunk count");
  if (n_chunks > r.remaining() / 20) return bad("chunk list longer than the message");
  d.chunks.resize(n_chunks);
  for (StepChunk& c : d.chunks) {
    uint32_t n;
    if (!r.Get(&c.seq_id) || !r.Get(&c.start) || !r.Get(&n)) return bad("truncated chunk");
    if (n > r.remaining() / 4) return bad("chunk longer than the message");
    c.tokens.resize(n);
    for (int32_t& t : c.tokens) r.Get(&t);
  }
  if (r.remaining() != 0) return bad("trailing bytes");
  return d;
}

}  // namespace g4
