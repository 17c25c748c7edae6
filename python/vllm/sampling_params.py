"""Sampling parameters for text generation (``vllm.sampling_params``).

The fields, defaults, normalisation and error messages are vLLM's, and the same rules the C++
engine applies (src/vllm/sampling/sampling_params.cpp): a SamplingParams that constructs here is
accepted by the engine, and one that vLLM rejects raises ValueError here with vLLM's words.
No engine is needed to build or validate one.
"""

import copy
import json as _json
import logging
import math
import numbers
import os
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Any, Dict, List, Optional, Set, Union

logger = logging.getLogger(__name__)

_SAMPLING_EPS = 1e-5
_MAX_TEMP = 1e-2
# vLLM's default cap on n and beam_width (VLLM_MAX_N_SEQUENCES), against huge fan-outs.
_DEFAULT_MAX_N_SEQUENCES = 16384

# Numeric fields whose wrong type would otherwise surface as an obscure comparison TypeError.
_INT_FIELDS = ("top_k", "min_tokens")
_OPTIONAL_INT_FIELDS = ("max_tokens", "logprobs", "prompt_logprobs", "seed", "truncate_prompt_tokens", "stream_interval")
_FLOAT_FIELDS = ("presence_penalty", "frequency_penalty", "repetition_penalty", "temperature", "top_p", "min_p",
                 "length_penalty")


def _max_n_sequences() -> int:
    raw = os.environ.get("VLLM_MAX_N_SEQUENCES", "").strip()
    if not raw:
        return _DEFAULT_MAX_N_SEQUENCES
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"VLLM_MAX_N_SEQUENCES must be an integer, got {raw!r}") from None


def _is_int(value: Any) -> bool:
    # bool is an int in Python, and vLLM takes logprobs=True as 1; numpy integers count too.
    return isinstance(value, numbers.Integral)


