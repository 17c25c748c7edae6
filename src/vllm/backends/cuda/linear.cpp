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
  bool usable = true;  // FP8 plans: false once cuBLASLt found no algorithm or refused one when run
};

void destroy(Plan& p) {
  if (p.a) cublasLtMatrixLayoutDestroy(p.a);
  if (p.b) cublasLtMatrixLayoutDestroy(p.b);
  if (p.c) cublasLtMatrixLayoutDestroy(p.c);
  if (p.op) cublasLtMatmulDescDestroy(p.op);
  p = Plan{};
}

template <typename V>
bool set_attr(cublasLtMatmulDesc_t op, cublasLtMatmulDescAttributes_t attr, const V& value) {
  return cublasLtMatmulDescSetAttribute(op, attr, &value, sizeof(value)) == CUBLAS_STATUS_SUCCESS;
}

}  // namespace

struct LtGemm::Impl {
  cudaStream_t stream;
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  // (dtype, M, N, K, has_bias, align x, align w, align out, align bias, output dtype)
  using Key = std::tuple<int, int64_t, int64_t, int64_t, bool, uint32_t, uint32_t, uint32_t, uint32_t, int>;
  std::map<Key, Plan> plans;
  std::map<Key, Plan> fp8_plans;  // keyed as plans, with the output dtype in both dtype fields

  ~Impl() {
    for (auto& [k, p] : plans) destroy(p);
    for (auto& [k, p] : fp8_plans) destroy(p);
    if (workspace) cudaFree(workspace);
    if (handle) cublasLtDestroy(handle);
  }

  // The FP8 plan (see linear.h): e4m3 operands in the "TN" layout FP8 needs (W transposed, x
  // not), float32 compute and scale types, outer-vector scales (the weight's per row of op(A), the
  // activations' per column of op(B)), optionally the bias in the epilogue. Returns false (p left
  // empty) where cuBLASLt takes none of it: an older library, an output type or shape it has no
  // kernel for.
  bool make_fp8_plan(Plan& p, DType t, int64_t M, int64_t N, int64_t K, bool bias, const Key& key, const float* x_scales,
                     const float* w_scales) {
#if CUBLAS_VERSION >= 120900
    const cudaDataType_t out_ty = cuda_type(t);
    if (cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F) != CUBLAS_STATUS_SUCCESS) {
      p = Plan{};
      return false;
    }
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    const int8_t fast_accumulation = 0;
    const int32_t outer = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    bool ok = set_attr(p.op, CUBLASLT_MATMUL_DESC_TRANSA, ta) && set_attr(p.op, CUBLASLT_MATMUL_DESC_TRANSB, tb) &&
              set_attr(p.op, CUBLASLT_MATMUL_DESC_FAST_ACCUM, fast_accumulation) &&
              set_attr(p.op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, outer) &&
              set_attr(p.op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, outer) &&
              set_attr(p.op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, w_scales) &&
              set_attr(p.op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, x_scales);
    if (ok && bias)
      ok = set_attr(p.op, CUBLASLT_MATMUL_DESC_EPILOGUE, epi) &&
           set_attr(p.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, static_cast<int32_t>(out_ty));
    // Column-major view, as the plain products: C[N, M] = op(A)[N, K] · B[K, M], with W stored
    // as A = [K, N] (ld K, transposed) and x as B = [K, M] (ld K).
    ok = ok &&
         cublasLtMatrixLayoutCreate(&p.a, CUDA_R_8F_E4M3, static_cast<uint64_t>(K), static_cast<uint64_t>(N), K) ==
             CUBLAS_STATUS_SUCCESS &&
         cublasLtMatrixLayoutCreate(&p.b, CUDA_R_8F_E4M3, static_cast<uint64_t>(K), static_cast<uint64_t>(M), K) ==
             CUBLAS_STATUS_SUCCESS &&
         cublasLtMatrixLayoutCreate(&p.c, out_ty, static_cast<uint64_t>(N), static_cast<uint64_t>(M), N) ==
             CUBLAS_STATUS_SUCCESS;
    if (!ok) {
      destroy(p);
      return false;
    }
    if (!pick_algo(p, key)) return false;
    p.bias_in_epilogue = bias;
    return true;
#else
    (void)p, (void)t, (void)M, (void)N, (void)K, (void)bias, (void)key, (void)x_scales, (void)w_scales;
    return false;
#endif
  }

  static Key fp8_key(DType t, const void* out, const void* xq, const void* wq, const void* bias, int64_t M, int64_t N,
                     int64_t K) {
    return {static_cast<int>(t), M, N, K, bias != nullptr, alignment(xq), alignment(wq), alignment(out),
            bias ? alignment(bias) : 0u, static_cast<int>(t)};
  }

  // The FP8 plan for this product, made on first use (with the bias in the epilogue where cuBLASLt
  // takes it, else without); null where there is none.
  Plan* fp8_plan(const Key& key, DType t, int64_t M, int64_t N, int64_t K, bool bias, const float* x_scales,
                 const float* w_scales) {
    auto it = fp8_plans.find(key);
    if (it == fp8_plans.end()) {
      Plan p;
      if (!make_fp8_plan(p, t, M, N, K, bias, key, x_scales, w_scales) &&
          (!bias || !make_fp8_plan(p, t, M, N, K, false, key, x_scales, w_scales)))
        p.usable = false;
      it = fp8_plans.emplace(key, p).first;
    }
    return it->second.usable ? &it->second : nullptr;
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
    if (!pick_algo(p, key)) return false;
    p.bias_in_epilogue = bias;
    return true;
  }

  // cuBLASLt's first algorithm for the plan's descriptors, within our workspace and the key's
  // operand alignments (x, w, out); false (the plan destroyed) where it offers none.
  bool pick_algo(Plan& p, const Key& key) {
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
    const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle, p.op, p.a, p.b, p.c, p.c, pref, 1, &res, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS || found == 0) {
      destroy(p);
      return false;
    }
    p.algo = res.algo;
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

