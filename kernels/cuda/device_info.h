// CUDA backend plumbing (issue 6 fills kernels/cuda with the op implementations). This header is
// plain C++: no CUDA header leaks to its users.
#ifndef G4SERVE_KERNELS_CUDA_DEVICE_INFO_H_
#define G4SERVE_KERNELS_CUDA_DEVICE_INFO_H_

#include <string>

namespace g4::cuda {

// Number of visible CUDA devices; 0 when there is no GPU or no driver (never aborts).
int DeviceCount();

// "NAME (sm_XY, N MiB)" for device `index`, or the CUDA error text.
std::string DeviceDescription(int index);

}  // namespace g4::cuda

#endif  // G4SERVE_KERNELS_CUDA_DEVICE_INFO_H_
