#!/usr/bin/env bash
# Mixture of experts on the GPU (issue 24): build, correctness, then the Qwen3-30B-A3B shape in
# bfloat16 with dummy weights (--load-format dummy: the recipe's weights made in memory, so its
# 61 GB never touch the 64 GB disk).
#
#   benchmarks/gpu/run_moe_bench.sh [stage ...]     stages: build ops golden latency throughput
#                                                   (default: all, in that order; given ones run
#                                                   in the order given)
#
# build       cmake release + CUDA (sm_90) in build/gpu, only the targets below, $JOBS jobs (16)
# ops         tests/cuda/test_backend_ops, the MoE op tests first (CudaBackend::moe against
#             CpuBackend::moe, routing and grouping against the CPU's), then every other op (or the
#             gtest filter OTHER_OPS)
# golden      tiny-mixtral and tiny-qwen3moe through the engine on the GPU (CUDA graphs on) against
#             their transformers references
# latency     vllm bench latency, batch 1, 32 tokens in, 128 out: decode tok/s against the bound of
#             the bytes one token reads (top_k experts x 3 x H x I, attention, router, norms,
#             embedding row, LM head, KV) over the measured copy bandwidth; the bar is 75%
# throughput  vllm bench throughput, 1,000 x (1,024 in, 128 out): requests/s against the larger of
#             the compute bound (2 x active parameters x tokens, attention scores and the LM head's
#             rows, over the measured bf16 matrix rate) and the memory bound (every step streams
#             the experts: the fewest steps the token budget and the KV cache allow, times the
#             weights, plus the KV reads, over the copy bandwidth); the bar is 50%
#
# Prints a markdown table at the end and writes it, with every log, to $OUT (build/gpu/out-moe
# when unset). CONFIG picks another MoE shape (tests/data/configs/*.json).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
B=$root/build/gpu
OUT=${OUT:-$B/out-moe}
JOBS=${JOBS:-16}
CONFIG=${CONFIG:-tests/data/configs/qwen3-30b-a3b.json}
SHAPE=$(basename "$CONFIG" .json)
# Offline throughput settings: a large token budget (prefill chunks of 8,192) so that a step's
# expert weights serve many tokens, and most of the GPU's memory for the KV cache.
THR_ARGS=${THR_ARGS:---max-num-batched-tokens 8192 --max-model-len 2048 --gpu-memory-utilization 0.95}
mkdir -p "$OUT"
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(build ops golden latency throughput)
res=$OUT/results.txt
: >"$res"
rec() { echo "$1|$2" >>"$res"; echo "== $1: $2"; }
secs() { echo $(($(date +%s) - $1)); }

# The Debian -dev packages the device image lacks (.devdeps/, scripts/fetch_devdeps.sh).
source benchmarks/gpu/devdeps.sh

VLLM=$B/src/vllm/cli/vllm
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$OUT/gpu.txt" 2>&1
# A model folder with config.json alone: the weights are made at load.
MODEL=/tmp/vllm-$SHAPE-dummy
mkdir -p "$MODEL"
cp "$CONFIG" "$MODEL/config.json"

stage_build() {
  t0=$(date +%s)
  {
    cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVLLM_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
      -DVLLM_BUILD_PYTHON=OFF "${extra[@]}" &&
      cmake --build "$B" -j "$JOBS" --target vllm test_backend_ops test_golden
  } >"$OUT/build.log" 2>&1
  rc=$?
  rec build "rc $rc, $(secs $t0) s"
  if [ $rc -ne 0 ]; then
    grep -E "error|Error" "$OUT/build.log" | head -40
    tail -20 "$OUT/build.log"
    exit 1
  fi
}

stage_ops() {
  t0=$(date +%s)
  timeout 240 "$B/tests/cuda/test_backend_ops" --gtest_filter='*Moe*' --gtest_brief=1 >"$OUT/ops-moe.log" 2>&1
  rc=$?
  rec "MoE op tests" "rc $rc, $(grep -E '^\[  (PASSED|FAILED)  \]' "$OUT/ops-moe.log" | tr '\n' ' ')($(secs $t0) s)"
  grep -E "Failure|error|FAILED|Expected|Which is|max error" "$OUT/ops-moe.log" | head -40
  t0=$(date +%s)
  timeout 240 "$B/tests/cuda/test_backend_ops" --gtest_filter="${OTHER_OPS:--*Moe*}" --gtest_brief=1 >"$OUT/ops.log" 2>&1
  rc=$?
  rec "other op tests" "rc $rc, $(grep -E '^\[  (PASSED|FAILED)  \]' "$OUT/ops.log" | tr '\n' ' ')($(secs $t0) s)"
  grep -E "Failure|FAILED" "$OUT/ops.log" | head -20
}

