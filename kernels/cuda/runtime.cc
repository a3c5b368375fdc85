#include "kernels/cuda/runtime.h"

#include <cuda_runtime.h>

#include "absl/strings/str_cat.h"

namespace g4::cuda {
namespace {

absl::Status Check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": ", cudaGetErrorString(err)));
}

}  // namespace

DeviceBuffer::~DeviceBuffer() {
  if (ptr_ != nullptr) cudaFree(ptr_);
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    if (ptr_ != nullptr) cudaFree(ptr_);
    ptr_ = o.ptr_;
    bytes_ = o.bytes_;
    o.ptr_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

absl::StatusOr<DeviceBuffer> DeviceBuffer::Allocate(size_t bytes) {
  DeviceBuffer b;
  if (bytes == 0) return b;
  if (absl::Status st = Check(cudaMalloc(&b.ptr_, bytes), "cudaMalloc"); !st.ok()) {
    b.ptr_ = nullptr;
    return st;
  }
  b.bytes_ = bytes;
  return b;
}

absl::Status DeviceBuffer::CopyFromHost(const void* src, size_t bytes) {
  if (bytes > bytes_) return absl::InvalidArgumentError("CopyFromHost: too many bytes");
  if (bytes == 0) return absl::OkStatus();
  return Check(cudaMemcpy(ptr_, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy H2D");
}

absl::Status DeviceBuffer::CopyToHost(void* dst, size_t bytes) const {
  if (bytes > bytes_) return absl::InvalidArgumentError("CopyToHost: too many bytes");
  if (bytes == 0) return absl::OkStatus();
  return Check(cudaMemcpy(dst, ptr_, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
}

absl::Status CopyDeviceToDevice(void* dst, const void* src, size_t bytes) {
  return Check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, nullptr),
               "cudaMemcpy D2D");
}

absl::Status Memset(void* dst, int byte, size_t bytes) {
  return Check(cudaMemsetAsync(dst, byte, bytes, nullptr), "cudaMemset");
}

absl::Status Synchronize() {
  if (absl::Status st = Check(cudaGetLastError(), "launch"); !st.ok()) return st;
  return Check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

EventTimer::EventTimer() {
  cudaEvent_t a = nullptr, b = nullptr;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  start_ = a;
  stop_ = b;
}

EventTimer::~EventTimer() {
  if (start_ != nullptr) cudaEventDestroy(static_cast<cudaEvent_t>(start_));
  if (stop_ != nullptr) cudaEventDestroy(static_cast<cudaEvent_t>(stop_));
}

void EventTimer::Start() { cudaEventRecord(static_cast<cudaEvent_t>(start_), nullptr); }

absl::StatusOr<float> EventTimer::StopMs() {
  cudaEventRecord(static_cast<cudaEvent_t>(stop_), nullptr);
  if (absl::Status st = Check(cudaEventSynchronize(static_cast<cudaEvent_t>(stop_)), "event");
      !st.ok()) {
    return st;
  }
  float ms = 0.0f;
  if (absl::Status st = Check(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start_),
                                                   static_cast<cudaEvent_t>(stop_)),
                              "elapsed");
      !st.ok()) {
    return st;
  }
  return ms;
}

}  // namespace g4::cuda
