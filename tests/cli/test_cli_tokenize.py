"""`vllm tokenize`, `vllm detokenize` and `vllm render-chat` against the tokenizer goldens of the
five reference models (tests/data/models/*/golden.json, made with Hugging Face tokenizers and
transformers): encode cases give exactly `ids` / `ids_no_special`, decoding gives exactly
`decode` / `decode_skip_special`, every chat case renders byte-identical; bad input is a message
and a non-zero exit. The C++ tokenizer tests check all 37 encode cases through the library; here
a sample of them (those with special tokens in the text, CR/LF and the first few) goes through the command,
which starts a process and loads the tokenizer each time."""
import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

VLLM = os.environ["VLLM_BIN"]
DATA = os.environ["VLLM_TEST_DATA_DIR"]
MODELS = ["tiny-phi", "tiny-llama2", "tiny-llama3", "tiny-qwen3", "tiny-qwen2"]


@pytest.fixture(scope="module", params=MODELS)
def model(request, tmp_path_factory):
    """A folder with the model's tokenizer files and tokenizer_config.json, and its golden."""
    name = request.param
    folder = tmp_path_factory.mktemp(name)
    src = os.path.join(DATA, "models", name)
    for f in ("tokenizer_config.json", "config.json"):
        if os.path.exists(os.path.join(src, f)):
            shutil.copy(os.path.join(src, f), folder)
    tok = os.path.join(DATA, "tokenizers", name)
    if not os.path.isdir(tok):
        pytest.skip(f"tokenizer files of {name} not fetched (scripts/fetch_tokenizers.sh)")
    for f in os.listdir(tok):
        shutil.copy(os.path.join(tok, f), folder)
    with open(os.path.join(src, "golden.json"), encoding="utf-8") as fh:
        golden = json.load(fh)["tokenizer"]
    return str(folder), golden


class Result:
    def __init__(self, p):
        self.returncode = p.returncode
        # Bytes, decoded without newline translation: the goldens hold "\r\n" as it is.
        self.stdout = p.stdout.decode("utf-8")
        self.stderr = p.stderr.decode("utf-8", "replace")


def vllm(*args, stdin=None):
    data = stdin.encode("utf-8") if stdin is not None else None
    return Result(subprocess.run([VLLM, *args], input=data, capture_output=True))


def sample(cases):
    # Special tokens written in the text, CR/LF, and the first few. (Not every case whose ids
    # differ without special tokens: with a BOS token that is all of them, and each is 4 processes.)
    return [c for i, c in enumerate(cases) if i < 4 or "<" in c["text"] or "\r" in c["text"]]


def ok(*args, stdin=None):
    r = vllm(*args, stdin=stdin)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_tokenize_and_detokenize_match_goldens(model):
    folder, golden = model
    checks = []  # (arguments, stdin, how to read the output, expected)
    for case in sample(golden["encode"]):
        text = case["text"]
        checks.append((["tokenize", "-m", folder, "--text", "-", "--json"], text, json.loads, case["ids"]))
        checks.append((["tokenize", "-m", folder, "--text", "-", "--json", "--no-special-tokens"], text, json.loads,
                       case["ids_no_special"]))
        ids = ",".join(map(str, case["ids"]))
        # detokenize ends its output with one newline.
        checks.append((["detokenize", "-m", folder, "--ids", ids], None, lambda out: out[:-1], case["decode"]))
        checks.append((["detokenize", "-m", folder, "--ids", ids, "--skip-special-tokens"], None, lambda out: out[:-1],
                       case["decode_skip_special"]))
    # Each command is a process that loads the tokenizer; run them side by side.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        outputs = list(pool.map(lambda c: ok(*c[0], stdin=c[1]), checks))
    for (args, stdin, read, want), out in zip(checks, outputs):
        assert read(out) == want, (args, stdin)


def test_render_chat_matches_goldens(model):
    folder, golden = model
    cases = golden.get("chat", [])
    if not cases:
        pytest.skip("no chat goldens for this model")
    for case in cases:
        kwargs = dict(case.get("kwargs", {}))
        args = ["render-chat", "-m", folder, "--messages", "-"]
        if not kwargs.pop("add_generation_prompt", False):
            args.append("--no-generation-prompt")
        tools = case.get("tools", kwargs.pop("tools", None))
        if tools is not None:
            args += ["--tools", json.dumps(tools)]
        if kwargs:
            args += ["--chat-template-kwargs", json.dumps(kwargs)]
        assert ok(*args, stdin=json.dumps(case["messages"])) == case["text"]


def test_bad_input_is_a_message_and_an_exit_code(model):
    folder, _ = model
    for args in (["detokenize", "-m", folder, "--ids", "1,x"], ["detokenize", "-m", folder, "--ids", "999999999"],
                 ["render-chat", "-m", folder, "--messages", "{bad"], ["render-chat", "-m", folder, "--messages", "{}"],
                 ["tokenize", "-m", os.path.join(folder, "missing"), "--text", "x"]):
        r = vllm(*args)
        assert r.returncode != 0, args
        assert "error" in r.stderr and "Traceback" not in r.stderr and r.stderr.count("\n") <= 3, r.stderr
