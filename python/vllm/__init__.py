"""vllm-cpp's Python package: vLLM's offline inference API over the C++ engine.

    from vllm import LLM, SamplingParams
    llm = LLM(model="path/to/model")
    outputs = llm.generate(["Hello, my name is"], SamplingParams(temperature=0.8, top_p=0.95))

Importing the package is cheap: the classes load on first use, and the C++ extension
(vllm._vllm_cpp) only when an LLM or a tokenizer is created.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "LLM": "vllm.entrypoints.llm",
    "SamplingParams": "vllm.sampling_params",
    "BeamSearchParams": "vllm.sampling_params",
    "StructuredOutputsParams": "vllm.sampling_params",
    "GuidedDecodingParams": "vllm.sampling_params",
    "RequestOutputKind": "vllm.sampling_params",
    "RequestOutput": "vllm.outputs",
    "CompletionOutput": "vllm.outputs",
    "Logprob": "vllm.logprobs",
    "TextPrompt": "vllm.inputs",
    "TokensPrompt": "vllm.inputs",
    "PromptType": "vllm.inputs",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vllm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
