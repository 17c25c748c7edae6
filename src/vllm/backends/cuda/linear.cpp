#include "vllm/backends/cuda/linear.h"

#include <cublasLt.h>

#include <map>
#include <string>
#include <tuple>

#include "vllm/backends/cuda/kernels.h"
#include "vllm/core/error.h"

namespace vllm::cuda {

namespace {

void check_lt(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw Error(std::string("cuBLASLt: ") + what + " failed with status " + std::to_string(static_cast<int>(s)),
                ErrorKind::kInternal);
}

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::F32: return CUDA_R_32F;
    case DType::F16: return CUDA_R_16F;
    case DType::BF16: return CUDA_R_16BF;
    default: fail("linear: unsupported dtype");
  }
}

uint32_t alignment(const void* p) {
  const auto v = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && (v % a) != 0) a >>= 1;
  return a;
}

constexpr size_t kWorkspaceBytes = size_t{32} << 20;

struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool bias_in_epilogue = false;
};

}  // namespace

struct LtGemm::Impl {
  cudaStream_t stream;
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  // (dtype, M, N, K, has_bias, align x, align w, align out, align bias, output dtype)
  using Key = std::tuple<int, int64_t, int64_t, int64_t, bool, uint32_t, uint32_t, uint32_t, uint32_t, int>;
  std::map<Key, Plan> plans;

  ~Impl() {
    for (auto& [k, p] : plans) {
      cublasLtMatrixLayoutDestroy(p.a);
      cublasLtMatrixLayoutDestroy(p.b);
      cublasLtMatrixLayoutDestroy(p.c);
      cublasLtMatmulDescDestroy(p.op);
    }
    if (workspace) cudaFree(workspace);
    if (handle) cublasLtDestroy(handle);
  }

  // Builds the plan; returns false when cuBLASLt offers no algorithm with the bias epilogue.
  bool make_plan(Plan& p, DType t, DType out_t, int64_t M, int64_t N, int64_t K, bool bias, const Key& key) {
    const cudaDataType_t ty = cuda_type(t), out_ty = cuda_type(out_t);
    check_lt(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "MatmulDescCreate");
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    check_lt(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)), "TRANSA");
    check_lt(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)), "TRANSB");
    if (bias) {
      cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
      check_lt(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)), "EPILOGUE");
      cudaDataType_t bt = ty;
      check_lt(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof(bt)), "BIAS_TYPE");
    }
    // Column-major view: C[N, M] = Wᵀ[N, K] · X[K, M], W stored as [K, N] with ld K.
    check_lt(cublasLtMatrixLayoutCreate(&p.a, ty, static_cast<uint64_t>(K), static_cast<uint64_t>(N), K), "layout A");
    check_lt(cublasLtMatrixLayoutCreate(&p.b, ty, static_cast<uint64_t>(K), static_cast<uint64_t>(M), K), "layout B");
    check_lt(cublasLtMatrixLayoutCreate(&p.c, out_ty, static_cast<uint64_t>(N), static_cast<uint64_t>(M), N), "layout C");
    cublasLtMatmulPreference_t pref;
    check_lt(cublasLtMatmulPreferenceCreate(&pref), "PreferenceCreate");
    size_t ws = kWorkspaceBytes;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
    uint32_t ax = std::get<5>(key), aw = std::get<6>(key), ao = std::get<7>(key);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &aw, sizeof(aw));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &ax, sizeof(ax));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &ao, sizeof(ao));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &ao, sizeof(ao));
    cublasLtMatmulHeuristicResult_t res{};
    int found = 0;
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle, p.op, p.a, p.b, p.c, p.c, pref, 1, &res, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS || found == 0) {
      cublasLtMatrixLayoutDestroy(p.a);
      cublasLtMatrixLayoutDestroy(p.b);
      cublasLtMatrixLayoutDestroy(p.c);
      cublasLtMatmulDescDestroy(p.op);
      p = Plan{};
      return false;
    }
    p.algo = res.algo;
    p.bias_in_epilogue = bias;
    return true;
  }
};

LtGemm::LtGemm(cudaStream_t stream) : impl_(std::make_unique<Impl>()) {
  impl_->stream = stream;
  check_lt(cublasLtCreate(&impl_->handle), "Create");
  check(cudaMalloc(&impl_->workspace, kWorkspaceBytes), "cudaMalloc(cuBLASLt workspace)");
}

LtGemm::~LtGemm() = default;

void LtGemm::run(DType t, void* out, const void* x, const void* w, const void* bias, int64_t M, int64_t N, int64_t K,
                 DType out_t) {
  if (M == 0 || N == 0) return;
  Impl& I = *impl_;
  const bool has_bias = bias != nullptr;
  if (out_t != t && (out_t != DType::F32 || has_bias)) fail("linear: a float32 output needs no bias");
  Impl::Key key{static_cast<int>(t), M, N, K, has_bias, alignment(x), alignment(w), alignment(out),
                has_bias ? alignment(bias) : 0u, static_cast<int>(out_t)};
  auto it = I.plans.find(key);
  if (it == I.plans.end()) {
    Plan p;
    if (!I.make_plan(p, t, out_t, M, N, K, has_bias, key)) {
      if (!has_bias || !I.make_plan(p, t, out_t, M, N, K, false, key))
        fail("cuBLASLt found no algorithm for a " + std::to_string(M) + "x" + std::to_string(N) + "x" +
             std::to_string(K) + " product");
    }
    it = I.plans.emplace(key, p).first;
  }
  Plan& p = it->second;
  if (p.bias_in_epilogue)
    check_lt(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)), "BIAS_POINTER");
  const float alpha = 1.0f, beta = 0.0f;
  check_lt(cublasLtMatmul(I.handle, p.op, &alpha, w, p.a, x, p.b, &beta, out, p.c, out, p.c, &p.algo, I.workspace,
                          kWorkspaceBytes, I.stream),
           "Matmul");
  if (has_bias && !p.bias_in_epilogue) add_bias(t, out, bias, M, N, I.stream);
}

}  // namespace vllm::cuda
