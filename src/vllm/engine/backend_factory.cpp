// make_backend: picks the backend for --device.
#include "vllm/backends/backend.h"
#include "vllm/backends/cpu/cpu_backend.h"
#include "vllm/core/error.h"
#ifdef VLLM_HAVE_CUDA
#include "vllm/backends/cuda/cuda_backend.h"
#endif

namespace vllm {

bool auto_device_is_cuda() {
#ifdef VLLM_HAVE_CUDA
  return cuda_device_count() > 0;
#else
  return false;
#endif
}

std::unique_ptr<Backend> make_backend(const std::string& device, DType compute_dtype, int cpu_threads) {
  auto cpu = [&]() -> std::unique_ptr<Backend> {
    if (cpu_threads > 0) return std::make_unique<CpuBackend>(compute_dtype, cpu_threads);
    return std::make_unique<CpuBackend>(compute_dtype);
  };
  if (device == "cpu") return cpu();
  if (device == "cuda") {
#ifdef VLLM_HAVE_CUDA
    if (cuda_device_count() == 0) throw Error("--device cuda: no CUDA GPU is visible", ErrorKind::kUnsupported);
    return std::make_unique<CudaBackend>(compute_dtype);
#else
    throw Error("this build of vllm-cpp has no CUDA backend", ErrorKind::kUnsupported);
#endif
  }
  if (device == "auto") {
    if (auto_device_is_cuda()) return make_backend("cuda", compute_dtype);
    return cpu();
  }
  throw Error("--device must be auto, cpu or cuda, not '" + device + "'");
}

}  // namespace vllm
