"""vLLM's quick-start script and LangChain's call pattern, unchanged but for the model path."""

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import subprocess_env

# docs.vllm.ai quickstart ("Offline Batched Inference"), with the model path as the only change.
QUICKSTART = '''
from vllm import LLM, SamplingParams

# Sample prompts.
prompts = [
    "Hello, my name is",
    "The president of the United States is",
    "The capital of France is",
    "The future of AI is",
]
# Create a sampling params object.
sampling_params = SamplingParams(temperature=0.8, top_p=0.95)

# Create an LLM.
llm = LLM(model=MODEL_PATH)
# Generate texts from the prompts. The output is a list of RequestOutput objects
# that contain the prompt, generated text, and other information.
outputs = llm.generate(prompts, sampling_params)
# Print the outputs.
for output in outputs:
    prompt = output.prompt
    generated_text = output.outputs[0].text
    print(f"Prompt: {prompt!r}, Generated text: {generated_text!r}")
'''

PROMPTS = [
    "Hello, my name is",
    "The president of the United States is",
    "The capital of France is",
    "The future of AI is",
]
LINE = re.compile(r"^Prompt: (?P<prompt>'.*'), Generated text: (?P<text>['\"].*['\"])$")


def script(model: str) -> str:
    return QUICKSTART.replace("MODEL_PATH", repr(model))


def check_output(stdout: str) -> None:
    lines = [line for line in stdout.splitlines() if line.startswith("Prompt: ")]
    assert len(lines) == 4, stdout
    for line, prompt in zip(lines, PROMPTS):
        m = LINE.match(line)
        assert m, line
        assert eval(m.group("prompt")) == prompt  # noqa: S307 - our own repr output
        assert isinstance(eval(m.group("text")), str)  # noqa: S307


def check_progress(stderr: str) -> None:
    assert "Processed prompts: 100%|" in stderr, stderr
    assert "| 4/4 [" in stderr, stderr
    assert "it/s, est. speed input: " in stderr and " toks/s, output: " in stderr, stderr


def test_quickstart_in_process(tiny_phi, capsys):
    exec(compile(script(tiny_phi), "quickstart.py", "exec"), {"__name__": "__main__"})  # noqa: S102
    captured = capsys.readouterr()
    check_output(captured.out)
    check_progress(captured.err)


def user_pythons():
    """Debian's interpreter (running pytest) and the user's python3 on the PATH, when different."""
    found = {os.path.realpath(sys.executable): sys.executable}
    for candidate in (shutil.which("python3"), "/root/.pyenv/shims/python3"):
        if not candidate or not os.path.exists(candidate):
            continue
        try:
            real = subprocess.run(
                [candidate, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True, timeout=30
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if real and os.path.realpath(real) not in found:
            found[os.path.realpath(real)] = candidate
    return list(found.values())


@pytest.mark.parametrize("python", user_pythons())
def test_quickstart_subprocess(tiny_phi, tmp_path, python):
    path = tmp_path / "quickstart.py"
    path.write_text(script(tiny_phi), encoding="utf-8")
    proc = subprocess.run(
        [python, str(path)], capture_output=True, text=True, env=subprocess_env(), cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    check_output(proc.stdout)
    check_progress(proc.stderr)


def test_langchain_call_pattern(tiny_phi):
    # langchain_community.llms.VLLM: validate_environment, _default_params and _generate.
    from vllm import LLM as VLLModel
    from vllm import SamplingParams

    client = VLLModel(
        model=tiny_phi,
        tensor_parallel_size=1,
        trust_remote_code=True,
        dtype="auto",
        download_dir=None,
    )
    params = {
        "n": 1,
        "best_of": 1,
        "max_tokens": 128,
        "top_k": -1,
        "top_p": 0.95,
        "temperature": 0.8,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "stop": None,
        "ignore_eos": False,
        "use_beam_search": False,
        "logprobs": None,
    }
    # LangChain keeps only the keys SamplingParams declares.
    known_keys = SamplingParams.__annotations__.keys()
    assert set(params) <= set(known_keys)
    sampling_params = SamplingParams(**{k: v for k, v in params.items() if k in known_keys})
    sampling_params = SamplingParams(
        n=1,
        best_of=1,
        max_tokens=128,
        top_k=-1,
        top_p=0.95,
        temperature=0.8,
        presence_penalty=0.0,
        frequency_penalty=0.0,
        stop=None,
        ignore_eos=False,
        use_beam_search=False,
        logprobs=None,
    )
    prompts = ["What is the capital of France?", "Tell me a joke."]
    with contextlib.redirect_stderr(io.StringIO()):
        outputs = client.generate(prompts, sampling_params)
    assert len(outputs) == 2
    for output in outputs:
        text = output.outputs[0].text
        assert isinstance(text, str)
        assert 1 <= len(output.outputs[0].token_ids) <= 128
        assert output.outputs[0].finish_reason in ("stop", "length")
    client.shutdown()
