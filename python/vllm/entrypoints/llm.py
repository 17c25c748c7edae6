"""The offline inference class (``vllm.LLM``): vLLM's LLM over the vllm-cpp engine."""

import itertools
import logging
import os
import time
import warnings
from typing import Any, Dict, List, Optional, Sequence, Union

from vllm._ext import ext
from vllm._progress import ProgressBar
from vllm.beam_search import BeamSearchOutput, BeamSearchSequence
from vllm.logprobs import logprobs_dict
from vllm.outputs import CompletionOutput, RequestOutput, request_output_from_engine
from vllm.sampling_params import BeamSearchParams, RequestOutputKind, SamplingParams
from vllm.tokenizer import CppTokenizer

logger = logging.getLogger(__name__)

_DTYPE_ALIASES = {
    "auto": "auto",
    "float32": "float32",
    "float": "float32",
    "fp32": "float32",
    "float16": "float16",
    "half": "float16",
    "fp16": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}

# Engine arguments of vLLM that vllm-cpp implements, beyond LLM's named parameters.
_SUPPORTED_KWARGS = {
    "kv_cache_space",
    "device",
    "num_gpu_blocks_override",
    "scheduling_policy",
    "enable_chunked_prefill",
    "max_logprobs",
    "generation_config",
    "load_format",
    "quantization",
    "kv_cache_dtype",
    "kv_events_config",
}

# Engine arguments whose only meaningful values are the ones vllm-cpp always has: any other
# value is refused rather than silently ignored.
_FIXED_KWARGS = {
    "pipeline_parallel_size": 1,
    "data_parallel_size": 1,
    "cpu_offload_gb": 0,
    "enable_lora": False,
    "speculative_config": None,
    "skip_tokenizer_init": False,
    "pooler_config": None,
    "override_pooler_config": None,
}

_SUPPORTED_TASKS = ("auto", "generate")
_SUPPORTED_TOKENIZER_MODES = ("auto", "hf", "fast")


def resolve_model(model: Optional[str], download_dir: Optional[str] = None, revision: Optional[str] = None) -> str:
    """The model folder for LLM(model=...): a local folder, a Hugging Face Hub id such as
    "microsoft/phi-1_5" (taken from the Hub cache, or downloaded into it: HF_HOME, HF_HUB_CACHE,
    HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE apply, as in huggingface_hub), or the default model
    for None. download_dir replaces the cache folder; revision is a branch, tag or commit.
    """
    if model is not None:
        model = os.fspath(model)
    return ext().resolve_model_folder(model or "", revision or "", os.fspath(download_dir) if download_dir else "")


def _normalize_dtype(dtype: Any) -> str:
    name = str(dtype)
    if name.startswith("torch."):
        name = name[len("torch.") :]
    key = name.lower()
    if key not in _DTYPE_ALIASES:
        raise ValueError(f"Unknown dtype: {dtype!r} (vllm-cpp supports auto, float32, float16 and bfloat16)")
    return _DTYPE_ALIASES[key]


