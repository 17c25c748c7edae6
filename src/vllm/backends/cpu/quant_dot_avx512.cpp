// AVX-512 VNNI quantized-weight dot products (this file alone is compiled with the AVX-512 flags
// and -mavx512vnni; nothing here may run unless cpu_features says the CPU can): vpdpbusd and
// vpdpwssd, which fuse AVX2's two-step products into one instruction; the k-quants' products run
// on 512-bit vectors (64 weights at a time), the rest on 256-bit ones (AVX-512 VL). The kernels
// are in quant_dot_x86.inc, shared with the AVX2 file.
#include "vllm/backends/cpu/quant_gemm.h"

// GCC < 13 reports the intrinsics' own _mm512_undefined_*() pass-through operands as possibly
// uninitialised once inlined (GCC PR 105593); the warning says nothing about this file.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#if defined(__AVX512VNNI__) && defined(__AVX512VL__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define VLLM_HAVE_QUANT_VNNI 1
#include <immintrin.h>

#include "vllm/gguf/block_formats.h"
#endif

namespace vllm::cpu::detail {

#ifdef VLLM_HAVE_QUANT_VNNI
#define VLLM_QUANT_VNNI 1
#include "quant_dot_x86.inc"
#undef VLLM_QUANT_VNNI

QuantDotKernel avx512vnni_quant_kernel(gguf::GgmlType type) { return kernel_for(type); }
#else
QuantDotKernel avx512vnni_quant_kernel(gguf::GgmlType) { return nullptr; }
#endif

}  // namespace vllm::cpu::detail
