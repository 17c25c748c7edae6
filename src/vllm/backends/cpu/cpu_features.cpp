#include "vllm/backends/cpu/cpu_features.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "vllm/core/error.h"
#include "vllm/core/logging.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define VLLM_CPU_X86 1
#endif

#if defined(__linux__) && defined(VLLM_CPU_X86)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace vllm::cpu {

namespace {

#ifdef VLLM_CPU_X86
uint64_t read_xcr0() {
  uint32_t lo, hi;
  // xgetbv with ecx = 0, encoded as bytes so that no -mxsave is needed.
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

// Linux keeps the 8 KiB of AMX tile data out of a thread's saved state until the process asks
// for it (kernel 5.16+); without that permission the first tile instruction kills the process.
bool request_amx_permission() {
#if defined(__linux__) && defined(SYS_arch_prctl)
  constexpr int kArchReqXcompPerm = 0x1023;
  constexpr int kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}
#endif

CpuFeatures detect_features() {
  CpuFeatures f;
#ifdef VLLM_CPU_X86
  unsigned a = 0, b = 0, c = 0, d = 0;
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf < 1) return f;
  __cpuid(1, a, b, c, d);
  bool osxsave = (c >> 27) & 1;
  f.avx = (c >> 28) & 1;
  f.fma = (c >> 12) & 1;
  f.f16c = (c >> 29) & 1;
  uint64_t xcr0 = 0;
  if (osxsave) {
    xcr0 = read_xcr0();
    f.os_avx = (xcr0 & 0x6) == 0x6;             // xmm + ymm state
    f.os_avx512 = (xcr0 & 0xe6) == 0xe6;        // + opmask, zmm_hi256, hi16_zmm
  }
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    f.avx2 = (b >> 5) & 1;
    f.avx512f = (b >> 16) & 1;
    f.avx512bw = (b >> 30) & 1;
    f.avx512vl = (b >> 31) & 1;
    f.avx512vnni = (c >> 11) & 1;
    unsigned max_sub = a;
    if (max_sub >= 1) {
      __cpuid_count(7, 1, a, b, c, d);
      f.avx512bf16 = (a >> 5) & 1;
    }
    __cpuid_count(7, 0, a, b, c, d);
    f.amx_bf16 = (d >> 22) & 1;
    f.amx_tile = (d >> 24) & 1;
    // XTILECFG and XTILEDATA state enabled by the OS, then the per-process permission.
    f.os_amx = f.amx_tile && (xcr0 & 0x60000) == 0x60000 && request_amx_permission();
  }
#endif
  return f;
}

bool supported(const CpuFeatures& f, Isa isa) {
  bool avx2 = f.os_avx && f.avx && f.avx2 && f.fma && f.f16c;
  bool avx512 = avx2 && f.os_avx512 && f.avx512f && f.avx512bw && f.avx512vl;
  switch (isa) {
    case Isa::kScalar: return true;
    case Isa::kAvx2: return avx2;
    case Isa::kAvx512: return avx512;
    case Isa::kAvx512Bf16: return avx512 && f.avx512bf16;
    case Isa::kAmxBf16: return avx512 && f.avx512bf16 && f.amx_tile && f.amx_bf16 && f.os_amx;
  }
  return false;
}

Isa compute_detected_isa() {
  Isa hw = hardware_isa();
  const char* env = std::getenv("VLLM_CPU_ISA");
  if (!env || !*env) return hw == Isa::kAmxBf16 ? Isa::kAvx512Bf16 : hw;  // AMX is opt-in (header)
  Isa wanted;
  try {
    wanted = parse_isa(env);
  } catch (const Error& e) {
    VLLM_LOG_WARN("ignoring VLLM_CPU_ISA: {}", e.what());
    return hw;
  }
  if (static_cast<int>(wanted) > static_cast<int>(hw)) {
    VLLM_LOG_WARN("VLLM_CPU_ISA={} is not supported by this CPU; using {}", env, isa_name(hw));
    return hw;
  }
  return wanted;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect_features();
  return features;
}

Isa hardware_isa() {
  static const Isa isa = [] {
    const CpuFeatures& f = cpu_features();
    for (Isa i : {Isa::kAmxBf16, Isa::kAvx512Bf16, Isa::kAvx512, Isa::kAvx2})
      if (supported(f, i)) return i;
    return Isa::kScalar;
  }();
  return isa;
}

Isa detect_isa() {
  static const Isa isa = compute_detected_isa();
  return isa;
}

bool isa_supported(Isa isa) { return supported(cpu_features(), isa); }

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx512Bf16: return "avx512_bf16";
    case Isa::kAmxBf16: return "amx_bf16";
  }
  return "?";
}

Isa parse_isa(std::string_view name) {
  std::string n(name);
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (n == "scalar") return Isa::kScalar;
  if (n == "avx2") return Isa::kAvx2;
  if (n == "avx512") return Isa::kAvx512;
  if (n == "avx512_bf16" || n == "avx512bf16") return Isa::kAvx512Bf16;
  if (n == "amx_bf16" || n == "amx") return Isa::kAmxBf16;
  throw Error("unknown CPU ISA '" + std::string(name) + "' (expected scalar, avx2, avx512, avx512_bf16 or amx_bf16)");
}

}  // namespace vllm::cpu
