"""`vllm serve org/name` end to end against the fake Hub (tests/hub/fake_hub.py) on 127.0.0.1:
a first start downloads the model into an empty HF_HUB_CACHE (huggingface_hub's layout) and serves
it; the weights' download is cut mid-body once and resumes with a Range request; a second start
with HF_HUB_OFFLINE=1 and the fake Hub stopped serves the cached copy and answers the same."""
import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
from vllm_server import Server, post_json, tiny_phi_dir  # noqa: E402

FAKE_HUB = os.path.join(os.path.dirname(__file__), "fake_hub.py")
REPO = "org/tiny-phi"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self, manifest_path):
        self.proc = subprocess.Popen([sys.executable, FAKE_HUB, manifest_path], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)
        self.url = "http://127.0.0.1:%d" % int(self.proc.stdout.readline())

    def stop(self):
        self.proc.stdin.close()  # it exits when its stdin closes
        self.proc.wait(10)


def completion(server):
    status, body = post_json(server.url + "/v1/completions",
                             {"model": "tiny-phi", "prompt": "San Francisco is a", "max_tokens": 16, "temperature": 0})
    assert status == 200, body
    assert body["usage"]["prompt_tokens"] == 4 and body["usage"]["completion_tokens"] == 16
    return body["choices"][0]["text"]


@pytest.fixture
def hub(tmp_path):
    model = tiny_phi_dir()
    files = sorted(f for f in os.listdir(model) if not f.startswith("."))
    weights_size = os.path.getsize(os.path.join(model, "model.safetensors"))
    manifest = {
        "log": str(tmp_path / "requests.jsonl"),
        "repos": {REPO: {"commit": COMMIT, "refs": {"main": COMMIT},
                         "files": {f: {"path": os.path.join(model, f), "lfs": f.endswith(".safetensors")}
                                   for f in files}}},
        # The weights' first download dies a third of the way in.
        "drop_once": {REPO + "/model.safetensors": weights_size // 3},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    h = FakeHub(str(tmp_path / "manifest.json"))
    h.files, h.cut, h.log_path = files, weights_size // 3, tmp_path / "requests.jsonl"
    yield h
    if h.proc.poll() is None:
        h.stop()


def test_download_resume_then_offline(hub, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    env = {"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(cache), "HF_HOME": str(tmp_path / "home")}
    env.pop("HF_HUB_OFFLINE", None)
    os.environ.pop("HF_HUB_OFFLINE", None)
    first = Server(REPO, ["--served-model-name", "tiny-phi"], env=env)
    try:
        text = completion(first)
    finally:
        assert first.stop() == 0, first.log()[-3000:]

    # The cache as huggingface_hub lays it out, every file of the repository in the snapshot.
    repo_dir = cache / "models--org--tiny-phi"
    assert (repo_dir / "refs" / "main").read_text().strip() == COMMIT
    snapshot = repo_dir / "snapshots" / COMMIT
    assert sorted(os.listdir(snapshot)) == hub.files
    assert not [b for b in os.listdir(repo_dir / "blobs") if b.endswith(".incomplete")]

    # The cut transfer was resumed from where it stopped, not started again.
    requests = [json.loads(line) for line in hub.log_path.read_text().splitlines()]
    cdn = [r for r in requests if r["path"].startswith("/cdn/") and r["method"] == "GET"]
    assert [r["range"] for r in cdn] == [None, "bytes=%d-" % hub.cut], cdn

    # Offline, with the Hub gone: served from the cache, the same answer.
    hub.stop()
    second = Server(REPO, ["--served-model-name", "tiny-phi"], env={**env, "HF_HUB_OFFLINE": "1"})
    try:
        assert completion(second) == text
    finally:
        assert second.stop() == 0, second.log()[-3000:]


def test_offline_with_empty_cache_is_a_clear_error(tmp_path):
    env = {"HF_HUB_CACHE": str(tmp_path / "empty"), "HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1",
           "HF_ENDPOINT": "http://127.0.0.1:9"}
    with pytest.raises(RuntimeError, match="HF_HUB_OFFLINE"):
        Server(REPO, ["--served-model-name", "tiny-phi"], env=env, timeout=60)
