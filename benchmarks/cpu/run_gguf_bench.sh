#!/usr/bin/env bash
# GGUF on the CPU, our engine beside llama.cpp on the same files (issue 25): phi-1_5's shape
# (tests/data/configs/phi-1_5.json, recipe weights) written by vllm-make-model in Q8_0 and Q4_K_M,
# run by both engines with the same number of threads:
#   - batch-1 decode tok/s, and 8 and 32 sequences decoded together (output tok/s), 32 prompt
#     tokens and 64 output tokens per sequence, decode steps only;
#   - pp512: one prompt of 512 tokens processed in one step (tok/s);
#   - the batch-1 bound: the measured read bandwidth (membw_bench, same threads) over the bytes a
#     token reads (our engine's weights read per token, plus the KV cache at the mean context).
# Ours: decode_bench and `vllm bench throughput` (float32 compute, the GGUF default). llama.cpp:
# benchmarks/peers/llama_cpp_bench.mjs (node-llama-cpp's prebuilt CPU binary, never a GPU, its
# default KV cache and attention settings; what it used is printed). Prints a markdown table and
# the commands; the raw outputs stay in --work.
#
#   benchmarks/cpu/run_gguf_bench.sh [--build build/dev] [--threads 2] [--schemes q8_0,q4_k_m]
#                                    [--work /tmp/vllm-gguf-bench] [--output-len 64] [--no-peer]
#
# Needs the release build (vllm-make-model, decode_bench, membw_bench, vllm) and
# benchmarks/peers/node_modules (npm install --no-package-lock --omit=optional there).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=build/dev
THREADS=2
SCHEMES=q8_0,q4_k_m
WORK=/tmp/vllm-gguf-bench
IN_LEN=32
OUT_LEN=64
PEER=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --schemes) SCHEMES=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --output-len) OUT_LEN=$2; shift 2 ;;
    --no-peer) PEER=0; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $BUILD = /* ]] || BUILD=$ROOT/$BUILD
mkdir -p "$WORK"
export VLLM_NUM_THREADS=$THREADS

echo "# benchmarks/cpu/run_gguf_bench.sh --build $BUILD --threads $THREADS --schemes $SCHEMES --work $WORK --output-len $OUT_LEN$([[ $PEER = 1 ]] || echo ' --no-peer')"
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; ISA flags: $(grep -m1 -o -w -E 'avx2|avx512f|avx512_vnni|avx512_bf16|amx_tile|amx_bf16|amx_int8' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$WORK/machine.txt" | sed 's/^/# /'

"$BUILD/benchmarks/cpu/membw_bench" --threads "$THREADS" --mib 1024 --runs 7 > "$WORK/membw.txt"
BW=$(awk '/^read/ {if ($NF > bw) bw = $NF} END {print bw}' "$WORK/membw.txt")
echo "# read bandwidth, $THREADS threads: $BW GB/s ($BUILD/benchmarks/cpu/membw_bench --threads $THREADS --mib 1024 --runs 7)"

IFS=, read -r -a schemes <<< "$SCHEMES"
for s in "${schemes[@]}"; do
  f=$WORK/phi-1_5-$s.gguf
  if [[ ! -f $f ]]; then
    # The tokenizer metadata of tiny-phi (GPT-2's, as phi-1_5's): llama.cpp loads no GGUF without it.
    "$BUILD/tools/vllm-make-model" --config "$ROOT/tests/data/configs/phi-1_5.json" --seed 11 --dtype float16 \
      --quantize "$s" --tokenizer "$ROOT/tests/data/tokenizers/tiny-phi" \
      --tokenizer-config "$ROOT/tests/data/models/tiny-phi/tokenizer_config.json" --out "$f" > /dev/null
  fi
  echo "# $s: $f ($(du -m "$f" | cut -f1) MiB)"
  cmd="$BUILD/benchmarks/engine/decode_bench --model $f --dtype float32 --concurrency 1,8,32 --input-len $IN_LEN --output-len $OUT_LEN --bandwidth-gbs $BW"
  echo "#   ours:      VLLM_NUM_THREADS=$THREADS $cmd"
  $cmd > "$WORK/ours-decode-$s.txt" 2> "$WORK/ours-decode-$s.err"
  cmd="$BUILD/src/vllm/cli/vllm bench throughput --model $f --dtype float32 --device cpu --input-len 512 --output-len 1 --num-prompts 3 --max-num-batched-tokens 512"
  echo "#   ours pp:   VLLM_NUM_THREADS=$THREADS $cmd"
  $cmd > "$WORK/ours-pp-$s.txt" 2> "$WORK/ours-pp-$s.err"
  if [[ $PEER = 1 ]]; then
    cmd="node $ROOT/benchmarks/peers/llama_cpp_bench.mjs --model $f --threads $THREADS --sequences 1,8,32 --input-len $IN_LEN --output-len $OUT_LEN --pp 512 --repeats 3"
    echo "#   llama.cpp: $cmd"
    $cmd > "$WORK/llama-$s.json" 2> "$WORK/llama-$s.err"
  fi
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$WORK/machine.txt"

python3 - "$WORK" "$SCHEMES" "$PEER" "$BW" <<'EOF'
import json, os, re, sys

work, schemes, peer, bw = sys.argv[1], sys.argv[2].split(","), sys.argv[3] == "1", float(sys.argv[4])


def ours_decode(s):
    rows, per_token = {}, None
    for line in open(os.path.join(work, f"ours-decode-{s}.txt")):
        m = re.search(r"([\d.]+) MiB of them read per token", line)
        if m:
            per_token = float(m.group(1)) * (1 << 20)
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0].isdigit():
            rows[int(cells[0])] = {"tok_s": float(cells[1]), "bound": float(cells[4])}
    return rows, per_token


def ours_pp(s):
    for line in open(os.path.join(work, f"ours-pp-{s}.txt")):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0].isdigit():
            return float(cells[5])  # total tokens/s: 512 prompt + 1 output token per request
    return None


print()
print(f"| GGUF | test | ours tok/s | llama.cpp tok/s | ours / llama.cpp | batch-1 bound tok/s | ours % of bound | llama.cpp % of bound |")
print("|---|---|---|---|---|---|---|---|")
peer_info = None
for s in schemes:
    rows, per_token = ours_decode(s)
    llama = None
    if peer:
        llama = json.load(open(os.path.join(work, f"llama-{s}.json")))
        peer_info = llama["llama_cpp"]
    theirs = {d["sequences"]: d["output_tok_s"] for d in llama["decode"]} if llama else {}
    name = s.upper()
    for n in sorted(rows):
        ours = rows[n]["tok_s"]
        t = theirs.get(n)
        bound = rows[n]["bound"] if n == 1 else None
        cells = [name, f"decode, {n} sequence{'s' if n > 1 else ''}", f"{ours:.1f}", f"{t:.1f}" if t else "-",
                 f"{ours / t:.2f}x" if t else "-", f"{bound:.1f}" if bound else "",
                 f"{100 * ours / bound:.0f}%" if bound else "", f"{100 * t / bound:.0f}%" if bound and t else ""]
        print("| " + " | ".join(cells) + " |")
    pp = ours_pp(s)
    t = llama["pp"]["tok_s"] if llama and llama.get("pp") else None
    cells = [name, "pp512", f"{pp:.1f}" if pp else "-", f"{t:.1f}" if t else "-", f"{pp / t:.2f}x" if pp and t else "-", "", "", ""]
    print("| " + " | ".join(cells) + " |")
    if per_token:
        print(f"<!-- {s}: {per_token / 1e6:.0f} MB of weights read per token (ours) -->")
print()
print(f"bound = {bw:.1f} GB/s (membw_bench read, same threads) / (weights read per token + KV cache at the mean context)")
if peer_info:
    print("llama.cpp: " + json.dumps(peer_info))
EOF
