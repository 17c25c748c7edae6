"""Creating and deleting LLM objects does not leak: resident memory stays flat."""

import gc

from vllm import LLM, SamplingParams


def rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


def test_create_and_delete_llm_20_times(tiny_phi):
    sp = SamplingParams(temperature=0.8, max_tokens=8, logprobs=2)
    samples = []
    for i in range(20):
        llm = LLM(model=tiny_phi)  # the defaults: a 4 GiB KV cache reservation, bfloat16
        out = llm.generate(["Hello, my name is", "The capital of France is"], sp, use_tqdm=False)
        assert len(out) == 2
        del llm, out
        gc.collect()
        samples.append(rss_kib())
    # After a few rounds of warm-up (allocator pools, caches), no round may end above the
    # warm-up level by more than 5%: a leak of a model or a KV cache per LLM would.
    warm = max(samples[2:6])
    assert max(samples[6:]) <= warm * 1.05, samples
