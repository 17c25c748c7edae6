"""Python LLM.generate against the C++ engine driven directly: the same prompts and sampling
parameters through `vllm generate --json` (a subprocess on the same model folder, engine and
seed) must give the same token ids, texts and log-probabilities, bit for bit. Along the way the
logprobs are checked to be vLLM's structures: per position a dict[int, Logprob], the chosen
token first, then the requested number of best tokens with ranks 1..k and their decoded text."""

import json
import os
import subprocess

import pytest

from conftest import BUILD, subprocess_env
from vllm import LLM, Logprob, SamplingParams

MAX_TOKENS = 12
LOGPROBS = 5
PROMPT_LOGPROBS = 3
# Engine arguments both sides get; everything else is left at its (shared) default.
ENGINE = {"dtype": "float32", "kv_cache_space": 0.25}

# name: (SamplingParams keywords, the matching `vllm generate` flags)
CASES = {
    "greedy": ({"temperature": 0.0}, ["--temperature", "0"]),
    "seeded_top_p_top_k": (
        {"temperature": 0.8, "top_p": 0.9, "top_k": 40, "seed": 1234},
        ["--temperature", "0.8", "--top-p", "0.9", "--top-k", "40", "--sampling-seed", "1234"],
    ),
    "seeded_hot_top_k": (
        {"temperature": 1.5, "top_k": 5, "seed": 7},
        ["--temperature", "1.5", "--top-k", "5", "--sampling-seed", "7"],
    ),
    # No request seed: both engines draw from their generator seeded with the engine seed (0).
    "engine_seed_top_p": ({"temperature": 1.0, "top_p": 0.5}, ["--temperature", "1", "--top-p", "0.5"]),
}


def cli_path() -> str:
    path = os.environ.get("VLLM_CLI", str(BUILD / "src" / "vllm" / "cli" / "vllm"))
    if not os.path.exists(path):
        pytest.fail(f"the vllm CLI of this build is missing: {path} (build the `vllm` target)")
    return path


@pytest.fixture(scope="module")
def prompts(golden):
    """The golden prompts as text, and two of them again as token ids (the CLI puts its
    --prompt-ids requests after its --prompt ones; the Python list keeps that order)."""
    gens = golden["generation"]
    return [g["prompt"] for g in gens], [gens[0]["prompt_ids"], gens[5]["prompt_ids"]]


def run_cli(model: str, texts, id_prompts, flags):
    cmd = [cli_path(), "generate", "-m", model, "--json", "--dtype", ENGINE["dtype"],
           "--kv-cache-space", str(ENGINE["kv_cache_space"]), "--max-tokens", str(MAX_TOKENS), "--ignore-eos",
           "--logprobs", str(LOGPROBS), "--prompt-logprobs", str(PROMPT_LOGPROBS), *flags]
    for t in texts:
        cmd += ["--prompt", t]
    for ids in id_prompts:
        cmd += ["--prompt-ids", ",".join(map(str, ids))]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == len(texts) + len(id_prompts), proc.stdout
    return lines


def check_position(position, cli_entry, k: int, tokenizer, where: str):
    """One position's dict against the CLI's {token, logprob, rank, top: [[id, logprob], ...]}."""
    assert isinstance(position, dict), where
    assert all(type(t) is int and isinstance(lp, Logprob) for t, lp in position.items()), where
    token = cli_entry["token"]
    # vLLM's layout: the chosen token first, with its rank in the whole distribution.
    assert next(iter(position)) == token, where
    assert position[token].logprob == cli_entry["logprob"], where
    assert position[token].rank == cli_entry["rank"], where
    # Then the k best, best first, ranked 1..k (the CLI lists the chosen one last when it is not
    # among them).
    best = cli_entry["top"][:k]
    assert len(best) == k, where
    assert set(position) == {token} | {t for t, _ in best}, where
    for rank, (t, lp) in enumerate(best, start=1):
        assert position[t].logprob == lp, f"{where} token {t}"
        assert position[t].rank == rank, f"{where} token {t}"
    for t, lp in position.items():
        assert lp.decoded_token == tokenizer.decode([t]), f"{where} token {t}"


@pytest.mark.parametrize("case", list(CASES))
def test_python_equals_cpp_engine(tiny_phi, prompts, case):
    kwargs, flags = CASES[case]
    texts, id_prompts = prompts
    expected = run_cli(tiny_phi, texts, id_prompts, flags)

    # A fresh LLM, as the CLI is a fresh engine: the same prefix cache and generator state.
    llm = LLM(model=tiny_phi, **ENGINE)
    try:
        params = SamplingParams(max_tokens=MAX_TOKENS, ignore_eos=True, logprobs=LOGPROBS,
                                prompt_logprobs=PROMPT_LOGPROBS, **kwargs)
        batch = texts + [{"prompt_token_ids": ids} for ids in id_prompts]
        outs = llm.generate(batch, params, use_tqdm=False)
        tokenizer = llm.get_tokenizer()
    finally:
        llm.shutdown()

    assert len(outs) == len(expected)
    for i, (out, ref) in enumerate(zip(outs, expected)):
        where = f"{case} prompt {i}"
        completion = out.outputs[0]
        assert out.prompt_token_ids == ref["prompt_token_ids"], where
        assert out.prompt == ref.get("prompt"), where
        assert completion.token_ids == ref["token_ids"], where
        assert len(completion.token_ids) == MAX_TOKENS, where
        assert completion.text == ref["text"], where
        assert completion.finish_reason == ref["finish_reason"] == "length", where

        assert isinstance(completion.logprobs, list) and len(completion.logprobs) == MAX_TOKENS, where
        for step, (position, cli_entry) in enumerate(zip(completion.logprobs, ref["logprobs"])):
            assert cli_entry["token"] == completion.token_ids[step], where
            check_position(position, cli_entry, LOGPROBS, tokenizer, f"{where} step {step}")
        chosen = sum(position[t].logprob for position, t in zip(completion.logprobs, completion.token_ids))
        assert completion.cumulative_logprob == pytest.approx(chosen, abs=1e-4), where

        # Prompt logprobs: None for the first position (nothing predicts it), then one dict each.
        plp = out.prompt_logprobs
        assert isinstance(plp, list) and len(plp) == len(out.prompt_token_ids) == len(ref["prompt_logprobs"]), where
        assert plp[0] is None and ref["prompt_logprobs"][0] is None, where
        for pos in range(1, len(plp)):
            assert ref["prompt_logprobs"][pos]["token"] == out.prompt_token_ids[pos], where
            check_position(plp[pos], ref["prompt_logprobs"][pos], PROMPT_LOGPROBS, tokenizer, f"{where} prompt pos {pos}")


def test_seeded_sampling_really_samples(tiny_phi, prompts):
    # The sampled cases above are not greedy in disguise: their tokens differ from greedy's.
    texts, _ = prompts
    greedy = run_cli(tiny_phi, texts[:4], [], CASES["greedy"][1])
    sampled = run_cli(tiny_phi, texts[:4], [], CASES["seeded_hot_top_k"][1])
    assert [g["token_ids"] for g in greedy] != [s["token_ids"] for s in sampled]
