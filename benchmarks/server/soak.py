#!/usr/bin/env python3
"""Soak test of a running `vllm serve` (issue 20): drives it for a long time at a fixed fraction of
its measured capacity with a mix of requests (streamed and not, chat and completions, streams the
client abandons part way, constrained JSON, bad requests), and every --sample seconds records the
server's RSS, open file descriptors, KV-cache usage, queue lengths and the window's latency.
Standard library only.

  vllm serve MODEL --port 8000 --kv-cache-space 0.25 --disable-log-requests &
  benchmarks/server/soak.py --url http://127.0.0.1:8000 --pid $! --minutes 30

First it measures capacity: requests per second completed with --probe-concurrency requests in
flight for --probe-seconds. Then it sends requests as a Poisson process at --load (0.8) of that.
The KV cache is reserved at start and its pages are touched as blocks are first used, so RSS
climbs until every block has held a request once (4 GiB by default): a small --kv-cache-space lets
that happen within the warm-up. It checks, and exits non-zero if any check fails:
  - every request is answered exactly once with the status its kind expects (200, or 400 for the
    bad ones); no connection errors, no timeouts;
  - token counts are exact: each completed request generates exactly max_tokens tokens (ignore_eos),
    usage.completion_tokens says so, and a stream's token_ids add up to it;
  - after warm-up (the first --warmup fraction of the run), RSS stays within 5% of its level then,
    and once the load stops the server holds no more descriptors than before it;
  - when the load stops, the KV cache drains to 0% and no request is left running or waiting.
Prints a markdown table (one row per --table-every seconds) and the verdict; --csv writes every sample.
"""
import argparse
import http.client
import json
import os
import queue
import random
import statistics
import sys
import threading
import time
import urllib.parse

LOCK = threading.Lock()


