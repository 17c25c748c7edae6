"""LLM: every accepted prompt form, engine-side errors, chat, beam search, the tokenizer,
Ctrl-C, and the output classes' shapes."""

import _thread
import json
import os
import shutil
import subprocess
import threading
import warnings

import pytest

from conftest import BUILD, DATA
from vllm import LLM, BeamSearchParams, CompletionOutput, Logprob, RequestOutput, SamplingParams, TextPrompt, TokensPrompt

GREEDY4 = SamplingParams(temperature=0.0, max_tokens=4, ignore_eos=True)
TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def ids_of(outputs):
    return [o.outputs[0].token_ids for o in outputs]


def test_every_prompt_form(llm32: LLM):
    tok = llm32.get_tokenizer()
    a, b = "Hello, my name is", "The capital of France is"
    ia, ib = tok.encode(a), tok.encode(b)
    expected = ids_of(llm32.generate([a, b], GREEDY4, use_tqdm=False))
    forms = [
        [{"prompt": a}, {"prompt": b}],
        [{"prompt_token_ids": ia}, {"prompt_token_ids": ib}],
        [TextPrompt(prompt=a), TokensPrompt(prompt_token_ids=ib)],
        [a, {"prompt_token_ids": ib}],
        (a, b),
        [ia, ib],
    ]
    for form in forms:
        assert ids_of(llm32.generate(form, GREEDY4, use_tqdm=False)) == expected, form
    # Single prompts.
    assert ids_of(llm32.generate(a, GREEDY4, use_tqdm=False)) == expected[:1]
    assert ids_of(llm32.generate({"prompt": a}, GREEDY4, use_tqdm=False)) == expected[:1]
    assert ids_of(llm32.generate({"prompt_token_ids": ia}, GREEDY4, use_tqdm=False)) == expected[:1]
    assert ids_of(llm32.generate(ia, GREEDY4, use_tqdm=False)) == expected[:1]
    # vLLM's legacy keyword.
    assert ids_of(llm32.generate(prompt_token_ids=[ia, ib], sampling_params=GREEDY4, use_tqdm=False)) == expected
    # A token prompt that brings its text reports it.
    (out,) = llm32.generate({"prompt_token_ids": ia, "prompt": a}, GREEDY4, use_tqdm=False)
    assert out.prompt == a and out.prompt_token_ids == ia
    # One SamplingParams per prompt, in order.
    outs = llm32.generate([a, b], [GREEDY4, SamplingParams(temperature=0, max_tokens=2, ignore_eos=True)], use_tqdm=False)
    assert [len(o.outputs[0].token_ids) for o in outs] == [4, 2]
    with pytest.raises(ValueError, match="The lengths of prompts and params must be the same."):
        llm32.generate([a, b], [GREEDY4], use_tqdm=False)
    with pytest.raises(TypeError):
        llm32.generate([a, 5], GREEDY4, use_tqdm=False)
    assert llm32.generate([], GREEDY4, use_tqdm=False) == []
    with pytest.raises(ValueError, match="Got priority 5 but Priority scheduling is not enabled."):
        llm32.generate([a, b], GREEDY4, use_tqdm=False, priority=[0, 5])


def test_outputs_in_input_order(llm32: LLM):
    prompts = [f"Number {i} is" for i in range(12)]
    lengths = [(i % 5) + 1 for i in range(12)]
    params = [SamplingParams(temperature=0, max_tokens=n, ignore_eos=True) for n in lengths]
    outs = llm32.generate(prompts, params, use_tqdm=False)
    assert [o.prompt for o in outs] == prompts
    assert [len(o.outputs[0].token_ids) for o in outs] == lengths
    assert all(isinstance(o, RequestOutput) and o.finished for o in outs)
    assert len({o.request_id for o in outs}) == 12


def test_tensor_parallel_gives_the_same_greedy_tokens(tiny_phi):
    prompts = ["The capital of France is", "def fibonacci(n):"]
    params = SamplingParams(temperature=0.0, max_tokens=12, ignore_eos=True)
    outputs = {}
    for tp in (1, 2):
        llm = LLM(model=tiny_phi, tensor_parallel_size=tp, dtype="float32", kv_cache_space=0.1)
        outputs[tp] = [o.outputs[0].token_ids for o in llm.generate(prompts, params, use_tqdm=False)]
        llm.shutdown()
    assert all(len(ids) == 12 for ids in outputs[1])
    assert outputs[2] == outputs[1]


