"""SamplingParams: vLLM's fields, defaults and validation messages, without an engine, and the
same verdicts from the C++ engine's own validation."""

import re
import subprocess
import sys

import pytest

from conftest import ROOT, subprocess_env
from vllm import BeamSearchParams, SamplingParams
from vllm.sampling_params import RequestOutputKind

# (keyword arguments, vLLM's message)
INVALID = [
    (dict(n=0), "n must be at least 1, got 0."),
    (dict(n=2, best_of=1), "best_of must be greater than or equal to n, got n=2 and best_of=1."),
    (dict(best_of=0), "best_of must be at least 1, got 0"),
    (dict(presence_penalty=2.5), "presence_penalty must be in [-2, 2], got 2.5."),
    (dict(frequency_penalty=-3.0), "frequency_penalty must be in [-2, 2], got -3.0."),
    (dict(repetition_penalty=0.0), "repetition_penalty must be greater than zero, got 0.0."),
    (dict(repetition_penalty=float("inf")), "repetition_penalty must be a finite number, got inf."),
    (dict(temperature=-0.5), "temperature must be non-negative, got -0.5."),
    (dict(temperature=float("nan")), "temperature must be a finite number, got nan."),
    (dict(top_p=0.0), "top_p must be in (0, 1], got 0.0."),
    (dict(top_p=1.5), "top_p must be in (0, 1], got 1.5."),
    (dict(top_k=-2), "top_k must be 0 (disable), or at least 1, got -2."),
    (dict(min_p=1.5), "min_p must be in [0, 1], got 1.5."),
    (dict(max_tokens=0), "max_tokens must be at least 1, got 0."),
    (dict(min_tokens=-1), "min_tokens must be greater than or equal to 0, got -1."),
    (dict(min_tokens=10, max_tokens=5), "min_tokens must be less than or equal to max_tokens=5, got 10."),
    (dict(logprobs=-2), "logprobs must be non-negative or -1, got -2."),
    (dict(prompt_logprobs=-5), "prompt_logprobs must be non-negative or -1, got -5."),
    (dict(stop=["ok", ""]), "stop cannot contain an empty string."),
    (dict(stop="x", detokenize=False), "stop strings are only supported when detokenize is True. Set detokenize=True to use stop."),
    (dict(bad_words=[""]), "bad_words cannot contain an empty string. Got bad_words=['']"),
    (dict(stop_token_ids=[1, -3]), "token_id(s) [-3] in stop_token_ids contain out-of-vocab token ids."),
    (dict(temperature=0.0, n=3), "n must be 1 when using greedy sampling, got 3."),
    (dict(truncate_prompt_tokens=0), "truncate_prompt_tokens must be an integer >= 1 or -1, got 0"),
    (dict(stream_interval=0), "stream_interval must be at least 1, got 0."),
    (dict(n=1, best_of=2, output_kind=RequestOutputKind.DELTA), "best_of must equal n to use output_kind=DELTA"),
    (dict(temperature=0.0, n=1, best_of=2), "n must be 1 when using greedy sampling, got 2."),
]


@pytest.mark.parametrize("kwargs,message", INVALID, ids=[m[:40] for _, m in INVALID])
def test_invalid_raises_vllm_message(kwargs, message):
    with pytest.raises(ValueError) as e:
        SamplingParams(**kwargs)
    assert str(e.value) == message


@pytest.mark.parametrize("kwargs,message", INVALID, ids=[m[:40] for _, m in INVALID])
def test_engine_validation_agrees(kwargs, message):
    # The C++ engine's SamplingParams::from_json (what add_request runs) gives the same verdict.
    from vllm._ext import ext

    body = {k: (v.name if isinstance(v, RequestOutputKind) else v) for k, v in kwargs.items()}
    if body.get("repetition_penalty") == float("inf") or body.get("temperature") != body.get("temperature"):
        pytest.skip("JSON has no inf/nan")
    with pytest.raises(ValueError) as e:
        ext().sampling_params_from_json(body)
    assert str(e.value) == message


