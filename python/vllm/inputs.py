"""Prompt types (``vllm.inputs``): a prompt is a string, a TextPrompt or a TokensPrompt."""

from typing import List, TypedDict, Union

try:  # Python 3.11+
    from typing import NotRequired
except ImportError:  # pragma: no cover
    from typing_extensions import NotRequired


class TextPrompt(TypedDict):
    """A text prompt, tokenized with the model's tokenizer."""

    prompt: str
    cache_salt: NotRequired[str]


class TokensPrompt(TypedDict):
    """A prompt given as token ids (``prompt`` may carry its text for the output)."""

    prompt_token_ids: List[int]
    prompt: NotRequired[str]
    cache_salt: NotRequired[str]


SingletonPrompt = Union[str, TextPrompt, TokensPrompt]
PromptType = SingletonPrompt
