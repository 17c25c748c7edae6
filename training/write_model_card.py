#!/usr/bin/env python3
"""Writes MODEL_CARD.md for the trained model from the corpus provenance (SOURCES.json, from
scripts/gather_corpus.sh) and the training record (train_stats.json, from training/train.py).

    python3 training/write_model_card.py --sources training/data/SOURCES.json \
        --stats out/default/train_stats.json --out out/default/MODEL_CARD.md
"""

import argparse
import json


def mb(n):
    return "%.1f MB" % (n / 1e6)


def sources_table(sources):
    rows = ["| Debian package | version | licence | paragraphs | text | conversations |",
            "|---|---|---|---:|---:|---:|"]
    for name, s in sorted(sources["packages"].items()):
        rows.append("| %s | %s | %s | %d | %s | %d |" % (
            name, s["version"], s["licence"].replace("|", "/"), s["paragraphs"], mb(s["bytes"] + s["chat_bytes"]),
            s["chat_conversations"]))
    return "\n".join(rows)


def samples_section(stats):
    lines = []
    for s in stats.get("samples", []):
        prompt = s["prompt"]
        if isinstance(prompt, list):  # a chat: show the last user message
            prompt = "(chat) " + prompt[-1]["content"]
        lines.append("- **%s** (%s): %s" % (prompt, s["mode"], json.dumps(s["completion"], ensure_ascii=False)))
    return "\n".join(lines)


def heldout_curve(stats):
    """The held-out perplexity through training, and where it was lowest (the corpus is small
    next to the tokens seen, so a long run starts to overfit)."""
    t = stats["training"]
    evals = [h for h in t.get("history", []) if "heldout_ppl" in h]
    if not evals:
        return ""
    best = min(evals, key=lambda h: h["heldout_ppl"])
    epochs = t["tokens_seen"] / max(stats["train_tokens"], 1)
    curve = ", ".join("%.1f" % h["heldout_ppl"] for h in evals)
    return ("Held-out perplexity at each evaluation: %s. It was lowest (%.2f) at step %d; the run saw the "
            "training tokens about %.0f times, and later steps overfit slightly. Dropout or an earlier "
            "stop would likely gain a little." % (curve, best["heldout_ppl"], best["step"], epochs))


def golden_margins(stats):
    margins = stats.get("golden_min_margins", {})
    if not margins:
        return ""
    return ("The smallest gap between the top two log-probabilities over the golden's greedy steps is "
            "%.1e, several times what float32 compute moves a log-prob (the engine stays within 5e-5 "
            "of this reference), so the engine's float32 greedy output must equal it token for token, "
            "with no near-tie rule (tests/engine/test_golden.cpp, DefaultModel)." % min(margins.values()))


def card(sources, stats):
    t = stats["training"]
    shape = stats["shape"]
    minutes = t["train_seconds"] / 60
    return f"""# The default model of vllm-cpp

A small `PhiForCausalLM` ({stats["parameters"] / 1e6:.2f}M parameters) with its own byte-level BPE
tokenizer ({stats["vocab_size"]} entries), trained from scratch by this project on English prose from
Debian packages. It is what `vllm serve`, `vllm generate` and `LLM()` use when no model is given.

**This is a demonstration model, not a knowledgeable one.** It writes mostly grammatical English in
the style of dictionaries, fortune files and software manuals; what it says is often false or
nonsensical. Do not rely on its answers for anything.

## Shape

| | |
|---|---|
| architecture | PhiForCausalLM (parallel attention + MLP, LayerNorm, gelu_new, partial rotary 0.5, untied head with bias) |
| hidden size | {shape["hidden_size"]} |
| layers | {shape["num_hidden_layers"]} |
| attention heads | {shape["num_attention_heads"]} (head size {shape["hidden_size"] // shape["num_attention_heads"]}) |
| MLP size | {shape["intermediate_size"]} |
| context | {shape["max_position_embeddings"]} positions (trained on windows of the corpus) |
| vocabulary | {stats["vocab_size"]} (byte-level BPE, GPT-2 style) |
| weights | bfloat16 safetensors |

Special tokens: `<|endoftext|>` (id 0: end of document, BOS/EOS), and the chat markers
`<|system|>`, `<|user|>`, `<|assistant|>`, `<|end|>` (ids 1-4).

The chat template renders `<|role|>\\ncontent<|end|>\\n` per message and `<|assistant|>\\n` as the
generation prompt; generation stops at `<|end|>` or `<|endoftext|>` (generation_config.json).

## Training data

{sources["train_documents"]} training documents ({mb(sources["train_bytes"])}) and {sources["heldout_documents"]}
held-out documents ({mb(sources["heldout_bytes"])}, {sources["heldout_percent"]}% of documents, chosen by
hash), deduplicated by paragraph. Tokenized: {stats["train_tokens"]:,} training tokens, {stats["heldout_tokens"]:,}
held-out tokens. The conversations are synthetic: questions in a few fixed phrasings answered with
WordNet definitions, Jargon File entries and fortunes, so that the model learns the chat format.
Each package's copyright file is kept in `licenses/` of the corpus archive.

{sources_table(sources)}

## Training

{t["steps"]} steps of AdamW (cosine schedule with warmup, bf16 autocast{", torch.compile" if t["compiled"] else ""}),
{t["tokens_seen"]:,} tokens seen in {minutes:.1f} minutes ({t["tokens_per_second"]:,} tokens/s) on one
{stats["gpu"]}; the whole script (tokenizer, tokenization, training, export, golden) took
{stats["wall_seconds"] / 60:.1f} minutes. torch {stats["torch"]}, transformers {stats["transformers"]},
tokenizers {stats["tokenizers"]}.

**Held-out perplexity: {stats["heldout_perplexity"]:.2f}** (bf16 weights computed in float32, on
non-overlapping windows of the held-out documents; final training loss {t["final_train_loss"]}).
{heldout_curve(stats)}

## Samples

Greedy and sampled (temperature 0.7, top-p 0.9) continuations of at most 48 tokens, from the
exported weights:

{samples_section(stats)}

## Reproducing

On a Debian 12 machine with network access (no root needed):

```sh
scripts/gather_corpus.sh          # writes training/data/ and training/data/corpus.tar.xz
```

Then on a machine with one NVIDIA GPU, torch, transformers, tokenizers and numpy (no network):

```sh
{stats["command"]}
python3 training/write_model_card.py --sources training/data/SOURCES.json \\
    --stats <out>/train_stats.json --out <out>/MODEL_CARD.md
```

`golden.json` beside the weights is the float64 transformers reference the engine's tests check
against (format: tests/data/README.md). {golden_margins(stats)}
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sources", required=True)
    ap.add_argument("--stats", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    with open(args.sources) as f:
        sources = json.load(f)
    with open(args.stats) as f:
        stats = json.load(f)
    with open(args.out, "w") as f:
        f.write(card(sources, stats))


if __name__ == "__main__":
    main()