class LLM:
    """An LLM for generating texts from given prompts and sampling parameters.

    This class includes a tokenizer, a language model and the memory for the KV cache. Given a
    batch of prompts and sampling parameters, it generates texts from the model with continuous
    batching and paged attention, like vLLM's LLM class.

    Args:
        model: A model folder laid out like a Hugging Face model (config.json, safetensors
            weights, tokenizer files). None: the default model of the set-up (models/default).
        tokenizer: A folder with the tokenizer files (default: the model folder).
        trust_remote_code: Accepted for compatibility; vllm-cpp runs no model code.
        tensor_parallel_size: Split every layer over this many ranks (on the CPU: threads sharing
            the cores and memory; the greedy tokens are those of tensor_parallel_size=1).
        dtype: "auto", "float32", "float16" (or "half") or "bfloat16".
        seed: The seed of the engine's random generator for sampling.
        max_model_len: The context length (default: the model's).
        gpu_memory_utilization: The fraction of GPU memory for the engine (CUDA).
        swap_space: Accepted for compatibility (vllm-cpp recomputes preempted requests).
        enforce_eager: Never capture CUDA graphs.
        enable_prefix_caching: Reuse the KV cache of shared prompt prefixes (default on).
        download_dir, revision: For models resolved from the Hugging Face cache.
        block_size: Tokens per KV cache block (default 16).
        max_num_seqs: Most sequences in one engine step (default 256).
        max_num_batched_tokens: The token budget of one engine step.
        **kwargs: Other vLLM engine arguments. vllm-cpp implements kv_cache_space (GiB of CPU KV
            cache, default VLLM_CPU_KVCACHE_SPACE or 4), device, num_gpu_blocks_override,
            scheduling_policy, enable_chunked_prefill, max_logprobs, generation_config and
            load_format ("auto", "safetensors", or "dummy": the recipe's random weights, made in
            memory from config.json alone), quantization ("fp8": online FP8 of a float checkpoint;
            default: the checkpoint's quantization_config, compressed-tensors or fp8) and
            kv_cache_dtype ("auto"; fp8 is refused on the CPU) and kv_events_config (vLLM's
            KVEventsConfig fields as a dict or JSON text: KV cache events published over ZeroMQ
            for routers, docs/kv_events.md).
            Arguments that only tune vLLM internals are accepted with a warning; values that
            vllm-cpp cannot honour raise ValueError.
    """

    def __init__(
        self,
        model: Optional[str] = None,
        *,
        tokenizer: Optional[str] = None,
        trust_remote_code: bool = False,
        tensor_parallel_size: int = 1,
        dtype: Any = "auto",
        seed: Optional[int] = 0,
        max_model_len: Optional[int] = None,
        gpu_memory_utilization: float = 0.9,
        swap_space: float = 4,
        enforce_eager: bool = False,
        enable_prefix_caching: Optional[bool] = None,
        download_dir: Optional[str] = None,
        revision: Optional[str] = None,
        block_size: Optional[int] = None,
        max_num_seqs: Optional[int] = None,
        max_num_batched_tokens: Optional[int] = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(tensor_parallel_size, bool) or not isinstance(tensor_parallel_size, int) or tensor_parallel_size < 1:
            raise ValueError(f"tensor_parallel_size must be a positive integer, got {tensor_parallel_size!r}")
        if not 0.0 < gpu_memory_utilization <= 1.0:
            raise ValueError(f"GPU memory utilization must be less than 1.0. Got {gpu_memory_utilization}.")
        if swap_space < 0:
            raise ValueError(f"swap_space must be non-negative, got {swap_space}.")

        args: Dict[str, Any] = {
            "model": resolve_model(model, download_dir, revision),
            "dtype": _normalize_dtype(dtype),
            "seed": 0 if seed is None else int(seed),
            "gpu_memory_utilization": float(gpu_memory_utilization),
            "enforce_eager": bool(enforce_eager),
            "tensor_parallel_size": tensor_parallel_size,
        }
        if tokenizer is not None:
            args["tokenizer"] = resolve_model(tokenizer, download_dir, None)
        if max_model_len is not None:
            args["max_model_len"] = int(max_model_len)
        if enable_prefix_caching is not None:
            args["enable_prefix_caching"] = bool(enable_prefix_caching)
        if block_size is not None:
            args["block_size"] = int(block_size)
        if max_num_seqs is not None:
            args["max_num_seqs"] = int(max_num_seqs)
        if max_num_batched_tokens is not None:
            args["max_num_batched_tokens"] = int(max_num_batched_tokens)
        if "VLLM_CPU_KVCACHE_SPACE" in os.environ and "kv_cache_space" not in kwargs:
            space = os.environ["VLLM_CPU_KVCACHE_SPACE"].strip()
            if space and space != "0":
                args["kv_cache_space"] = float(space)

        ignored = []
        for key, value in kwargs.items():
            if key == "kv_events_config" and value is not None and not isinstance(value, (str, dict)):
                value = dict(vars(value))  # a KVEventsConfig-like object: its fields
            if key in _SUPPORTED_KWARGS:
                if value is not None:
                    args[key] = value
            elif key == "data_parallel_size" and value not in (None, 1):
                raise ValueError(
                    f"data_parallel_size={value!r} is not supported by vllm-cpp's offline LLM, which runs one "
                    "engine; data-parallel replicas are served by `vllm serve --data-parallel-size N`"
                )
            elif key in _FIXED_KWARGS:
                if value != _FIXED_KWARGS[key] and not (value is None and _FIXED_KWARGS[key] in (0, False, "auto")):
                    raise ValueError(f"{key}={value!r} is not supported by vllm-cpp")
            elif key == "task":
                if value not in _SUPPORTED_TASKS:
                    raise ValueError(f"task={value!r} is not supported by vllm-cpp (text generation only)")
            elif key == "tokenizer_mode":
                if value not in _SUPPORTED_TOKENIZER_MODES:
                    ignored.append(key)
            elif key in ("disable_log_stats", "tokenizer_revision", "hf_token"):
                pass  # nothing to do here: stats are not logged, the Hub resolver takes tokens
            else:
                ignored.append(key)
        if ignored:
            warnings.warn(
                "vllm-cpp ignores these engine arguments, which only tune vLLM internals: " + ", ".join(sorted(ignored)),
                stacklevel=2,
            )
        self._trust_remote_code = trust_remote_code
        self._engine = ext().Engine(args)
        self.llm_engine = self._engine
        self.engine_config: Dict[str, Any] = self._engine.config()
        native = self._engine.tokenizer()
        self._tokenizer = CppTokenizer(native, self.engine_config["tokenizer"]) if native is not None else None
        self.request_counter = itertools.count()
        self.default_sampling_params: Optional[Dict[str, Any]] = None

    # --- tokenizer and defaults ----------------------------------------------------------------

    def get_tokenizer(self, lora_request: Any = None) -> CppTokenizer:
        if self._tokenizer is None:
            raise ValueError("this model folder has no tokenizer files; prompts must be token ids")
        return self._tokenizer

    def set_tokenizer(self, tokenizer: Any) -> None:
        raise NotImplementedError("vllm-cpp detokenizes with the model's own tokenizer; set_tokenizer is not supported")

    def get_default_sampling_params(self) -> SamplingParams:
        """SamplingParams() with the model's generation_config.json defaults, as vLLM does."""
        if self.default_sampling_params is None:
            defaults = dict(self._engine.generation_defaults())
            if "max_new_tokens" in defaults:
                defaults["max_tokens"] = defaults.pop("max_new_tokens")
            if defaults:
                logger.info(
                    "Default sampling parameters have been overridden by the model's Hugging Face "
                    "generation config recommended from the model creator. If this is not intended, "
                    "please relaunch vLLM instance with `generation_config='vllm'`."
                )
            self.default_sampling_params = defaults
        if self.default_sampling_params:
            return SamplingParams.from_optional(**self.default_sampling_params)
        return SamplingParams()

    # --- generation ----------------------------------------------------------------------------

    def generate(
        self,
        prompts: Any = None,
        sampling_params: Optional[Union[SamplingParams, Sequence[SamplingParams]]] = None,
        prompt_token_ids: Optional[Union[List[int], List[List[int]]]] = None,
        use_tqdm: bool = True,
        lora_request: Any = None,
        priority: Optional[List[int]] = None,
        **kwargs: Any,
    ) -> List[RequestOutput]:
        """Generates the completions for the input prompts, in the order of the prompts.

        Args:
            prompts: A prompt or a list of them: strings, {"prompt": text} dicts,
                {"prompt_token_ids": [...]} dicts, or lists of token ids.
            sampling_params: One SamplingParams for every prompt, or one per prompt. None: the
                model's defaults (generation_config.json) over SamplingParams().
            prompt_token_ids: vLLM's legacy way of giving token-id prompts.
            use_tqdm: Show a progress bar on stderr (or a tqdm-compatible class to use).
            lora_request: Must be None (LoRA is not supported).
            priority: Per-prompt priorities (scheduling_policy="priority").

        Ctrl-C (KeyboardInterrupt) aborts every request still in flight and is re-raised.
        """
        if lora_request is not None:
            raise ValueError("LoRA adapters are not supported by vllm-cpp")
        for key in kwargs:
            if key not in ("prompt_adapter_request", "guided_options_request", "tokenization_kwargs"):
                raise TypeError(f"generate() got an unexpected keyword argument '{key}'")
            if kwargs[key] is not None:
                raise ValueError(f"{key} is not supported by vllm-cpp")
        parsed = _parse_prompts(prompts, prompt_token_ids)
        if sampling_params is None:
            sampling_params = self.get_default_sampling_params()
        params_list = _params_per_prompt(sampling_params, len(parsed))
        if priority is not None:
            if len(priority) != len(parsed):
                raise ValueError("The lengths of prompts and priority must be the same.")
            if self.engine_config["scheduling_policy"] != "priority":
                for p in priority:
                    if p != 0:
                        raise ValueError(f"Got priority {p} but Priority scheduling is not enabled.")

        beam = [i for i, sp in enumerate(params_list) if sp.use_beam_search]
        if not beam:
            return self._generate(parsed, params_list, use_tqdm, priority)
        results: List[Optional[RequestOutput]] = [None] * len(parsed)
        plain = [i for i in range(len(parsed)) if i not in set(beam)]
        if plain:
            outs = self._generate(
                [parsed[i] for i in plain],
                [params_list[i] for i in plain],
                use_tqdm,
                None if priority is None else [priority[i] for i in plain],
            )
            for i, out in zip(plain, outs):
                results[i] = out
        for i in beam:
            results[i] = self._beam_search_request(parsed[i], params_list[i])
        return results  # type: ignore[return-value]

    def _generate(
        self,
        prompts: List[Dict[str, Any]],
        params_list: List[SamplingParams],
        use_tqdm: bool,
        priority: Optional[List[int]],
    ) -> List[RequestOutput]:
        if not prompts:
            return []
        # LLM.generate only reports finished requests.
        engine_params: Dict[int, Dict[str, Any]] = {}
        pending: Dict[str, int] = {}
        order: List[Optional[RequestOutput]] = [None] * len(prompts)
        bar = None
        try:
            adding = _progress_bar(use_tqdm, len(prompts), "Adding requests")
            for i, prompt in enumerate(prompts):
                sp = params_list[i]
                key = id(sp)
                if key not in engine_params:
                    d = sp.to_engine_dict()
                    d["output_kind"] = RequestOutputKind.FINAL_ONLY.value
                    engine_params[key] = d
                request_id = str(next(self.request_counter))
                prompt = self._truncate_prompt(prompt, sp.truncate_prompt_tokens)
                self._add_request(request_id, prompt, engine_params[key], 0 if priority is None else priority[i])
                pending[request_id] = i
                adding.update(1)
            adding.close()

            bar = _progress_bar(
                use_tqdm,
                len(prompts),
                "Processed prompts",
                postfix=f"est. speed input: {0:.2f} toks/s, output: {0:.2f} toks/s",
            )
            started = time.monotonic()
            total_in = total_out = 0
            while pending:
                step_outputs = self._engine.step()
                for d in step_outputs:
                    index = pending.get(d["request_id"])
                    if index is None or not d["finished"]:
                        continue
                    del pending[d["request_id"]]
                    out = request_output_from_engine(d, prompts[index].get("prompt"))
                    order[index] = out
                    if use_tqdm:
                        n = len(out.outputs)
                        total_in += len(out.prompt_token_ids) * n
                        total_out += sum(len(c.token_ids) for c in out.outputs)
                        elapsed = max(time.monotonic() - started, 1e-9)
                        bar.postfix = (
                            f"est. speed input: {total_in / elapsed:.2f} toks/s, "
                            f"output: {total_out / elapsed:.2f} toks/s"
                        )
                        bar.update(1)
                if pending and not step_outputs and not self._engine.has_unfinished():
                    raise RuntimeError(f"the engine lost {len(pending)} request(s)")
            bar.close()
        except BaseException:
            # Ctrl-C, or a bad prompt halfway through the list: nothing stays queued.
            for request_id in list(pending):
                try:
                    self._engine.abort_request(request_id)
                except Exception:  # noqa: BLE001 - the original error matters more
                    pass
            if bar is not None:
                bar.close()
            raise
        return order  # type: ignore[return-value]

    def _truncate_prompt(self, prompt: Dict[str, Any], keep: Optional[int]) -> Dict[str, Any]:
        """vLLM's truncate_prompt_tokens: only the last `keep` prompt tokens (-1: the model
        length) go to the engine; the output still reports the caller's prompt text."""
        if keep is None:
            return prompt
        if keep == -1:
            keep = self.engine_config["max_model_len"]
        ids = prompt.get("prompt_token_ids")
        if ids is None:
            ids = self.get_tokenizer().encode(prompt["prompt"])
        if len(ids) <= keep and "prompt_token_ids" in prompt:
            return prompt
        truncated = dict(prompt)
        truncated["prompt_token_ids"] = list(ids[-keep:])  # keep >= 1: SamplingParams checks it
        return truncated

    def _add_request(self, request_id: str, prompt: Dict[str, Any], params: Dict[str, Any], priority: int) -> None:
        self._engine.add_request(
            request_id,
            prompt.get("prompt") if "prompt_token_ids" not in prompt else None,
            prompt.get("prompt_token_ids"),
            params,
            priority,
            True,
            prompt.get("cache_salt"),
        )

    # --- chat ----------------------------------------------------------------------------------

    def chat(
        self,
        messages: Union[List[Dict[str, Any]], List[List[Dict[str, Any]]]],
        sampling_params: Optional[Union[SamplingParams, List[SamplingParams]]] = None,
        use_tqdm: bool = True,
        lora_request: Any = None,
        chat_template: Optional[str] = None,
        chat_template_content_format: str = "auto",
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        tools: Optional[List[Dict[str, Any]]] = None,
        chat_template_kwargs: Optional[Dict[str, Any]] = None,
        mm_processor_kwargs: Optional[Dict[str, Any]] = None,
    ) -> List[RequestOutput]:
        """Generates replies to a conversation (a list of {"role", "content"} messages) or to a
        list of conversations: each is rendered with the chat template (the tokenizer's, or
        `chat_template`, a template or a file) and generated from like generate()."""
        if mm_processor_kwargs is not None:
            raise ValueError("multi-modal inputs are not supported by vllm-cpp")
        if messages and all(isinstance(m, (list, tuple)) for m in messages):
            conversations = list(messages)
        else:
            conversations = [messages]
        tokenizer = self.get_tokenizer()
        if chat_template_content_format not in ("auto", "string", "openai"):
            raise ValueError(
                f"chat_template_content_format must be 'auto', 'string' or 'openai', not {chat_template_content_format!r}"
            )
        content_format = chat_template_content_format
        if content_format == "auto":  # as vLLM: "openai" when the template loops over a message's content
            source = tokenizer.get_chat_template(chat_template, tools)
            content_format = tokenizer._template(source).content_format
        prompts = []
        for conversation in conversations:
            if content_format == "string":
                # As vLLM (and the server): a message without content has "" (an assistant turn
                # with only tool_calls), which templates can test with `in` and `startswith`.
                conversation = [
                    dict(m, content="") if isinstance(m, dict) and m.get("content") is None else m for m in conversation
                ]
            text = tokenizer.apply_chat_template(
                list(conversation),
                tools=tools,
                chat_template=chat_template,
                add_generation_prompt=add_generation_prompt,
                continue_final_message=continue_final_message,
                tokenize=False,
                chat_template_content_format=content_format,
                **(chat_template_kwargs or {}),
            )
            # Special tokens come from the template, not from the tokenizer.
            prompts.append({"prompt_token_ids": tokenizer.encode(text, add_special_tokens=False), "prompt": text})
        return self.generate(prompts, sampling_params=sampling_params, use_tqdm=use_tqdm, lora_request=lora_request)

    # --- beam search ---------------------------------------------------------------------------

    def beam_search(
        self,
        prompts: List[Any],
        params: BeamSearchParams,
        lora_request: Any = None,
        use_tqdm: bool = False,
        concurrency_limit: Optional[int] = None,
    ) -> List[BeamSearchOutput]:
        """Beam search, as vLLM's LLM.beam_search, run by the engine: each step every live beam
        proposes its 2*beam_width most likely tokens and the beam_width best candidates by
        length-penalised cumulative log-probability live on. Beams are engine sequences forked
        from one another: they share their KV blocks, and a partly filled block is copied only
        when two beams write different tokens into it."""
        if lora_request is not None:
            raise ValueError("LoRA adapters are not supported by vllm-cpp")
        if isinstance(prompts, (str, dict)):
            prompts = [prompts]
        parsed = _parse_prompts(prompts, None)
        tokenizer = self._tokenizer
        prompt_ids = []
        for p in parsed:
            ids = p.get("prompt_token_ids")
            if ids is None:
                ids = self.get_tokenizer().encode(p["prompt"])
            prompt_ids.append(list(ids))
        limit = concurrency_limit or len(parsed) or 1
        bar = _progress_bar(use_tqdm, len(parsed), "Beam search")
        outputs: List[BeamSearchOutput] = []
        try:
            for start in range(0, len(parsed), limit):
                chunk = self._engine.beam_search(
                    prompt_ids[start : start + limit],
                    params.beam_width,
                    params.max_tokens,
                    params.ignore_eos,
                    params.temperature,
                    params.length_penalty,
                )
                for prompt, beams in zip(parsed[start : start + limit], chunk):
                    sequences = [
                        BeamSearchSequence(
                            tokens=list(b["tokens"]),
                            logprobs=[logprobs_dict(entries) for entries in b["logprobs"]],
                            cum_logprob=b["cum_logprob"],
                            text=tokenizer.decode(b["tokens"]) if tokenizer is not None else None,
                            finish_reason=b["finish_reason"],
                            orig_prompt=prompt,
                        )
                        for b in beams
                    ]
                    outputs.append(BeamSearchOutput(sequences=sequences))
                bar.update(len(chunk))
        finally:
            bar.close()
        return outputs

    def _beam_search_request(self, prompt: Dict[str, Any], sp: SamplingParams) -> RequestOutput:
        """generate() with use_beam_search=True (vLLM's older interface): the n best beams."""
        width = sp.best_of if sp.best_of is not None else sp.n
        params = BeamSearchParams(
            beam_width=width,
            max_tokens=sp.max_tokens if sp.max_tokens is not None else self.engine_config["max_model_len"],
            ignore_eos=sp.ignore_eos,
            temperature=0.0,
            length_penalty=sp.length_penalty,
        )
        result = self.beam_search([prompt], params)[0]
        ids = prompt.get("prompt_token_ids")
        if ids is None:
            ids = self.get_tokenizer().encode(prompt["prompt"])
        n_prompt = len(ids)
        outputs = []
        for index, beam in enumerate(result.sequences[: sp.n]):
            generated = beam.tokens[n_prompt:]
            text = ""
            if sp.detokenize and self._tokenizer is not None:
                text = self._tokenizer.decode(generated, skip_special_tokens=sp.skip_special_tokens)
            outputs.append(
                CompletionOutput(
                    index=index,
                    text=text,
                    token_ids=generated,
                    cumulative_logprob=beam.cum_logprob,
                    logprobs=beam.logprobs if sp.logprobs is not None else None,
                    finish_reason=beam.finish_reason,
                )
            )
        return RequestOutput(
            request_id=str(next(self.request_counter)),
            prompt=prompt.get("prompt"),
            prompt_token_ids=list(ids),
            prompt_logprobs=None,
            outputs=outputs,
            finished=True,
            num_cached_tokens=0,
        )

    # --- misc ----------------------------------------------------------------------------------

    def reset_prefix_cache(self) -> bool:
        """Forgets every cached prefix (as vLLM's; with kv_events_config, subscribers get
        AllBlocksCleared). Returns True."""
        return self._engine.reset_prefix_cache()

    def shutdown(self) -> None:
        """Frees the model and the KV cache now (the LLM is unusable afterwards)."""
        self._engine.close()

    def __repr__(self) -> str:
        c = self.engine_config
        return f"LLM(model={c['model']!r}, dtype={c['dtype']}, max_model_len={c['max_model_len']})"


def _progress_bar(use_tqdm: Any, total: int, desc: str, postfix: Optional[str] = None):
    """The bar for `use_tqdm`: ours for True/False, or vLLM's tqdm-compatible callable (for
    example tqdm.auto.tqdm) called as vLLM calls it."""
    if callable(use_tqdm):
        kwargs: Dict[str, Any] = {"total": total, "desc": desc, "dynamic_ncols": True}
        if postfix is not None:
            kwargs["postfix"] = postfix
        return use_tqdm(**kwargs)
    return ProgressBar(total, desc, enabled=bool(use_tqdm), postfix=postfix)


def _parse_prompts(prompts: Any, prompt_token_ids: Any) -> List[Dict[str, Any]]:
    """Every accepted prompt form as a list of {"prompt": ...} / {"prompt_token_ids": ...}."""
    if prompt_token_ids is not None:
        # vLLM's legacy arguments: texts and token ids side by side, token ids winning.
        if prompt_token_ids and isinstance(prompt_token_ids[0], int):
            prompt_token_ids = [prompt_token_ids]
        texts = None
        if prompts is not None:
            texts = [prompts] if isinstance(prompts, str) else list(prompts)
            if len(texts) != len(prompt_token_ids):
                raise ValueError("The lengths of prompts and prompt_token_ids must be the same.")
        out = []
        for i, ids in enumerate(prompt_token_ids):
            d: Dict[str, Any] = {"prompt_token_ids": _token_ids(ids)}
            if texts is not None:
                d["prompt"] = texts[i]
            out.append(d)
        return out
    if prompts is None:
        raise ValueError("Either prompts or prompt_token_ids must be provided.")
    if isinstance(prompts, (str, dict)):
        return [_parse_one(prompts)]
    # bytes would pass for a list of token ids; anything else not iterable gets a clear error.
    if isinstance(prompts, (bytes, bytearray)) or not hasattr(prompts, "__iter__"):
        raise TypeError(
            f"Invalid prompt type {type(prompts).__name__}: expected a string, a dict, a list of token ids "
            "or a list of prompts"
        )
    prompts = list(prompts)
    if prompts and all(isinstance(p, int) and not isinstance(p, bool) for p in prompts):
        return [{"prompt_token_ids": prompts}]  # one prompt of token ids
    return [_parse_one(p) for p in prompts]


def _token_ids(ids: Any) -> List[int]:
    if not isinstance(ids, (list, tuple)):
        raise TypeError(f"prompt_token_ids must be a list of integers, got {type(ids).__name__}")
    if not all(isinstance(t, int) and not isinstance(t, bool) for t in ids):
        raise TypeError("prompt_token_ids must be a list of integers")
    return list(ids)


def _parse_one(prompt: Any) -> Dict[str, Any]:
    if isinstance(prompt, str):
        return {"prompt": prompt}
    if isinstance(prompt, dict):
        if "multi_modal_data" in prompt and prompt["multi_modal_data"] is not None:
            raise ValueError("multi-modal inputs are not supported by vllm-cpp")
        if "prompt_embeds" in prompt:
            raise ValueError("prompt_embeds are not supported by vllm-cpp")
        if "prompt_token_ids" in prompt:
            d: Dict[str, Any] = {"prompt_token_ids": _token_ids(prompt["prompt_token_ids"])}
            if isinstance(prompt.get("prompt"), str):
                d["prompt"] = prompt["prompt"]
        elif "prompt" in prompt:
            if not isinstance(prompt["prompt"], str):
                raise TypeError(f"prompt must be a string, got {type(prompt['prompt']).__name__}")
            d = {"prompt": prompt["prompt"]}
        else:
            raise ValueError("a prompt dict needs 'prompt' or 'prompt_token_ids'")
        if prompt.get("cache_salt") is not None:
            d["cache_salt"] = prompt["cache_salt"]
        return d
    if isinstance(prompt, (list, tuple)):
        return {"prompt_token_ids": _token_ids(prompt)}
    raise TypeError(f"Invalid prompt type {type(prompt).__name__}: expected a string, a dict or a list of token ids")


def _params_per_prompt(sampling_params: Any, n: int) -> List[SamplingParams]:
    if isinstance(sampling_params, SamplingParams):
        return [sampling_params] * n
    if isinstance(sampling_params, (list, tuple)):
        if len(sampling_params) != n:
            raise ValueError("The lengths of prompts and params must be the same.")
        for sp in sampling_params:
            if not isinstance(sp, SamplingParams):
                raise TypeError(f"sampling_params must be SamplingParams, got {type(sp).__name__}")
        return list(sampling_params)
    raise TypeError(f"sampling_params must be SamplingParams or a list of them, got {type(sampling_params).__name__}")


__all__ = ["LLM"]