@pytest.mark.parametrize(
    "prompt,params,message",
    [
        ("Hi", SamplingParams(logprobs=21), "Requested sample logprobs of 21, which is greater than max allowed: 20"),
        ("Hi", SamplingParams(prompt_logprobs=30), "Requested prompt logprobs of 30, which is greater than max allowed: 20"),
        (
            {"prompt_token_ids": [1] * 3000},
            SamplingParams(),
            "The decoder prompt (length 3000) is longer than the maximum model length of 2048. Make sure that "
            "`max_model_len` is no smaller than the number of text tokens.",
        ),
        ({"prompt_token_ids": [60000]}, SamplingParams(), "Token id 60000 is out of vocabulary"),
        ({"prompt_token_ids": []}, SamplingParams(), "The decoder prompt cannot be empty"),
        (
            "Hi",
            SamplingParams(stop_token_ids=[99999]),
            "token_id(s) [99999] in stop_token_ids contain out-of-vocab token ids. Vocabulary size: 51200",
        ),
        ("Hi", SamplingParams(logits_processors=[print]), "sampling parameter 'logits_processors' is not supported by vllm-cpp"),
    ],
)
def test_engine_errors_are_value_errors(llm32: LLM, prompt, params, message):
    with pytest.raises(ValueError) as e:
        llm32.generate(["A fine prompt", prompt], params, use_tqdm=False)
    assert str(e.value) == message
    # Nothing stays queued after a failed batch.
    assert not llm32.llm_engine.has_unfinished()


def test_constructor_arguments(tiny_phi):
    with pytest.raises(ValueError, match="tensor_parallel_size must be a positive integer, got 0"):
        LLM(model=tiny_phi, tensor_parallel_size=0)
    with pytest.raises(ValueError, match="data_parallel_size=2 is not supported by vllm-cpp's offline LLM"):
        LLM(model=tiny_phi, data_parallel_size=2)
    with pytest.raises(ValueError, match="--quantization 'awq' is not supported \\(supported: fp8, compressed-tensors\\)"):
        LLM(model=tiny_phi, quantization="awq")
    with pytest.raises(ValueError, match="the CPU backend supports --kv-cache-dtype auto only"):
        LLM(model=tiny_phi, kv_cache_dtype="fp8")
    online_fp8 = LLM(model=tiny_phi, quantization="fp8", kv_cache_space=0.1)  # vLLM's online FP8
    assert len(online_fp8.generate("a", GREEDY4, use_tqdm=False)[0].outputs[0].token_ids) == 4
    online_fp8.shutdown()
    with pytest.raises(ValueError, match="Unknown dtype"):
        LLM(model=tiny_phi, dtype="int3")
    with pytest.raises(FileNotFoundError, match="is not a model folder"):
        LLM(model=tiny_phi + "-missing")
    with pytest.warns(UserWarning, match="ignores these engine arguments.*max_seq_len_to_capture"):
        llm = LLM(model=tiny_phi, max_seq_len_to_capture=8192, kv_cache_space=0.1, block_size=32, max_num_seqs=8,
                  max_model_len=512, enable_prefix_caching=False, seed=3, disable_log_stats=True,
                  scheduling_policy="priority")
    c = llm.engine_config
    assert (c["block_size"], c["max_num_seqs"], c["max_model_len"], c["enable_prefix_caching"], c["seed"]) == (32, 8, 512, False, 3)
    assert c["dtype"] == "bfloat16"  # auto: float16 weights run in bfloat16 on the CPU
    outs = llm.generate(["a", "b"], GREEDY4, priority=[1, 0], use_tqdm=False)
    assert [len(o.outputs[0].token_ids) for o in outs] == [4, 4]
    llm.shutdown()
    with pytest.raises(ValueError, match="closed"):
        llm.generate("Hi", use_tqdm=False)


