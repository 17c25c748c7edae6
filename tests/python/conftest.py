"""Fixtures of the Python API tests: the repository's python/ on sys.path, the extension of the
build under test (VLLM_BUILD_DIR, set by ctest), and the tiny-phi test model made with that
build's vllm-make-model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("VLLM_TEST_DATA_DIR", ROOT / "tests" / "data"))
sys.path.insert(0, str(ROOT / "python"))


def build_dir() -> Path:
    env = os.environ.get("VLLM_BUILD_DIR")
    if env:
        return Path(env)
    for name in ("release", "py"):
        candidate = ROOT / "build" / name
        if list((candidate / "python" / "vllm").glob("_vllm_cpp*.so")):
            os.environ["VLLM_BUILD_DIR"] = str(candidate)
            return candidate
    pytest.exit("no build with the _vllm_cpp extension: set VLLM_BUILD_DIR", returncode=2)


BUILD = build_dir()


def subprocess_env() -> dict:
    """Environment for child interpreters: this checkout's package and this build's extension."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "python") + os.pathsep + env.get("PYTHONPATH", "")
    env["VLLM_BUILD_DIR"] = str(BUILD)
    return env


@pytest.fixture(scope="session")
def tiny_phi(tmp_path_factory) -> str:
    """The tiny-phi model folder (float16 weights, seed 11: the recipe golden.json was made with)."""
    make = os.environ.get("VLLM_MAKE_MODEL", str(BUILD / "tools" / "vllm-make-model"))
    out = tmp_path_factory.mktemp("models") / "tiny-phi"
    model = DATA / "models" / "tiny-phi"
    tok = DATA / "tokenizers" / "tiny-phi"
    cmd = [make, "--config", str(model / "config.json"), "--out", str(out), "--seed", "11", "--dtype", "float16"]
    for f in (model / "generation_config.json", model / "tokenizer_config.json", tok / "vocab.json", tok / "merges.txt"):
        cmd += ["--copy", str(f)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return str(out)


@pytest.fixture(scope="session")
def golden() -> dict:
    with open(DATA / "models" / "tiny-phi" / "golden.json", encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def llm32(tiny_phi):
    """One float32 LLM shared by the tests that only generate (small KV cache: fast to make)."""
    from vllm import LLM

    llm = LLM(model=tiny_phi, dtype="float32", kv_cache_space=0.25)
    yield llm
    llm.shutdown()
