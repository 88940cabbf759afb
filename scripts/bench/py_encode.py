"""Encoding from Python: framecast.Encoder.encode against PyAV's libx264 (ultrafast,
zerolatency) on the same frames in the same interpreter, and Display.publish() alone.

    python scripts/bench/py_encode.py FRAMES_DIR [--frames 120] [--publish-calls 300]

FRAMES_DIR holds testsrc2_1080p.rgb (1920x1080 rgb24, 60 frames; see streaming_bench.py) and,
for publish(), testsrc2_720p.rgb and testsrc2_2160p.rgb (10 frames are enough). Each encoder
gets rgb24 numpy frames and does its own RGB→YUV 4:2:0 conversion (framecast: inside encode();
PyAV: VideoFrame.from_ndarray(...).reformat("yuv420p"), swscale), at 8 Mb/s, 30 fps, one
thread each, 1-in-1-out. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import av
import framecast
import numpy as np


def load(path: Path, w: int, h: int) -> np.ndarray:
    return np.fromfile(path, dtype=np.uint8).reshape(-1, h, w, 3)


def stats(ms: list[float]) -> tuple[float, float]:
    s = sorted(ms)
    return statistics.median(s), s[min(len(s) - 1, int(0.95 * len(s)))]


def bench_framecast(frames: np.ndarray, n: int) -> list[float]:
    h, w = frames.shape[1:3]
    enc = framecast.Encoder(w, h, fps=30, bitrate=8_000_000)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        packets = enc.encode(frames[i % len(frames)])
        out.append((time.perf_counter() - t0) * 1e3)
        assert packets, "1-in-1-out"
    enc.close()
    return out[10:]


def bench_pyav(frames: np.ndarray, n: int) -> list[float]:
    h, w = frames.shape[1:3]
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = w, h, "yuv420p"
    ctx.framerate = 30
    ctx.bit_rate = 8_000_000
    ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "threads": "1"}
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        vf = av.VideoFrame.from_ndarray(
            frames[i % len(frames)], format="rgb24"
        ).reformat(format="yuv420p")
        vf.pts = i
        packets = ctx.encode(vf)
        out.append((time.perf_counter() - t0) * 1e3)
        assert packets, "zerolatency: 1-in-1-out"
    return out[10:]


def bench_publish(frames: np.ndarray, calls: int) -> list[float]:
    """publish() cost with one acking viewer-less server: the copy into the pool and return."""
    h, w = frames.shape[1:3]
    display = framecast.serve(w, h, port=0)
    out = []
    for i in range(calls):
        t0 = time.perf_counter()
        display.publish(frames[i % len(frames)])
        out.append((time.perf_counter() - t0) * 1e6)
        time.sleep(1 / 30)
    display.close()
    return out[10:]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument("frames_dir", type=Path)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--publish-calls", type=int, default=300)
    a = ap.parse_args()
    f1080 = load(a.frames_dir / "testsrc2_1080p.rgb", 1920, 1080)
    print("| 1080p rgb24, 8 Mb/s, one thread | encode ms p50 | p95 |")
    print("|---|--:|--:|")
    rows = {}
    for name, fn in (("framecast.Encoder (OpenH264)", bench_framecast),
                     ("PyAV libx264 ultrafast/zerolatency", bench_pyav)):  # fmt: skip
        rows[name] = stats(fn(f1080, a.frames))
        print(f"| {name} | {rows[name][0]:.2f} | {rows[name][1]:.2f} |")
    (fc, _), (x264, _) = rows.values()
    print(f"\nratio framecast / PyAV (p50): {fc / x264:.2f}\n")
    print("| publish() | µs p50 | p95 |")
    print("|---|--:|--:|")
    for size, (w, h) in (
        ("720p", (1280, 720)),
        ("1080p", (1920, 1080)),
        ("2160p", (3840, 2160)),
    ):
        frames = (
            f1080
            if size == "1080p"
            else load(a.frames_dir / f"testsrc2_{size}.rgb", w, h)
        )
        p50, p95 = stats(bench_publish(frames[:10], a.publish_calls))
        print(f"| {size} rgb24 | {p50:.0f} | {p95:.0f} |")


if __name__ == "__main__":
    main()
