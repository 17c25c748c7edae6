"""What generation returns (``vllm.outputs``): RequestOutput and CompletionOutput."""

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Union

from vllm.logprobs import PromptLogprobs, SampleLogprobs, logprobs_dict


@dataclass
class CompletionOutput:
    """The output data of one completion output of a request.

    Args:
        index: The index of the output in the request.
        text: The generated output text.
        token_ids: The token IDs of the generated output text.
        cumulative_logprob: The cumulative log probability of the generated output text
            (None unless log-probabilities were requested).
        logprobs: The log probabilities of the top probability words at each position, if
            requested: one dict token id -> Logprob per generated token.
        finish_reason: Why the sequence finished ("stop", "length", "abort"), or None.
        stop_reason: The stop string or token id that made the completion stop; None if it
            finished for another reason (including the EOS token).
    """

    index: int
    text: str
    token_ids: Sequence[int]
    cumulative_logprob: Optional[float]
    logprobs: Optional[SampleLogprobs]
    finish_reason: Optional[str] = None
    stop_reason: Union[int, str, None] = None
    lora_request: Optional[Any] = None

    def finished(self) -> bool:
        return self.finish_reason is not None

    def __repr__(self) -> str:
        return (
            f"CompletionOutput(index={self.index}, "
            f"text={self.text!r}, "
            f"token_ids={self.token_ids}, "
            f"cumulative_logprob={self.cumulative_logprob}, "
            f"logprobs={self.logprobs}, "
            f"finish_reason={self.finish_reason}, "
            f"stop_reason={self.stop_reason})"
        )


@dataclass
class RequestMetrics:
    """Timestamps of a request (seconds since the epoch; None where not recorded)."""

    arrival_time: float
    last_token_time: float
    first_scheduled_time: Optional[float]
    first_token_time: Optional[float]
    time_in_queue: Optional[float]
    finished_time: Optional[float] = None
    scheduler_time: Optional[float] = None
    model_forward_time: Optional[float] = None
    model_execute_time: Optional[float] = None


class RequestOutput:
    """The output data of a completion request to the LLM.

    Args:
        request_id: The unique ID of the request.
        prompt: The prompt string of the request (None for token-id prompts).
        prompt_token_ids: The token IDs of the prompt.
        prompt_logprobs: The log probabilities to return per prompt token (the first is None).
        outputs: The output sequences of the request.
        finished: Whether the whole request is finished.
        metrics: Metrics associated with the request.
        lora_request: Always None (LoRA is not supported by vllm-cpp).
        encoder_prompt: Always None (decoder-only models).
        encoder_prompt_token_ids: Always None (decoder-only models).
        num_cached_tokens: The number of prompt tokens with a prefix cache hit.
    """

    def __init__(
        self,
        request_id: str,
        prompt: Optional[str],
        prompt_token_ids: Optional[List[int]],
        prompt_logprobs: Optional[PromptLogprobs],
        outputs: List[CompletionOutput],
        finished: bool,
        metrics: Optional[RequestMetrics] = None,
        lora_request: Optional[Any] = None,
        encoder_prompt: Optional[str] = None,
        encoder_prompt_token_ids: Optional[List[int]] = None,
        num_cached_tokens: Optional[int] = None,
        **kwargs: Any,
    ) -> None:
        self.request_id = request_id
        self.prompt = prompt
        self.prompt_token_ids = prompt_token_ids
        self.prompt_logprobs = prompt_logprobs
        self.outputs = outputs
        self.finished = finished
        self.metrics = metrics
        self.lora_request = lora_request
        self.encoder_prompt = encoder_prompt
        self.encoder_prompt_token_ids = encoder_prompt_token_ids
        self.num_cached_tokens = num_cached_tokens

    def __repr__(self) -> str:
        return (
            f"RequestOutput(request_id={self.request_id}, "
            f"prompt={self.prompt!r}, "
            f"prompt_token_ids={self.prompt_token_ids}, "
            f"encoder_prompt={self.encoder_prompt!r}, "
            f"encoder_prompt_token_ids={self.encoder_prompt_token_ids}, "
            f"prompt_logprobs={self.prompt_logprobs}, "
            f"outputs={self.outputs}, "
            f"finished={self.finished}, "
            f"metrics={self.metrics}, "
            f"lora_request={self.lora_request}, "
            f"num_cached_tokens={self.num_cached_tokens})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RequestOutput) and self.__dict__ == other.__dict__


def _logprobs_list(entries_per_position):
    return [logprobs_dict(entries) for entries in entries_per_position]


def request_output_from_engine(d: Dict[str, Any], prompt: Optional[str] = None) -> RequestOutput:
    """A RequestOutput from the engine's plain dict (see src/vllm/python/engine_binding.cpp).

    `prompt` (the caller's text) replaces the engine's when given, so a token-id prompt that came
    with its text reports it, as in vLLM.
    """
    outputs = []
    for c in d["outputs"]:
        lps = c["logprobs"]
        outputs.append(
            CompletionOutput(
                index=c["index"],
                text=c["text"],
                token_ids=c["token_ids"],
                cumulative_logprob=c["cumulative_logprob"],
                logprobs=None if lps is None else _logprobs_list(lps),
                finish_reason=c["finish_reason"],
                stop_reason=c["stop_reason"],
            )
        )
    plp = d["prompt_logprobs"]
    if plp is not None:
        plp = [None if p is None else logprobs_dict(p) for p in plp]
    arrival, first_scheduled, first_token, last_token, finished_time = d["metrics"]
    first_scheduled = first_scheduled or None
    metrics = RequestMetrics(
        arrival_time=arrival,
        last_token_time=last_token or arrival,
        first_scheduled_time=first_scheduled,
        first_token_time=first_token or None,
        time_in_queue=(first_scheduled - arrival) if first_scheduled else None,
        finished_time=finished_time or None,
    )
    return RequestOutput(
        request_id=d["request_id"],
        prompt=prompt if prompt is not None else d["prompt"],
        prompt_token_ids=d["prompt_token_ids"],
        prompt_logprobs=plp,
        outputs=outputs,
        finished=d["finished"],
        metrics=metrics,
        num_cached_tokens=d["num_cached_tokens"],
    )
