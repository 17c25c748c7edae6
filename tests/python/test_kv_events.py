"""LLM(kv_events_config=...): the KV cache events a router gets, read with pyzmq and msgpack as in
docs/kv_events.md (vLLM's wire layout: [ts, [events], dp_rank], events as tagged arrays)."""

import os
import tempfile
import time

import pytest

from vllm import LLM, SamplingParams

zmq = pytest.importorskip("zmq")
msgpack = pytest.importorskip("msgpack")


def receive_all(sub, idle_ms):
    out = []
    while sub.poll(idle_ms):
        topic, seq, payload = sub.recv_multipart()
        assert topic == b"kv-events"
        out.append((int.from_bytes(seq, "big"), msgpack.unpackb(payload)))
    return out


def test_block_stored_and_cleared_reach_a_python_subscriber(tiny_phi):
    endpoint = "ipc://" + os.path.join(tempfile.gettempdir(), "vllm-kvev-py-%d" % os.getpid())
    llm = LLM(tiny_phi, dtype="float32", block_size=4, kv_cache_space=0.05,
              kv_events_config={"enable_kv_cache_events": True, "publisher": "zmq", "endpoint": endpoint,
                                "topic": "kv-events"})
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt_string(zmq.SUBSCRIBE, "kv-events")
    sub.connect(endpoint)
    try:
        sync = []
        for _ in range(100):  # until the subscription has reached the publisher
            assert llm.reset_prefix_cache() is True
            sync = receive_all(sub, 100)
            if sync:
                break
        assert sync and sync[0][1][1] == [["AllBlocksCleared"]]

        prompt = [5, 6, 7, 8, 9, 10, 11, 12, 13]
        llm.generate({"prompt_token_ids": prompt}, SamplingParams(temperature=0, max_tokens=1, ignore_eos=True),
                     use_tqdm=False)
        got = receive_all(sub, 300)
        assert len(got) == 1
        seq, (ts, events, dp_rank) = got[0]
        assert seq == sync[-1][0] + 1
        assert abs(ts - time.time()) < 60 and dp_rank == 0
        assert len(events) == 1
        tag, hashes, parent, token_ids, block_size, lora_id, medium, lora_name = events[0]
        assert (tag, parent, token_ids, block_size, lora_id, medium, lora_name) == \
            ("BlockStored", None, prompt[:8], 4, None, "GPU", None)
        assert len(hashes) == 2 and all(isinstance(h, int) and 0 <= h < 2**64 for h in hashes)
    finally:
        sub.close(linger=0)
        llm.shutdown()
