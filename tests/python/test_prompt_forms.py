"""LLM.generate's prompt forms beyond test_llm.py's tour: each accepted form gives the outputs of
the plain text (or token-id) prompt, each rejected one raises a clear error before or while it
is queued, and no rejected batch leaves a request behind in the engine."""

import pytest

from vllm import LLM, SamplingParams, TextPrompt, TokensPrompt

GREEDY = SamplingParams(temperature=0.0, max_tokens=3, ignore_eos=True)
A, B = "Hello, my name is", "The capital of France is"


def generated(outputs):
    return [o.outputs[0].token_ids for o in outputs]


@pytest.fixture(scope="module")
def reference(llm32: LLM):
    """The greedy tokens of A and B as plain strings, and their prompt ids."""
    tok = llm32.get_tokenizer()
    outs = llm32.generate([A, B], GREEDY, use_tqdm=False)
    return {"ids": [tok.encode(A), tok.encode(B)], "out": generated(outs)}


def test_single_prompts_of_every_form(llm32: LLM, reference):
    ia, _ = reference["ids"]
    first = reference["out"][:1]
    for form in (A, {"prompt": A}, TextPrompt(prompt=A), {"prompt_token_ids": ia}, TokensPrompt(prompt_token_ids=ia), ia):
        outs = llm32.generate(form, GREEDY, use_tqdm=False)
        assert len(outs) == 1 and generated(outs) == first, form
        assert outs[0].prompt_token_ids == ia
    # The text comes back for text forms, None for token ids without text (as in vLLM).
    assert llm32.generate(TextPrompt(prompt=A), GREEDY, use_tqdm=False)[0].prompt == A
    assert llm32.generate(TokensPrompt(prompt_token_ids=ia), GREEDY, use_tqdm=False)[0].prompt is None


def test_lists_of_every_form_and_per_prompt_params(llm32: LLM, reference):
    ia, ib = reference["ids"]
    expected = reference["out"]
    for form in (
        [A, B],
        (A, B),
        [TextPrompt(prompt=A), TextPrompt(prompt=B)],
        [TokensPrompt(prompt_token_ids=ia), TokensPrompt(prompt_token_ids=ib)],
        [{"prompt": A}, TokensPrompt(prompt_token_ids=ib)],
        [ia, {"prompt": B}],
    ):
        assert generated(llm32.generate(form, GREEDY, use_tqdm=False)) == expected, form
    # A single SamplingParams applies to every prompt; a list (or tuple) gives one per prompt.
    short = SamplingParams(temperature=0.0, max_tokens=1, ignore_eos=True)
    assert generated(llm32.generate([A, B], [short, GREEDY], use_tqdm=False)) == [expected[0][:1], expected[1]]
    assert generated(llm32.generate([A, B], (GREEDY, short), use_tqdm=False)) == [expected[0], expected[1][:1]]
    assert generated(llm32.generate(A, [short], use_tqdm=False)) == [expected[0][:1]]
    # The same SamplingParams object twice in the list is fine and is not changed by the run.
    before = repr(GREEDY)
    assert generated(llm32.generate([A, B], [GREEDY, GREEDY], use_tqdm=False)) == expected
    assert repr(GREEDY) == before


@pytest.mark.parametrize(
    "prompts,params,error,message",
    [
        ([A, B], [GREEDY], ValueError, "The lengths of prompts and params must be the same."),
        ([A, B], [GREEDY, GREEDY, GREEDY], ValueError, "The lengths of prompts and params must be the same."),
        (A, [GREEDY, GREEDY], ValueError, "The lengths of prompts and params must be the same."),
        ([A], [], ValueError, "The lengths of prompts and params must be the same."),
        (A, {"temperature": 0}, TypeError, "sampling_params must be SamplingParams or a list of them, got dict"),
        ([A, B], [GREEDY, {"temperature": 0}], TypeError, "sampling_params must be SamplingParams, got dict"),
        (None, GREEDY, ValueError, "Either prompts or prompt_token_ids must be provided."),
        (5, GREEDY, TypeError, "Invalid prompt type int: expected a string, a dict, a list of token ids or a list of prompts"),
        (b"Hello", GREEDY, TypeError, "Invalid prompt type bytes: expected a string, a dict, a list of token ids or a list of prompts"),
        ([A, 5.0], GREEDY, TypeError, "Invalid prompt type float: expected a string, a dict or a list of token ids"),
        ([A, None], GREEDY, TypeError, "Invalid prompt type NoneType: expected a string, a dict or a list of token ids"),
        ({"text": A}, GREEDY, ValueError, "a prompt dict needs 'prompt' or 'prompt_token_ids'"),
        ({"prompt": 5}, GREEDY, TypeError, "prompt must be a string, got int"),
        ({"prompt": None}, GREEDY, TypeError, "prompt must be a string, got NoneType"),
        ({"prompt_token_ids": 5}, GREEDY, TypeError, "prompt_token_ids must be a list of integers, got int"),
        ({"prompt_token_ids": "15496"}, GREEDY, TypeError, "prompt_token_ids must be a list of integers, got str"),
        ({"prompt_token_ids": [15496, "11"]}, GREEDY, TypeError, "prompt_token_ids must be a list of integers"),
        ({"prompt_token_ids": [15496, 1.0]}, GREEDY, TypeError, "prompt_token_ids must be a list of integers"),
        ({"prompt_token_ids": [True]}, GREEDY, TypeError, "prompt_token_ids must be a list of integers"),
        ([[15496, [11]]], GREEDY, TypeError, "prompt_token_ids must be a list of integers"),
        ({"prompt_embeds": [[0.0]]}, GREEDY, ValueError, "prompt_embeds are not supported by vllm-cpp"),
        ({"prompt": A, "multi_modal_data": {"image": None}}, GREEDY, ValueError, "multi-modal inputs are not supported by vllm-cpp"),
    ],
)
def test_rejected_prompt_forms(llm32: LLM, prompts, params, error, message):
    with pytest.raises(error) as e:
        llm32.generate(prompts, params, use_tqdm=False)
    assert str(e.value) == message
    assert not llm32.llm_engine.has_unfinished()