def test_defaults_are_vllms():
    sp = SamplingParams()
    assert (sp.n, sp.best_of, sp.temperature, sp.top_p, sp.top_k, sp.min_p) == (1, None, 1.0, 1.0, 0, 0.0)
    assert (sp.presence_penalty, sp.frequency_penalty, sp.repetition_penalty) == (0.0, 0.0, 1.0)
    assert sp.max_tokens == 16 and sp.min_tokens == 0 and sp.seed is None
    assert sp.stop == [] and sp.stop_token_ids == [] and sp.bad_words == []
    assert sp.logprobs is None and sp.prompt_logprobs is None
    assert sp.detokenize and sp.skip_special_tokens and sp.spaces_between_special_tokens
    assert not sp.ignore_eos and not sp.include_stop_str_in_output and not sp.use_beam_search
    assert sp.output_kind == RequestOutputKind.CUMULATIVE
    # The C++ engine's defaults are the same.
    from vllm._ext import ext

    engine = ext().sampling_params_from_json({})
    for key, value in sp.to_engine_dict().items():
        if key == "output_kind":
            assert engine[key] == "CUMULATIVE"
        elif key == "logit_bias":
            assert engine[key] == {} and value is None
        else:
            assert engine[key] == value, key


def test_annotations_list_every_field():
    fields = set(SamplingParams.__annotations__)
    for name in (
        "n best_of presence_penalty frequency_penalty repetition_penalty temperature top_p top_k min_p "
        "seed use_beam_search length_penalty early_stopping stop stop_token_ids bad_words "
        "include_stop_str_in_output ignore_eos max_tokens min_tokens logprobs prompt_logprobs detokenize "
        "skip_special_tokens spaces_between_special_tokens logits_processors truncate_prompt_tokens "
        "output_kind structured_outputs guided_decoding logit_bias allowed_token_ids extra_args"
    ).split():
        assert name in fields, name


def test_normalisation():
    sp = SamplingParams(stop="###", stop_token_ids=[5, 5, 7], seed=-1, logprobs=True, temperature=0.001)
    assert sp.stop == ["###"] and sp.stop_token_ids == [5, 7] and sp.seed is None and sp.logprobs == 1
    assert sp.temperature == 0.01
    assert sp.output_text_buffer_length == 2
    greedy = SamplingParams(temperature=0, top_p=0.5, top_k=40, min_p=0.2)
    assert (greedy.top_p, greedy.top_k, greedy.min_p) == (1.0, 0, 0.0)
    assert SamplingParams(top_k=-1).top_k == -1  # accepted quietly, as in vLLM
    assert SamplingParams.from_optional(temperature=None, top_p=None, logit_bias={"5": 200}).logit_bias == {5: 100.0}
    with pytest.raises(ValueError, match=re.escape("logit_bias contains key(s) that cannot be converted to integer token IDs: ['x']")):
        SamplingParams.from_optional(logit_bias={"x": 1.0})


def test_repr_and_clone():
    sp = SamplingParams(temperature=0.8, top_p=0.95)
    assert repr(sp).startswith("SamplingParams(n=1, presence_penalty=0.0, frequency_penalty=0.0, repetition_penalty=1.0, temperature=0.8, top_p=0.95, top_k=0,")
    clone = sp.clone()
    assert clone == sp and clone is not sp


def test_beam_search_params():
    p = BeamSearchParams(beam_width=3, max_tokens=8)
    assert (p.ignore_eos, p.temperature, p.length_penalty) == (False, 0.0, 1.0)
    with pytest.raises(ValueError, match="beam_width must be at least 1, got 0."):
        BeamSearchParams(beam_width=0, max_tokens=8)
    # vLLM's older use_beam_search interface.
    with pytest.raises(ValueError, match="temperature must be 0 when using beam search."):
        SamplingParams(use_beam_search=True, best_of=2, temperature=0.5)
    with pytest.raises(ValueError, match="length_penalty is not effective"):
        SamplingParams(length_penalty=2.0)


