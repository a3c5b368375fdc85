// Minimal device-memory and timing helpers for tests and benchmarks (plain C++; no CUDA header).
#ifndef G4SERVE_KERNELS_CUDA_RUNTIME_H_
#define G4SERVE_KERNELS_CUDA_RUNTIME_H_

#include <cstddef>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace g4::cuda {

// An owned device allocation (cudaMalloc / cudaFree). Move-only.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) {
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  static absl::StatusOr<DeviceBuffer> Allocate(size_t bytes);

  void* get() const { return ptr_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }

  absl::Status CopyFromHost(const void* src, size_t bytes);
  absl::Status CopyToHost(void* dst, size_t bytes) const;

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Allocates and uploads a host vector.
template <typename T>
absl::StatusOr<DeviceBuffer> Upload(const std::vector<T>& host) {
  absl::StatusOr<DeviceBuffer> buf = DeviceBuffer::Allocate(host.size() * sizeof(T));
  if (!buf.ok()) return buf.status();
  if (absl::Status st = buf->CopyFromHost(host.data(), host.size() * sizeof(T)); !st.ok()) {
    return st;
  }
  return buf;
}

absl::Status CopyDeviceToDevice(void* dst, const void* src, size_t bytes);  // default stream
absl::Status Memset(void* dst, int byte, size_t bytes);                     // default stream
absl::Status Synchronize();  // cudaDeviceSynchronize; reports asynchronous kernel errors

// Times work on the default stream with CUDA events.
class EventTimer {
 public:
  EventTimer();
  ~EventTimer();
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;
  void Start();
  absl::StatusOr<float> StopMs();  // synchronizes on the stop event

 private:
  void* start_ = nullptr;
  void* stop_ = nullptr;
};

}  // namespace g4::cuda

#endif  // G4SERVE_KERNELS_CUDA_RUNTIME_H_