bool LtGemm::fp8_supported(DType t, const void* out, const void* xq, const float* x_scales, const void* wq,
                           const float* w_scales, const void* bias, int64_t M, int64_t N, int64_t K) {
  if (t != DType::F16 && t != DType::BF16) return false;
  if (M <= 0 || N <= 0 || K <= 0 || K % 16 != 0 || alignment(xq) < 16 || alignment(wq) < 16) return false;
  const Impl::Key key = Impl::fp8_key(t, out, xq, wq, bias, M, N, K);
  return impl_->fp8_plan(key, t, M, N, K, bias != nullptr, x_scales, w_scales) != nullptr;
}

bool LtGemm::run_fp8(DType t, void* out, const void* xq, const float* x_scales, const void* wq, const float* w_scales,
                     const void* bias, int64_t M, int64_t N, int64_t K) {
  Impl& I = *impl_;
  const Impl::Key key = Impl::fp8_key(t, out, xq, wq, bias, M, N, K);
  for (int attempt = 0; attempt < 2; ++attempt) {
    Plan* p = I.fp8_plan(key, t, M, N, K, bias != nullptr, x_scales, w_scales);
    if (!p) return false;
    bool ok = set_attr(p->op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, w_scales) &&
              set_attr(p->op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, x_scales);
    if (ok && p->bias_in_epilogue) ok = set_attr(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias);
    const float alpha = 1.0f, beta = 0.0f;
    ok = ok && cublasLtMatmul(I.handle, p->op, &alpha, wq, p->a, xq, p->b, &beta, out, p->c, out, p->c, &p->algo,
                              I.workspace, kWorkspaceBytes, I.stream) == CUBLAS_STATUS_SUCCESS;
    if (ok) {
      if (bias && !p->bias_in_epilogue) add_bias(t, out, bias, M, N, I.stream);
      return true;
    }
    // Refused when run. A plan with the bias in its epilogue gets one more try without it (the
    // bias then added by a kernel); otherwise the shape has no FP8 product from now on.
    const bool retry = p->bias_in_epilogue;
    destroy(*p);
    p->usable = false;
    if (retry) {
      Plan plain;
      if (!I.make_fp8_plan(plain, t, M, N, K, false, key, x_scales, w_scales)) return false;
      *p = plain;
    } else {
      return false;
    }
  }
  return false;
}

}  // namespace vllm::cuda
