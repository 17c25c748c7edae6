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

    body = {k: v for k, v in kwargs.items()}
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