stage_golden() {
  t0=$(date +%s)
  VLLM_TEST_DEVICE=cuda VLLM_TEST_DATA_DIR=$root/tests/data timeout 240 "$B/tests/engine/test_golden" \
    --gtest_filter='*GoldenModel*tiny_mixtral*:*GoldenModel*tiny_qwen3moe*' --gtest_brief=1 >"$OUT/golden.log" 2>&1
  rc=$?
  rec "golden MoE models (GPU)" "rc $rc, $(grep -E '^\[  (PASSED|FAILED)  \]' "$OUT/golden.log" | tr '\n' ' ')($(secs $t0) s)"
  grep -E "^\[  FAILED|Failure" "$OUT/golden.log" | head -20
}

# The ceilings, once: device-to-device copy bandwidth (bytes read + written, 1 GiB) and the bf16
# matrix rate (an 8192^3 product), both through torch.
ceilings() {
  [ -f "$OUT/ceilings.log" ] && return
  python3 - <<'EOF' 2>&1 | tee "$OUT/ceilings.log"
try:
    import torch
    def timed(f, n):
        for _ in range(3): f()
        torch.cuda.synchronize(); s = torch.cuda.Event(enable_timing=True); e = torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(n): f()
        e.record(); torch.cuda.synchronize()
        return s.elapsed_time(e) * 1e-3 / n
    src = torch.empty(1 << 30, dtype=torch.uint8, device="cuda"); dst = torch.empty_like(src)
    t = timed(lambda: dst.copy_(src), 20)
    print(f"copy_bandwidth {2 * src.numel() / t / 1e9:.1f} GB/s")
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16); b = torch.randn_like(a)
    t = timed(lambda: a @ b, 10)
    print(f"bf16_matmul {2 * 8192 ** 3 / t / 1e12:.1f} TFLOP/s")
except Exception as ex:
    print("no torch measurement:", ex)
EOF
}

stage_latency() {
  ceilings
  t0=$(date +%s)
  timeout 300 "$VLLM" bench latency --model "$MODEL" --load-format dummy --device cuda --dtype bfloat16 --batch-size 1 \
    --input-len 32 --output-len 128 --num-iters-warmup 1 --num-iters 3 --max-model-len 2048 \
    --gpu-memory-utilization 0.95 >"$OUT/latency.log" 2>&1
  rec "bench latency" "rc $?, $(secs $t0) s with the load"
  grep -v "^\[" "$OUT/latency.log" | tail -4
  grep -E "weights|error" "$OUT/latency.log" | head -3
}

stage_throughput() {
  ceilings
  t0=$(date +%s)
  timeout 400 "$VLLM" bench throughput --model "$MODEL" --load-format dummy --device cuda --dtype bfloat16 \
    --input-len 1024 --output-len 128 --num-prompts 1000 $THR_ARGS >"$OUT/throughput.log" 2>&1
  rec "bench throughput" "rc $?, $(secs $t0) s with the load"
  grep -v "^\[" "$OUT/throughput.log" | tail -4
  grep -E "KV cache|error" "$OUT/throughput.log" | head -3
}

for s in "${stages[@]}"; do
  case $s in
    build | ops | golden | latency | throughput) "stage_$s" ;;
    *) echo "unknown stage '$s' (stages: build ops golden latency throughput)"; exit 2 ;;
  esac
done

# The table: measured numbers against their bounds.
THR_ARGS="$THR_ARGS" python3 - "$OUT" "$root/$CONFIG" <<'EOF' | tee "$OUT/table.md"
import json, os, re, sys
out, cfgp = sys.argv[1], sys.argv[2]
def read(name):
    p = os.path.join(out, name)
    return open(p).read() if os.path.exists(p) else ""
def find(pat, text, cast=float):
    m = re.findall(pat, text)
    return cast(m[-1]) if m else None
c = json.load(open(cfgp))
shape = os.path.basename(cfgp)[:-5]
H, L, V = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"]
nh = c["num_attention_heads"]; nkv = c.get("num_key_value_heads") or nh; hd = c.get("head_dim") or H // nh
E = c.get("num_experts") or c.get("num_local_experts")
K = c["num_experts_per_tok"]
I = c.get("moe_intermediate_size") or c["intermediate_size"]
tied = c.get("tie_word_embeddings", False)
B2 = 2  # bf16 bytes
# Parameters of one layer and of the model (every layer sparse: Qwen3-30B-A3B and Mixtral are).
attn = (nh + 2 * nkv) * hd * H + nh * hd * H
router = E * H
experts_active = K * 3 * H * I
experts_all = E * 3 * H * I
norm_bytes = 4 * (2 * H + (2 * hd if "Qwen3" in c["architectures"][0] else 0))  # float32 on the GPU
kv_tok = L * 2 * nkv * hd * B2  # K and V bytes of one token of context
# Batch-1 decode: what one token reads.
tok_bytes = L * ((attn + router + experts_active) * B2 + norm_bytes) + H * B2 + V * H * B2 + 4 * H
weights_bytes = L * ((attn + router + experts_all) * B2 + norm_bytes) + V * H * B2 * (1 if tied else 2) + 4 * H

