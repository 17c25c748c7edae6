"""LLM.chat(messages, tools=...) renders a conversation exactly as `vllm serve` does: the same
template, tools, tool-call history and content format. Checked on tiny-qwen3 (Qwen3's template,
which renders tools and tool calls) against the server's /tokenize on the same model folder, and
against transformers' rendering kept in golden.json."""

import json
import os
import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from vllm import LLM, SamplingParams

from conftest import DATA

CLI = os.environ.get("VLLM_CLI")
ONE = SamplingParams(max_tokens=1, temperature=0.0)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather forecast",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}
# A tool-call round trip, with OpenAI's shapes: arguments as a JSON string, a tool message, and
# content given as a list of parts.
HISTORY = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}, {"type": "text", "text": "Two days."}]},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris", "days": 2}'}}
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
    {"role": "user", "content": "And in Rome?"},
]


@pytest.fixture(scope="module")
def tiny_qwen3(tmp_path_factory) -> str:
    make = os.environ.get("VLLM_MAKE_MODEL")
    if not make:
        pytest.skip("VLLM_MAKE_MODEL is not set (run through ctest)")
    out = tmp_path_factory.mktemp("models") / "tiny-qwen3"
    model = DATA / "models" / "tiny-qwen3"
    cmd = [make, "--config", str(model / "config.json"), "--out", str(out), "--seed", "14", "--dtype", "bfloat16"]
    for f in (model / "generation_config.json", model / "tokenizer_config.json", DATA / "tokenizers" / "tiny-qwen3" / "tokenizer.json"):
        cmd += ["--copy", str(f)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return str(out)


@pytest.fixture(scope="module")
def llm(tiny_qwen3):
    llm = LLM(model=tiny_qwen3, dtype="float32", kv_cache_space=0.25)
    yield llm
    llm.shutdown()


@pytest.fixture(scope="module")
def server(tiny_qwen3):
    if not CLI:
        pytest.skip("VLLM_CLI is not set (run through ctest)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [CLI, "serve", tiny_qwen3, "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", "--kv-cache-space", "0.25",
         "--disable-log-stats", "--disable-uvicorn-access-log"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(url + "/health", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail(f"vllm serve did not start (exit code {proc.poll()})")
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def server_prompt(url: str, body: dict) -> str:
    """The text the server's template renders: /tokenize's tokens, detokenized."""
    def post(path, payload):
        req = urllib.request.Request(url + path, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)
    tokens = post("/tokenize", body)["tokens"]
    return post("/detokenize", {"tokens": tokens})["prompt"]


def test_tools_render_as_transformers(llm):
    golden = json.loads((DATA / "models" / "tiny-qwen3" / "golden.json").read_text())
    cases = [c for c in golden["tokenizer"]["chat"] if c.get("tools")]
    assert cases
    for case in cases:
        kwargs = dict(case["kwargs"])
        add_generation_prompt = kwargs.pop("add_generation_prompt", False)
        (out,) = llm.chat(case["messages"], ONE, use_tqdm=False, tools=case["tools"],
                          add_generation_prompt=add_generation_prompt, chat_template_kwargs=kwargs or None)
        assert out.prompt == case["text"]


@pytest.mark.parametrize("thinking", [True, False])
def test_tools_and_history_render_as_the_server(llm, server, thinking):
    kwargs = {"enable_thinking": thinking}
    (out,) = llm.chat(HISTORY, ONE, use_tqdm=False, tools=[WEATHER], chat_template_kwargs=kwargs)
    # tool_choice "none": rendered, not parsed (this server runs without --enable-auto-tool-choice).
    want = server_prompt(server, {"messages": HISTORY, "tools": [WEATHER], "tool_choice": "none", "chat_template_kwargs": kwargs})
    assert out.prompt == want
    # The tools, the call's arguments (as a dict, not the JSON string) and the tool result are in it.
    assert '"name": "get_weather"' in want and re.search(r'"arguments": \{"city": "Paris", "days": 2\}', want)
    assert "sunny, 21 C" in want and "Weather in Paris?\nTwo days." in want
    assert out.prompt_token_ids == llm.get_tokenizer().encode(want, add_special_tokens=False)


def test_content_format_auto_follows_the_template(llm, server):
    # Qwen3's template prints message.content: "auto" is "string", parts joined by a newline.
    assert llm.get_tokenizer()._template(llm.get_tokenizer().chat_template).content_format == "string"
    loops = "{% for m in messages %}{% for p in m['content'] %}<{{ p.text }}>{% endfor %}{% endfor %}"
    messages = [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"role": "user", "content": "c"}]
    (auto,) = llm.chat(messages, ONE, use_tqdm=False, chat_template=loops, add_generation_prompt=False)
    assert auto.prompt == "<a><b><c>"
    (string,) = llm.chat(messages, ONE, use_tqdm=False, chat_template=loops, add_generation_prompt=False,
                         chat_template_content_format="string")
    assert string.prompt == "<><><><>"
    with pytest.raises(ValueError, match="chat_template_content_format"):
        llm.chat(messages, ONE, use_tqdm=False, chat_template_content_format="xml")
