"""Shared by the pytest files that drive a real `vllm serve`: the tiny-phi model folder (written once
by vllm-make-model, as tests/server/harness.mjs does, into the same folder so both reuse it), a
server process on 127.0.0.1 with a free port, and small HTTP helpers."""
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

VLLM = os.environ["VLLM_BIN"]
MAKE_MODEL = os.environ["VLLM_MAKE_MODEL"]
DATA = os.environ["VLLM_TEST_DATA_DIR"]
MODELS_DIR = os.environ["VLLM_SERVER_TEST_MODELS"]

# The recipe of tests/data/models/tiny-phi/golden.json (weights.seed, weights.dtype).
TINY_PHI = {"seed": 11, "dtype": "float16", "tokenizer": ["vocab.json", "merges.txt"]}


def tiny_phi_dir():
    out = os.path.join(MODELS_DIR, "tiny-phi")
    if os.path.exists(os.path.join(out, ".complete")):
        return out
    os.makedirs(MODELS_DIR, exist_ok=True)
    tmp = "%s.tmp-%d" % (out, os.getpid())
    shutil.rmtree(tmp, ignore_errors=True)
    m = os.path.join(DATA, "models", "tiny-phi")
    copies = [os.path.join(m, "generation_config.json"), os.path.join(m, "tokenizer_config.json")]
    copies += [os.path.join(DATA, "tokenizers", "tiny-phi", f) for f in TINY_PHI["tokenizer"]]
    cmd = [MAKE_MODEL, "--config", os.path.join(m, "config.json"), "--out", tmp, "--seed", str(TINY_PHI["seed"]),
           "--dtype", TINY_PHI["dtype"]]
    for c in copies:
        cmd += ["--copy", c]
    subprocess.run(cmd, check=True, capture_output=True)
    open(os.path.join(tmp, ".complete"), "w").close()
    try:
        os.rename(tmp, out)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another test made it first
    return out


def free_port():
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`vllm serve ARGS` on 127.0.0.1 and a free port; the log is collected as it comes."""

    def __init__(self, model, extra_args=(), env=None, timeout=120):
        args = [VLLM, "serve", model, "--host", "127.0.0.1", "--port", "0", "--dtype", "float32",
                "--kv-cache-space", "0.25", *extra_args]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        self.lines = []
        self.port = None
        ready = threading.Event()

        def read():
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace")
                self.lines.append(line)
                m = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()  # exited

        threading.Thread(target=read, daemon=True).start()
        deadline = time.time() + timeout
        while not ready.wait(0.2):
            if time.time() > deadline:
                self.stop()
                raise RuntimeError("server did not start in time:\n" + self.log())
        if self.port is None:
            self.proc.wait()
            raise RuntimeError("server exited (code %s) before listening:\n%s" % (self.proc.returncode, self.log()))
        self.url = "http://127.0.0.1:%d" % self.port

    def log(self):
        return "".join(self.lines)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def post_json(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def run_vllm(*args, stdin=None, timeout=300):
    p = subprocess.run([VLLM, *args], input=stdin.encode() if stdin is not None else None, capture_output=True,
                       timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")
