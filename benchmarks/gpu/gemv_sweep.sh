#!/usr/bin/env bash
# The decode GEMV alone at a decode step's shapes (phi-1_5: qkv, dense, fc1, fc2, LM head; GQA
# shapes' projections), for each forced warps-per-row W and with the one-wave cap lifted:
#   benchmarks/gpu/gemv_sweep.sh [gpu_bench]
B=${1:-build/gpu/benchmarks/gpu/gpu_bench}
shapes=("6144 2048 1 0" "2048 2048 1 2" "8192 2048 1 1" "8192 2048 1 0" "2048 8192 1 2" "51200 2048 1 0" "4096 1024 1 0" "1024 3072 1 0")
for waves in 0 1; do
  for W in auto 1 2 4 8; do
    if [ "$W" = auto ]; then unset VLLM_GEMV_W; else export VLLM_GEMV_W=$W; fi
    for spec in "${shapes[@]}"; do
      VLLM_GEMV_WAVES=$waves "$B" gemv $spec 2>&1 | grep "^gemv" | sed "s/^/waves=$waves /"
    done
  done
done
