#!/usr/bin/env python3
"""Trains the default model from scratch on one GPU, in one command of under 10 minutes:
a byte-level BPE tokenizer, a small PhiForCausalLM, its Hugging Face folder, its golden.json
(float64 transformers reference, the format of tests/data/README.md) and train_stats.json
(numbers and samples for the model card).

    python3 training/train.py --data-dir training/data --out out/default --minutes 6.5
    python3 training/train.py --data-dir training/data --out /tmp/smoke --smoke   # ~1 minute

--data-dir holds train.txt + heldout.txt, or corpus.tar.xz (from scripts/gather_corpus.sh),
which is unpacked there first. Needs torch, transformers, tokenizers, numpy.
"""

import argparse
import hashlib
import json
import math
import os
import sys
import tarfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import chat_format  # noqa: E402

START = time.time()


def log(msg):
    print("[%6.1fs] %s" % (time.time() - START, msg), flush=True)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.path.join(HERE, "data"))
    ap.add_argument("--out", required=True, help="the model folder to write")
    ap.add_argument("--minutes", type=float, default=6.5, help="wall-clock budget of the training loop")
    ap.add_argument("--total-minutes", type=float, default=9.3,
                    help="the training loop is cut short so that the whole script ends within this")
    ap.add_argument("--smoke", action="store_true", help="tiny corpus slice, a few steps: checks the pipeline")
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--max-positions", type=int, default=1024)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=256, help="sequences per step")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--warmup-steps", type=int, default=200)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--eval-every-s", type=float, default=60.0)
    ap.add_argument("--tokenizer-sample-mb", type=float, default=24.0,
                    help="the BPE tokenizer is trained on this much of train.txt")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args(argv)
    if args.smoke:
        args.minutes = min(args.minutes, 0.5)
        args.batch_size = min(args.batch_size, 32)
        args.eval_every_s = 10.0
        args.tokenizer_sample_mb = 2.0
    return args


# ---------------------------------------------------------------------------------------------
# data


def ensure_corpus(data_dir):
    train = os.path.join(data_dir, "train.txt")
    if not os.path.isfile(train):
        archive = os.path.join(data_dir, "corpus.tar.xz")
        if not os.path.isfile(archive):
            sys.exit("train.py: %s has neither train.txt nor corpus.tar.xz (run scripts/gather_corpus.sh)" % data_dir)
        log("unpacking %s" % archive)
        with tarfile.open(archive, "r:xz") as t:
            if hasattr(tarfile, "data_filter"):
                t.extractall(data_dir, filter="data")
            else:
                t.extractall(data_dir)
    return train, os.path.join(data_dir, "heldout.txt")


def read_documents(path, max_bytes=None):
    """Documents are blank-line separated (gather_corpus.py)."""
    with open(path, encoding="utf-8") as f:
        text = f.read(max_bytes) if max_bytes else f.read()
    return [d.strip("\n") for d in text.split("\n\n") if d.strip()]


# ---------------------------------------------------------------------------------------------
# tokenizer


