#!/usr/bin/env python3
"""Figures for the `drop` profile over parts of a run (scripts/netbench.sh with SAMPLES= and,
for framecast, METRICS=): latency and freezes once adapted after the cut and after the
restore, and how long the server took to get back to full quality.

    python3 scripts/bench/drop_report.py SAMPLES [METRICS.trace] [--full-bps 8000000]

SAMPLES: the probe's per-frame lines (unix seconds, publish->receive ms, bytes, keyframe).
SAMPLES.events: netbench.sh's rate changes (unix seconds and the new rate, one per line).
METRICS.trace: framecast's /metrics, one JSON object per second (group target_bitrate).
Prints one JSON object.
"""

import argparse
import itertools
import json
from pathlib import Path


def pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, round((len(xs) - 1) * p))], 1)


def window(
    samples: list[tuple[float, float, int, int]], start: float, end: float
) -> dict:
    rows = [s for s in samples if start <= s[0] < end]
    lat = [s[1] for s in rows]
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(rows)]
    if rows:
        gaps += [rows[0][0] - start, end - rows[-1][0]]
    secs = end - start
    return {
        "seconds": round(secs, 1),
        "fps": round(len(rows) / secs, 1) if secs > 0 else None,
        "mbps": round(sum(s[2] for s in rows) * 8 / secs / 1e6, 2)
        if secs > 0
        else None,
        "p50_ms": pct(lat, 0.5),
        "p95_ms": pct(lat, 0.95),
        "p99_ms": pct(lat, 0.99),
        "longest_gap_ms": round(max(gaps) * 1e3, 1) if gaps else None,
        "keyframes": sum(s[3] for s in rows),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("samples")
    ap.add_argument("trace", nargs="?")
    ap.add_argument("--full-bps", type=int, default=8_000_000)
    a = ap.parse_args()
    samples = []
    for line in Path(a.samples).read_text().splitlines():
        t, ms, size, key = line.split("\t")
        samples.append((float(t), float(ms), int(size), int(key)))
    events = [
        line.split() for line in Path(a.samples + ".events").read_text().splitlines()
    ]
    cut, restore = float(events[0][0]), float(events[1][0])
    end = samples[-1][0] if samples else restore
    out = {
        "before_cut": window(samples, samples[0][0] if samples else cut, cut),
        "cut_first_3s": window(samples, cut, cut + 3),
        "cut_adapted": window(samples, cut + 3, restore),
        "restored_first_3s": window(samples, restore, restore + 3),
        "restored_adapted": window(samples, restore + 3, end),
    }
    if a.trace:
        full_at = None
        for line in Path(a.trace).read_text().splitlines():
            m = json.loads(line)
            if not m.get("viewers") or "unix_s" not in m:
                continue
            g = next(g for g in m["groups"] if g["id"] == m["viewers"][0]["group"])
            if m["unix_s"] >= restore and g["target_bitrate"] >= a.full_bps:
                full_at = m["unix_s"]
                break
        out["full_quality_after_restore_s"] = (
            round(full_at - restore, 1) if full_at else None
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
