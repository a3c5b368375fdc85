#include "worker/engine/step_descriptor.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace g4 {
namespace {

constexpr uint32_t kMagic = 0x47345344;  // "G4SD"
constexpr uint16_t kVersion = 2;

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
  size_t n = 4 + 2 + 1 + 8 + 20 + 4 + freed.size() * 8 + 4;
  for (const StepChunk& c : chunks) {
    n += 8 + 8 + 4 + c.tokens.size() * 4 + 4 + 8 + 4 +
         (c.table.global_append.size() + c.table.sliding_append.size()) * 4;
  }
  out.reserve(n);
  Put(out, kMagic);
  Put(out, kVersion);
  Put(out, static_cast<uint8_t>(kind));
  Put(out, step);
  if (kind == Kind::kRun) {  // heartbeats stay small
    Put(out, kv.block_size);
    Put(out, kv.num_global_pages);
    Put(out, kv.num_sliding_pages);
  }
  Put(out, static_cast<uint32_t>(freed.size()));
  for (uint64_t id : freed) Put(out, id);
  Put(out, static_cast<uint32_t>(chunks.size()));
  for (const StepChunk& c : chunks) {
    Put(out, c.seq_id);
    Put(out, c.start);
    Put(out, static_cast<uint32_t>(c.tokens.size()));
    out.append(reinterpret_cast<const char*>(c.tokens.data()), c.tokens.size() * 4);
    Put(out, static_cast<uint32_t>(c.table.global_append.size()));
    for (PageId p : c.table.global_append) Put(out, p);
    Put(out, c.table.sliding_first_block);
    Put(out, static_cast<uint32_t>(c.table.sliding_append.size()));
    for (PageId p : c.table.sliding_append) Put(out, p);
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
  if (!r.Get(&d.step)) return bad("truncated header");
  if (d.kind == Kind::kRun && (!r.Get(&d.kv.block_size) || !r.Get(&d.kv.num_global_pages) ||
                               !r.Get(&d.kv.num_sliding_pages))) {
    return bad("truncated kv layout");
  }
  if (!r.Get(&n_freed)) return bad("truncated header");
  if (d.kv.block_size < 0 || d.kv.num_global_pages < 0 || d.kv.num_sliding_pages < 0) {
    return bad("negative kv layout");
  }
  if (n_freed > r.remaining() / 8) return bad("freed list longer than the message");
  d.freed.resize(n_freed);
  for (uint64_t& id : d.freed) r.Get(&id);
  if (!r.Get(&n_chunks)) return bad("truncated chunk count");
  if (n_chunks > r.remaining() / 36) return bad("chunk list longer than the message");
  d.chunks.resize(n_chunks);
  for (StepChunk& c : d.chunks) {
    uint32_t n;
    if (!r.Get(&c.seq_id) || !r.Get(&c.start) || !r.Get(&n)) return bad("truncated chunk");
    if (n > r.remaining() / 4) return bad("chunk longer than the message");
    c.tokens.resize(n);
    for (int32_t& t : c.tokens) r.Get(&t);
    uint32_t ng, ns;
    if (!r.Get(&ng) || ng > r.remaining() / 4) return bad("truncated global block table");
    c.table.global_append.resize(ng);
    for (PageId& p : c.table.global_append) r.Get(&p);
    if (!r.Get(&c.table.sliding_first_block) || !r.Get(&ns) || ns > r.remaining() / 4) {
      return bad("truncated sliding block table");
    }
    c.table.sliding_append.resize(ns);
    for (PageId& p : c.table.sliding_append) r.Get(&p);
  }
  if (r.remaining() != 0) return bad("trailing bytes");
  return d;
}

}  // namespace g4