@pytest.mark.parametrize(
    "bad,message",
    [
        ("", "The decoder prompt cannot be empty"),
        ({"prompt_token_ids": []}, "The decoder prompt cannot be empty"),
        ([[]], "The decoder prompt cannot be empty"),
        ({"prompt_token_ids": [15496, -1]}, "Token id -1 is out of vocabulary"),
        ({"prompt_token_ids": [51200]}, "Token id 51200 is out of vocabulary"),
        ({"prompt_token_ids": [2**40]}, "Token id 1099511627776 is out of vocabulary"),
    ],
)
def test_rejected_prompt_contents(llm32: LLM, bad, message):
    # The bad prompt comes second: the good one queued before it is withdrawn as well.
    with pytest.raises(ValueError) as e:
        llm32.generate([A, bad] if not isinstance(bad, list) else [A] + bad, GREEDY, use_tqdm=False)
    assert str(e.value) == message
    assert not llm32.llm_engine.has_unfinished()
    # ... and the engine still serves the next batch.
    assert len(llm32.generate(A, GREEDY, use_tqdm=False)[0].outputs[0].token_ids) == 3


def test_prompt_length_against_max_model_len(tiny_phi):
    llm = LLM(model=tiny_phi, dtype="float32", kv_cache_space=0.05, max_model_len=32)
    try:
        with pytest.raises(ValueError) as e:
            llm.generate({"prompt_token_ids": [15496] * 33}, GREEDY, use_tqdm=False)
        assert str(e.value) == (
            "The decoder prompt (length 33) is longer than the maximum model length of 32. Make sure that "
            "`max_model_len` is no smaller than the number of text tokens."
        )
        long_text = " ".join(["word"] * 40)
        assert len(llm.get_tokenizer().encode(long_text)) > 32
        with pytest.raises(ValueError, match=r"The decoder prompt \(length \d+\) is longer than the maximum model length of 32"):
            llm.generate(["Hi", long_text], GREEDY, use_tqdm=False)
        assert not llm.llm_engine.has_unfinished()
        # A prompt that fits but leaves less room than max_tokens stops at the model length.
        (out,) = llm.generate({"prompt_token_ids": [15496] * 30}, SamplingParams(temperature=0, max_tokens=10, ignore_eos=True), use_tqdm=False)
        assert len(out.outputs[0].token_ids) == 2 and out.outputs[0].finish_reason == "length"
        # truncate_prompt_tokens=-1 keeps the last max_model_len tokens of a longer prompt.
        sp = SamplingParams(temperature=0.0, max_tokens=1, ignore_eos=True, truncate_prompt_tokens=-1)
        (out,) = llm.generate({"prompt_token_ids": list(range(100, 140))}, sp, use_tqdm=False)
        assert out.prompt_token_ids == list(range(108, 140))
    finally:
        llm.shutdown()


def test_truncate_prompt_tokens(llm32: LLM, reference):
    # vLLM's truncate_prompt_tokens keeps the last k prompt tokens, for text and token prompts;
    # the output reports the caller's text and the ids the engine saw.
    ia, _ = reference["ids"]
    params = SamplingParams(temperature=0.0, max_tokens=3, ignore_eos=True, truncate_prompt_tokens=2)
    tail = llm32.generate({"prompt_token_ids": ia[-2:]}, GREEDY, use_tqdm=False)[0]
    for form in (A, {"prompt_token_ids": ia}):
        (out,) = llm32.generate(form, params, use_tqdm=False)
        assert out.prompt_token_ids == ia[-2:], form
        assert out.outputs[0].token_ids == tail.outputs[0].token_ids, form
    assert llm32.generate(A, params, use_tqdm=False)[0].prompt == A
    # Longer than the prompt, or -1 (the model length): nothing is cut.
    for keep in (50, -1):
        sp = SamplingParams(temperature=0.0, max_tokens=3, ignore_eos=True, truncate_prompt_tokens=keep)
        assert llm32.generate(A, sp, use_tqdm=False)[0].prompt_token_ids == ia
