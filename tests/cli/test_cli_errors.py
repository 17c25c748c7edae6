"""The vllm command's answer to a mistyped command line: a message naming the command and the
closest known flag, exit status 2, no traceback or crash."""
import os
import subprocess

import pytest

VLLM = os.environ.get("VLLM_BIN", "vllm")


def run(*args):
    return subprocess.run([VLLM, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, prefix, flag, guess", [
    (["serve", "--max-num-seq", "3"], "vllm serve", "--max-num-seq", "--max-num-seqs"),
    (["generate", "--max-token=4"], "vllm generate", "--max-token", "--max-tokens"),
    (["bench", "serve", "--num-prompt", "3"], "vllm bench serve", "--num-prompt", "--num-prompts"),
    (["bench", "latency", "--batch-sizes", "3"], "vllm bench latency", "--batch-sizes", "--batch-size"),
])
def test_unknown_flag_names_the_closest_one(args, prefix, flag, guess):
    r = run(*args)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == "%s: error: unrecognized argument %s (did you mean %s?)" % (prefix, flag, guess)


def test_unknown_flag_far_from_any_gets_no_guess():
    r = run("serve", "--zzzzzzzzzzzzzzzzzzzz")
    assert r.returncode == 2
    assert r.stderr.strip() == "vllm serve: error: unrecognized argument --zzzzzzzzzzzzzzzzzzzz"


def test_unknown_command_is_an_error():
    r = run("nosuchcommand")
    assert r.returncode == 2
    assert r.stderr.startswith("vllm: error: invalid choice: 'nosuchcommand' (choose from generate, bench, serve")
