// One rank's side of the collective correctness checks, shared by the thread and process tests.
// Every rank computes the expected result from the deterministic per-rank data (RankData).
#ifndef G4SERVE_TESTS_WORKER_COMM_COLLECTIVE_CHECKS_H_
#define G4SERVE_TESTS_WORKER_COMM_COLLECTIVE_CHECKS_H_

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "tests/worker/comm/comm_test_util.h"
#include "worker/comm/communicator.h"

namespace g4::testing {

inline absl::Status Mismatch(absl::string_view op, int rank, int64_t i, float got, float want) {
  return absl::InternalError(
      absl::StrCat(op, " rank ", rank, " element ", i, ": got ", got, " want ", want));
}

inline absl::Status CheckAllReduce(Communicator& comm, int64_t count, uint32_t salt) {
  std::vector<float> data = RankData(comm.rank(), count, salt);
  G4_RETURN_IF_ERROR(comm.AllReduceSum(data.data(), count));
  std::vector<float> want(count, 0.0f);
  for (int r = 0; r < comm.size(); ++r) {
    const std::vector<float> d = RankData(r, count, salt);
    for (int64_t i = 0; i < count; ++i) want[i] += d[i];
  }
  for (int64_t i = 0; i < count; ++i) {
    if (data[i] != want[i]) return Mismatch("AllReduceSum", comm.rank(), i, data[i], want[i]);
  }
  return absl::OkStatus();
}

inline absl::Status CheckAllGather(Communicator& comm, int64_t count, uint32_t salt) {
  const std::vector<float> in = RankData(comm.rank(), count, salt);
  std::vector<float> out(count * comm.size(), -1.0f);
  G4_RETURN_IF_ERROR(comm.AllGather(in.data(), count, out.data()));
  for (int r = 0; r < comm.size(); ++r) {
    const std::vector<float> d = RankData(r, count, salt);
    for (int64_t i = 0; i < count; ++i) {
      if (out[r * count + i] != d[i]) {
        return Mismatch("AllGather", comm.rank(), r * count + i, out[r * count + i], d[i]);
      }
    }
  }
  return absl::OkStatus();
}

inline absl::Status CheckAllToAll(Communicator& comm, int64_t count, uint32_t salt) {
  const int n = comm.size();
  const std::vector<float> in = RankData(comm.rank(), count * n, salt);
  std::vector<float> out(count * n, -1.0f);
  G4_RETURN_IF_ERROR(comm.AllToAll(in.data(), count, out.data()));
  for (int s = 0; s < n; ++s) {
    const std::vector<float> d = RankData(s, count * n, salt);
    for (int64_t i = 0; i < count; ++i) {
      const float want = d[comm.rank() * count + i];
      if (out[s * count + i] != want) {
        return Mismatch("AllToAll", comm.rank(), s * count + i, out[s * count + i], want);
      }
    }
  }
  return absl::OkStatus();
}

inline std::string RandomBytes(int64_t length, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string s(length, '\0');
  for (char& c : s) c = static_cast<char>(gen() & 0xff);  // includes NULs
  return s;
}

inline absl::Status CheckBroadcast(Communicator& comm, int root, int64_t bytes, uint32_t salt) {
  const std::string want = RandomBytes(bytes, salt + 17 * root);
  std::string buf = comm.rank() == root ? want : std::string(bytes, '\x5a');
  G4_RETURN_IF_ERROR(comm.Broadcast(buf.data(), bytes, root));
  if (buf != want) {
    return absl::InternalError(absl::StrCat("Broadcast root ", root, " bytes ", bytes, ": rank ",
                                            comm.rank(), " got different bytes"));
  }
  return absl::OkStatus();
}

inline absl::Status CheckBroadcastBytes(Communicator& comm, int root, int64_t bytes,
                                        uint32_t salt) {
  const std::string want = RandomBytes(bytes, salt + 31 * root);
  std::string payload = comm.rank() == root ? want : std::string("stale contents");
  G4_RETURN_IF_ERROR(comm.BroadcastBytes(&payload, root));
  if (payload != want) {
    return absl::InternalError(absl::StrCat("BroadcastBytes root ", root, " bytes ", bytes,
                                            ": rank ", comm.rank(), " got ", payload.size(),
                                            " different bytes"));
  }
  return absl::OkStatus();
}

// Everything, in the same order on every rank.
inline absl::Status CheckAllCollectives(Communicator& comm) {
  uint32_t salt = 0;
  for (int64_t count : {int64_t{1}, int64_t{1000}, int64_t{300'000}}) {
    G4_RETURN_IF_ERROR(CheckAllReduce(comm, count, ++salt));
    G4_RETURN_IF_ERROR(CheckAllGather(comm, count, ++salt));
  }
  G4_RETURN_IF_ERROR(CheckAllToAll(comm, 1, ++salt));
  G4_RETURN_IF_ERROR(CheckAllToAll(comm, 4096, ++salt));
  for (int root = 0; root < comm.size(); ++root) {
    G4_RETURN_IF_ERROR(CheckBroadcast(comm, root, 4, ++salt));
    G4_RETURN_IF_ERROR(CheckBroadcast(comm, root, 100'003, ++salt));
  }
  G4_RETURN_IF_ERROR(CheckBroadcastBytes(comm, 0, 0, ++salt));
  G4_RETURN_IF_ERROR(CheckBroadcastBytes(comm, 0, 517, ++salt));
  G4_RETURN_IF_ERROR(CheckBroadcastBytes(comm, comm.size() - 1, 70'000, ++salt));
  for (int i = 0; i < 20; ++i) G4_RETURN_IF_ERROR(comm.Barrier());
  // Many small collectives back to back (the per-layer decode pattern).
  for (int i = 0; i < 200; ++i) G4_RETURN_IF_ERROR(CheckAllReduce(comm, 8, 1000 + i));
  return absl::OkStatus();
}

}  // namespace g4::testing

#endif  // G4SERVE_TESTS_WORKER_COMM_COLLECTIVE_CHECKS_H_