def test_sampling_behaviour(llm32: LLM):
    prompt = "The future of AI is"
    # n and seeds: reproducible, one output per index.
    sp = SamplingParams(n=3, temperature=0.9, seed=7, max_tokens=8, ignore_eos=True)
    first = llm32.generate(prompt, sp, use_tqdm=False)[0]
    again = llm32.generate(prompt, sp, use_tqdm=False)[0]
    assert sorted(c.index for c in first.outputs) == [0, 1, 2]
    assert [c.token_ids for c in first.outputs] == [c.token_ids for c in again.outputs]
    # best_of: n outputs chosen from best_of.
    out = llm32.generate(prompt, SamplingParams(n=1, best_of=3, temperature=1.0, seed=1, max_tokens=4), use_tqdm=False)[0]
    assert len(out.outputs) == 1
    # The defaults: SamplingParams() (tiny-phi's generation_config sets no sampling defaults).
    assert llm32.get_default_sampling_params() == SamplingParams()
    out = llm32.generate(prompt, use_tqdm=False)[0]
    assert len(out.outputs[0].token_ids) <= 16
    # Stop strings and stop token ids, with vLLM's stop_reason.
    full = llm32.generate(prompt, SamplingParams(temperature=0, max_tokens=16, ignore_eos=True), use_tqdm=False)[0].outputs[0]
    stop_token = full.token_ids[5]
    cut = llm32.generate(prompt, SamplingParams(temperature=0, max_tokens=16, stop_token_ids=[stop_token]), use_tqdm=False)[0].outputs[0]
    assert cut.token_ids == full.token_ids[: full.token_ids.index(stop_token) + 1]
    assert cut.finish_reason == "stop" and cut.stop_reason == stop_token
    stop_str = full.text[len(full.text) // 2 : len(full.text) // 2 + 3]
    if stop_str.strip():
        cut = llm32.generate(prompt, SamplingParams(temperature=0, max_tokens=16, stop=[stop_str]), use_tqdm=False)[0].outputs[0]
        assert cut.finish_reason == "stop" and cut.stop_reason == stop_str
        assert cut.text == full.text[: full.text.index(stop_str)]


def test_progress_bar(llm32: LLM, capsys):
    llm32.generate(["a", "b", "c"], GREEDY4)
    err = capsys.readouterr().err
    assert "Adding requests: 100%|" in err and "Processed prompts: 100%|" in err and "| 3/3 [" in err
    llm32.generate(["a", "b", "c"], GREEDY4, use_tqdm=False)
    assert capsys.readouterr().err == ""

    # vLLM also takes a tqdm-compatible class.
    bars = []

    class FakeTqdm:
        def __init__(self, total, desc, dynamic_ncols, postfix=None):
            self.total, self.desc, self.n, self.closed, self.postfix = total, desc, 0, False, postfix
            bars.append(self)

        def update(self, n=1):
            self.n += n

        def close(self):
            self.closed = True

    llm32.generate(["a", "b"], GREEDY4, use_tqdm=FakeTqdm)
    assert [(b.desc, b.total, b.n, b.closed) for b in bars] == [("Adding requests", 2, 2, True), ("Processed prompts", 2, 2, True)]
    assert bars[1].postfix.startswith("est. speed input: ")


def test_ctrl_c_aborts_in_flight_requests(llm32: LLM):
    prompts = [f"Story {i}:" for i in range(8)]
    long = SamplingParams(temperature=0.8, max_tokens=2000, ignore_eos=True)
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            llm32.generate(prompts, long, use_tqdm=False)
    finally:
        timer.cancel()
    assert not llm32.llm_engine.has_unfinished()
    # The engine is usable afterwards.
    assert len(llm32.generate("Hello", GREEDY4, use_tqdm=False)[0].outputs[0].token_ids) == 4


def test_chat(llm32: LLM):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}]
    with pytest.raises(ValueError, match="As of transformers v4.44, default chat template is no longer allowed"):
        llm32.chat(messages, GREEDY4, use_tqdm=False)
    (out,) = llm32.chat(messages, GREEDY4, use_tqdm=False, chat_template=TEMPLATE)
    rendered = "<|system|>Be brief.\n<|user|>Hi!\n<|assistant|>"
    assert out.prompt == rendered
    assert out.prompt_token_ids == llm32.get_tokenizer().encode(rendered, add_special_tokens=False)
    assert len(out.outputs[0].token_ids) == 4
    # Several conversations, OpenAI-style content parts, continue_final_message.
    outs = llm32.chat(
        [messages, [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]],
        GREEDY4,
        use_tqdm=False,
        chat_template=TEMPLATE,
    )
    assert [o.prompt for o in outs] == [rendered, "<|user|>a\nb\n<|assistant|>"]
    (out,) = llm32.chat(
        messages + [{"role": "assistant", "content": "Sure"}],
        GREEDY4,
        use_tqdm=False,
        chat_template=TEMPLATE,
        add_generation_prompt=False,
        continue_final_message=True,
    )
    assert out.prompt == "<|system|>Be brief.\n<|user|>Hi!\n<|assistant|>Sure"
    tok = llm32.get_tokenizer()
    text = tok.apply_chat_template(messages, chat_template=TEMPLATE, tokenize=False, add_generation_prompt=True)
    assert text == rendered
    assert tok.apply_chat_template(messages, chat_template=TEMPLATE, add_generation_prompt=True) == tok.encode(rendered)


