"""Loads the C++ extension (_vllm_cpp) on first use, so that `import vllm` stays light.

The module is looked up in python/vllm/ (where scripts/install_python.sh links it), or, when the
environment names a build folder (VLLM_BUILD_DIR, as ctest sets it), in that build's
python/vllm/.
"""

import glob
import importlib.machinery
import importlib.util
import os
import sys

_module = None


def _load_from(folder: str):
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        for path in glob.glob(os.path.join(folder, "_vllm_cpp" + suffix)):
            spec = importlib.util.spec_from_file_location("vllm._vllm_cpp", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules["vllm._vllm_cpp"] = module
            return module
    return None


def ext():
    """The _vllm_cpp module (raises ImportError with the fix when it is not built)."""
    global _module
    if _module is not None:
        return _module
    build = os.environ.get("VLLM_BUILD_DIR")
    if build:
        _module = _load_from(os.path.join(build, "python", "vllm"))
        if _module is None:
            raise ImportError(
                f"VLLM_BUILD_DIR={build} has no _vllm_cpp extension in python/vllm/; build the "
                "_vllm_cpp target there"
            )
        return _module
    try:
        from vllm import _vllm_cpp as module  # noqa: PLC0415
    except ImportError as e:
        raise ImportError(
            "the vllm-cpp engine extension (vllm/_vllm_cpp) is not built or not installed: run "
            "scripts/setup.sh, or build the _vllm_cpp target and run scripts/install_python.sh "
            f"({e})"
        ) from e
    _module = module
    return _module
