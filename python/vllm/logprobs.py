"""Log-probabilities as vLLM reports them (``vllm.logprobs``)."""

from dataclasses import dataclass
from typing import Dict, List, Optional


@dataclass
class Logprob:
    """The log-probability of one token.

    Args:
        logprob: The log-probability of the token.
        rank: The token's rank in the model's distribution (1 = most likely).
        decoded_token: The token's text (``tokenizer.decode([token_id])``), or
            None when the request did not detokenize.
    """

    logprob: float
    rank: Optional[int] = None
    decoded_token: Optional[str] = None


# One dict per prompt position (None for the first) or per generated token: token id -> Logprob.
PromptLogprobs = List[Optional[Dict[int, Logprob]]]
SampleLogprobs = List[Dict[int, Logprob]]


def logprobs_dict(entries) -> Dict[int, Logprob]:
    """Builds one position's dict from the engine's (token_id, logprob, rank, decoded) tuples.

    The engine lists the chosen token first and then the top-k best; a chosen token that is also
    among the best keeps its first place and takes the top-k entry's rank, as in vLLM.
    """
    out: Dict[int, Logprob] = {}
    for token_id, logprob, rank, decoded in entries:
        out[token_id] = Logprob(logprob, rank, decoded)
    return out
