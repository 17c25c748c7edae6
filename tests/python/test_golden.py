"""Greedy generation through the Python API against transformers' float64 references
(tests/data/models/tiny-phi/golden.json), with log-probabilities in vLLM's structures."""

from vllm import LLM, CompletionOutput, Logprob, RequestOutput, SamplingParams

TOL = 1e-3


def greedy_params() -> SamplingParams:
    return SamplingParams(temperature=0.0, max_tokens=32, ignore_eos=True, logprobs=20, prompt_logprobs=5)


def check_sample_logprobs(completion: CompletionOutput, gen: dict, where: str) -> None:
    assert completion.logprobs is not None and len(completion.logprobs) == 32, where
    cumulative = 0.0
    for step, (position, token, ref_top) in enumerate(zip(completion.logprobs, completion.token_ids, gen["greedy_top"])):
        at = f"{where} step {step}"
        assert isinstance(position, dict), at
        assert all(isinstance(k, int) and isinstance(v, Logprob) for k, v in position.items()), at
        # vLLM's layout: the chosen token first, then the 20 best (it is one of them here).
        assert next(iter(position)) == token, at
        assert len(position) == 20, at
        assert position[token].rank == 1, at
        ranks = sorted(v.rank for v in position.values())
        assert ranks == list(range(1, 21)), at
        by_rank = sorted(position.items(), key=lambda kv: kv[1].rank)
        values = [v.logprob for _, v in by_rank]
        assert values == sorted(values, reverse=True), at
        for ref_id, ref_lp in ref_top:
            if ref_id in position:
                assert abs(position[ref_id].logprob - ref_lp) < TOL, f"{at} token {ref_id}"
            else:
                # A swap at the cut-off: the reference value is then close to our 20th.
                assert abs(by_rank[-1][1].logprob - ref_lp) < TOL, f"{at} token {ref_id} missing"
        assert all(isinstance(v.decoded_token, str) for v in position.values()), at
        cumulative += position[token].logprob
    assert abs(completion.cumulative_logprob - cumulative) < 1e-3, where


def check_prompt_logprobs(out: RequestOutput, gen: dict, where: str) -> None:
    ref = gen["prompt_logprobs"]
    assert out.prompt_logprobs is not None and len(out.prompt_logprobs) == len(ref), where
    assert out.prompt_logprobs[0] is None
    for pos in range(1, len(ref)):
        at = f"{where} prompt position {pos}"
        position = out.prompt_logprobs[pos]
        token = ref[pos]["token"]
        assert next(iter(position)) == token, at
        assert abs(position[token].logprob - ref[pos]["logprob"]) < TOL, at
        assert position[token].rank >= 1, at
        top = sorted((v.rank, k, v.logprob) for k, v in position.items() if v.rank <= 5)
        assert len(top) == 5, at
        for (ref_id, ref_lp), (_, our_id, our_lp) in zip(ref[pos]["top"], top):
            assert abs(our_lp - ref_lp) < TOL, f"{at}: {ref_id} vs {our_id}"


def test_greedy_matches_golden_one_by_one(llm32: LLM, golden: dict):
    for i, gen in enumerate(golden["generation"]):
        (out,) = llm32.generate({"prompt_token_ids": gen["prompt_ids"]}, greedy_params(), use_tqdm=False)
        where = f"prompt {i}"
        assert out.prompt_token_ids == gen["prompt_ids"], where
        assert out.prompt is None, where
        completion = out.outputs[0]
        assert completion.token_ids == gen["greedy_ids"], where
        assert completion.finish_reason == "length", where
        check_sample_logprobs(completion, gen, where)
        check_prompt_logprobs(out, gen, where)


def test_greedy_matches_golden_batched_text_prompts(llm32: LLM, golden: dict):
    gens = golden["generation"]
    tokenizer = llm32.get_tokenizer()
    # The golden prompts' ids are their texts' encodings: text prompts give the same results.
    assert all(tokenizer.encode(g["prompt"]) == g["prompt_ids"] for g in gens)
    outs = llm32.generate([g["prompt"] for g in gens], SamplingParams(temperature=0, max_tokens=32, ignore_eos=True), use_tqdm=False)
    assert [o.prompt for o in outs] == [g["prompt"] for g in gens]
    for out, gen in zip(outs, gens):
        assert out.outputs[0].token_ids == gen["greedy_ids"]
        assert out.outputs[0].text == tokenizer.decode(gen["greedy_ids"], skip_special_tokens=True)
        assert out.outputs[0].logprobs is None and out.outputs[0].cumulative_logprob is None
        assert out.prompt_logprobs is None
        assert out.finished
