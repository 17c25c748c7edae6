"""Structured outputs through the Python API, as vLLM spells them: SamplingParams(structured_outputs=
StructuredOutputsParams(...)) and the older GuidedDecodingParams, with vLLM's validation messages;
the outputs follow the constraint, and bad constraints raise ValueError naming the problem."""

import json
import re

import pytest

from vllm import LLM, GuidedDecodingParams, SamplingParams, StructuredOutputsParams

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 12}, "population": {"type": "integer", "minimum": 0}},
    "required": ["city", "population"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def llm(tiny_phi):
    return LLM(model=tiny_phi, dtype="float32")


def test_exactly_one_constraint_kind():
    with pytest.raises(ValueError, match="You can only use one kind of structured outputs constraint but multiple"):
        StructuredOutputsParams(json=SCHEMA, regex="a+")
    with pytest.raises(ValueError, match="You must use one kind of structured outputs constraint but none"):
        StructuredOutputsParams()
    with pytest.raises(ValueError, match="You can only use one kind of guided decoding but multiple"):
        GuidedDecodingParams(choice=["a"], regex="a")
    with pytest.raises(ValueError, match="'choice' must be a list of strings"):
        StructuredOutputsParams(choice="abc")
    with pytest.raises(ValueError, match="not available in vllm-cpp"):
        GuidedDecodingParams(regex="a", backend="xgrammar")


def test_json_schema_outputs_parse_and_fit(llm):
    params = [
        SamplingParams(temperature=1.0, seed=s, max_tokens=80, structured_outputs=StructuredOutputsParams(json=SCHEMA))
        for s in range(6)
    ]
    outs = llm.generate(["City facts:"] * 6, params, use_tqdm=False)
    stopped = [o.outputs[0] for o in outs if o.outputs[0].finish_reason == "stop"]
    assert stopped, "no constrained output finished"
    for c in stopped:
        doc = json.loads(c.text)
        assert list(doc) == ["city", "population"]
        assert isinstance(doc["city"], str) and len(doc["city"]) <= 12
        assert isinstance(doc["population"], int) and doc["population"] >= 0


def test_choice_regex_grammar_and_the_older_guided_decoding(llm):
    choice = llm.generate(
        "Mood:", SamplingParams(temperature=1.0, seed=1, max_tokens=8, structured_outputs=StructuredOutputsParams(choice=["calm", "busy"])),
        use_tqdm=False,
    )[0].outputs[0]
    assert choice.text in ("calm", "busy") and choice.finish_reason == "stop"

    older = llm.generate(
        "Code:", SamplingParams(temperature=1.0, seed=2, max_tokens=12, guided_decoding=GuidedDecodingParams(regex="[A-Z]{3}-[0-9]{3}")),
        use_tqdm=False,
    )[0].outputs[0]
    assert re.fullmatch(r"[A-Z]{3}-[0-9]{3}", older.text), older.text

    grammar = 'root ::= "<" [a-z]+ ">"'
    g = llm.generate(
        "Tag:", SamplingParams(temperature=1.0, seed=3, max_tokens=12, structured_outputs=StructuredOutputsParams(grammar=grammar)),
        use_tqdm=False,
    )[0].outputs[0]
    if g.finish_reason == "stop":
        assert re.fullmatch(r"<[a-z]+>", g.text), g.text


def test_invalid_constraints_raise_value_error(llm):
    with pytest.raises(ValueError, match="minimum"):
        llm.generate("x", SamplingParams(structured_outputs=StructuredOutputsParams(json={"type": "number", "minimum": 0.5})), use_tqdm=False)
    with pytest.raises(ValueError, match="line 1, column"):
        llm.generate("x", SamplingParams(structured_outputs=StructuredOutputsParams(grammar="root ::= nothing-here")), use_tqdm=False)
    with pytest.raises(ValueError, match="position"):
        llm.generate("x", SamplingParams(structured_outputs=StructuredOutputsParams(regex="a(")), use_tqdm=False)
