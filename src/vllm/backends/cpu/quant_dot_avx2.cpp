// AVX2 quantized-weight dot products (this file alone is compiled with -mavx2 -mfma -mf16c; nothing
// here may run unless cpu_features says the CPU can): vpmaddubsw and vpmaddwd on 256-bit vectors.
// The kernels are in quant_dot_x86.inc, shared with the AVX-512 VNNI file.
#include "vllm/backends/cpu/quant_gemm.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define VLLM_HAVE_QUANT_AVX2 1
#include <immintrin.h>

#include "vllm/gguf/block_formats.h"
#endif

namespace vllm::cpu::detail {

#ifdef VLLM_HAVE_QUANT_AVX2
#define VLLM_QUANT_VNNI 0
#include "quant_dot_x86.inc"
#undef VLLM_QUANT_VNNI

QuantDotKernel avx2_quant_kernel(gguf::GgmlType type) { return kernel_for(type); }
#else
QuantDotKernel avx2_quant_kernel(gguf::GgmlType) { return nullptr; }
#endif

}  // namespace vllm::cpu::detail