def proc_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def proc_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Server:
    def __init__(self, url, model, timeout):
        u = urllib.parse.urlparse(url)
        self.host, self.port = u.hostname, u.port or 80
        self.model = model
        self.timeout = timeout

    def conn(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def metrics(self):
        c = self.conn()
        try:
            c.request("GET", "/metrics")
            text = c.getresponse().read().decode()
        finally:
            c.close()
        out = {}
        for line in text.splitlines():
            if line.startswith("#") or " " not in line:
                continue
            name, value = line.rsplit(" ", 1)
            name = name.split("{", 1)[0]
            if name in ("vllm:kv_cache_usage_perc", "vllm:num_requests_running", "vllm:num_requests_waiting",
                        "vllm:num_requests_output_paused"):
                out[name.split(":")[1]] = float(value)
        return out


def sse_events(resp):
    """Yields each `data:` payload of a text/event-stream response."""
    buf = b""
    while True:
        chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
        if not chunk:
            return
        buf += chunk
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            for line in event.split(b"\n"):
                if line.startswith(b"data: "):
                    yield line[6:].decode()


class Failure(Exception):
    pass


# Each kind: (share of the mix, function(server, rng) -> None, raising Failure on a wrong answer).
def chat_stream(s, rng, max_tokens):
    body = {"model": s.model, "messages": [{"role": "user", "content": f"Tell me about {rng.randrange(10**6)}"}],
            "max_tokens": max_tokens, "ignore_eos": True, "stream": True, "return_token_ids": True,
            "stream_options": {"include_usage": True}, "temperature": 0.8, "seed": rng.randrange(1 << 30)}
    c = s.conn()
    try:
        c.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
        r = c.getresponse()
        if r.status != 200:
            raise Failure(f"chat stream: HTTP {r.status} {r.read()[:200]!r}")
        tokens, usage, done, finish = 0, None, False, None
        for data in sse_events(r):
            if data == "[DONE]":
                done = True
                break
            j = json.loads(data)
            if j.get("usage") and not j["choices"]:
                usage = j["usage"]
            for ch in j["choices"]:
                tokens += len(ch.get("token_ids") or [])
                finish = ch.get("finish_reason") or finish
        if not done or usage is None:
            raise Failure("chat stream ended without usage and [DONE]")
        if tokens != max_tokens or usage["completion_tokens"] != max_tokens or finish != "length":
            raise Failure(f"chat stream: {tokens} token ids, usage {usage['completion_tokens']}, "
                          f"finish {finish}, want {max_tokens} and length")
    finally:
        c.close()


def completion(s, rng, max_tokens):
    body = {"model": s.model, "prompt": f"Once upon a time {rng.randrange(10**6)}", "max_tokens": max_tokens,
            "ignore_eos": True, "temperature": 0.8, "seed": rng.randrange(1 << 30)}
    c = s.conn()
    try:
        c.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        if r.status != 200:
            raise Failure(f"completion: HTTP {r.status} {data[:200]!r}")
        j = json.loads(data)
        if j["usage"]["completion_tokens"] != max_tokens or j["choices"][0]["finish_reason"] != "length":
            raise Failure(f"completion: usage {j['usage']}, finish {j['choices'][0]['finish_reason']}")
    finally:
        c.close()


def abandoned_stream(s, rng, max_tokens):
    """Reads a few chunks of a stream, then drops the connection: the server must abort it."""
    body = {"model": s.model, "prompt": f"Abandon {rng.randrange(10**6)}", "max_tokens": max_tokens * 4,
            "ignore_eos": True, "stream": True}
    c = s.conn()
    try:
        c.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
        r = c.getresponse()
        if r.status != 200:
            raise Failure(f"abandoned stream: HTTP {r.status}")
        want = rng.randrange(1, 4)
        for i, _ in enumerate(sse_events(r)):
            if i + 1 >= want:
                break
    finally:
        c.close()


def constrained_json(s, rng, max_tokens):
    body = {"model": s.model, "messages": [{"role": "user", "content": "A JSON object please"}],
            "max_tokens": max_tokens, "temperature": 1.0, "seed": rng.randrange(1 << 30),
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {
                "type": "object", "properties": {"n": {"type": "integer"}, "s": {"type": "string", "maxLength": 8}},
                "required": ["n", "s"], "additionalProperties": False}}}}
    c = s.conn()
    try:
        c.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        if r.status != 200:
            raise Failure(f"constrained: HTTP {r.status} {data[:200]!r}")
        j = json.loads(data)
        ch = j["choices"][0]
        if ch["finish_reason"] == "stop":
            doc = json.loads(ch["message"]["content"])  # raises on invalid JSON: a failure
            if set(doc) != {"n", "s"}:
                raise Failure(f"constrained: {doc}")
        if j["usage"]["completion_tokens"] > max_tokens:
            raise Failure(f"constrained: usage {j['usage']}")
    finally:
        c.close()


BAD_BODIES = [
    b"{not json",
    b'{"prompt": "x", "max_tokens": -1}',
    b'{"prompt": "x", "temperature": "hot"}',
    b"[" * 5000 + b"]" * 5000,
    b'{"messages": "not a list"}',
]


