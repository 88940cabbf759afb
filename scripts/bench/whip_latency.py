"""WHIP publish -> receive latency at an aiortc endpoint (the peer the WHIP tests use).

    .venv/bin/python scripts/bench/whip_latency.py --framecast target/release/framecast \\
        [--size 1280x720] [--fps 30] [--seconds 20]

``framecast serve --pattern plasma --publish-whip URL`` (a separate process) pushes to the
aiortc endpoint of ``python/tests/whip_peer.py`` on loopback. Latency of a picture: the time
aiortc hands it out decoded (after its jitter buffer and PyAV's decode) minus the frame's
publish time. The publish time comes from the RTP timestamp framecast sends (the frame's
stream-clock time at 90 kHz; aiortc's rebasing of timestamps to 0 is undone here) and the
server's ``GET /time`` clock pair, which maps the stream clock to the wall clock (same
machine). Prints p50/p95 latency, the frame rate delivered after a 3 s warm-up, and the bitrate
target (kb/s) the stream had for the endpoint at the end (it follows the endpoint's estimate).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python" / "tests"))

import aiortc.rtcrtpreceiver
import whip_peer

# Keep the sender's RTP timestamps: aiortc rebases them to start at 0.
aiortc.rtcrtpreceiver.TimestampMapper.map = lambda self, timestamp: timestamp  # type: ignore[method-assign]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--framecast", default="target/release/framecast")
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    a = ap.parse_args()
    with whip_peer.WhipEndpoint() as ep:
        proc = subprocess.Popen(
            [
                a.framecast,
                "serve",
                "--pattern",
                "plasma",
                "--size",
                a.size,
                "--fps",
                str(a.fps),
            ]
            + ["--listen", "127.0.0.1:0", "--publish-whip", ep.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            line = proc.stdout.readline()  # "Serving at http://127.0.0.1:PORT/ ..."
            base = line.split()[2]
            with urllib.request.urlopen(base + "time", timeout=5) as r:
                clock = json.load(r)
            offset_us = clock["unix_us"] - clock["timestamp_us"]
            warm_until = time.time() + 3
            latencies, count, first, last = [], 0, None, None
            end = warm_until + a.seconds
            while time.time() < end:
                arrived, frame = ep.next_picture(10)
                if arrived < warm_until:
                    continue
                published_us = offset_us + frame.pts * 100 / 9
                latencies.append((arrived * 1e6 - published_us) / 1000)
                count += 1
                first = first or arrived
                last = arrived
            # What the stream sent the endpoint at the end: the tap's congestion target, which
            # follows the endpoint's bandwidth estimate.
            with urllib.request.urlopen(base + "metrics", timeout=5) as r:
                viewers = json.load(r)["viewers"]
            kbps = [round(v["congestion"]["target_bitrate"] / 1000) for v in viewers]
        finally:
            proc.terminate()
            proc.wait(10)
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    fps = (
        (count - 1) / (last - first)
        if last and first and last > first
        else float("nan")
    )
    print(
        f"| {a.size} @ {a.fps:g} | {len(latencies)} | {p50:.1f} | {p95:.1f} | {fps:.1f} | {kbps} |"
    )


if __name__ == "__main__":
    main()