def reference_beam_search(llm: LLM, prompt_ids, params: BeamSearchParams, eos):
    """vLLM's beam search written plainly over LLM.generate (the pure-Python algorithm this
    package ran before the engine did it): every step asks for one token with logprobs=2*width
    for each live beam from its whole token list, no KV sharing."""
    max_len = llm.engine_config["max_model_len"]
    step = SamplingParams(logprobs=2 * params.beam_width, max_tokens=1, temperature=params.temperature, detokenize=False)

    def score(tokens, cum):
        n = len(tokens) - (1 if eos is not None and tokens[-1] == eos else 0)
        return cum / (n**params.length_penalty)

    live = [(list(prompt_ids), [], 0.0, None)]
    completed = []
    for _ in range(params.max_tokens):
        if not live:
            break
        outs = llm.generate([{"prompt_token_ids": t} for t, _, _, _ in live], step, use_tqdm=False)
        candidates = []
        for (tokens, lps, cum, _), out in zip(live, outs):
            position = out.outputs[0].logprobs[0]
            for token, lp in position.items():
                beam = (tokens + [token], lps + [position], cum + lp.logprob, None)
                if token == eos and not params.ignore_eos:
                    completed.append(beam[:3] + ("stop",))
                elif len(beam[0]) >= max_len:
                    completed.append(beam[:3] + ("length",))
                else:
                    candidates.append(beam)
        live = sorted(candidates, key=lambda b: score(b[0], b[2]), reverse=True)[: params.beam_width]
    completed += [b[:3] + (b[3] or "length",) for b in live]
    return sorted(completed, key=lambda b: score(b[0], b[2]), reverse=True)[: params.beam_width]


@pytest.mark.parametrize("width,ignore_eos,length_penalty", [(1, True, 1.0), (2, False, 1.0), (4, False, 0.5), (3, True, 2.0)])
def test_beam_search_equals_the_plain_algorithm(llm32: LLM, golden: dict, width, ignore_eos, length_penalty):
    prompt = golden["generation"][0]["prompt_ids"]
    eos = llm32.get_tokenizer().eos_token_id
    params = BeamSearchParams(beam_width=width, max_tokens=6, ignore_eos=ignore_eos, length_penalty=length_penalty)
    (out,) = llm32.beam_search([{"prompt_token_ids": prompt}], params)
    want = reference_beam_search(llm32, prompt, params, eos)
    assert [s.tokens for s in out.sequences] == [b[0] for b in want]
    assert [s.finish_reason for s in out.sequences] == [b[3] for b in want]
    for seq, (_, lps, cum, _) in zip(out.sequences, want):
        assert abs(seq.cum_logprob - cum) < 1e-4
        assert [list(p) for p in seq.logprobs] == [list(p) for p in lps]