def test_import_is_light():
    code = (
        "import sys, time; t = time.perf_counter(); import vllm; "
        "from vllm import SamplingParams, RequestOutput, CompletionOutput, BeamSearchParams, LLM; "
        "SamplingParams(temperature=0.5); dt = time.perf_counter() - t; "
        "heavy = [m for m in ('vllm._vllm_cpp', 'numpy', 'torch', 'transformers') if m in sys.modules]; "
        "print(dt, heavy)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    seconds, heavy = proc.stdout.split(" ", 1)
    assert float(seconds) < 1.0
    assert heavy.strip() == "[]"


# Checks the Python class makes before anything reaches the engine (which reads JSON types and
# words its type errors its own way): wrong types, vLLM's sequence cap, and the beam-search
# rules of vLLM's older use_beam_search interface. Every one is a ValueError, as in vLLM.
PY_INVALID = [
    # n and best_of: ints only (a bool is not a count), vLLM's words.
    (dict(n="2"), "n must be an int, but is of type <class 'str'>"),
    (dict(n=1.5), "n must be an int, but is of type <class 'float'>"),
    (dict(n=2.0), "n must be an int, but is of type <class 'float'>"),
    (dict(n=True), "n must be an int, but is of type <class 'bool'>"),
    (dict(n=None), "n must be an int, but is of type <class 'NoneType'>"),
    (dict(best_of="3"), "best_of must be an int, but is of type <class 'str'>"),
    (dict(best_of=2.0), "best_of must be an int, but is of type <class 'float'>"),
    (dict(n=16385), "n must be at most 16384, got 16385. To increase this limit, set the VLLM_MAX_N_SEQUENCES environment variable."),
    (dict(best_of=20000), "best_of must be at most 16384, got 20000. To increase this limit, set the VLLM_MAX_N_SEQUENCES environment variable."),
    # top_k: an integer (vLLM's words), whatever the value.
    (dict(top_k=2.5), "top_k must be an integer, got float"),
    (dict(top_k="5"), "top_k must be an integer, got str"),
    (dict(top_k=None), "top_k must be an integer, got NoneType"),
    # Other numbers.
    (dict(temperature="0.5"), "temperature must be a float, got str"),
    (dict(top_p=None), "top_p must be a float, got NoneType"),
    (dict(presence_penalty=[1]), "presence_penalty must be a float, got list"),
    (dict(max_tokens=16.0), "max_tokens must be an integer, got float"),
    (dict(min_tokens=None), "min_tokens must be an integer, got NoneType"),
    (dict(logprobs="5"), "logprobs must be an integer, got str"),
    (dict(seed=1.5), "seed must be an integer, got float"),
    (dict(top_p=float("nan")), "top_p must be in (0, 1], got nan."),
    (dict(presence_penalty=float("nan")), "presence_penalty must be in [-2, 2], got nan."),
    # stop, stop_token_ids, bad_words, allowed_token_ids, logit_bias: the right containers.
    (dict(stop=5), "stop must be a string or a list of strings, got 5."),
    (dict(stop=["a", 1]), "stop must be a string or a list of strings, got ['a', 1]."),
    (dict(stop={"a": 1}), "stop must be a string or a list of strings, got {'a': 1}."),
    (dict(stop_token_ids=5), "stop_token_ids must be a list of integers, got 5."),
    (dict(stop_token_ids="12"), "stop_token_ids must be a list of integers, got '12'."),
    (dict(stop_token_ids=[1, "x"]), "stop_token_ids must contain only integers, got [1, 'x']."),
    (dict(stop_token_ids=[1.0]), "stop_token_ids must contain only integers, got [1.0]."),
    (dict(stop_token_ids=[[1]]), "stop_token_ids must contain only integers, got [[1]]."),
    (dict(stop_token_ids=[True]), "stop_token_ids must contain only integers, got [True]."),
    (dict(bad_words="abc"), "bad_words must be a list of strings, got 'abc'."),
    (dict(bad_words=[None]), "bad_words must be a list of strings, got [None]."),
    (dict(allowed_token_ids=5), "allowed_token_ids must be a list of integers, got 5."),
    (dict(logit_bias=[1, 2]), "logit_bias must be a dict mapping token ids to biases, got [1, 2]."),
    # use_beam_search=True (vLLM's older interface): its rules.
    (dict(use_beam_search=True), "best_of must be greater than 1 when using beam search. Got 1."),
    (dict(use_beam_search=True, n=1, best_of=1), "best_of must be greater than 1 when using beam search. Got 1."),
    (dict(use_beam_search=True, best_of=2, temperature=0.5), "temperature must be 0 when using beam search."),
    (dict(use_beam_search=True, best_of=2, temperature=0, top_p=0.5), "top_p must be 1 when using beam search."),
    (dict(use_beam_search=True, best_of=2, temperature=0, top_k=5), "top_k must be -1 when using beam search."),
    (dict(use_beam_search=True, n=2, temperature=0, early_stopping="sometimes"), "early_stopping must be True, False, or 'never', got sometimes."),
    (dict(use_beam_search=True, n=2, temperature=0, length_penalty=float("inf")), "length_penalty must be a finite number, got inf."),
    # ... and without beam search, its parameters must keep their defaults.
    (dict(early_stopping=True), "early_stopping is not effective and must be False when not using beam search."),
    (dict(early_stopping="never"), "early_stopping is not effective and must be False when not using beam search."),
    (dict(length_penalty=2.0), "length_penalty is not effective and must be the default value of 1.0 when not using beam search."),
    (dict(length_penalty=float("nan")), "length_penalty is not effective and must be the default value of 1.0 when not using beam search."),
    (dict(length_penalty="1"), "length_penalty must be a float, got str"),
    # output_kind: vLLM's enum (or its value).
    (dict(output_kind=7), "7 is not a valid RequestOutputKind"),
]


@pytest.mark.parametrize("kwargs,message", PY_INVALID, ids=[f"{i}-{m[:40]}" for i, (_, m) in enumerate(PY_INVALID)])
def test_invalid_types_and_beam_search_rules(kwargs, message):
    with pytest.raises(ValueError) as e:
        SamplingParams(**kwargs)
    assert str(e.value) == message


def test_sequence_cap_follows_the_environment(monkeypatch):
    monkeypatch.setenv("VLLM_MAX_N_SEQUENCES", "4")
    assert SamplingParams(n=4, temperature=1.0).n == 4
    with pytest.raises(ValueError, match=re.escape("n must be at most 4, got 5. To increase this limit")):
        SamplingParams(n=5)
    with pytest.raises(ValueError, match=re.escape("beam_width must be at most 4, got 8.")):
        BeamSearchParams(beam_width=8, max_tokens=4)
    monkeypatch.setenv("VLLM_MAX_N_SEQUENCES", "lots")
    with pytest.raises(ValueError, match=re.escape("VLLM_MAX_N_SEQUENCES must be an integer, got 'lots'")):
        SamplingParams(n=2)


def test_valid_edges_are_accepted():
    # Values vLLM accepts must not trip the checks above.
    assert SamplingParams(n=2, best_of=2, output_kind=RequestOutputKind.DELTA).output_kind == RequestOutputKind.DELTA
    assert SamplingParams(output_kind=1).output_kind == RequestOutputKind.DELTA
    assert SamplingParams(logprobs=-1, prompt_logprobs=0).logprobs == -1
    assert SamplingParams(logprobs=False).logprobs == 0 and SamplingParams(logprobs=True).logprobs == 1
    assert SamplingParams(stop=("a", "b"), stop_token_ids=(3, 3, 4)).stop_token_ids == [3, 4]
    assert type(SamplingParams(top_k=True).top_k) is int  # a bool is an int of 1, as in vLLM
    assert SamplingParams(temperature=1, top_p=1, presence_penalty=0).temperature == 1
    beam = SamplingParams(use_beam_search=True, best_of=3, n=2, temperature=0, early_stopping="never", length_penalty=0.5)
    assert beam.use_beam_search and beam.best_of == 3
    assert SamplingParams(use_beam_search=True, n=2, temperature=0, top_k=-1).top_k == -1
    # An accepted SamplingParams is accepted by the engine too.
    from vllm._ext import ext

    for sp in (SamplingParams(top_k=True, stop=("a",)), SamplingParams(n=2, best_of=2, output_kind=1)):
        ext().sampling_params_from_json(sp.to_engine_dict())


BEAM_INVALID = [
    (dict(beam_width=0, max_tokens=8), "beam_width must be at least 1, got 0."),
    (dict(beam_width=-3, max_tokens=8), "beam_width must be at least 1, got -3."),
    (dict(beam_width=2.0, max_tokens=8), "beam_width must be an int, but is of type <class 'float'>"),
    (dict(beam_width="2", max_tokens=8), "beam_width must be an int, but is of type <class 'str'>"),
    (dict(beam_width=True, max_tokens=8), "beam_width must be an int, but is of type <class 'bool'>"),
    (dict(beam_width=16385, max_tokens=8), "beam_width must be at most 16384, got 16385. To increase this limit, set the VLLM_MAX_N_SEQUENCES environment variable."),
    (dict(beam_width=2, max_tokens=0), "max_tokens must be at least 1, got 0."),
    (dict(beam_width=2, max_tokens=2.5), "max_tokens must be an integer, got float"),
    (dict(beam_width=2, max_tokens=None), "max_tokens must be an integer, got NoneType"),
    (dict(beam_width=2, max_tokens=4, temperature=-1.0), "temperature must be non-negative, got -1.0."),
    (dict(beam_width=2, max_tokens=4, temperature=float("inf")), "temperature must be a finite number, got inf."),
    (dict(beam_width=2, max_tokens=4, temperature="hot"), "temperature must be a float, got str"),
    (dict(beam_width=2, max_tokens=4, length_penalty=float("nan")), "length_penalty must be a finite number, got nan."),
    (dict(beam_width=2, max_tokens=4, length_penalty=None), "length_penalty must be a float, got NoneType"),
]


@pytest.mark.parametrize("kwargs,message", BEAM_INVALID, ids=[f"{i}-{m[:40]}" for i, (_, m) in enumerate(BEAM_INVALID)])
def test_beam_search_params_errors(kwargs, message):
    with pytest.raises(ValueError) as e:
        BeamSearchParams(**kwargs)
    assert str(e.value) == message


# vLLM's SamplingParams.verify() checks, which need the model (vocabulary, max_logprobs): the
# engine makes them when the request is added (test_llm.py covers logprobs above the maximum and
# out-of-vocabulary stop_token_ids).
MODEL_INVALID = [
    (dict(logprobs=-1), "Requested sample logprobs of 51200, which is greater than max allowed: 20"),
    (dict(prompt_logprobs=-1), "Requested prompt logprobs of 51200, which is greater than max allowed: 20"),
    (dict(stop_token_ids=[51200]), "token_id(s) [51200] in stop_token_ids contain out-of-vocab token ids. Vocabulary size: 51200"),
    (dict(logit_bias={60000: 1.0}), "token_id(s) [60000] in logit_bias contain out-of-vocab token ids. Vocabulary size: 51200"),
    (dict(logit_bias={-1: 1.0}), "token_id(s) [-1] in logit_bias contain out-of-vocab token ids. Vocabulary size: 51200"),
    (dict(allowed_token_ids=[]), "allowed_token_ids is not None and empty!"),
    (dict(allowed_token_ids=[1, 60000]), "allowed_token_ids contains out-of-vocab token id!"),
    (dict(prompt_logprob_token_ids=[1]), "sampling parameter 'prompt_logprob_token_ids' is not supported by vllm-cpp"),
]


@pytest.mark.parametrize("kwargs,message", MODEL_INVALID, ids=[m[:40] for _, m in MODEL_INVALID])
def test_model_dependent_checks(llm32, kwargs, message):
    with pytest.raises(ValueError) as e:
        llm32.generate(["A fine prompt", "Another"], SamplingParams(max_tokens=2, **kwargs), use_tqdm=False)
    assert str(e.value) == message
    assert not llm32.llm_engine.has_unfinished()
    # The largest valid values pass.
    llm32.generate("Hi", SamplingParams(max_tokens=1, logprobs=20, stop_token_ids=[51199], allowed_token_ids=[51199]), use_tqdm=False)
