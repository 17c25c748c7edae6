"""The chat format of the trained model: one place for the special tokens and the template.

The corpus script renders its synthetic conversations with `render()`, and train.py writes
CHAT_TEMPLATE into tokenizer_config.json; train.py also checks, with transformers, that the
Jinja template renders exactly what `render()` does, so training text and serving agree.
"""

ENDOFTEXT = "<|endoftext|>"
SYSTEM = "<|system|>"
USER = "<|user|>"
ASSISTANT = "<|assistant|>"
END = "<|end|>"

# Id order is fixed: <|endoftext|> is 0, then the chat markers (the BPE trainer puts special
# tokens first, in this order).
SPECIAL_TOKENS = [ENDOFTEXT, SYSTEM, USER, ASSISTANT, END]

ROLE_MARKERS = {"system": SYSTEM, "user": USER, "assistant": ASSISTANT}

# Only constructs our Jinja engine (src/vllm/chat/) and transformers both support: a for loop,
# `not in` on a list literal, `~`/`+` string concatenation, raise_exception, if.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('Unknown role: ' ~ message['role'] ~ ' (expected system, user or assistant)') }}"
    "{% endif %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)


def render(messages, add_generation_prompt=False):
    """What CHAT_TEMPLATE renders, in Python (used to write the training conversations)."""
    out = []
    for m in messages:
        if m["role"] not in ROLE_MARKERS:
            raise ValueError("Unknown role: %s" % m["role"])
        out.append(ROLE_MARKERS[m["role"]] + "\n" + m["content"] + END + "\n")
    if add_generation_prompt:
        out.append(ASSISTANT + "\n")
    return "".join(out)