def test_beam_search(llm32: LLM, golden: dict):
    gen = golden["generation"][0]
    # One beam is greedy search.
    (one,) = llm32.beam_search([{"prompt_token_ids": gen["prompt_ids"]}], BeamSearchParams(beam_width=1, max_tokens=8))
    assert one.sequences[0].tokens == gen["prompt_ids"] + gen["greedy_ids"][:8]
    # Three beams: three sequences, best first, each with its step logprobs.
    (out,) = llm32.beam_search([gen["prompt"]], BeamSearchParams(beam_width=3, max_tokens=6))
    assert len(out.sequences) == 3
    scores = [s.cum_logprob / len(s.tokens) for s in out.sequences]
    assert scores == sorted(scores, reverse=True)
    for seq in out.sequences:
        assert seq.tokens[: len(gen["prompt_ids"])] == gen["prompt_ids"] and len(seq.tokens) == len(gen["prompt_ids"]) + 6
        new = seq.tokens[len(gen["prompt_ids"]) :]
        assert abs(sum(lp[t].logprob for lp, t in zip(seq.logprobs, new)) - seq.cum_logprob) < 1e-6
        assert seq.text == llm32.get_tokenizer().decode(seq.tokens)
    # vLLM's older interface: SamplingParams(use_beam_search=True).
    (req,) = llm32.generate(gen["prompt"], SamplingParams(use_beam_search=True, best_of=3, n=2, temperature=0, max_tokens=6), use_tqdm=False)
    assert [c.token_ids for c in req.outputs] == [s.tokens[len(gen["prompt_ids"]) :] for s in out.sequences[:2]]


def test_tokenizer(llm32: LLM):
    tok = llm32.get_tokenizer()
    assert tok.encode("Hello, my name is") == [15496, 11, 616, 1438, 318]
    assert tok.decode([15496, 11, 616, 1438, 318]) == "Hello, my name is"
    assert tok.decode(15496) == "Hello"
    assert tok.eos_token_id == 50256 and tok.eos_token == "<|endoftext|>" and tok.bos_token_id == 50256
    assert tok.vocab_size == len(tok) == 50257 and tok.max_token_id == 50256
    assert tok.convert_ids_to_tokens([15496, 995]) == ["Hello", "Ġworld"]
    assert tok.tokenize("Hello world") == ["Hello", "Ġworld"]
    assert tok.convert_tokens_to_ids(["Hello", "Ġworld"]) == [15496, 995]
    assert tok("Hello world") == {"input_ids": [15496, 995], "attention_mask": [1, 1]}
    assert tok.decode([15496, 50256], skip_special_tokens=True) == "Hello"
    assert tok.all_special_ids == [50256]
    assert tok.model_max_length == 2048
    assert tok.chat_template is None


def test_output_classes():
    lp = Logprob(logprob=-0.5, rank=1, decoded_token="x")
    assert repr(lp) == "Logprob(logprob=-0.5, rank=1, decoded_token='x')"
    c = CompletionOutput(index=0, text="hi", token_ids=[1, 2], cumulative_logprob=None, logprobs=None, finish_reason="length")
    assert repr(c) == (
        "CompletionOutput(index=0, text='hi', token_ids=[1, 2], cumulative_logprob=None, logprobs=None, "
        "finish_reason=length, stop_reason=None)"
    )
    assert c.finished()
    r = RequestOutput("7", "p", [3], None, [c], True, num_cached_tokens=0)
    assert repr(r).startswith("RequestOutput(request_id=7, prompt='p', prompt_token_ids=[3], encoder_prompt=None,")
    assert repr(r).endswith("lora_request=None, num_cached_tokens=0)")


def test_warnings_not_raised_for_langchain_arguments(tiny_phi):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        llm = LLM(model=tiny_phi, tensor_parallel_size=1, trust_remote_code=True, dtype="auto", download_dir=None,
                  kv_cache_space=0.1)
    llm.shutdown()


