"""Broken model folders and model arguments (issue 20): `vllm serve` and `vllm generate` must each
end with one line, "vllm: error: ...", and exit status 1: never a crash, a hang, a traceback or
"internal error", and `vllm serve` must never start listening. Each case corrupts a copy of the
tiny-phi folder one way."""
import json
import os
import shutil
import signal
import struct
import subprocess
import time

import pytest

from vllm_server import VLLM, tiny_phi_dir


def run(args, timeout=60):
    """Runs vllm; (status, stdout, stderr). A hang fails the test instead of blocking it."""
    try:
        p = subprocess.run([VLLM, *args], capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail("vllm %s did not end within %ds" % (" ".join(a[:80] for a in args), timeout))
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def assert_one_line_error(status, out, err, expect):
    lines = [l for l in err.splitlines() if l.startswith("vllm")]
    assert status == 1, (status, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("vllm: error: "), err
    assert "internal error" not in err and "Traceback" not in err, err
    assert "Application startup complete" not in out + err
    assert expect in lines[0], (expect, lines[0])


def header_of(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), data[8 + n:]


def write_with_header(path, header, data):
    h = json.dumps(header).encode()
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)


def edit_json(name):
    def edit(d, fn):
        p = os.path.join(d, name)
        j = json.load(open(p))
        fn(j)
        json.dump(j, open(p, "w"))
    return edit


def replace_with(name, make):
    def edit(d):
        p = os.path.join(d, name)
        os.remove(p)
        make(p)
    return edit


def symlink_loop(name):
    def edit(d):
        p = os.path.join(d, name)
        os.remove(p)
        os.symlink("loop-b", p)
        os.symlink(name, os.path.join(d, "loop-b"))
    return edit


def write_file(name, content):
    def edit(d):
        open(os.path.join(d, name), "wb").write(content)
    return edit


def edit_weights(fn):
    def edit(d):
        p = os.path.join(d, "model.safetensors")
        header, data = header_of(p)
        header, data = fn(header, data)
        write_with_header(p, header, data)
    return edit


def overlap(header, data):
    names = sorted((v["data_offsets"][0], k) for k, v in header.items() if k != "__metadata__")
    kinds = {}
    for _, k in names:
        v = header[k]
        key = (v["dtype"], tuple(v["shape"]))
        if key in kinds:
            v["data_offsets"] = header[kinds[key]]["data_offsets"]
            return header, data
        kinds[key] = k
    raise AssertionError("no two tensors of one shape")


def first_tensor(header):
    return next(k for k in header if k != "__metadata__")


def swap_offsets(header, data):
    k = first_tensor(header)
    b, e = header[k]["data_offsets"]
    header[k]["data_offsets"] = [e, b]
    return header, data


def set_field(field, value):
    def fn(header, data):
        header[first_tensor(header)][field] = value
        return header, data
    return fn


CASES = {
    "truncated weights": (lambda d: os.truncate(os.path.join(d, "model.safetensors"), 5000), "truncated"),
    "empty weights": (write_file("model.safetensors", b""), "truncated file: 0 bytes"),
    "huge header length": (write_file("model.safetensors", b"\xff" * 8 + b"{}"), "exceeds the limit of 100000000 bytes"),
    "header not JSON": (write_file("model.safetensors", struct.pack("<Q", 6) + b"{nope}"), "invalid JSON"),
    "unknown dtype": (edit_weights(set_field("dtype", "F8_E8M0")), "unsupported dtype 'F8_E8M0'"),
    "shape and offsets disagree": (edit_weights(set_field("shape", [7, 7, 7])), "bytes but shape [7, 7, 7]"),
    "overlapping offsets": (edit_weights(overlap), "overlapping tensor"),
    "offsets end before they begin": (edit_weights(swap_offsets), "end before they begin"),
    "weights a FIFO": (replace_with("model.safetensors", os.mkfifo), "is a FIFO, not a regular file"),
    "weights a directory": (replace_with("model.safetensors", os.mkdir), "is a directory, not a regular file"),
    "weights a symlink loop": (symlink_loop("model.safetensors"), "Too many levels of symbolic links"),
    "weights missing": (lambda d: os.remove(os.path.join(d, "model.safetensors")), "has no model.safetensors"),
    "config missing": (lambda d: os.remove(os.path.join(d, "config.json")), "has no config.json"),
    "config empty": (write_file("config.json", b""), "config.json: invalid JSON"),
    "config a FIFO": (replace_with("config.json", os.mkfifo), "config.json: is a FIFO"),
    "config a directory": (replace_with("config.json", os.mkdir), "config.json: is a directory"),
    "config a symlink loop": (symlink_loop("config.json"), "Too many levels of symbolic links"),
    "config wrong type": (lambda d: edit_json("config.json")(d, lambda j: j.update(hidden_size="64")), "'hidden_size' must be an integer"),
    "config not an object": (write_file("config.json", b"[1, 2]"), "must be a JSON object"),
    "max_position_embeddings -5": (lambda d: edit_json("config.json")(d, lambda j: j.update(max_position_embeddings=-5)),
                                   "'max_position_embeddings' must be positive, not -5"),
    "max_position_embeddings 0": (lambda d: edit_json("config.json")(d, lambda j: j.update(max_position_embeddings=0)),
                                  "'max_position_embeddings' must be positive, not 0"),
    "heads do not divide": (lambda d: edit_json("config.json")(d, lambda j: j.update(num_key_value_heads=3)),
                            "'num_key_value_heads' (3) must divide num_attention_heads"),
    "rope theta 0": (lambda d: edit_json("config.json")(d, lambda j: j.update(rope_theta=0)), "'rope_theta' must be a positive number"),
    "generation config temperature -1": (lambda d: edit_json("generation_config.json")(d, lambda j: j.update(temperature=-1)),
                                         "'temperature' must be a non-negative number"),
    "tokenizer garbage": (write_file("vocab.json", b"\x00garbage{"), "vocab.json: invalid JSON"),
    "merges garbage": (write_file("merges.txt", b"a\n"), "merges.txt: line 1"),
    "tokenizer a FIFO": (replace_with("vocab.json", os.mkfifo), "vocab.json: is a FIFO"),
    "tokenizer config garbage": (write_file("tokenizer_config.json", b"{]"), "tokenizer_config.json: invalid JSON"),
}


@pytest.fixture(scope="module")
def base():
    return tiny_phi_dir()


@pytest.fixture
def folder(base, tmp_path):
    d = str(tmp_path / "model")
    shutil.copytree(base, d)
    return d


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_folder_is_one_line_error(case, folder):
    corrupt, expect = CASES[case]
    corrupt(folder)
    for args in (["generate", "-m", folder, "--prompt", "hi", "--max-tokens", "1"],
                 ["serve", folder, "--host", "127.0.0.1", "--port", "0", "--kv-cache-space", "0.1"]):
        assert_one_line_error(*run(args), expect)


@pytest.mark.parametrize("model, expect", [
    ("a" * 5000, "the maximum length is 96"),
    ("org/" + "n" * 97, "the maximum length is 96: 'org/" + "n" * 97 + "'"),
    ("org/na--me", "Cannot have -- or .. in repo_id: 'org/na--me'"),
    ("a/b/c", "Repo id must be in the form 'repo_name' or 'namespace/repo_name'"),
    ("/no/such/model/folder", "is not a model folder (no such folder)"),
    ("/" + "x" * 300, "is not a model folder (cannot be read: File name too long)"),
])
def test_bad_model_argument_is_one_line_error(model, expect):
    for args in (["generate", "-m", model, "--prompt", "hi"], ["serve", model, "--port", "0"]):
        status, out, err = run(args)
        assert_one_line_error(status, out, err, expect)
        assert len(err) < 1000, err


def test_model_argument_that_is_a_file(base):
    assert_one_line_error(*run(["generate", "-m", os.path.join(base, "config.json"), "--prompt", "hi"]),
                          "is a file, not a model folder")


def test_chat_template_fifo_is_refused(base, tmp_path):
    """--chat-template naming a FIFO: before, reading it waited for a writer forever."""
    fifo = str(tmp_path / "template.jinja")
    os.mkfifo(fifo)
    assert_one_line_error(*run(["serve", base, "--chat-template", fifo, "--port", "0"]), "is a FIFO, not a regular file")
    assert_one_line_error(*run(["render-chat", "-m", base, "--chat-template", fifo, "--messages", "[]"]),
                          "is a FIFO, not a regular file")


def test_json_number_out_of_range_is_a_json_error(base):
    assert_one_line_error(*run(["render-chat", "-m", base, "--chat-template", "{{ messages }}",
                                "--messages", '[{"role": "user", "content": 1e999}]']),
                          "--messages is not valid JSON")
