"""The tokenizer LLM.get_tokenizer() returns: the engine's C++ tokenizer behind the parts of the
transformers tokenizer interface that vLLM users call (encode, decode, __call__,
apply_chat_template, convert_ids_to_tokens, eos_token_id, vocab_size, len(), ...)."""

import json
import os
from typing import Any, Dict, List, Optional, Union

from vllm._ext import ext

# vLLM's wording when neither the request nor the tokenizer has a chat template.
_NO_TEMPLATE_MESSAGE = (
    "As of transformers v4.44, default chat template is no longer allowed, so you must provide "
    "a chat template if the tokenizer does not define one."
)


def load_chat_template(chat_template: Optional[str]) -> Optional[str]:
    """vLLM's load_chat_template: a path to a template file, or the template itself."""
    if chat_template is None:
        return None
    chat_template = os.fspath(chat_template)
    try:
        with open(chat_template, encoding="utf-8") as f:
            return f.read()
    except (OSError, ValueError) as e:
        jinja_chars = "{}\n"
        if not any(c in chat_template for c in jinja_chars):
            raise ValueError(
                f"The supplied chat template ({chat_template}) looks like a file path, but it "
                f"failed to be opened. Reason: {e}"
            ) from e
        return chat_template


def _json_ready(value: Any) -> Any:
    """Messages with pydantic models or other objects turned into plain JSON values."""
    if hasattr(value, "model_dump"):
        return value.model_dump(exclude_none=True)
    return value


def normalize_messages(messages: List[Dict[str, Any]], content_format: str = "string") -> List[Dict[str, Any]]:
    """Chat messages the way vLLM hands them to a Hugging Face template.

    "string" content format joins the text parts of OpenAI-style content lists with newlines;
    "openai" gives the template a list of {"type": "text", "text": ...} parts (a string content
    is one part, no content an empty list); tool call arguments given as JSON strings become
    dicts (templates index into them).
    """
    out = []
    for message in messages:
        message = dict(_json_ready(message))
        content = message.get("content")
        if content_format == "openai" and not isinstance(content, (list, tuple)):
            content = [] if content is None else [content]
        if isinstance(content, (list, tuple)):
            parts = []
            for part in content:
                part = _json_ready(part)
                if isinstance(part, str):
                    parts.append({"type": "text", "text": part})
                elif isinstance(part, dict):
                    kind = part.get("type", "text")
                    if kind not in ("text", "input_text", "output_text", "refusal"):
                        raise ValueError(f"Unsupported content part type for vllm-cpp: {kind!r} (text only)")
                    parts.append({"type": "text", "text": part.get("text", part.get("refusal", ""))})
                else:
                    raise ValueError(f"Invalid content part: {part!r}")
            if content_format == "openai":
                message["content"] = parts
            else:
                message["content"] = "\n".join(p["text"] for p in parts)
        tool_calls = message.get("tool_calls")
        if tool_calls:
            calls = []
            for call in tool_calls:
                call = dict(_json_ready(call))
                fn = call.get("function")
                if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                    fn = dict(fn)
                    try:
                        fn["arguments"] = json.loads(fn["arguments"])
                    except ValueError:
                        pass
                    call["function"] = fn
                calls.append(call)
            message["tool_calls"] = calls
        out.append(message)
    return out