def train_tokenizer(docs, vocab_size):
    """Byte-level BPE as GPT-2's: the ByteLevel pre-tokenizer (GPT-2 split regex, no prefix
    space), decoder and post-processor; the special tokens first, <|endoftext|> = 0."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  special_tokens=chat_format.SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(docs, trainer=trainer, length=len(docs))
    for i, t in enumerate(chat_format.SPECIAL_TOKENS):
        assert tok.token_to_id(t) == i, "special token %s is not id %d" % (t, i)
    return tok


def tokenizer_config(max_length):
    added = {}
    for i, t in enumerate(chat_format.SPECIAL_TOKENS):
        added[str(i)] = {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                         "single_word": False, "special": True}
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": added,
        "additional_special_tokens": chat_format.SPECIAL_TOKENS[1:],
        "bos_token": chat_format.ENDOFTEXT,
        "eos_token": chat_format.ENDOFTEXT,
        "unk_token": chat_format.ENDOFTEXT,
        "pad_token": chat_format.ENDOFTEXT,
        "add_bos_token": False,
        "add_eos_token": False,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": max_length,
        "chat_template": chat_format.CHAT_TEMPLATE,
    }


def save_tokenizer(tok, out, max_length):
    os.makedirs(out, exist_ok=True)
    tok.save(os.path.join(out, "tokenizer.json"))
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(tokenizer_config(max_length), f, indent=2, ensure_ascii=False)
        f.write("\n")


def tokenize(tok, docs):
    """All documents, each followed by <|endoftext|>, as one uint16 array."""
    import numpy as np

    eos = tok.token_to_id(chat_format.ENDOFTEXT)
    parts = []
    step = 4096
    for i in range(0, len(docs), step):
        for enc in tok.encode_batch(docs[i:i + step], add_special_tokens=False):
            parts.append(np.asarray(enc.ids + [eos], dtype=np.uint16))
    return np.concatenate(parts)


# ---------------------------------------------------------------------------------------------
# model


def model_config(args, vocab_size):
    from transformers import PhiConfig

    heads = args.hidden // args.head_dim
    assert heads * args.head_dim == args.hidden, "--hidden must be a multiple of --head-dim"
    return PhiConfig(
        vocab_size=vocab_size,
        hidden_size=args.hidden,
        intermediate_size=4 * args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        hidden_act="gelu_new",
        max_position_embeddings=args.max_positions,
        layer_norm_eps=1e-5,
        partial_rotary_factor=0.5,
        rope_theta=10000.0,
        qk_layernorm=False,
        tie_word_embeddings=False,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attention_dropout=0.0,
        initializer_range=0.02,
        bos_token_id=0,
        eos_token_id=0,
    )


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def make_optimizer(model, args):
    import torch

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        # Matrices decay; biases, LayerNorms and embeddings do not.
        (decay if p.dim() == 2 and "embed_tokens" not in name else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    try:
        return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    except (TypeError, RuntimeError):
        return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.95), eps=1e-8)


def learning_rate(args, step, time_fraction):
    """Linear warmup by steps, then a cosine to min_lr over the wall-clock budget."""
    if step < args.warmup_steps:
        return args.lr * (step + 1) / args.warmup_steps
    t = min(max(time_fraction, 0.0), 1.0)
    floor = args.lr * args.min_lr_ratio
    return floor + (args.lr - floor) * 0.5 * (1 + math.cos(math.pi * t))


def random_batch(data, batch_size, seq_len, generator):
    """batch_size windows of seq_len + 1 tokens at random offsets of the token stream (on GPU)."""
    import torch

    starts = torch.randint(0, data.numel() - seq_len - 1, (batch_size, 1), device=data.device, generator=generator)
    idx = starts + torch.arange(seq_len + 1, device=data.device)
    w = data[idx].long()
    return w[:, :-1], w[:, 1:]


def loss_of(model, x, y):
    import torch
    import torch.nn.functional as F

    with torch.autocast("cuda", dtype=torch.bfloat16):
        logits = model(input_ids=x).logits
    return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))


def heldout_perplexity(model, data, seq_len, batch_size=64):
    """exp(mean token NLL) over consecutive non-overlapping windows of the held-out stream."""
    import torch

    n = (data.numel() - 1) // seq_len
    if n == 0:
        return float("nan")
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for i in range(0, n, batch_size):
            k = min(batch_size, n - i)
            idx = (torch.arange(k, device=data.device)[:, None] + i) * seq_len + torch.arange(seq_len + 1, device=data.device)
            w = data[idx].long()
            total += loss_of(model, w[:, :-1], w[:, 1:]).item() * k * seq_len
            count += k * seq_len
    model.train()
    return math.exp(total / count)


def train(args, model, train_data, heldout_data):
    import torch

    opt = make_optimizer(model, args)
    runner = model
    compiled = False
    if not args.no_compile:
        try:
            runner = torch.compile(model)
            compiled = True
        except Exception as e:  # noqa: BLE001 - any failure means: train uncompiled
            log("torch.compile unavailable (%s); training eagerly" % e)
    gen = torch.Generator(device=train_data.device)
    gen.manual_seed(args.seed)
    budget = args.minutes * 60
    deadline = START + args.total_minutes * 60 - (20 if args.smoke else 100)  # export + golden
    budget = min(budget, deadline - time.time())
    log("training for %.0f s (batch %d x %d tokens, %s)" % (budget, args.batch_size, args.seq_len,
                                                          "compiled" if compiled else "eager"))
    history = []
    step, tokens = 0, 0
    t0 = time.time()
    last_eval = t0
    loss_val = float("nan")
    while True:
        elapsed = time.time() - t0
        if elapsed >= budget or (args.smoke and step >= 30):
            break
        lr = learning_rate(args, step, elapsed / budget)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = random_batch(train_data, args.batch_size, args.seq_len, gen)
        try:
            loss = loss_of(runner, x, y)
            loss.backward()
        except Exception as e:  # noqa: BLE001
            if not (compiled and step == 0):
                raise
            log("compiled step failed (%s: %s); training eagerly" % (type(e).__name__, str(e)[:300]))
            opt.zero_grad(set_to_none=True)
            runner, compiled = model, False
            continue
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        tokens += x.numel()
        if step == 1:
            t0_after_first = time.time()
            log("first step done (loss %.3f): compile/warmup took %.1f s" % (loss.item(), t0_after_first - t0))
        if step % 100 == 0 or time.time() - last_eval >= args.eval_every_s:
            loss_val = loss.item()
            rate = tokens / (time.time() - t0)
            entry = {"step": step, "tokens": tokens, "seconds": round(time.time() - t0, 1),
                     "lr": lr, "train_loss": round(loss_val, 4)}
            if time.time() - last_eval >= args.eval_every_s:
                entry["heldout_ppl"] = round(heldout_perplexity(model, heldout_data, args.seq_len), 3)
                last_eval = time.time()
            history.append(entry)
            log("step %d  tokens %.1fM  loss %.3f  lr %.2e  %.0fk tok/s%s" % (
                step, tokens / 1e6, loss_val, lr, rate / 1e3,
                ("  held-out ppl %.2f" % entry["heldout_ppl"]) if "heldout_ppl" in entry else ""))
    seconds = time.time() - t0
    return {"steps": step, "tokens_seen": tokens, "train_seconds": round(seconds, 1),
            "tokens_per_second": round(tokens / max(seconds, 1e-9)), "compiled": compiled,
            "final_train_loss": round(loss.item(), 4) if step else None, "history": history}


# ---------------------------------------------------------------------------------------------
# export


def export(model, tok, out, args):
    """The Hugging Face folder: bf16 safetensors, config.json (with the v4 keys our loader and
    older transformers read), generation_config.json, tokenizer files."""
    import torch
    from transformers import GenerationConfig

    model.config.torch_dtype = torch.bfloat16
    bf16 = model.to(torch.bfloat16)
    bf16.save_pretrained(out, safe_serialization=True)
    model.float()
    path = os.path.join(out, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["torch_dtype"] = "bfloat16"
    cfg.setdefault("rope_theta", 10000.0)
    cfg.setdefault("partial_rotary_factor", 0.5)
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    eos_ids = [tok.token_to_id(chat_format.ENDOFTEXT), tok.token_to_id(chat_format.END)]
    gen = GenerationConfig(bos_token_id=eos_ids[0], eos_token_id=eos_ids, pad_token_id=eos_ids[0],
                           do_sample=True, temperature=0.7, top_p=0.9, max_new_tokens=128)
    gen.save_pretrained(out)
    save_tokenizer(tok, out, args.max_positions)
    weights = os.path.join(out, "model.safetensors")
    log("exported %s (%.1f MB weights)" % (out, os.path.getsize(weights) / 1e6))


def check_transformers_tokenizer(out, tok):
    """The folder loads with AutoTokenizer, whose chat template renders what the training
    conversations look like and whose ids agree with the tokenizers library."""
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(out)
    convs = [
        [{"role": "user", "content": "Hello!"}],
        [{"role": "system", "content": "You are a helpful assistant."},
         {"role": "user", "content": "What is a computer?"},
         {"role": "assistant", "content": "A computer is a machine."},
         {"role": "user", "content": "Thanks."}],
    ]
    for messages in convs:
        for gp in (False, True):
            got = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=gp)
            want = chat_format.render(messages, add_generation_prompt=gp)
            assert got == want, "chat template mismatch:\n%r\n%r" % (got, want)
    text = "San Francisco is a city.<|end|>\n<|user|>\nhi"
    assert hf(text)["input_ids"] == tok.encode(text).ids, "transformers and tokenizers disagree"
    assert hf.eos_token_id == 0
    log("transformers tokenizer check passed")
    return hf


# ---------------------------------------------------------------------------------------------
# golden.json (tests/data/README.md), samples


def golden_prompts():
    chat = [
        [{"role": "user", "content": "What is a computer?"}],
        [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Tell me a joke."}],
        [{"role": "user", "content": "What does the word serendipity mean?"}],
    ]
    long_text = ("Once upon a time, in a land far away, there lived a curious engineer who wanted to serve "
                 "language models faster than anyone else. ") * 6
    return ["San Francisco is a", "Once upon a time", "The meaning of the word", "Hello, my name is",
            "The capital of France is", "A computer is a machine that", "The Debian project is",
            "Python is a programming language", "In the beginning"] + \
        [chat_format.render(m, add_generation_prompt=True) for m in chat] + [long_text.strip()]


def tokenizer_cases():
    """The encode texts and chat cases of the shared goldens (copied into tests/data)."""
    texts, chats = [], []
    phi = os.path.join(REPO, "tests/data/models/tiny-phi/golden.json")
    llama3 = os.path.join(REPO, "tests/data/models/tiny-llama3/golden.json")
    if os.path.isfile(phi):
        with open(phi) as f:
            texts = [c["text"] for c in json.load(f)["tokenizer"]["encode"]]
    if os.path.isfile(llama3):
        with open(llama3) as f:
            chats = [{k: v for k, v in c.items() if k != "text"} for c in json.load(f)["tokenizer"]["chat"]]
    texts = texts or ["Hello, my name is", "San Francisco is a", "", " ", "\n"]
    for extra in ["<|user|>\nhi<|end|>\n<|assistant|>\n", "<|end|><|endoftext|>", "a<|system|>b"]:
        if extra not in texts:
            texts.append(extra)
    return texts, chats


def golden_tokenizer(out, hf):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
    texts, chats = tokenizer_cases()
    encode = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=True).ids
        t_ids = hf(text)["input_ids"]
        encode.append({"text": text, "ids": ids,
                       "ids_no_special": tok.encode(text, add_special_tokens=False).ids,
                       "decode": tok.decode(ids, skip_special_tokens=False),
                       "decode_skip_special": tok.decode(ids, skip_special_tokens=True),
                       "transformers_ids": t_ids,
                       "transformers_decode": hf.decode(t_ids)})
    chat = []
    for c in chats:
        kwargs = dict(c.get("kwargs", {}))
        extra = {"tools": c["tools"]} if "tools" in c else {}
        text = hf.apply_chat_template(c["messages"], tokenize=False, **kwargs, **extra)
        chat.append(dict(c, text=text))
    return {"encode": encode, "chat": chat}


def weights_summary(out):
    import torch
    from safetensors import safe_open

    tensors = []
    path = os.path.join(out, "model.safetensors")
    with safe_open(path, framework="pt") as f:
        for name in sorted(f.keys()):
            t = f.get_tensor(name)
            raw = t.contiguous().view(-1).view(torch.int16).numpy().tobytes()
            tensors.append({"name": name, "shape": list(t.shape), "dtype": "bfloat16",
                            "sha256": hashlib.sha256(raw).hexdigest(),
                            "first": [float(v) for v in t.view(-1)[:4].float().tolist()]})
    return tensors


def golden_generation(model64, prompt_ids, steps=32, top=20, prompt_top=5):
    """Greedy continuation recomputing the full sequence each step (no KV cache), float64."""
    import torch

    dev = next(model64.parameters()).device
    ids = list(prompt_ids)
    greedy, greedy_top = [], []
    min_margin = float("inf")
    with torch.no_grad():
        full = model64(input_ids=torch.tensor([ids], device=dev), use_cache=False).logits[0]
        lp = torch.log_softmax(full, dim=-1)
        prompt_logprobs = [None]
        for i in range(len(ids) - 1):
            v, k = torch.topk(lp[i], prompt_top)
            prompt_logprobs.append({"token": ids[i + 1], "logprob": lp[i, ids[i + 1]].item(),
                                    "top": [[int(a), float(b)] for a, b in zip(k.tolist(), v.tolist())]})
        for _ in range(steps):
            logits = model64(input_ids=torch.tensor([ids], device=dev), use_cache=False).logits[0, -1]
            lp1 = torch.log_softmax(logits, dim=-1)
            v, k = torch.topk(lp1, top)
            min_margin = min(min_margin, float(v[0] - v[1]))
            nxt = int(k[0])
            greedy.append(nxt)
            greedy_top.append([[int(a), float(b)] for a, b in zip(k.tolist(), v.tolist())])
            ids.append(nxt)
    return greedy, greedy_top, prompt_logprobs, min_margin


def write_golden(out, hf):
    import tokenizers
    import torch
    import transformers
    from transformers import PhiForCausalLM

    try:
        model64 = PhiForCausalLM.from_pretrained(out, dtype=torch.float64, attn_implementation="eager")
    except TypeError:
        model64 = PhiForCausalLM.from_pretrained(out, torch_dtype=torch.float64, attn_implementation="eager")
    model64 = model64.to("cuda").eval()
    generation, margins = [], {}
    for prompt in golden_prompts():
        prompt_ids = hf(prompt)["input_ids"]
        greedy, greedy_top, plp, margin = golden_generation(model64, prompt_ids)
        generation.append({"prompt": prompt, "prompt_ids": prompt_ids, "greedy_ids": greedy,
                           "greedy_top": greedy_top, "prompt_logprobs": plp})
        margins[prompt] = margin
    golden = {
        "model": "default",
        "reference": "transformers %s, torch %s, tokenizers %s, float64, eager attention, full recompute each step"
                     % (transformers.__version__, torch.__version__, tokenizers.__version__),
        "weights": {"spec": "model.safetensors (trained, see MODEL_CARD.md)", "dtype": "bfloat16",
                    "tied_lm_head": False, "tensors": weights_summary(out)},
        "tokenizer": golden_tokenizer(out, hf),
        "generation": generation,
    }
    with open(os.path.join(out, "golden.json"), "w") as f:
        json.dump(golden, f)
        f.write("\n")
    smallest = min(margins.values())
    log("golden.json written: %d prompts; smallest top-1/top-2 log-prob margin %.2e" % (len(generation), smallest))
    del model64
    return {p[:60]: m for p, m in margins.items()}


def samples(model, hf):
    """Greedy and sampled continuations (bf16 weights upcast to float32, as served)."""
    import torch

    model.eval()
    eos = [hf.convert_tokens_to_ids(chat_format.ENDOFTEXT), hf.convert_tokens_to_ids(chat_format.END)]
    prompts = ["San Francisco is a", "Once upon a time", "The meaning of the word", "A computer is",
               "The best way to learn a language is"]
    chats = [[{"role": "user", "content": "What is a computer?"}],
             [{"role": "user", "content": "Tell me a joke."}],
             [{"role": "user", "content": "What does the word happiness mean?"}]]
    out = []
    torch.manual_seed(0)
    jobs = [(p, p) for p in prompts] + [(chat_format.render(m, add_generation_prompt=True), m) for m in chats]
    for text, shown in jobs:
        ids = torch.tensor([hf(text)["input_ids"]], device="cuda")
        for mode in ("greedy", "sampled"):
            kw = {"do_sample": False} if mode == "greedy" else {"do_sample": True, "temperature": 0.7, "top_p": 0.9}
            with torch.no_grad():
                g = model.generate(ids, max_new_tokens=48, eos_token_id=eos, pad_token_id=eos[0], **kw)
            completion = hf.decode(g[0, ids.shape[1]:], skip_special_tokens=True)
            out.append({"prompt": shown, "mode": mode, "completion": completion})
            log("sample (%s) %r -> %r" % (mode, shown if isinstance(shown, str) else shown[-1]["content"], completion))
    return out


# ---------------------------------------------------------------------------------------------


def main():
    args = parse_args()
    import numpy as np
    import torch
    from transformers import PhiForCausalLM

    torch.manual_seed(args.seed)
    if not torch.cuda.is_available():
        sys.exit("train.py: needs a CUDA GPU")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    stats = {"command": " ".join(["python3", "training/train.py"] + sys.argv[1:]),
             "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
    import tokenizers
    import transformers
    stats["transformers"] = transformers.__version__
    stats["tokenizers"] = tokenizers.__version__

    train_path, heldout_path = ensure_corpus(args.data_dir)
    limit = 2_000_000 if args.smoke else None
    train_docs = read_documents(train_path, limit)
    heldout_docs = read_documents(heldout_path, limit // 10 if limit else None)
    log("corpus: %d train documents, %d held-out" % (len(train_docs), len(heldout_docs)))

    sample_bytes, sample = 0, []
    for d in train_docs:  # the file is shuffled, so its head is a fair sample
        sample.append(d)
        sample_bytes += len(d)
        if sample_bytes >= args.tokenizer_sample_mb * 1e6:
            break
    tok = train_tokenizer(sample, args.vocab_size)
    save_tokenizer(tok, args.out, args.max_positions)
    log("tokenizer: %d entries (trained on %.1f MB)" % (tok.get_vocab_size(), sample_bytes / 1e6))

    train_np = tokenize(tok, train_docs)
    heldout_np = tokenize(tok, heldout_docs)
    log("tokens: %d train, %d held-out (%.2f bytes/token)" % (
        len(train_np), len(heldout_np), sum(len(d.encode()) for d in heldout_docs) / max(len(heldout_np), 1)))
    stats.update({"vocab_size": tok.get_vocab_size(), "train_tokens": int(len(train_np)),
                  "heldout_tokens": int(len(heldout_np)), "train_documents": len(train_docs),
                  "heldout_documents": len(heldout_docs)})
    train_data = torch.from_numpy(train_np.astype(np.int32)).cuda()
    heldout_data = torch.from_numpy(heldout_np.astype(np.int32)).cuda()

    config = model_config(args, tok.get_vocab_size())
    try:
        model = PhiForCausalLM._from_config(config, attn_implementation="sdpa")
    except (TypeError, ValueError):
        model = PhiForCausalLM(config)
    model = model.cuda().float()
    stats["parameters"] = count_params(model)
    stats["shape"] = {"hidden_size": config.hidden_size, "num_hidden_layers": config.num_hidden_layers,
                      "num_attention_heads": config.num_attention_heads, "intermediate_size": config.intermediate_size,
                      "max_position_embeddings": config.max_position_embeddings, "partial_rotary_factor": 0.5}
    log("model: %.2fM parameters" % (stats["parameters"] / 1e6))

    stats["training"] = train(args, model, train_data, heldout_data)
    ppl = heldout_perplexity(model, heldout_data, args.seq_len)
    stats["heldout_perplexity_fp32_weights"] = round(ppl, 3)
    log("held-out perplexity %.3f" % ppl)

    export(model, tok, args.out, args)
    hf = check_transformers_tokenizer(args.out, tok)
    # The exported (bf16) weights, as the engine will serve them.
    try:
        served = PhiForCausalLM.from_pretrained(args.out, dtype=torch.float32)
    except TypeError:
        served = PhiForCausalLM.from_pretrained(args.out, torch_dtype=torch.float32)
    served = served.cuda()
    stats["heldout_perplexity"] = round(heldout_perplexity(served, heldout_data, args.seq_len), 3)
    log("held-out perplexity of the bf16 export: %.3f" % stats["heldout_perplexity"])
    stats["samples"] = samples(served, hf)
    del served
    stats["golden_min_margins"] = write_golden(args.out, hf)
    stats["wall_seconds"] = round(time.time() - START, 1)
    with open(os.path.join(args.out, "train_stats.json"), "w") as f:
        json.dump(stats, f, indent=1, ensure_ascii=False)
        f.write("\n")
    log("done: %s" % args.out)


if __name__ == "__main__":
    main()
