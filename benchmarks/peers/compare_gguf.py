#!/usr/bin/env python3
"""Our engine against llama.cpp (node-llama-cpp's prebuilt CPU binary) on the same GGUF files.

For each case, vllm-make-model writes a GGUF of the recipe weights (tests/data/WEIGHTS.md) at a
config; both engines decode the 8 golden prompts greedily (token ids in, token ids out) for 32 steps
and report the top-5 log-probs of every step. The issue's bar:
  Q8_0: greedy tokens identical for 32 steps on every prompt;
  Q4_K: top-5 log-probs within 0.05 (compared on the tokens both top-5 lists hold, over the steps
        before the first divergence of the greedy tokens).
A divergence is reported with the top-1/top-2 margin of both engines at that step: these random-
weight models have near-flat distributions where a tie flips on rounding.

With --self the second engine is ours again, computing in bfloat16 instead of float32 (a KV cache
and embedding rounded to bfloat16): the same table then measures how far a rounding-level change
moves each model, the noise floor against which the peer's numbers read.

  benchmarks/peers/compare_gguf.py [--build build/dev] [--cases tiny-llama3:q8_0,...] [--steps 32]

Needs benchmarks/peers/node_modules (npm ci --omit=optional there) and the tokenizer files
(scripts/fetch_tokenizers.sh). Prints a markdown table; details go to --out (JSON).
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "tests", "data")

# name -> (config, golden model for seed/dtype/prompts, tokenizer folder)
MODELS = {
    "tiny-llama3": ("models/tiny-llama3/config.json", "tiny-llama3", "tokenizers/tiny-llama3"),
    "tiny-qwen3": ("models/tiny-qwen3/config.json", "tiny-qwen3", "tokenizers/tiny-qwen3"),
    # phi-1_5's shape with the recipe weights of tiny-phi's seed; tiny-phi's prompts (GPT-2 ids).
    "phi-1_5": ("configs/phi-1_5.json", "tiny-phi", "tokenizers/tiny-phi"),
}


def run(cmd, **kw):
    t0 = time.time()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
    return out.stdout, time.time() - t0


def make_gguf(build, work, model, scheme):
    config, golden_model, tok = MODELS[model]
    path = os.path.join(work, f"{model}-{scheme}.gguf")
    if not os.path.exists(path):
        golden = json.load(open(os.path.join(DATA, "models", golden_model, "golden.json")))
        w = golden["weights"]
        cmd = [os.path.join(build, "tools", "vllm-make-model"), "--config", os.path.join(DATA, config),
               "--seed", str(w["seed"]), "--dtype", w["dtype"], "--quantize", scheme,
               "--tokenizer", os.path.join(DATA, tok), "--out", path]
        if model == "phi-1_5":
            cmd += ["--tokenizer-config", os.path.join(DATA, "models", "tiny-phi", "tokenizer_config.json")]
        run(cmd)
    return path


def ours(build, gguf, prompts, steps, threads, dtype="float32"):
    cmd = [os.path.join(build, "src", "vllm", "cli", "vllm"), "generate", "--model", gguf, "--json",
           "--max-tokens", str(steps), "--ignore-eos", "--logprobs", "5", "--dtype", dtype]
    for p in prompts:
        cmd += ["--prompt-ids", ",".join(map(str, p))]
    env = dict(os.environ, VLLM_NUM_THREADS=str(threads))
    out, secs = run(cmd, env=env)
    results = []
    for line in out.splitlines():
        j = json.loads(line)
        results.append({"ids": j["token_ids"], "top": [[tuple(t) for t in lp["top"]] for lp in j["logprobs"]]})
    return results, secs


def peer(gguf, prompts, steps, threads, work):
    pfile = os.path.join(work, "prompts.json")
    json.dump(prompts, open(pfile, "w"))
    out, secs = run(["node", os.path.join(ROOT, "benchmarks", "peers", "llama_cpp_peer.mjs"), "--model", gguf,
                     "--prompts", pfile, "--steps", str(steps), "--top", "5", "--threads", str(threads)])
    j = json.loads(out)
    return [{"ids": r["ids"], "top": [[tuple(t) for t in s] for s in r["top"]]} for r in j["results"]], j["llama_cpp"], secs


def compare(a, b):
    """Identical greedy steps, and the largest top-5 log-prob difference before the divergence."""
    same = 0
    while same < min(len(a["ids"]), len(b["ids"])) and a["ids"][same] == b["ids"][same]:
        same += 1
    worst = 0.0
    for i in range(min(same + 1, len(a["top"]), len(b["top"]))):
        mine = dict(a["top"][i])
        for tok, lp in b["top"][i]:
            if tok in mine:
                worst = max(worst, abs(mine[tok] - lp))
    margins = None
    if same < len(a["ids"]):
        margins = (a["top"][same][0][1] - a["top"][same][1][1], b["top"][same][0][1] - b["top"][same][1][1])
    return same, worst, margins


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build", "dev"))
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "gguf-peer"))
    ap.add_argument("--cases", default="tiny-llama3:q8_0,tiny-qwen3:q8_0,tiny-llama3:q4_k,tiny-qwen3:q4_k,"
                                       "phi-1_5:q8_0,phi-1_5:q4_k")
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument("--self", action="store_true", help="compare ours in float32 with ours in bfloat16")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    report = []
    print("| model | GGUF | prompts with all steps identical | identical steps (of 8 x %d) | max top-5 log-prob diff | first divergence: top1-top2 margin (ours, llama.cpp) | ours s | llama.cpp s |" % args.steps)
    print("|---|---|---|---|---|---|---|---|")
    for case in args.cases.split(","):
        model, scheme = case.split(":")
        gguf = make_gguf(args.build, args.work, model, scheme)
        golden = json.load(open(os.path.join(DATA, "models", MODELS[model][1], "golden.json")))
        prompts = [g["prompt_ids"] for g in golden["generation"]]
        mine, t_ours = ours(args.build, gguf, prompts, args.steps, args.threads)
        if args.self:
            theirs, t_peer = ours(args.build, gguf, prompts, args.steps, args.threads, "bfloat16")
            info = {"engine": "ours, bfloat16"}
        else:
            theirs, info, t_peer = peer(gguf, prompts, args.steps, args.threads, args.work)
        rows = [compare(a, b) for a, b in zip(mine, theirs)]
        full = sum(1 for same, _, _ in rows if same == args.steps)
        steps = sum(same for same, _, _ in rows)
        worst = max(w for _, w, _ in rows)
        div = "; ".join(f"p{i} step {same}: {m[0]:.4f}, {m[1]:.4f}" for i, (same, _, m) in enumerate(rows) if m)
        print(f"| {model} | {scheme} | {full}/8 | {steps} | {worst:.4f} | {div or '-'} | {t_ours:.1f} | {t_peer:.1f} |")
        sys.stdout.flush()
        report.append({"model": model, "scheme": scheme, "llama_cpp": info, "ours": mine, "peer": theirs,
                       "identical_steps": [r[0] for r in rows], "max_top5_diff": [r[1] for r in rows]})
    if args.out:
        json.dump(report, open(args.out, "w"))


if __name__ == "__main__":
    main()
