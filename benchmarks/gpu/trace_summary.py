#!/usr/bin/env python3
"""Summarise a kernel_trace.cpp CSV: where the GPU time of a repeated step goes.

    trace_summary.py trace.csv [--gap-us 15] [--top 25]

The timeline is cut into steps wherever the GPU sits idle for more than --gap-us (the host's
sampling and input upload between decode steps). Steps with the most common event count are the
steady state; for their median one the table attributes the step's span to its events: each event
is charged only the time it adds past everything that started before it (with programmatic
dependent launch a kernel starts while the one before is finishing, so raw durations overlap),
and the time nothing ran is charged to "idle".
"""
import argparse
import collections
import csv
import re
import statistics


def short_name(mangled):
    """The function's own name out of an Itanium-mangled one (gemv_kernel, not its namespaces)."""
    if not mangled.startswith("_Z"):
        return mangled.split("(")[0].split("<")[0][-60:]
    i = 2
    nested = mangled.startswith("_ZN")
    if nested:
        i = 3
    last = None
    while i < len(mangled) and mangled[i].isdigit():
        j = i
        while mangled[j].isdigit():
            j += 1
        n = int(mangled[i:j])
        last = mangled[j:j + n]
        i = j + n
        if not nested:
            break
    return last or mangled[:60]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--gap-us", type=float, default=15.0)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--list", help="also write every event of the median step to this file")
    a = ap.parse_args()
    ev = []
    with open(a.trace) as f:
        for r in csv.DictReader(f):
            ev.append((int(r["start_ns"]), int(r["end_ns"]), r["kind"], r["name"]))
    ev.sort()
    if not ev:
        print("no events")
        return
    steps, cur, frontier = [], [], None
    for e in ev:
        if cur and e[0] - frontier > a.gap_us * 1e3:
            steps.append(cur)
            cur, frontier = [], None
        cur.append(e)
        frontier = e[1] if frontier is None else max(frontier, e[1])
    steps.append(cur)
    counts = collections.Counter(len(s) for s in steps if len(s) >= 10)
    if not counts:
        print("no steps of 10 or more events")
        return
    n_mode, n_steps = counts.most_common(1)[0]
    same = [i for i, s in enumerate(steps) if len(s) == n_mode]
    spans = [steps[i][-1][1] - steps[i][0][0] for i in same]
    # Idle time from the end of a step to the start of the next: the host's part of the loop.
    between = [steps[i + 1][0][0] - max(e[1] for e in steps[i]) for i in same if i + 1 < len(steps)]
    med = same[sorted(range(len(same)), key=lambda j: spans[j])[len(same) // 2]]
    step = steps[med]
    print(f"{len(ev)} events, {len(steps)} steps; {n_steps} steps of {n_mode} events (the steady state)")
    print(f"step span: median {statistics.median(spans) / 1e3:.1f} us, min {min(spans) / 1e3:.1f}, "
          f"max {max(spans) / 1e3:.1f}; idle between steps: median "
          f"{statistics.median(between) / 1e3 if between else 0:.1f} us")
    inc = collections.Counter()
    cnt = collections.Counter()
    raw = collections.Counter()
    idle = 0
    frontier = step[0][0]
    rows = []
    for i, (s, e, kind, name) in enumerate(step):
        label = short_name(name) if kind == "K" else name.split(" ")[0] if kind == "M" else "memset"
        if s > frontier:
            idle += s - frontier
        add = max(0, e - max(s, frontier))
        frontier = max(frontier, e)
        inc[label] += add
        cnt[label] += 1
        raw[label] += e - s
        rows.append((add, i, label, e - s, s - step[0][0]))
    span = step[-1][1] - step[0][0]
    span = max(span, frontier - step[0][0])
    print(f"\nmedian step: {span / 1e3:.1f} us over {len(step)} events; idle inside it {idle / 1e3:.1f} us")
    print(f"{'adds':>10} {'share':>6} {'calls':>6} {'adds/call':>10} {'raw/call':>9}  name")
    for label, v in inc.most_common(a.top):
        print(f"{v / 1e3:8.1f}us {100 * v / span:5.1f}% {cnt[label]:6d} {v / cnt[label] / 1e3:8.2f}us "
              f"{raw[label] / cnt[label] / 1e3:7.2f}us  {label}")
    print(f"{idle / 1e3:8.1f}us {100 * idle / span:5.1f}%        idle (nothing running)")
    print("\nlargest single events of the median step (time added, position in the step):")
    for add, i, label, dur, _ in sorted(rows, reverse=True)[:12]:
        print(f"{add / 1e3:8.2f}us  #{i:<4d} {label} (ran {dur / 1e3:.2f} us)")
    if a.list:
        with open(a.list, "w") as f:
            f.write("index  start_us  ran_us  adds_us  name\n")
            for add, i, label, dur, off in sorted(rows, key=lambda r: r[1]):
                f.write(f"{i:5d} {off / 1e3:9.2f} {dur / 1e3:7.2f} {add / 1e3:8.2f}  {label}\n")


if __name__ == "__main__":
    main()