class CppTokenizer:
    """A transformers-like tokenizer over the engine's C++ tokenizer (thread-safe, immutable)."""

    is_fast = True
    padding_side = "left"
    truncation_side = "left"

    def __init__(self, native, name_or_path: str = "") -> None:
        self._tok = native
        self.name_or_path = name_or_path
        self._templates: Dict[str, Any] = {}
        self._special_ids: Optional[List[int]] = None

    @classmethod
    def from_pretrained(cls, folder: str) -> "CppTokenizer":
        return cls(ext().Tokenizer.from_folder(os.fspath(folder)), os.fspath(folder))

    # --- encoding / decoding -------------------------------------------------------------------

    def encode(
        self,
        text: str,
        add_special_tokens: bool = True,
        truncation: Optional[bool] = None,
        max_length: Optional[int] = None,
        **kwargs: Any,
    ) -> List[int]:
        ids = self._tok.encode(text, add_special_tokens)
        if truncation and max_length is not None and len(ids) > max_length:
            ids = ids[-max_length:] if self.truncation_side == "left" else ids[:max_length]
        return ids

    def decode(
        self,
        token_ids: Union[int, List[int]],
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: Optional[bool] = None,
        spaces_between_special_tokens: bool = True,
        **kwargs: Any,
    ) -> str:
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        return self._tok.decode(
            list(token_ids), skip_special_tokens, spaces_between_special_tokens, clean_up_tokenization_spaces
        )

    def batch_decode(self, sequences: List[List[int]], skip_special_tokens: bool = False, **kwargs: Any) -> List[str]:
        return [self.decode(s, skip_special_tokens=skip_special_tokens, **kwargs) for s in sequences]

    def __call__(
        self,
        text: Union[str, List[str]],
        add_special_tokens: bool = True,
        truncation: Optional[bool] = None,
        max_length: Optional[int] = None,
        **kwargs: Any,
    ) -> Dict[str, Any]:
        if isinstance(text, str):
            ids = self.encode(text, add_special_tokens, truncation, max_length)
            return {"input_ids": ids, "attention_mask": [1] * len(ids)}
        batch = [self.encode(t, add_special_tokens, truncation, max_length) for t in text]
        return {"input_ids": batch, "attention_mask": [[1] * len(ids) for ids in batch]}

    def tokenize(self, text: str, add_special_tokens: bool = False, **kwargs: Any) -> List[str]:
        return self.convert_ids_to_tokens(self.encode(text, add_special_tokens))

    def convert_ids_to_tokens(
        self, ids: Union[int, List[int]], skip_special_tokens: bool = False
    ) -> Union[Optional[str], List[Optional[str]]]:
        if isinstance(ids, int):
            return self._tok.id_to_token(ids)
        return [
            self._tok.id_to_token(i) for i in ids if not (skip_special_tokens and self._tok.is_special(i))
        ]

    def convert_tokens_to_ids(self, tokens: Union[str, List[str]]) -> Union[Optional[int], List[Optional[int]]]:
        if isinstance(tokens, str):
            found = self._tok.token_to_id(tokens)
            return self.unk_token_id if found is None else found
        return [self.convert_tokens_to_ids(t) for t in tokens]

    def convert_tokens_to_string(self, tokens: List[str]) -> str:
        return self.decode([i for i in self.convert_tokens_to_ids(tokens) if i is not None])

    def get_vocab(self) -> Dict[str, int]:
        vocab = {}
        for i in range(self._tok.vocab_size()):
            token = self._tok.id_to_token(i)
            if token is not None:
                vocab[token] = i
        return vocab

    def get_added_vocab(self) -> Dict[str, int]:
        return {self._tok.id_to_token(i): i for i in range(self._tok.vocab_size()) if self._tok.is_added_token(i)}

    # --- properties ----------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return self._tok.vocab_size()

    def __len__(self) -> int:
        return self._tok.vocab_size()

    @property
    def max_token_id(self) -> int:
        return self._tok.vocab_size() - 1

    @property
    def eos_token_id(self) -> Optional[int]:
        return self._tok.eos_token_id()

    @property
    def bos_token_id(self) -> Optional[int]:
        return self._tok.bos_token_id()

    @property
    def pad_token_id(self) -> Optional[int]:
        return self._tok.pad_token_id()

    @property
    def unk_token_id(self) -> Optional[int]:
        return self._tok.unk_token_id()

    @property
    def eos_token(self) -> Optional[str]:
        return self._tok.eos_token() or None

    @property
    def bos_token(self) -> Optional[str]:
        return self._tok.bos_token() or None

    @property
    def pad_token(self) -> Optional[str]:
        return self._tok.pad_token() or None

    @property
    def unk_token(self) -> Optional[str]:
        return self._tok.unk_token() or None

    @property
    def add_bos_token(self) -> bool:
        return self._tok.add_bos_token()

    @property
    def add_eos_token(self) -> bool:
        return self._tok.add_eos_token()

    @property
    def clean_up_tokenization_spaces(self) -> bool:
        return self._tok.clean_up_tokenization_spaces()

    @property
    def all_special_ids(self) -> List[int]:
        if self._special_ids is None:
            self._special_ids = [i for i in range(self._tok.vocab_size()) if self._tok.is_special(i)]
        return list(self._special_ids)

    @property
    def all_special_tokens(self) -> List[str]:
        return [self._tok.id_to_token(i) for i in self.all_special_ids]

    @property
    def special_tokens_map(self) -> Dict[str, str]:
        out = {}
        for name in ("bos_token", "eos_token", "unk_token", "pad_token"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @property
    def model_max_length(self) -> int:
        value = self._tok.model_max_length()
        return int(1e30) if value is None else value

    @property
    def chat_template(self) -> Optional[str]:
        return self._tok.chat_template("default")

    # --- chat templates ------------------------------------------------------------------------

    def _template(self, source: str):
        tmpl = self._templates.get(source)
        if tmpl is None:
            tmpl = ext().ChatTemplate(source)
            if len(self._templates) > 16:
                self._templates.clear()
            self._templates[source] = tmpl
        return tmpl

    def get_chat_template(self, chat_template: Optional[str] = None, tools: Optional[list] = None) -> str:
        """The template source: the argument (a template, a file, or a named template of the
        tokenizer), else the tokenizer's ("tool_use" when tools are given and it has one)."""
        if chat_template is not None:
            names = self._tok.chat_template_names()
            if chat_template in names:
                return self._tok.chat_template(chat_template)
            return load_chat_template(chat_template)
        if tools and "tool_use" in self._tok.chat_template_names():
            return self._tok.chat_template("tool_use")
        source = self._tok.chat_template("default")
        if source is None:
            raise ValueError(_NO_TEMPLATE_MESSAGE)
        return source

    def apply_chat_template(
        self,
        conversation: Union[List[Dict[str, Any]], List[List[Dict[str, Any]]]],
        tools: Optional[List[Dict[str, Any]]] = None,
        documents: Optional[List[Dict[str, Any]]] = None,
        chat_template: Optional[str] = None,
        add_generation_prompt: bool = False,
        continue_final_message: bool = False,
        tokenize: bool = True,
        padding: bool = False,
        truncation: bool = False,
        max_length: Optional[int] = None,
        return_tensors: Optional[str] = None,
        return_dict: bool = False,
        tokenizer_kwargs: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ):
        """transformers' apply_chat_template for the cases vLLM uses: a conversation (or a list of
        them) rendered to text, or to token ids with ``tokenize=True``; extra keyword arguments
        reach the template."""
        if return_tensors is not None:
            raise ValueError("return_tensors is not supported by the vllm-cpp tokenizer")
        if continue_final_message and add_generation_prompt:
            raise ValueError(
                "continue_final_message and add_generation_prompt are not compatible. Use "
                "continue_final_message when you want the model to continue the final message, and "
                "add_generation_prompt when you want to add a header that will prompt it to start a "
                "new assistant message instead."
            )
        batched = bool(conversation) and isinstance(conversation[0], (list, tuple))
        conversations = conversation if batched else [conversation]
        content_format = kwargs.pop("chat_template_content_format", "string")
        tmpl = self._template(self.get_chat_template(chat_template, tools))
        rendered = []
        for chat in conversations:
            chat = normalize_messages(list(chat), content_format)
            text = tmpl.apply(
                chat,
                add_generation_prompt,
                [_json_ready(t) for t in tools] if tools is not None else None,
                documents,
                self._tok.bos_token(),
                self._tok.eos_token(),
                kwargs or None,
            )
            if continue_final_message:
                text = _cut_after_final_message(text, chat[-1])
            rendered.append(text)
        if not tokenize:
            return rendered if batched else rendered[0]
        encoded = [self.encode(t, add_special_tokens=False, truncation=truncation, max_length=max_length) for t in rendered]
        if return_dict:
            if batched:
                return {"input_ids": encoded, "attention_mask": [[1] * len(e) for e in encoded]}
            return {"input_ids": encoded[0], "attention_mask": [1] * len(encoded[0])}
        return encoded if batched else encoded[0]

    def __repr__(self) -> str:
        return f"CppTokenizer(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size})"


def _cut_after_final_message(rendered: str, final: Dict[str, Any]) -> str:
    """transformers' continue_final_message: drop what the template put after the last message."""
    content = final.get("content")
    if isinstance(content, (list, tuple)):
        for block in reversed(content):
            if isinstance(block, dict) and "text" in block:
                content = block["text"]
                break
        else:
            raise ValueError(
                "continue_final_message is set but we could not find any text to continue in the final message!"
            )
    content = content or ""
    if content.strip() not in rendered:
        raise ValueError(
            "continue_final_message is set but the final message does not appear in the chat after "
            "applying the chat template! This can happen if the chat template deletes portions of "
            "the final message. Please verify the chat template and final message in your chat to "
            "ensure they are compatible."
        )
    loc = rendered.rindex(content.strip())
    if rendered[loc : loc + len(content.lstrip())] == content:
        return rendered[: loc + len(content.lstrip())]
    return rendered[: loc + len(content.strip())]
