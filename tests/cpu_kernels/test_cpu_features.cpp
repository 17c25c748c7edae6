#include <gtest/gtest.h>

#include "vllm/backends/cpu/cpu_features.h"
#include "vllm/core/error.h"

using namespace vllm::cpu;

TEST(CpuFeatures, NamesRoundTrip) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Bf16, Isa::kAmxBf16})
    EXPECT_EQ(parse_isa(isa_name(isa)), isa);
  EXPECT_EQ(parse_isa("AVX512BF16"), Isa::kAvx512Bf16);
  EXPECT_EQ(parse_isa("amx"), Isa::kAmxBf16);
  EXPECT_THROW(parse_isa("sse9"), vllm::Error);
}

TEST(CpuFeatures, DetectedIsaIsSupported) {
  EXPECT_TRUE(isa_supported(Isa::kScalar));
  EXPECT_TRUE(isa_supported(hardware_isa()));
  EXPECT_TRUE(isa_supported(detect_isa()));
  EXPECT_LE(static_cast<int>(detect_isa()), static_cast<int>(hardware_isa()));
  // Each family needs the ones before it.
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Bf16, Isa::kAmxBf16})
    if (isa_supported(isa)) {
      EXPECT_TRUE(isa_supported(static_cast<Isa>(static_cast<int>(isa) - 1)));
    }
  const CpuFeatures& f = cpu_features();
  if (isa_supported(Isa::kAvx512Bf16)) {
    EXPECT_TRUE(f.avx512bf16 && f.os_avx512);
  }
  if (isa_supported(Isa::kAmxBf16)) {
    EXPECT_TRUE(f.amx_tile && f.amx_bf16 && f.os_amx);
  }
  std::printf("hardware ISA: %s, selected: %s\n", std::string(isa_name(hardware_isa())).c_str(),
              std::string(isa_name(detect_isa())).c_str());
}
