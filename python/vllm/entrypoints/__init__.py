"""Entry points of the vllm package (vLLM's module layout): the offline LLM class."""
