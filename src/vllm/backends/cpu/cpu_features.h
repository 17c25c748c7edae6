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
//   kAmxBf16    : kAvx512Bf16 + AMX-TILE and AMX-BF16 (tdpbf16ps on tiles), with the OS's
//                 permission to use the tile state (Linux: arch_prctl ARCH_REQ_XCOMP_PERM)
enum class Isa { kScalar, kAvx2, kAvx512, kAvx512Bf16, kAmxBf16 };

struct CpuFeatures {
  bool avx = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512bf16 = false;
  bool avx512vnni = false;  // vpdpbusd / vpdpwssd (the quantized-weight kernels, quant_gemm.h)
  bool amx_tile = false, amx_bf16 = false;
  bool os_avx = false;     // the OS saves ymm state (XCR0)
  bool os_avx512 = false;  // the OS saves zmm / opmask state (XCR0)
  bool os_amx = false;     // the OS saves tile state (XCR0) and lets this process use it
};

// What the hardware and the OS support (cpuid + xgetbv), detected once.
const CpuFeatures& cpu_features();

// The best kernel family this machine can run, ignoring VLLM_CPU_ISA.
Isa hardware_isa();

// The kernel family to use: by default hardware_isa(), except that AMX is opt-in (avx512_bf16 is
// used on an AMX machine unless VLLM_CPU_ISA=amx_bf16): the AMX kernel doubles prompt and
// 32-sequence throughput but decodes one sequence about 30% slower (docs/benchmarks.md), and one
// process must use one family for every batch size, since the two round differently.
// VLLM_CPU_ISA (scalar | avx2 | avx512 | avx512_bf16 | amx_bf16) picks any family the hardware can
// run; one it cannot is ignored with a warning. Read once, on the first call.
Isa detect_isa();

// Whether this machine can run kernels of that family.
bool isa_supported(Isa isa);

std::string_view isa_name(Isa isa);  // "scalar", "avx2", "avx512", "avx512_bf16", "amx_bf16"
// Parses the names above (case-insensitive, also "avx512bf16", "amx"); throws vllm::Error otherwise.
Isa parse_isa(std::string_view name);

}  // namespace vllm::cpu
