#!/usr/bin/env python3
"""Measures what hostile clients cost a running `vllm serve` (issue 20): the time to answer a
body with many keys, the server's memory while a stream reader stops reading, and whether a
deeply nested body kills it. Standard library only.

  vllm serve MODEL --port 8000 --disable-log-stats --disable-uvicorn-access-log &
  benchmarks/server/hostile_clients.py --url http://127.0.0.1:8000 --pid $! [--model NAME]
"""
import argparse
import json
import os
import socket
import threading
import time
import urllib.request


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid):
    """User + system CPU time of the process so far (its other threads are idle here)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def post(url, body, timeout=600):
    req = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    return status, time.perf_counter() - t0, text


def many_keys(args, n):
    keys = ",".join(f'"k{i}":{i}' for i in range(n))
    body = f'{{"model":"{args.model}","prompt":"a",{keys}}}' if args.model else f'{{"prompt":"a",{keys}}}'
    best = best_cpu = None
    for _ in range(args.reps):
        cpu0 = cpu_seconds(args.pid)
        status, secs, _ = post(f"{args.url}/tokenize", body)
        cpu = cpu_seconds(args.pid) - cpu0
        best = secs if best is None else min(best, secs)
        best_cpu = cpu if best_cpu is None else min(best_cpu, cpu)
    print(f"/tokenize with {n} keys ({len(body) / 1e6:.1f} MB): HTTP {status}, {best:.3f} s wall, {best_cpu:.2f} s "
          f"server CPU (best of {args.reps})")


def deep(args):
    body = "[" * 100000 + "]" * 100000
    try:
        status, secs, text = post(f"{args.url}/tokenize", body, timeout=60)
        print(f"/tokenize with JSON nested 100000 deep: HTTP {status} in {secs:.3f} s: {text[:120]!r}")
    except Exception as e:  # noqa: BLE001 - a dead server is the finding
        print(f"/tokenize with JSON nested 100000 deep: no answer ({e})")


def slow_reader(args):
    host, port = args.url.split("//")[1].split(":")
    body = json.dumps({**({"model": args.model} if args.model else {}), "prompt": "a", "max_tokens": args.tokens,
                       "ignore_eos": True, "logprobs": 20, "n": args.n, "stream": True})
    request = (f"POST /v1/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n{body}").encode()
    # First a client that reads as fast as the server writes: the memory the request itself
    # takes (the KV cache's pages, ...). Then one that reads nothing for a while.
    before = rss_mib(args.pid)
    peak_fast = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak_fast[0] = max(peak_fast[0], rss_mib(args.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    with socket.create_connection((host, int(port))) as fast:
        fast.sendall(request)
        while not (chunk := fast.recv(1 << 20)).endswith(b"0\r\n\r\n") and chunk:
            pass
    done.set()
    sampler.join()
    print(f"fast reader: server RSS {before:.0f} MiB before, peak {peak_fast[0]:.0f} MiB (+{peak_fast[0] - before:.0f} MiB)")
    before = rss_mib(args.pid)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a reader that barely reads
    sock.connect((host, int(port)))
    sock.sendall(request)
    peak = before
    t0 = time.time()
    while time.time() - t0 < args.wait:
        time.sleep(0.5)
        peak = max(peak, rss_mib(args.pid))
    # Then read it all, to know how much was held back.
    sock.settimeout(600)
    total = 0
    try:
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if chunk.endswith(b"0\r\n\r\n"):
                break
    except OSError as e:
        print(f"  (connection ended: {e})")
    sock.close()
    print(f"slow reader ({args.n} x {args.tokens} tokens, logprobs 20): server RSS {before:.0f} MiB before, peak "
          f"{peak:.0f} MiB while not reading for {args.wait:.0f} s (+{peak - before:.0f} MiB); the stream was "
          f"{total / 2**20:.1f} MiB")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--pid", type=int, required=True, help="the server's process id (for its RSS)")
    p.add_argument("--model", default="")
    p.add_argument("--keys", type=int, default=160000)
    p.add_argument("--reps", type=int, default=3, help="requests with many keys (the best is shown)")
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--tokens", type=int, default=1500)
    p.add_argument("--wait", type=float, default=30)
    p.add_argument("--skip", default="", help="comma-separated: keys,slow,deep")
    args = p.parse_args()
    skip = set(args.skip.split(","))
    if "keys" not in skip:
        many_keys(args, args.keys)
    if "slow" not in skip:
        slow_reader(args)
    if "deep" not in skip:
        deep(args)


if __name__ == "__main__":
    main()
