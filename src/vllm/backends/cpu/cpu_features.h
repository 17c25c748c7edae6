// Which x86-64 vector instruction sets this CPU (and its operating system) can run, and which
// of them the CPU kernels should use. Plain C++: safe to include anywhere.
#pragma once

#include <string_view>

namespace vllm::cpu {

// Kernel families, in increasing order of capability; each one needs the ones before it.
//   kScalar     : portable C++ (baseline x86-64 / any CPU)
//   kAvx2       : AVX2 + FMA + F16C
//   kAvx512     : AVX-512 F/BW/VL (+ FMA, F16C)
//   kAvx512Bf16 : kAvx512 + AVX512_BF16 (vdpbf16ps)
enum class Isa { kScalar, kAvx2, kAvx512, kAvx512Bf16 };

struct CpuFeatures {
  bool avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512bf16 = false;
  bool os_avx = false;     // the OS saves ymm state (XCR0)
  bool os_avx512 = false;  // the OS saves zmm / opmask state (XCR0)
};

// What the hardware and the OS support (cpuid + xgetbv), detected once.
const CpuFeatures& cpu_features();

// The best kernel family this machine can run, ignoring VLLM_CPU_ISA.
Isa hardware_isa();

// The kernel family to use: hardware_isa(), lowered to VLLM_CPU_ISA (scalar | avx2 | avx512 |
// avx512_bf16) when that variable names a lower one. A higher one than the hardware can run is
// ignored with a warning. Read once, on the first call.
Isa detect_isa();

// Whether this machine can run kernels of that family.
bool isa_supported(Isa isa);

std::string_view isa_name(Isa isa);  // "scalar", "avx2", "avx512", "avx512_bf16"
// Parses the names above (case-insensitive, also "avx512bf16"); throws vllm::Error otherwise.
Isa parse_isa(std::string_view name);

}  // namespace vllm::cpu