bw = find(r"copy_bandwidth ([\d.]+) GB/s", read("ceilings.log"))
peak = find(r"bf16_matmul ([\d.]+) TFLOP/s", read("ceilings.log"))
peak_src = "measured, torch 8192^3"
if not peak:
    peak, peak_src = 989.0, "nominal H100/H200 SXM dense bf16"
rows = []
def row(what, value, bound="", ratio="", bar=""):
    rows.append(f"| {what} | {value} | {bound} | {ratio} | {bar} |")
for line in read("results.txt").splitlines():
    k, _, v = line.partition("|")
    row(k, v, bar="all pass" if "test" in k or "golden" in k else "")
if bw:
    row("device-to-device copy bandwidth (read + write)", f"{bw:.0f} GB/s")
row("bf16 matrix rate", f"{peak:.0f} TFLOP/s ({peak_src})")

lat = read("latency.log")
m = re.findall(r"\|\s*1\s*\|\s*32\s*\|\s*128\s*\|.*\|\s*([\d.]+)\s*\|\s*$", lat, re.M)
if m and bw:
    tps = float(m[-1])
    ctx = 32 + 64  # the average context of the 127 decode steps
    per_tok = tok_bytes + ctx * kv_tok
    bound = bw * 1e9 / per_tok
    row(f"batch-1 decode, {shape} bf16, dummy weights (CUDA graphs)", f"{tps:.1f} tok/s",
        f"{bound:.0f} tok/s ({per_tok / 1e9:.2f} GB/token: {L} x (top-{K} experts {experts_active * B2 / 1e6:.1f} MB + "
        f"attention {attn * B2 / 1e6:.1f} MB + router {router * B2 / 1e6:.2f} MB) + LM head {V * H * B2 / 1e6:.0f} MB + KV)",
        f"{100 * tps / bound:.0f}%", ">= 75%")

thr = read("throughput.log")
rps = find(r"Throughput: ([\d.]+) requests/s", thr)
if rps and bw:
    N, IN, OUTL = 1000, 1024, 128
    args = os.environ.get("THR_ARGS", "")
    budget = int((re.findall(r"--max-num-batched-tokens (\d+)", args) or ["2048"])[-1])
    max_seqs = int((re.findall(r"--max-num-seqs (\d+)", args) or ["256"])[-1])
    kvm = re.findall(r"KV cache (\d+) blocks of (\d+) tokens", thr)
    kv_tokens = int(kvm[-1][0]) * int(kvm[-1][1]) if kvm else None
    tokens = N * (IN + OUTL)
    # Compute: every token through the active parameters, the causal attention scores (QK and PV),
    # and the LM head for the rows that are sampled (each output token).
    flops = 2 * L * (attn + router + experts_active) * tokens
    flops += sum(2 * 2 * L * nh * hd * ctx for ctx in range(1, IN + OUTL + 1)) * N
    flops += 2 * V * H * N * OUTL
    t_compute = flops / (peak * 1e12)
    # Memory: each engine step streams every expert (a step's hundreds of tokens pick all of them),
    # and there are at least max(tokens / budget, waves x output steps) steps, a wave being as many
    # sequences as fit at once (max_num_seqs, or the KV cache at full length).
    conc = max_seqs if kv_tokens is None else max(1, min(max_seqs, kv_tokens // (IN + OUTL)))
    waves = -(-N // conc)
    steps = max(-(-tokens // budget), waves * OUTL)
    kv_read = N * sum(IN + k for k in range(OUTL)) * kv_tok
    t_memory = (steps * weights_bytes + kv_read) / (bw * 1e9)
    which = "compute" if t_compute >= t_memory else "memory"
    t_bound = max(t_compute, t_memory)
    row(f"offline throughput, {N} x ({IN} in, {OUTL} out), {shape} bf16, dummy weights", f"{rps:.2f} req/s",
        f"{N / t_bound:.2f} req/s, {which}-bound (compute {t_compute:.1f} s: {flops / 1e15:.2f} PFLOP; memory "
        f"{t_memory:.1f} s: {steps} steps x {weights_bytes / 1e9:.1f} GB + KV {kv_read / 1e12:.1f} TB; "
        f"{conc} sequences at once)", f"{100 * rps / (N / t_bound):.0f}%", ">= 50%")
gpu = read("gpu.txt").strip()
print(f"\n### Mixture of experts on {gpu}: {shape}\n")
print("| what | measured | bound | fraction | bar |")
print("|---|---|---|---|---|")
print("\n".join(rows))
EOF
echo
echo "command: benchmarks/gpu/run_moe_bench.sh $*"
