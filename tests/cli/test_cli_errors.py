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


@pytest.mark.parametrize("command", ["serve", "generate"])
@pytest.mark.parametrize("config, message", [
    ("{bad", "--kv-events-config: not valid JSON: {bad"),
    ('{"enable_kv_cache_events": true, "publisher": "kafka"}',
     "--kv-events-config: unknown publisher 'kafka' (choose zmq or null)"),
    ('{"enable_kv_cache_events": true, "endpoint": "localhost:5557"}',
     "--kv-events-config: endpoint 'localhost:5557' is not a ZeroMQ endpoint (tcp://HOST:PORT, ipc://PATH or inproc://NAME)"),
    ('{"enable_kv_cache_events": true, "endpoint": "tcp://*:99999"}',
     "--kv-events-config: endpoint 'tcp://*:99999' has no valid port (0 to 65535, or *)"),
    ('{"enable_kv_cache_events": true, "endpoint": "ipc:///nonexistent-vllm-dir/kv.sock"}',
     "--kv-events-config: cannot bind the endpoint 'ipc:///nonexistent-vllm-dir/kv.sock': No such file or directory"),
])
def test_bad_kv_events_config_is_refused_before_the_model_loads(command, config, message):
    extra = ["--prompt", "Hi"] if command == "generate" else []
    r = run(command, *extra, "--kv-events-config", config)
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "vllm: error: " + message