def _verify_num_sequences(value: Any, name: str) -> None:
    """vLLM's check of n and beam_width: an int in [1, VLLM_MAX_N_SEQUENCES]."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int, but is of type {type(value)}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}.")
    limit = _max_n_sequences()
    if value > limit:
        raise ValueError(
            f"{name} must be at most {limit}, got {value}. "
            "To increase this limit, set the VLLM_MAX_N_SEQUENCES environment variable."
        )


def _token_id_list(value: Any, name: str) -> List[int]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list of integers, got {value!r}.")
    if not all(_is_int(t) and not isinstance(t, bool) for t in value):
        raise ValueError(f"{name} must contain only integers, got {list(value)}.")
    return [int(t) for t in value]


def _string_list(value: Any, name: str, allow_single: bool) -> List[str]:
    if allow_single and isinstance(value, str):
        return [value]
    what = "a string or a list of strings" if allow_single else "a list of strings"
    if not isinstance(value, (list, tuple)) or not all(isinstance(s, str) for s in value):
        raise ValueError(f"{name} must be {what}, got {value!r}.")
    return list(value)


_CONSTRAINT_FIELDS = ("json", "regex", "choice", "grammar", "json_object", "structural_tag")


@dataclass(kw_only=True)
class StructuredOutputsParams:
    """One output constraint (vLLM's ``StructuredOutputsParams``): a JSON schema (a dict or its
    JSON text), a regex the whole output must match, a choice of exact strings, a GBNF grammar,
    or any JSON object; plus the JSON options. Exactly one constraint kind, as vLLM checks.
    The C++ engine compiles it (src/vllm/structured/); an invalid schema, regex or grammar
    raises ValueError when the request is added."""

    json: Optional[Union[str, Dict[str, Any]]] = None
    regex: Optional[str] = None
    choice: Optional[List[str]] = None
    grammar: Optional[str] = None
    json_object: Optional[bool] = None
    disable_fallback: bool = False
    disable_any_whitespace: bool = False
    disable_additional_properties: bool = False
    whitespace_pattern: Optional[str] = None
    structural_tag: Optional[str] = None

    def __post_init__(self) -> None:
        count = sum(getattr(self, f) is not None for f in _CONSTRAINT_FIELDS)
        if count > 1:
            raise ValueError(
                "You can only use one kind of structured outputs constraint "
                f"but multiple are specified: {self.__dict__}"
            )
        if count < 1:
            raise ValueError(
                "You must use one kind of structured outputs constraint "
                f"but none are specified: {self.__dict__}"
            )
        _check_constraint_types(self)

    def all_constraints_none(self) -> bool:
        return all(getattr(self, f) is None for f in _CONSTRAINT_FIELDS)

    def to_engine_dict(self) -> Dict[str, Any]:
        """The fields as the engine reads them (the server's ``structured_outputs`` shape)."""
        d: Dict[str, Any] = {f: getattr(self, f) for f in _CONSTRAINT_FIELDS if getattr(self, f) is not None}
        if isinstance(self.json, dict):
            # As text: the engine's JSON objects sort their keys, and the schema's property order
            # is the order of the generated object's keys.
            d["json"] = _json.dumps(self.json)
        if self.choice is not None:
            d["choice"] = list(self.choice)
        for f in ("disable_any_whitespace", "disable_additional_properties"):
            if getattr(self, f):
                d[f] = True
        if self.whitespace_pattern is not None:
            d["whitespace_pattern"] = self.whitespace_pattern
        return d


@dataclass(kw_only=True)
class GuidedDecodingParams:
    """vLLM's older name for a structured-outputs constraint (``guided_decoding=``), kept for
    the code that still uses it; it becomes a StructuredOutputsParams. ``backend`` may name
    ``auto`` or this engine's own (see ``--structured-outputs-config``)."""

    json: Optional[Union[str, Dict[str, Any]]] = None
    regex: Optional[str] = None
    choice: Optional[List[str]] = None
    grammar: Optional[str] = None
    json_object: Optional[bool] = None
    backend: Optional[str] = None
    backend_was_auto: bool = False
    disable_fallback: bool = False
    disable_any_whitespace: bool = False
    disable_additional_properties: bool = False
    whitespace_pattern: Optional[str] = None
    structural_tag: Optional[str] = None

    @staticmethod
    def from_optional(
        json: Optional[Union[str, Dict[str, Any]]] = None,
        regex: Optional[str] = None,
        choice: Optional[List[str]] = None,
        grammar: Optional[str] = None,
        json_object: Optional[bool] = None,
        backend: Optional[str] = None,
        whitespace_pattern: Optional[str] = None,
        structural_tag: Optional[str] = None,
    ) -> Optional["GuidedDecodingParams"]:
        if all(arg is None for arg in (json, regex, choice, grammar, json_object, structural_tag)):
            return None
        # A pydantic model class or instance carries its schema.
        if json is not None and not isinstance(json, (str, dict)) and hasattr(json, "model_json_schema"):
            json = json.model_json_schema()
        return GuidedDecodingParams(
            json=json,
            regex=regex,
            choice=choice,
            grammar=grammar,
            json_object=json_object,
            backend=backend,
            whitespace_pattern=whitespace_pattern,
            structural_tag=structural_tag,
        )

    def __post_init__(self) -> None:
        guide_count = sum(getattr(self, f) is not None for f in ("json", "regex", "choice", "grammar", "json_object"))
        if guide_count > 1:
            raise ValueError(f"You can only use one kind of guided decoding but multiple are specified: {self.__dict__}")
        _check_backend(self.backend)
        _check_constraint_types(self)

    def to_structured_outputs(self) -> StructuredOutputsParams:
        return StructuredOutputsParams(
            json=self.json,
            regex=self.regex,
            choice=self.choice,
            grammar=self.grammar,
            json_object=self.json_object,
            disable_fallback=self.disable_fallback,
            disable_any_whitespace=self.disable_any_whitespace,
            disable_additional_properties=self.disable_additional_properties,
            whitespace_pattern=self.whitespace_pattern,
            structural_tag=self.structural_tag,
        )


# The structured-outputs backends a request may name: vLLM's "auto" and this engine's own.
STRUCTURED_OUTPUTS_BACKENDS = ("auto", "vllm-cpp")


def _check_backend(backend: Optional[str]) -> None:
    if backend is not None and backend not in STRUCTURED_OUTPUTS_BACKENDS:
        raise ValueError(
            f"structured outputs backend {backend!r} is not available in vllm-cpp; "
            f"choose one of {list(STRUCTURED_OUTPUTS_BACKENDS)} (xgrammar, guidance and outlines are "
            "served by vllm-cpp's own engine under 'auto')"
        )


def _check_constraint_types(p: Any) -> None:
    """Wrong types raise ValueError naming the field before anything reaches the engine."""
    if p.json is not None and not isinstance(p.json, (str, dict)):
        raise ValueError(f"structured outputs 'json' must be a JSON schema (a dict or a JSON string), got {type(p.json).__name__}")
    for name in ("regex", "grammar", "whitespace_pattern", "structural_tag"):
        value = getattr(p, name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"structured outputs '{name}' must be a string, got {type(value).__name__}")
    if p.choice is not None:
        if not isinstance(p.choice, (list, tuple)) or not all(isinstance(c, str) for c in p.choice):
            raise ValueError(f"structured outputs 'choice' must be a list of strings, got {p.choice!r}")
        if not p.choice:
            raise ValueError("structured outputs 'choice' must not be empty")
    if p.json_object is not None and not isinstance(p.json_object, bool):
        raise ValueError(f"structured outputs 'json_object' must be a boolean, got {type(p.json_object).__name__}")


class SamplingType(IntEnum):
    GREEDY = 0
    RANDOM = 1
    RANDOM_SEED = 2


class RequestOutputKind(Enum):
    # Every output holds everything generated so far.
    CUMULATIVE = 0
    # Every output holds only what is new.
    DELTA = 1
    # One output, when the request finishes.
    FINAL_ONLY = 2


# Fields vLLM has that the engine does not implement: None (or empty) is fine, anything else is
# refused when the request is submitted rather than silently ignored.
_UNSUPPORTED_FIELDS = (
    "logits_processors",
    "logprob_token_ids",
    "prompt_logprob_token_ids",
    "prompt_logprob_start",
    "thinking_token_budget",
    "repetition_detection",
    "trace_decode_token_ids",
)


@dataclass(repr=False, kw_only=True)
class SamplingParams:
    """Sampling parameters for text generation.

    Overall, the sampling parameters follow the OpenAI text completion API, with vLLM's
    additions (top_k, min_p, repetition_penalty, min_tokens, ...). ``best_of`` generates that
    many sequences and returns the ``n`` with the highest cumulative log-probability.
    ``use_beam_search`` (vLLM's older interface) runs beam search with ``best_of`` (or ``n``)
    beams; :meth:`vllm.LLM.beam_search` is the current interface.
    """

    n: int = 1
    best_of: Optional[int] = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: Optional[int] = None
    use_beam_search: bool = False
    length_penalty: float = 1.0
    early_stopping: Union[bool, str] = False
    stop: Optional[Union[str, List[str]]] = None
    stop_token_ids: Optional[List[int]] = None
    bad_words: Optional[List[str]] = None
    include_stop_str_in_output: bool = False
    ignore_eos: bool = False
    max_tokens: Optional[int] = 16
    min_tokens: int = 0
    logprobs: Optional[int] = None
    prompt_logprobs: Optional[int] = None
    prompt_logprob_token_ids: Optional[List[int]] = None
    prompt_logprob_start: Optional[int] = None
    logprob_token_ids: Optional[List[int]] = None
    flat_logprobs: bool = False
    detokenize: bool = True
    skip_special_tokens: bool = True
    spaces_between_special_tokens: bool = True
    logits_processors: Optional[Any] = None
    truncate_prompt_tokens: Optional[int] = None
    output_kind: RequestOutputKind = RequestOutputKind.CUMULATIVE
    stream_interval: Optional[int] = None
    skip_clone: bool = False
    # Set in __post_init__ and by the engine, not meant as inputs.
    output_text_buffer_length: int = 0
    _eos_token_id: Optional[int] = None
    _all_stop_token_ids: Set[int] = field(default_factory=set)
    structured_outputs: Optional[StructuredOutputsParams] = None
    # vLLM's older field: a GuidedDecodingParams becomes structured_outputs.
    guided_decoding: Optional[GuidedDecodingParams] = None
    logit_bias: Optional[Dict[int, float]] = None
    allowed_token_ids: Optional[List[int]] = None
    extra_args: Optional[Dict[str, Any]] = None
    _bad_words_token_ids: Optional[List[List[int]]] = None
    skip_reading_prefix_cache: Optional[bool] = None
    thinking_token_budget: Optional[int] = None
    repetition_detection: Optional[Any] = None
    routed_experts_prompt_start: int = 0
    trace_decode_token_ids: Optional[List[int]] = None

    @staticmethod
    def from_optional(
        n: Optional[int] = 1,
        best_of: Optional[int] = None,
        presence_penalty: Optional[float] = 0.0,
        frequency_penalty: Optional[float] = 0.0,
        repetition_penalty: Optional[float] = 1.0,
        temperature: Optional[float] = 1.0,
        top_p: Optional[float] = 1.0,
        top_k: int = 0,
        min_p: float = 0.0,
        seed: Optional[int] = None,
        stop: Optional[Union[str, List[str]]] = None,
        stop_token_ids: Optional[List[int]] = None,
        bad_words: Optional[List[str]] = None,
        include_stop_str_in_output: bool = False,
        ignore_eos: bool = False,
        max_tokens: Optional[int] = 16,
        min_tokens: int = 0,
        logprobs: Optional[int] = None,
        prompt_logprobs: Optional[int] = None,
        detokenize: bool = True,
        skip_special_tokens: bool = True,
        spaces_between_special_tokens: bool = True,
        logits_processors: Optional[Any] = None,
        truncate_prompt_tokens: Optional[int] = None,
        output_kind: RequestOutputKind = RequestOutputKind.CUMULATIVE,
        stream_interval: Optional[int] = None,
        structured_outputs: Optional[Any] = None,
        logit_bias: Optional[Union[Dict[int, float], Dict[str, float]]] = None,
        allowed_token_ids: Optional[List[int]] = None,
        extra_args: Optional[Dict[str, Any]] = None,
        skip_clone: bool = False,
    ) -> "SamplingParams":
        """vLLM's constructor for values that may be None (None: the default)."""
        if logit_bias is not None:
            converted: Dict[int, float] = {}
            invalid_keys = []
            for token, bias in logit_bias.items():
                try:
                    token_id = int(token)
                except (ValueError, TypeError):
                    invalid_keys.append(token)
                    continue
                converted[token_id] = min(100.0, max(-100.0, bias))
            if invalid_keys:
                raise ValueError(
                    "logit_bias contains key(s) that cannot be converted to integer token IDs: "
                    f"{invalid_keys!r}"
                )
            logit_bias = converted
        return SamplingParams(
            n=1 if n is None else n,
            best_of=best_of,
            presence_penalty=0.0 if presence_penalty is None else presence_penalty,
            frequency_penalty=0.0 if frequency_penalty is None else frequency_penalty,
            repetition_penalty=1.0 if repetition_penalty is None else repetition_penalty,
            temperature=1.0 if temperature is None else temperature,
            top_p=1.0 if top_p is None else top_p,
            top_k=top_k,
            min_p=min_p,
            seed=seed,
            stop=stop,
            stop_token_ids=stop_token_ids,
            bad_words=bad_words,
            include_stop_str_in_output=include_stop_str_in_output,
            ignore_eos=ignore_eos,
            max_tokens=max_tokens,
            min_tokens=min_tokens,
            logprobs=logprobs,
            prompt_logprobs=prompt_logprobs,
            detokenize=detokenize,
            skip_special_tokens=skip_special_tokens,
            spaces_between_special_tokens=spaces_between_special_tokens,
            logits_processors=logits_processors,
            truncate_prompt_tokens=truncate_prompt_tokens,
            output_kind=output_kind,
            stream_interval=stream_interval,
            structured_outputs=structured_outputs,
            logit_bias=logit_bias,
            allowed_token_ids=allowed_token_ids,
            extra_args=extra_args,
            skip_clone=skip_clone,
        )

    def __post_init__(self) -> None:
        self._verify_types()
        self._normalise_structured_outputs()
        if 0 < self.temperature < _MAX_TEMP:
            logger.warning(
                "temperature %s is less than %s, which may cause numerical errors nan or inf in "
                "tensors. We have maxed it out to %s.",
                self.temperature,
                _MAX_TEMP,
                _MAX_TEMP,
            )
            self.temperature = max(self.temperature, _MAX_TEMP)

        if self.seed == -1:
            self.seed = None

        # Lists are checked before they are normalised: a wrong type gets a message naming the
        # field rather than whatever list() or dict.fromkeys() would raise.
        self.stop = [] if self.stop is None else _string_list(self.stop, "stop", allow_single=True)
        if self.stop_token_ids is None:
            self.stop_token_ids = []
        else:
            self.stop_token_ids = list(dict.fromkeys(_token_id_list(self.stop_token_ids, "stop_token_ids")))
        if self.bad_words is None:
            self.bad_words = []
        else:
            self.bad_words = list(dict.fromkeys(_string_list(self.bad_words, "bad_words", allow_single=False)))
        if self.allowed_token_ids is not None:
            self.allowed_token_ids = _token_id_list(self.allowed_token_ids, "allowed_token_ids")
        if self.logit_bias is not None and not isinstance(self.logit_bias, dict):
            raise ValueError(f"logit_bias must be a dict mapping token ids to biases, got {self.logit_bias!r}.")

        if self.logprobs is True:
            self.logprobs = 1
        if self.prompt_logprobs is True:
            self.prompt_logprobs = 1

        if isinstance(self.output_kind, int) and not isinstance(self.output_kind, RequestOutputKind):
            self.output_kind = RequestOutputKind(self.output_kind)

        # Characters held back while a stop string may still be forming.
        if self.stop and not self.include_stop_str_in_output:
            self.output_text_buffer_length = max(len(s) for s in self.stop) - 1

        self._verify_args()
        if self.use_beam_search:
            self._verify_beam_search()
        else:
            self._verify_non_beam_search()
            if self.temperature < _SAMPLING_EPS:
                # Zero temperature means greedy sampling.
                self.top_p = 1.0
                self.top_k = 0
                self.min_p = 0.0
                self._verify_greedy_sampling()

        # The engine adds the EOS token ids to this.
        self._all_stop_token_ids.update(self.stop_token_ids)

        if self.skip_reading_prefix_cache is None:
            self.skip_reading_prefix_cache = self.prompt_logprobs is not None

    def _normalise_structured_outputs(self) -> None:
        """guided_decoding (vLLM's older field) becomes structured_outputs; a dict is taken as
        StructuredOutputsParams' fields, so that its validation runs here."""
        if self.guided_decoding is not None:
            if isinstance(self.guided_decoding, dict):
                self.guided_decoding = GuidedDecodingParams(**self.guided_decoding)
            if not isinstance(self.guided_decoding, GuidedDecodingParams):
                raise ValueError(
                    f"guided_decoding must be a GuidedDecodingParams, got {type(self.guided_decoding).__name__}"
                )
            if self.structured_outputs is not None:
                raise ValueError("Cannot set both structured_outputs and guided_decoding; use structured_outputs.")
            self.structured_outputs = self.guided_decoding.to_structured_outputs()
            self.guided_decoding = None
        if isinstance(self.structured_outputs, dict):
            self.structured_outputs = StructuredOutputsParams(**self.structured_outputs)
        if self.structured_outputs is not None and not isinstance(self.structured_outputs, StructuredOutputsParams):
            raise ValueError(
                "structured_outputs must be a StructuredOutputsParams, got "
                f"{type(self.structured_outputs).__name__}"
            )

    def _verify_types(self) -> None:
        """Numbers must be numbers: a string or None where vLLM expects one raises ValueError
        naming the field (vLLM's own words where it has them), not a TypeError from a
        comparison deep inside the checks."""
        for name in _INT_FIELDS + _OPTIONAL_INT_FIELDS:
            value = getattr(self, name)
            if value is None and name in _OPTIONAL_INT_FIELDS:
                continue
            if not _is_int(value):
                raise ValueError(f"{name} must be an integer, got {type(value).__name__}")
            if type(value) is not int:
                # Plain ints for the engine, which takes neither numpy integers nor bools
                # (True is a count of 1 to Python, as in vLLM).
                setattr(self, name, int(value))
        for name in _FLOAT_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or isinstance(value, bool):
                raise ValueError(f"{name} must be a float, got {type(value).__name__}")

    def _verify_args(self) -> None:
        _verify_num_sequences(self.n, "n")
        if self.best_of is not None:
            if not isinstance(self.best_of, int) or isinstance(self.best_of, bool):
                raise ValueError(f"best_of must be an int, but is of type {type(self.best_of)}")
            if self.best_of < 1:
                raise ValueError(f"best_of must be at least 1, got {self.best_of}")
            limit = _max_n_sequences()
            if self.best_of > limit:
                raise ValueError(
                    f"best_of must be at most {limit}, got {self.best_of}. "
                    "To increase this limit, set the VLLM_MAX_N_SEQUENCES environment variable."
                )
            if self.best_of < self.n:
                raise ValueError(
                    "best_of must be greater than or equal to n, "
                    f"got n={self.n} and best_of={self.best_of}."
                )
        if not -2.0 <= self.presence_penalty <= 2.0:
            raise ValueError(f"presence_penalty must be in [-2, 2], got {self.presence_penalty}.")
        if not -2.0 <= self.frequency_penalty <= 2.0:
            raise ValueError(f"frequency_penalty must be in [-2, 2], got {self.frequency_penalty}.")
        if not math.isfinite(self.repetition_penalty):
            raise ValueError(f"repetition_penalty must be a finite number, got {self.repetition_penalty}.")
        if self.repetition_penalty <= 0.0:
            raise ValueError(f"repetition_penalty must be greater than zero, got {self.repetition_penalty}.")
        if not math.isfinite(self.temperature):
            raise ValueError(f"temperature must be a finite number, got {self.temperature}.")
        if self.temperature < 0.0:
            raise ValueError(f"temperature must be non-negative, got {self.temperature}.")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}.")
        # -1 is quietly accepted as "disabled", but 0 is preferred.
        if self.top_k < -1:
            raise ValueError(f"top_k must be 0 (disable), or at least 1, got {self.top_k}.")
        if not 0.0 <= self.min_p <= 1.0:
            raise ValueError(f"min_p must be in [0, 1], got {self.min_p}.")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}.")
        if self.min_tokens < 0:
            raise ValueError(f"min_tokens must be greater than or equal to 0, got {self.min_tokens}.")
        if self.max_tokens is not None and self.min_tokens > self.max_tokens:
            raise ValueError(
                f"min_tokens must be less than or equal to max_tokens={self.max_tokens}, got {self.min_tokens}."
            )
        if self.stream_interval is not None and self.stream_interval < 1:
            raise ValueError(f"stream_interval must be at least 1, got {self.stream_interval}.")
        if self.logprobs is not None and self.logprobs != -1 and self.logprobs < 0:
            raise ValueError(f"logprobs must be non-negative or -1, got {self.logprobs}.")
        if self.prompt_logprobs is not None and self.prompt_logprobs != -1 and self.prompt_logprobs < 0:
            raise ValueError(f"prompt_logprobs must be non-negative or -1, got {self.prompt_logprobs}.")
        if self.truncate_prompt_tokens is not None and (
            self.truncate_prompt_tokens == 0 or self.truncate_prompt_tokens < -1
        ):
            raise ValueError(
                f"truncate_prompt_tokens must be an integer >= 1 or -1, got {self.truncate_prompt_tokens}"
            )
        negative = [t for t in self.stop_token_ids if t < 0]
        if negative:
            raise ValueError(f"token_id(s) {negative} in stop_token_ids contain out-of-vocab token ids.")
        if any(not stop_str for stop_str in self.stop):
            raise ValueError("stop cannot contain an empty string.")
        if self.stop and not self.detokenize:
            raise ValueError(
                "stop strings are only supported when detokenize is True. Set detokenize=True to use stop."
            )
        if any(not bad_word for bad_word in self.bad_words):
            raise ValueError(f"bad_words cannot contain an empty string. Got bad_words={self.bad_words}")
        if (
            self.best_of is not None
            and self.best_of != self.n
            and self.output_kind == RequestOutputKind.DELTA
        ):
            raise ValueError("best_of must equal n to use output_kind=DELTA")

    def _verify_beam_search(self) -> None:
        # vLLM's checks from when SamplingParams carried beam search.
        width = self.best_of if self.best_of is not None else self.n
        if width == 1:
            raise ValueError(f"best_of must be greater than 1 when using beam search. Got {width}.")
        if self.temperature > _SAMPLING_EPS:
            raise ValueError("temperature must be 0 when using beam search.")
        if self.top_p < 1.0 - _SAMPLING_EPS:
            raise ValueError("top_p must be 1 when using beam search.")
        if self.top_k not in (-1, 0):
            raise ValueError("top_k must be -1 when using beam search.")
        if not math.isfinite(self.length_penalty):
            raise ValueError(f"length_penalty must be a finite number, got {self.length_penalty}.")
        if self.early_stopping not in [True, False, "never"]:
            raise ValueError(
                f"early_stopping must be True, False, or 'never', got {self.early_stopping}."
            )

    def _verify_non_beam_search(self) -> None:
        if self.early_stopping is not False:
            raise ValueError(
                "early_stopping is not effective and must be False when not using beam search."
            )
        # Written so that NaN fails too.
        if not abs(self.length_penalty - 1.0) <= _SAMPLING_EPS:
            raise ValueError(
                "length_penalty is not effective and must be the default value of 1.0 when not "
                "using beam search."
            )

    def _verify_greedy_sampling(self) -> None:
        sequences = max(self.n, self.best_of if self.best_of is not None else self.n)
        if sequences > 1:
            raise ValueError(f"n must be 1 when using greedy sampling, got {sequences}.")

    def update_from_generation_config(
        self, generation_config: Dict[str, Any], model_eos_token_id: Optional[int] = None
    ) -> None:
        """Adds the generation config's extra EOS ids as stop tokens (vLLM's rule)."""
        if not self.ignore_eos:
            self._eos_token_id = model_eos_token_id
        if model_eos_token_id is not None:
            self._all_stop_token_ids.add(model_eos_token_id)
        eos_ids = generation_config.get("eos_token_id")
        if eos_ids is not None:
            eos_ids = {eos_ids} if isinstance(eos_ids, int) else set(eos_ids)
            if model_eos_token_id is not None:
                eos_ids.discard(model_eos_token_id)
            if eos_ids:
                self._all_stop_token_ids.update(eos_ids)
                if not self.ignore_eos:
                    eos_ids.update(self.stop_token_ids)
                    self.stop_token_ids = list(eos_ids)

    @property
    def sampling_type(self) -> SamplingType:
        if self.use_beam_search or self.temperature < _SAMPLING_EPS:
            return SamplingType.GREEDY
        if self.seed is not None:
            return SamplingType.RANDOM_SEED
        return SamplingType.RANDOM

    @property
    def eos_token_id(self) -> Optional[int]:
        return self._eos_token_id

    @property
    def all_stop_token_ids(self) -> Set[int]:
        return self._all_stop_token_ids

    @property
    def bad_words_token_ids(self) -> Optional[List[List[int]]]:
        return self._bad_words_token_ids

    def clone(self) -> "SamplingParams":
        """A copy (shallow when skip_clone is set, as in vLLM)."""
        if self.skip_clone:
            return copy.copy(self)
        return copy.deepcopy(self)

    def to_engine_dict(self) -> Dict[str, Any]:
        """The request fields as the C++ engine reads them (SamplingParams::from_json)."""
        d: Dict[str, Any] = {
            "n": self.n,
            "best_of": self.best_of,
            "presence_penalty": float(self.presence_penalty),
            "frequency_penalty": float(self.frequency_penalty),
            "repetition_penalty": float(self.repetition_penalty),
            "temperature": float(self.temperature),
            "top_p": float(self.top_p),
            "top_k": self.top_k,
            "min_p": float(self.min_p),
            "seed": self.seed,
            "stop": list(self.stop),
            "stop_token_ids": list(self.stop_token_ids),
            "bad_words": list(self.bad_words),
            "include_stop_str_in_output": bool(self.include_stop_str_in_output),
            "ignore_eos": bool(self.ignore_eos),
            "max_tokens": self.max_tokens,
            "min_tokens": self.min_tokens,
            "logprobs": None if self.logprobs is None else int(self.logprobs),
            "prompt_logprobs": None if self.prompt_logprobs is None else int(self.prompt_logprobs),
            "detokenize": bool(self.detokenize),
            "skip_special_tokens": bool(self.skip_special_tokens),
            "spaces_between_special_tokens": bool(self.spaces_between_special_tokens),
            "truncate_prompt_tokens": self.truncate_prompt_tokens,
            "output_kind": self.output_kind.value
            if isinstance(self.output_kind, RequestOutputKind)
            else self.output_kind,
            "stream_interval": self.stream_interval,
            "logit_bias": None
            if self.logit_bias is None
            else {int(k): float(v) for k, v in self.logit_bias.items()},
            "allowed_token_ids": None if self.allowed_token_ids is None else list(self.allowed_token_ids),
            "extra_args": self.extra_args,
            "structured_outputs": None
            if self.structured_outputs is None
            else self.structured_outputs.to_engine_dict(),
        }
        for name in _UNSUPPORTED_FIELDS:
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (list, tuple, dict)) and not value):
                raise ValueError(f"sampling parameter '{name}' is not supported by vllm-cpp")
        return d

    def __repr__(self) -> str:
        return (
            f"SamplingParams(n={self.n}, "
            f"presence_penalty={self.presence_penalty}, "
            f"frequency_penalty={self.frequency_penalty}, "
            f"repetition_penalty={self.repetition_penalty}, "
            f"temperature={self.temperature}, "
            f"top_p={self.top_p}, "
            f"top_k={self.top_k}, "
            f"min_p={self.min_p}, "
            f"seed={self.seed}, "
            f"stop={self.stop}, "
            f"stop_token_ids={self.stop_token_ids}, "
            f"bad_words={self.bad_words}, "
            f"include_stop_str_in_output={self.include_stop_str_in_output}, "
            f"ignore_eos={self.ignore_eos}, "
            f"max_tokens={self.max_tokens}, "
            f"min_tokens={self.min_tokens}, "
            f"logprobs={self.logprobs}, "
            f"prompt_logprobs={self.prompt_logprobs}, "
            f"skip_special_tokens={self.skip_special_tokens}, "
            "spaces_between_special_tokens="
            f"{self.spaces_between_special_tokens}, "
            f"truncate_prompt_tokens={self.truncate_prompt_tokens}, "
            f"structured_outputs={self.structured_outputs}, "
            f"extra_args={self.extra_args})"
        )


@dataclass(repr=True)
class BeamSearchParams:
    """Beam search parameters for text generation (:meth:`vllm.LLM.beam_search`)."""

    beam_width: int
    max_tokens: int
    ignore_eos: bool = False
    temperature: float = 0.0
    length_penalty: float = 1.0
    include_stop_str_in_output: bool = False

    def __post_init__(self) -> None:
        _verify_num_sequences(self.beam_width, "beam_width")
        if not _is_int(self.max_tokens) or isinstance(self.max_tokens, bool):
            raise ValueError(f"max_tokens must be an integer, got {type(self.max_tokens).__name__}")
        for name in ("temperature", "length_penalty"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or isinstance(value, bool):
                raise ValueError(f"{name} must be a float, got {type(value).__name__}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}.")
        if not math.isfinite(self.temperature):
            raise ValueError(f"temperature must be a finite number, got {self.temperature}.")
        if self.temperature < 0.0:
            raise ValueError(f"temperature must be non-negative, got {self.temperature}.")
        if not math.isfinite(self.length_penalty):
            raise ValueError(f"length_penalty must be a finite number, got {self.length_penalty}.")