def test_default_model(tiny_phi, monkeypatch):
    # LLM() without a model runs the set-up's default model (VLLM_DEFAULT_MODEL or models/default).
    monkeypatch.setenv("VLLM_DEFAULT_MODEL", tiny_phi)
    llm = LLM(kv_cache_space=0.1)
    assert llm.engine_config["model"] == tiny_phi
    assert len(llm.generate("Hello", GREEDY4, use_tqdm=False)[0].outputs[0].token_ids) == 4
    llm.shutdown()


def test_generation_config_defaults(tiny_phi, tmp_path):
    # vLLM's LLM.generate without sampling params uses the model's generation_config.json.
    import json
    import os

    model = tmp_path / "model"
    model.mkdir()
    for name in os.listdir(tiny_phi):
        if name != "generation_config.json":
            os.symlink(os.path.join(tiny_phi, name), model / name)
    (model / "generation_config.json").write_text(json.dumps({"temperature": 0.6, "top_p": 0.9, "top_k": 20, "max_new_tokens": 7}))
    llm = LLM(model=str(model), kv_cache_space=0.1)
    sp = llm.get_default_sampling_params()
    assert (sp.temperature, sp.top_p, sp.top_k, sp.max_tokens) == (0.6, 0.9, 20, 7)
    out = llm.generate("Hello", use_tqdm=False)[0].outputs[0]
    assert len(out.token_ids) <= 7
    llm.shutdown()
    llm = LLM(model=str(model), kv_cache_space=0.1, generation_config="vllm")
    assert llm.get_default_sampling_params() == SamplingParams()
    llm.shutdown()


def _edit_config(key, value):
    def edit(folder):
        path = os.path.join(folder, "config.json")
        config = json.load(open(path))
        config[key] = value
        json.dump(config, open(path, "w"))
    return edit


def _fifo_weights(folder):
    os.remove(os.path.join(folder, "model.safetensors"))
    os.mkfifo(os.path.join(folder, "model.safetensors"))


@pytest.mark.parametrize("edit, error, match", [
    (_edit_config("max_position_embeddings", -5), RuntimeError, "'max_position_embeddings' must be positive, not -5"),
    (_edit_config("num_key_value_heads", 3), RuntimeError, "'num_key_value_heads' \\(3\\) must divide"),
    (_fifo_weights, RuntimeError, "model.safetensors: is a FIFO, not a regular file"),
])
def test_broken_model_folder_raises(tiny_phi, tmp_path, edit, error, match):
    """A bad model folder is an exception naming the file and the problem (issue 20), never a hang or a crash."""
    folder = str(tmp_path / "model")
    shutil.copytree(tiny_phi, folder)
    edit(folder)
    with pytest.raises(error, match=match):
        LLM(model=folder)


def test_overlong_hub_id_raises():
    with pytest.raises(FileNotFoundError, match="the maximum length is 96"):
        LLM(model="a" * 5000)


def test_load_format_dummy(tiny_phi, tmp_path):
    """load_format="dummy": the recipe's weights (seed 0, the compute dtype) made in memory from a
    folder holding config.json alone, the same model the weight tool writes with that seed."""
    config = DATA / "models" / "tiny-phi" / "config.json"
    written, bare = tmp_path / "written", tmp_path / "bare"
    make = os.environ.get("VLLM_MAKE_MODEL", str(BUILD / "tools" / "vllm-make-model"))
    subprocess.run([make, "--config", str(config), "--out", str(written), "--seed", "0", "--dtype", "bfloat16"],
                   check=True, stdout=subprocess.DEVNULL)
    bare.mkdir()
    shutil.copy(config, bare / "config.json")
    prompts = [{"prompt_token_ids": [5, 17, 300]}, {"prompt_token_ids": [9]}]
    results = []
    for folder, fmt in ((written, "auto"), (bare, "dummy")):
        llm = LLM(model=str(folder), load_format=fmt, dtype="bfloat16", kv_cache_space=0.1, device="cpu")
        results.append([o.outputs[0].token_ids for o in llm.generate(prompts, GREEDY4, use_tqdm=False)])
        llm.shutdown()
    assert results[0] == results[1]
    assert all(len(ids) == 4 for ids in results[1])
    with pytest.raises((ValueError, RuntimeError), match="load-format 'pt' is not supported"):
        LLM(model=str(bare), load_format="pt", device="cpu")