def bad_request(s, rng, max_tokens):
    body = rng.choice(BAD_BODIES)
    path = "/v1/chat/completions" if b"messages" in body else "/v1/completions"
    c = s.conn()
    try:
        c.request("POST", path, body, {"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        if r.status != 400:
            raise Failure(f"bad request: HTTP {r.status}, want 400: {data[:200]!r}")
        if "error" not in json.loads(data):
            raise Failure("bad request: no OpenAI error object")
    finally:
        c.close()


MIX = [(0.35, "chat_stream", chat_stream), (0.25, "completion", completion), (0.15, "abandoned", abandoned_stream),
       (0.15, "constrained", constrained_json), (0.10, "bad", bad_request)]


class Stats:
    def __init__(self):
        self.sent = self.answered = self.failed = 0
        self.latencies = []  # (finish time, seconds), this window
        self.failures = []

    def window_latencies(self):
        with LOCK:
            lat, self.latencies = self.latencies, []
        return [x for _, x in lat]


def run_one(s, stats, kind, fn, rng, max_tokens):
    t0 = time.perf_counter()
    try:
        fn(s, rng, max_tokens)
        with LOCK:
            stats.answered += 1
            if kind != "bad" and kind != "abandoned":
                stats.latencies.append((time.time(), time.perf_counter() - t0))
    except Exception as e:  # a Failure, or a connection error / timeout: both count
        with LOCK:
            stats.failed += 1
            if len(stats.failures) < 20:
                stats.failures.append(f"{kind}: {type(e).__name__}: {e}")


def worker(q, s, stats, max_tokens):
    while True:
        item = q.get()
        if item is None:
            return
        kind, fn, seed = item
        run_one(s, stats, kind, fn, random.Random(seed), max_tokens)


def probe_capacity(s, args):
    """Completed requests per second with probe_concurrency requests always in flight (the same mix)."""
    stats = Stats()
    stop = time.perf_counter() + args.probe_seconds
    rng = random.Random(1)

    def loop(i):
        r = random.Random(1000 + i)
        while time.perf_counter() < stop:
            kind, fn = pick(r)
            run_one(s, stats, kind, fn, random.Random(r.randrange(1 << 30)), args.max_tokens)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(args.probe_concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    del rng
    secs = time.perf_counter() - t0
    if stats.failed:
        sys.exit(f"soak: the capacity probe saw failures: {stats.failures[:5]}")
    return stats.answered / secs


def pick(rng):
    x = rng.random()
    for share, kind, fn in MIX:
        if x < share:
            return kind, fn
        x -= share
    return MIX[-1][1], MIX[-1][2]


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--pid", type=int, required=True, help="the server's process id (for RSS and descriptors)")
    ap.add_argument("--model", default=None, help="model name (default: the server's first)")
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--load", type=float, default=0.8, help="fraction of the measured capacity")
    ap.add_argument("--rate", type=float, default=None, help="requests per second (skips the capacity probe)")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--probe-seconds", type=float, default=60)
    ap.add_argument("--probe-concurrency", type=int, default=16)
    ap.add_argument("--sample", type=float, default=10, help="seconds between samples")
    ap.add_argument("--table-every", type=float, default=120, help="seconds between the table's rows")
    ap.add_argument("--warmup", type=float, default=0.2, help="fraction of the run before flatness is judged")
    ap.add_argument("--workers", type=int, default=128)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--csv", default=None)
    ap.add_argument("--only", choices=[k for _, k, _ in MIX], default=None, help="send one kind of request only")
    args = ap.parse_args()
    if args.only:
        MIX[:] = [(1.0, k, f) for _, k, f in MIX if k == args.only]

    s = Server(args.url, args.model, args.timeout)
    if s.model is None:
        c = s.conn()
        c.request("GET", "/v1/models")
        s.model = json.loads(c.getresponse().read())["data"][0]["id"]
        c.close()

    capacity = None
    if args.rate is None:
        capacity = probe_capacity(s, args)
        rate = args.load * capacity
        print(f"capacity: {capacity:.1f} requests/s with {args.probe_concurrency} in flight for "
              f"{args.probe_seconds:.0f} s; driving at {rate:.1f}/s ({args.load:.0%})", flush=True)
    else:
        rate = args.rate

    time.sleep(1)
    idle_fds = proc_fds(args.pid)  # with nothing in flight
    stats = Stats()
    q = queue.Queue()
    workers = [threading.Thread(target=worker, args=(q, s, stats, args.max_tokens), daemon=True)
               for _ in range(args.workers)]
    for w in workers:
        w.start()

    samples = []
    rng = random.Random(7)
    start = time.perf_counter()
    end = start + args.minutes * 60
    next_arrival = start
    next_sample = start + args.sample
    backlog_max = 0
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        if now >= next_sample:
            m = s.metrics()
            lat = stats.window_latencies()
            with LOCK:
                row = {"t": round(now - start), "rss_mib": proc_rss_mib(args.pid), "fds": proc_fds(args.pid),
                       "kv": m.get("kv_cache_usage_perc", float("nan")), "running": m.get("num_requests_running"),
                       "waiting": m.get("num_requests_waiting"), "sent": stats.sent, "answered": stats.answered,
                       "failed": stats.failed, "backlog": q.qsize(), "n_lat": len(lat), "p50": pct(lat, 50),
                       "p99": pct(lat, 99)}
            samples.append(row)
            print(json.dumps(row), flush=True)
            next_sample += args.sample
        if now >= next_arrival:
            kind, fn = pick(rng)
            with LOCK:
                stats.sent += 1
            q.put((kind, fn, rng.randrange(1 << 30)))
            backlog_max = max(backlog_max, q.qsize())
            next_arrival += rng.expovariate(rate)
            continue
        time.sleep(min(next_arrival, next_sample, end) - now if min(next_arrival, next_sample, end) > now else 0)

    for _ in workers:
        q.put(None)
    for w in workers:
        w.join(timeout=args.timeout + 30)
    # Drained: the KV cache and queues empty once nothing is in flight.
    time.sleep(2)
    end_fds = proc_fds(args.pid)
    m = s.metrics()
    drained = {"kv": m.get("kv_cache_usage_perc"), "running": m.get("num_requests_running"),
               "waiting": m.get("num_requests_waiting")}

    if args.csv:
        with open(args.csv, "w") as f:
            keys = list(samples[0].keys())
            f.write(",".join(keys) + "\n")
            for r in samples:
                f.write(",".join(str(r[k]) for k in keys) + "\n")

    # The table: one row per --table-every seconds, latency over that stretch.
    print()
    print(f"| minute | RSS MiB | open fds | KV used | running | waiting | requests answered | p50 s | p99 s |")
    print("|---|---|---|---|---|---|---|---|---|")
    step = max(1, int(round(args.table_every / args.sample)))
    for i in range(step - 1, len(samples), step):
        chunk = samples[i - step + 1:i + 1]
        p50s = [r["p50"] for r in chunk if r["n_lat"]]
        p99s = [r["p99"] for r in chunk if r["n_lat"]]
        r = samples[i]
        print(f"| {r['t'] / 60:.0f} | {r['rss_mib']:.1f} | {r['fds']} | {r['kv']:.1%} | {r['running']:.0f} | "
              f"{r['waiting']:.0f} | {r['answered']} | {statistics.median(p50s) if p50s else float('nan'):.3f} | "
              f"{max(p99s) if p99s else float('nan'):.3f} |")

    checks = []
    warm = [r for r in samples if r["t"] >= args.warmup * args.minutes * 60]
    if warm:
        base_rss = warm[0]["rss_mib"]
        max_rss = max(r["rss_mib"] for r in warm)
        checks.append((max_rss <= base_rss * 1.05, f"RSS after warm-up {base_rss:.1f} MiB, at most {max_rss:.1f} MiB "
                                                   f"(+{(max_rss / base_rss - 1):.1%}; limit +5%)"))
    checks.append((end_fds <= idle_fds, f"open descriptors with nothing in flight: {idle_fds} before the load, {end_fds} "
                                        f"after it (at most {max(r['fds'] for r in samples)} during it, one per connection)"))
    checks.append((stats.failed == 0 and stats.answered == stats.sent,
                   f"requests: {stats.sent} sent, {stats.answered} answered as expected, {stats.failed} failed"))
    checks.append((drained["kv"] == 0 and drained["running"] == 0 and drained["waiting"] == 0,
                   f"after the load: KV {drained['kv']}, running {drained['running']}, waiting {drained['waiting']}"))
    checks.append((backlog_max < args.workers, f"client backlog at most {backlog_max} (workers {args.workers})"))
    print()
    print(f"command: {' '.join(sys.argv)}")
    if capacity:
        print(f"capacity {capacity:.1f} req/s; load {rate:.1f} req/s")
    ok = True
    for good, text in checks:
        print(("ok    " if good else "FAIL  ") + text)
        ok &= good
    for f in stats.failures:
        print("  " + f)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
