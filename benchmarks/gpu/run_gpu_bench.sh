#!/usr/bin/env bash
# The CUDA backend on a GPU machine: build, correctness, speed.
#
#   benchmarks/gpu/run_gpu_bench.sh [stage ...]      stages: build ops golden bench throughput hf
#                                                    (default: all, in that order)
#
# build       cmake release + CUDA (sm_90) in build/gpu, $JOBS jobs (16)
# ops         tests/cuda/test_backend_ops: every CudaBackend op against CpuBackend
# golden      the five golden models on the GPU (VLLM_TEST_DEVICE=cuda; the tests `ctest -R golden`
#             runs): float32 exact checks, bfloat16 and float16 under check_logprobs_close
# bench       device copy bandwidth; decode attention alone (batch 64, context 2,048, phi-1_5
#             heads); batch-1 decode of phi-1_5 with random fp16 weights vs its bandwidth bound
# throughput  vllm bench throughput, 1,000 requests of 1,024 random tokens in and 128 out
# hf          transformers' generate on the same shapes (benchmarks/gpu/hf_baseline.py)
# serve       vllm serve on the GPU and vllm bench serve against it: 1,024 random tokens in, 128 out,
#             at request rates 4, 16 and unlimited (TTFT, TPOT, ITL median and p99)
# profile     ncu over batch-1 decode: GPU time per kernel, serialised (not in the default set)
# trace       the GPU timeline of batch-1 decode (CUPTI, benchmarks/gpu/kernel_trace.cpp), CUDA graphs
#             and eager: where a step's time goes, overlaps and idle gaps included (not in the default set)
# hostcpu     the CPU kernels on the GPU machine's host CPU (an Intel Xeon with AMX), pinned to 2 cores
#             like the CPU machine: their tests, then avx512_bf16 against amx_bf16 in gemm_bench,
#             decode_bench (1 and 32 sequences) and prompt throughput (not in the default set)
#
# Prints one markdown table at the end and writes it, with every log, to $OUT (build/gpu/out when
# unset).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
B=$root/build/gpu
OUT=${OUT:-$B/out}
JOBS=${JOBS:-16}
# The model shape: a config.json (default phi-1_5); its random fp16 weights go to $MODEL.
CONFIG=${CONFIG:-tests/data/configs/phi-1_5.json}
SHAPE=$(basename "$CONFIG" .json)
MODEL=${MODEL:-/tmp/vllm-$SHAPE-fp16}
mkdir -p "$OUT"
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(build ops golden bench throughput hf)
has() { local s; for s in "${stages[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
res=$OUT/results.txt
touch "$res"
rec() { echo "$1|$2" >>"$res"; echo "== $1: $2"; }
secs() { echo $(($(date +%s) - $1)); }

# The Debian -dev packages the device image lacks (.devdeps/, scripts/fetch_devdeps.sh).
source benchmarks/gpu/devdeps.sh

VLLM=$B/src/vllm/cli/vllm
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$OUT/gpu.txt" 2>&1

if has build; then
  t0=$(date +%s)
  {
    cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVLLM_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
      -DVLLM_BUILD_PYTHON=OFF "${extra[@]}" &&
      cmake --build "$B" -j "$JOBS" --target vllm vllm-make-model test_backend_ops test_golden gpu_bench vllm_kernel_trace
  } >"$OUT/build.log" 2>&1
  rc=$?
  rec build "rc $rc, $(secs $t0) s"
  if [ $rc -ne 0 ]; then
    grep -E "error|Error" "$OUT/build.log" | head -40
    tail -20 "$OUT/build.log"
    exit 1
  fi
fi

if has ops; then
  t0=$(date +%s)
  timeout 300 "$B/tests/cuda/test_backend_ops" --gtest_brief=1 >"$OUT/ops.log" 2>&1
  rc=$?
  rec "op tests" "rc $rc, $(grep -E '^\[  (PASSED|FAILED)  \]' "$OUT/ops.log" | tr '\n' ' ')($(secs $t0) s)"
  grep -E "Failure|error|FAILED" "$OUT/ops.log" | head -30
fi

if has golden; then
  t0=$(date +%s)
  VLLM_TEST_DEVICE=cuda VLLM_TEST_DATA_DIR=$root/tests/data timeout ${GOLDEN_TIMEOUT:-300} "$B/tests/engine/test_golden" \
    --gtest_filter='*GoldenModel*' --gtest_brief=1 >"$OUT/golden.log" 2>&1
  rc=$?
  rec "golden (GPU)" "rc $rc, $(grep -E '^\[  (PASSED|FAILED)  \]' "$OUT/golden.log" | tr '\n' ' ')($(secs $t0) s)"
  grep -E "^\[  FAILED|Failure" "$OUT/golden.log" | head -30
fi

if has bench; then
  "$B/benchmarks/gpu/gpu_bench" copy | tee "$OUT/bench.log"
  for cfg in "64 2048 32 32 64 16" "1 2048 32 32 64 16" "256 1152 32 32 64 16" "64 2048 32 8 128 16"; do
    timeout 120 "$B/benchmarks/gpu/gpu_bench" attn $cfg | tee -a "$OUT/bench.log"
  done
  if [ ! -f "$MODEL/.complete" ]; then
    t0=$(date +%s)
    "$B/tools/vllm-make-model" --config "$CONFIG" --dtype float16 --out "$MODEL" && touch "$MODEL/.complete"
    echo "model written in $(secs $t0) s"
  fi
  for eager in "" "--enforce-eager"; do
    timeout 180 "$VLLM" bench latency --model "$MODEL" --device cuda --dtype float16 --batch-size 1 --input-len 32 \
      --output-len 128 --num-iters-warmup 1 --num-iters 3 $eager 2>&1 | tee "$OUT/latency${eager:+-eager}.log" | grep -v "^\[" | tail -4
  done
fi

if has throughput; then
  [ -f "$MODEL/.complete" ] || { "$B/tools/vllm-make-model" --config "$CONFIG" --dtype float16 --out "$MODEL" && touch "$MODEL/.complete"; }
  timeout 400 "$VLLM" bench throughput --model "$MODEL" --device cuda --dtype float16 --input-len 1024 --output-len 128 \
    --num-prompts 1000 2>&1 | tee "$OUT/throughput.log" | grep -v "^\[" | tail -5
fi

if has hf; then
  PYTHONUNBUFFERED=1 timeout 300 python3 benchmarks/gpu/hf_baseline.py "$CONFIG" 2>&1 |
    grep -v Warning | tee "$OUT/hf.log"
fi

if has hostcpu; then
  cmake --build "$B" -j "$JOBS" --target test_cpu_kernels gemm_bench decode_bench vllm vllm-make-model \
    >"$OUT/hostcpu-build.log" 2>&1 || { tail -20 "$OUT/hostcpu-build.log"; exit 1; }
  lscpu | grep -E "Model name" >"$OUT/hostcpu.log"
  timeout 200 "$B/tests/cpu_kernels/test_cpu_kernels" --gtest_brief=1 >>"$OUT/hostcpu.log" 2>&1
  rec "CPU kernel tests on the host" "rc $?, $(grep -E 'hardware ISA|^\[  (PASSED|FAILED)  \]' "$OUT/hostcpu.log" | tr '\n' ' ')"
  cpu_model=/tmp/vllm-phi-1_5-bf16
  [ -f "$cpu_model/.complete" ] || { "$B/tools/vllm-make-model" --config tests/data/configs/phi-1_5.json --dtype bfloat16 \
    --out "$cpu_model" >/dev/null && touch "$cpu_model/.complete"; }
  for isa in avx512_bf16 amx_bf16; do
    pin=(env VLLM_CPU_ISA=$isa VLLM_NUM_THREADS=2 taskset -c 0,1)
    "${pin[@]}" timeout 100 "$B/benchmarks/cpu/gemm_bench" --isa $isa --dtype bf16 --threads 2 --m 1,8,32,128 \
      --shapes qkv,fc1,fc2 --min-time 0.2 --rounds 2 2>&1 | tee -a "$OUT/hostcpu.log" | grep -E "^(qkv|fc1|fc2) " | sed "s/^/$isa /"
    "${pin[@]}" timeout 150 "$B/benchmarks/engine/decode_bench" --model "$cpu_model" --dtype bfloat16 --device cpu \
      --concurrency 1,32 --input-len 32 --output-len 16 2>&1 | tee "$OUT/hostcpu-decode-$isa.log" | grep "^|"
    "${pin[@]}" timeout 150 "$VLLM" bench throughput --model "$cpu_model" --dtype bfloat16 --device cpu --input-len 512 \
      --output-len 1 --num-prompts 4 2>&1 | tee "$OUT/hostcpu-prompts-$isa.log" | grep -v "^\[" | tail -1
  done
fi

if has serve; then
  [ -f "$MODEL/.complete" ] || { "$B/tools/vllm-make-model" --config "$CONFIG" --dtype float16 --out "$MODEL" && touch "$MODEL/.complete"; }
  # The server needs a tokenizer: the Phi family's GPT-2 one (tiny-phi's files) fits every shape's
  # vocabulary that is at least 50,257 entries; prompts are random token ids anyway.
  cp tests/data/tokenizers/tiny-phi/* tests/data/models/tiny-phi/tokenizer_config.json "$MODEL/"
  port=8011
  "$VLLM" serve "$MODEL" --device cuda --dtype float16 --port $port --served-model-name bench \
    --disable-uvicorn-access-log >"$OUT/serve-server.log" 2>&1 &
  server=$!
  up=0
  for _ in $(seq 240); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v1/models', timeout=1)" 2>/dev/null && { up=1; break; }
    kill -0 $server 2>/dev/null || break
    sleep 0.5
  done
  if [ $up = 1 ]; then
    # A seed per rate: each run's prompts are new to the server (no prefix-cache hits from the last).
    for spec in "4 200 1" "16 400 2" "inf 1000 3"; do
      set -- $spec
      timeout 240 "$VLLM" bench serve --port $port --model bench --tokenizer "$MODEL" --random-input-len 1024 \
        --random-output-len 128 --num-prompts "$2" --request-rate "$1" --seed "$3" --ignore-eos --metric-percentiles 50,99 \
        >"$OUT/serve-rate-$1.log" 2>&1
      grep -E "Request throughput|Median|P99" "$OUT/serve-rate-$1.log" | sed "s/^/rate $1: /"
    done
  else
    echo "serve: the server did not come up"; tail -20 "$OUT/serve-server.log"
  fi
  kill $server 2>/dev/null; wait $server 2>/dev/null
fi

if has profile; then
  # No nsys in the image: ncu times each kernel of a few decode steps (eager, so each kernel is
  # its own launch; serialised, so the sum is GPU busy time without overlap or launch gaps).
  [ -f "$MODEL/.complete" ] || { "$B/tools/vllm-make-model" --config "$CONFIG" --dtype float16 --out "$MODEL" && touch "$MODEL/.complete"; }
  timeout 300 ncu --clock-control none --metrics gpu__time_duration.sum --launch-skip ${PROFILE_SKIP:-3000} \
    --launch-count ${PROFILE_COUNT:-800} --csv --print-units base \
    "$VLLM" bench latency --model "$MODEL" --device cuda --dtype float16 --batch-size 1 --input-len 32 --output-len 64 \
    --num-iters-warmup 0 --num-iters 1 --enforce-eager --gpu-memory-utilization 0.1 >"$OUT/profile.csv" 2>"$OUT/profile.err"
  python3 - "$OUT/profile.csv" <<'PYEOF' | tee "$OUT/profile.txt"
import csv, collections, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
if not rows:
    print("no ncu rows"); sys.exit(0)
h = rows[0]; ki = h.index("Kernel Name"); vi = h.index("Metric Value")
tot = collections.Counter(); cnt = collections.Counter()
for r in rows[1:]:
    if r[h.index("Metric Name")] != "gpu__time_duration.sum": continue
    name = r[ki].split("(")[0].split("<")[0][-60:]
    tot[name] += float(r[vi].replace(",", "")); cnt[name] += 1
allns = sum(tot.values()); n = sum(cnt.values())
print(f"{n} kernels, {allns / 1e3:.1f} us of GPU time")
for k, v in tot.most_common(25):
    print(f"{v / 1e3:10.1f} us {100 * v / allns:5.1f}%  {cnt[k]:5d} x {v / cnt[k] / 1e3:7.2f} us  {k}")
PYEOF
fi

if has trace; then
  [ -f "$MODEL/.complete" ] || { "$B/tools/vllm-make-model" --config "$CONFIG" --dtype float16 --out "$MODEL" && touch "$MODEL/.complete"; }
  for eager in "" "--enforce-eager"; do
    name=trace-$SHAPE-b${TRACE_BATCH:-1}${eager:+-eager}
    CUDA_INJECTION64_PATH=$B/benchmarks/gpu/libvllm_kernel_trace.so KERNEL_TRACE_OUT=/tmp/$name.csv timeout 180 \
      "$VLLM" bench latency --model "$MODEL" --device cuda --dtype float16 --batch-size ${TRACE_BATCH:-1} --input-len 32 \
      --output-len 128 --num-iters-warmup 1 --num-iters 2 --gpu-memory-utilization 0.3 $eager >"$OUT/$name.log" 2>&1
    echo "### $name"
    python3 benchmarks/gpu/trace_summary.py /tmp/$name.csv --top 16 --list "$OUT/$name.steps" 2>&1 | tee "$OUT/$name.txt" | head -40
  done
fi

# The table: measured numbers against their bounds.
python3 - "$OUT" "$root/$CONFIG" <<'EOF' | tee "$OUT/table.md"
import json, os, re, sys
out, cfgp = sys.argv[1], sys.argv[2]
def read(name):
    p = os.path.join(out, name)
    return open(p).read() if os.path.exists(p) else ""
def find(pat, text, cast=float):
    m = re.findall(pat, text)
    return cast(m[-1]) if m else None
c = json.load(open(cfgp))
H, I, L, V = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
nh = c["num_attention_heads"]; nkv = c.get("num_key_value_heads") or nh; hd = c.get("head_dim") or H // nh
shape = os.path.basename(cfgp)[:-5]
mlp = 2 if c["architectures"][0].startswith("Phi") else 3  # Phi: fc1, fc2; Llama/Qwen: gate, up, down
# Bytes of weights one decode step reads (fp16): every linear layer and bias, norms, the LM head.
lin = L * ((nh + 2 * nkv) * hd * H + nh * hd * H + mlp * H * I) + V * H
small = L * ((nh + 2 * nkv) * hd + H + I + H + 2 * H) + V + 2 * H
wbytes = 2 * lin + 2 * small
kv_tok = 2 * L * nkv * hd * 2  # K and V bytes per token
bench, lat, late, thr, hf = read("bench.log"), read("latency.log"), read("latency-eager.log"), read("throughput.log"), read("hf.log")
bw = find(r"copy_bandwidth ([\d.]+) GB/s", bench)
rows = []
def row(what, value, bound, ratio, bar):
    rows.append(f"| {what} | {value} | {bound} | {ratio} | {bar} |")
res = read("results.txt")
for line in res.splitlines():
    k, _, v = line.partition("|")
    row(k, v, "", "", "all pass")
if bw:
    row("device-to-device copy bandwidth", f"{bw:.0f} GB/s", "", "", "")
attn = re.findall(r"decode_attention B=(\d+) ctx=(\d+) nh=(\d+) nkv=(\d+) hd=(\d+) bs=(\d+): ([\d.]+) ms, ([\d.]+) GB/s", bench)
for b, ctx, h_, kv_, d_, bs_, ms, gbs in attn:
    frac = float(gbs) / bw if bw else 0
    row(f"decode attention alone, batch {b}, context {ctx}, {h_}/{kv_} heads of {d_}, block {bs_}", f"{float(ms):.3f} ms, {float(gbs):.0f} GB/s",
        f"{bw:.0f} GB/s" if bw else "", f"{100 * frac:.0f}%", ">= 70%" if (b == "64" and ctx == "2048" and h_ == kv_) else "")
def decode_tps(text):
    m = re.findall(r"\|\s*1\s*\|\s*32\s*\|\s*128\s*\|.*\|\s*([\d.]+)\s*\|\s*$", text, re.M)
    return float(m[-1]) if m else None
tps, tpse = decode_tps(lat), decode_tps(late)
if bw:
    ctx_avg = 32 + 64
    bound = bw * 1e9 / (wbytes + ctx_avg * kv_tok)
    if tps:
        row(f"batch-1 decode, {shape} fp16 (CUDA graphs)", f"{tps:.0f} tok/s", f"{bound:.0f} tok/s ({wbytes / 1e9:.2f} GB/token)", f"{100 * tps / bound:.0f}%", ">= 75%")
    if tpse:
        row(f"batch-1 decode, {shape} fp16 (--enforce-eager)", f"{tpse:.0f} tok/s", f"{bound:.0f} tok/s", f"{100 * tpse / bound:.0f}%", "")
rps = find(r"Throughput: ([\d.]+) requests/s", thr)
hf_rps = [float(x) for x in re.findall(r"batch \d+: 1024-in/128-out: ([\d.]+) req/s", hf)]
hf_dec = find(r"batch-1 decode: ([\d.]+) tok/s", hf)
peak = None
try:
    import torch
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.float16); b = torch.randn_like(a)
    for _ in range(3): a @ b
    torch.cuda.synchronize(); s = torch.cuda.Event(enable_timing=True); e = torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(10): a @ b
    e.record(); torch.cuda.synchronize()
    peak = 2 * 8192 ** 3 * 10 / (s.elapsed_time(e) * 1e-3)
except Exception as ex:
    print("no matmul peak:", ex, file=sys.stderr)
if peak:
    row("fp16 matmul 8192^3 (torch)", f"{peak / 1e12:.0f} TFLOP/s", "", "", "")
N, IN, OUTL, SEQS = 1000, 1024, 128, 256
if bw and peak:
    pre_flops = 2 * (lin - V * H) * N * IN + 2 * V * H * N + 2 * IN * IN * nh * hd * L * N  # causal QK and PV
    dec_bytes = N * sum((IN + k) for k in range(OUTL)) * kv_tok + (N * OUTL / SEQS) * wbytes
    t_bound = pre_flops / peak + dec_bytes / (bw * 1e9)
    bound_rps = N / t_bound
    if rps:
        row(f"offline throughput, 1000 x (1024 in, 128 out), {shape} fp16", f"{rps:.2f} req/s",
            f"{bound_rps:.1f} req/s (prefill {pre_flops / 1e15:.2f} PFLOP at peak + decode {dec_bytes / 1e12:.1f} TB at copy bandwidth)",
            f"{100 * rps / bound_rps:.0f}%", ">= 50%")
if hf_rps:
    best = max(hf_rps)
    row("transformers generate, best of batch 16/64/128", f"{best:.2f} req/s", "", f"ours {rps / best:.1f}x" if rps else "", "ours >= 4x")
if hf_dec:
    row("transformers generate, batch-1 decode", f"{hf_dec:.1f} tok/s", "", f"ours {tps / hf_dec:.1f}x" if tps else "", "")
for rate in ("4", "16", "inf"):
    text = read(f"serve-rate-{rate}.log")
    if not text:
        continue
    get = lambda label: find(label + r" \(ms\):\s+([\d.]+)", text)
    rps_s = find(r"Request throughput \(req/s\):\s+([\d.]+)", text)
    parts = [f"{m} {get('Median ' + m):.1f} / {get('P99 ' + m):.1f} ms" for m in ("TTFT", "TPOT", "ITL")
             if get("Median " + m) is not None and get("P99 " + m) is not None]
    row(f"vllm bench serve, 1024 in / 128 out, request rate {rate} (median / p99)",
        ", ".join(parts) + (f"; {rps_s:.1f} req/s" if rps_s else ""), "", "", "")
gpu = read("gpu.txt").strip()
print(f"\n### CUDA backend on {gpu}\n")
print("| what | measured | bound | fraction | bar |")
print("|---|---|---|---|---|")
print("\n".join(rows))
EOF
