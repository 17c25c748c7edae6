#!/usr/bin/env bash
# Sampling on the GPU (issue 23): the device sampler's tests, then the same runs with it and with
# the host sampler (VLLM_BACKEND_SAMPLER=0: every step's logits copied to the host), on dummy
# bfloat16 weights of each SHAPES config.
#
#   benchmarks/gpu/run_sampler_bench.sh [stage ...]    stages: tests latency throughput structured
#                                                      (default: all, in that order)
#
# tests       tests/cuda/test_device_sampler (the rule, stratified and chi-square draws, batch
#             invariance, bitmasks) and the engine's GPU goldens that sample on the device
# latency     vllm bench latency, batch 1 and 64, 32 tokens in, 128 out (greedy, as the bench does)
# throughput  vllm bench throughput, 1,000 x (1,024 in, 128 out)
# structured  benchmarks/structured/structured_throughput (32 and 128 sequences constrained by a
#             JSON schema against the same unconstrained), the first shape in float16 with the
#             tiny-llama3 tokenizer (the Llama-3 vocabulary): what the constraint costs
#
# SAMPLERS: which runs (default "0 1": the host sampler, then the device sampler), as
# VLLM_BACKEND_SAMPLER takes them.
# BIN: the build folder holding src/vllm/cli/vllm and tests/ (default build/gpu). Prints a
# markdown table at the end and writes it, with every log, to $OUT (BIN/out-sampler when unset).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
BIN=${BIN:-$root/build/gpu}
OUT=${OUT:-$BIN/out-sampler}
SHAPES=${SHAPES:-"llama-3.2-1b qwen3-0.6b"}
mkdir -p "$OUT"
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(tests latency throughput structured)
has() { local s; for s in "${stages[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
res=$OUT/results.txt
: >"$res"
VLLM=$BIN/src/vllm/cli/vllm
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"

if has tests; then
  timeout 300 "$BIN/tests/cuda/test_device_sampler" --gtest_brief=1 >"$OUT/sampler-tests.log" 2>&1
  echo "device sampler tests|rc $?, $(grep -E '^\[  (PASSED|FAILED)  \]' "$OUT/sampler-tests.log" | tr '\n' ' ')" >>"$res"
  grep -E "Failure|FAILED|error" "$OUT/sampler-tests.log" | head -20
  VLLM_TEST_DEVICE=cuda VLLM_TEST_DATA_DIR=$root/tests/data timeout 300 "$BIN/tests/engine/test_golden" \
    --gtest_filter='*WithoutLogprobs*:SeededSampling*' --gtest_brief=1 >"$OUT/golden.log" 2>&1
  echo "GPU goldens sampling on the device|rc $?, $(grep -E '^\[  (PASSED|FAILED|  SKIPPED)' "$OUT/golden.log" | tr '\n' ' ')" >>"$res"
  grep -E "Failure|FAILED" "$OUT/golden.log" | head -20
fi

for shape in $SHAPES; do
  model=/tmp/vllm-$shape-dummy
  mkdir -p "$model"
  cp "tests/data/configs/$shape.json" "$model/config.json"
  common=(--model "$model" --load-format dummy --device cuda --dtype bfloat16)
  for sampler in ${SAMPLERS:-0 1}; do
    name=$([ $sampler = 1 ] && echo device || echo host)
    if has latency; then
      for b in ${LAT_BATCHES:-1 64}; do
        VLLM_BACKEND_SAMPLER=$sampler timeout 180 "$VLLM" bench latency "${common[@]}" --batch-size $b --input-len 32 \
          --output-len 128 --num-iters-warmup 1 --num-iters 3 >"$OUT/latency-$shape-b$b-$name.log" 2>&1
        row=$(grep -E "^\| $b \| 32 \| 128 \|" "$OUT/latency-$shape-b$b-$name.log" | tail -1)
        echo "$shape batch $b, $name sampler|avg $(echo "$row" | awk -F'|' '{print $5}') s, decode $(echo "$row" | awk -F'|' '{print $10}') tok/s" >>"$res"
      done
    fi
    if has throughput; then
      VLLM_BACKEND_SAMPLER=$sampler timeout 300 "$VLLM" bench throughput "${common[@]}" --input-len 1024 --output-len 128 \
        --num-prompts 1000 >"$OUT/throughput-$shape-$name.log" 2>&1
      echo "$shape offline 1000 x (1024, 128), $name sampler|$(grep -E "Throughput:" "$OUT/throughput-$shape-$name.log" | tail -1)" >>"$res"
    fi
  done
done

if has structured; then
  shape=${SHAPES%% *}
  model=/tmp/vllm-$shape-tokenizer
  mkdir -p "$model"
  cp "tests/data/configs/$shape.json" "$model/config.json"
  cp tests/data/tokenizers/tiny-llama3/tokenizer.json tests/data/models/tiny-llama3/tokenizer_config.json "$model/"
  for sampler in ${SAMPLERS:-0 1}; do
    name=$([ $sampler = 1 ] && echo device || echo host)
    for n in ${STRUCT_SEQS:-32 128}; do
      VLLM_BACKEND_SAMPLER=$sampler timeout 240 "$BIN/benchmarks/structured/structured_throughput" --model "$model" \
        --load-format dummy --device cuda --dtype float16 --num-seqs $n >"$OUT/structured-$n-$name.log" 2>&1
      echo "structured outputs, $shape fp16, $n sequences, $name sampler|$(grep -iE "cost|slower|overhead" "$OUT/structured-$n-$name.log" | tail -1)" >>"$res"
    done
  done
fi

{
  echo "| run | result |"
  echo "|---|---|"
  sed 's/^/| /; s/|/ | /; s/$/ |/' "$res"
  echo
  echo "GPU: $(cat "$OUT/gpu.txt"); command: benchmarks/gpu/run_sampler_bench.sh ${stages[*]}"
} | tee "$OUT/table.md"
