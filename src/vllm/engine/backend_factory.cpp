// make_backend: picks the backend for --device.
#include "vllm/backends/backend.h"
#include "vllm/backends/cpu/cpu_backend.h"
#include "vllm/core/error.h"

namespace vllm {

std::unique_ptr<Backend> make_backend(const std::string& device, DType compute_dtype) {
  if (device == "cpu" || device == "auto") return std::make_unique<CpuBackend>(compute_dtype);
  if (device == "cuda") throw Error("this build of vllm-cpp has no CUDA backend", ErrorKind::kUnsupported);
  throw Error("--device must be auto, cpu or cuda, not '" + device + "'");
}

}  // namespace vllm
