"""Beam search results (``vllm.beam_search``), as LLM.beam_search returns them."""

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Union

from vllm.logprobs import Logprob


@dataclass
class BeamSearchSequence:
    """One beam: its tokens (prompt and generated), per-step logprobs and cumulative logprob.
    ``text`` is filled when the sequence is returned."""

    tokens: List[int]
    logprobs: List[Dict[int, Logprob]]
    lora_request: Optional[Any] = None
    cum_logprob: float = 0.0
    text: Optional[str] = None
    finish_reason: Optional[str] = None
    stop_reason: Union[int, str, None] = None
    orig_prompt: Optional[Any] = None


@dataclass
class BeamSearchOutput:
    """The best beams of one prompt, best first (at most beam_width of them)."""

    sequences: List[BeamSearchSequence]


class BeamSearchInstance:
    def __init__(self, prompt_tokens: List[int], orig_prompt: Optional[Any] = None) -> None:
        self.beams: List[BeamSearchSequence] = [
            BeamSearchSequence(tokens=list(prompt_tokens), logprobs=[], orig_prompt=orig_prompt)
        ]
        self.completed: List[BeamSearchSequence] = []


def get_beam_search_score(
    tokens: List[int], cumulative_logprob: float, eos_token_id: Optional[int], length_penalty: float = 1.0
) -> float:
    """The beam score with length penalty, as in Hugging Face transformers and vLLM: the
    cumulative log-probability over (sequence length, not counting a final EOS) ** penalty."""
    seq_len = len(tokens)
    if eos_token_id is not None and tokens and tokens[-1] == eos_token_id:
        seq_len -= 1
    return cumulative_logprob / (seq_len**length_penalty)
