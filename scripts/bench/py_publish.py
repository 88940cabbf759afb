"""A Python publisher for the streaming benchmark: serve the frames of a raw rgb24/rgba file
from Python at a fixed rate (or as fast as publish() returns), with framecast's
``serve``/``publish`` or pdum.rfb 0.3's, and time every publish() call.

    python scripts/bench/py_publish.py --impl framecast|pdum FRAMES --size 1920x1080
        [--format rgb24|rgba] [--fps 30] [--max-rate] [--port 8765] [--bitrate 8000000]
        [--offset-file PATH] [--stats-file PATH]

Runs until SIGTERM; then writes ``{"publish_us": [...]}`` (every call after the first 30) to
``--stats-file``. ``--offset-file``: pdum.rfb has no clock endpoint, so the Unix-minus-header
clock offset (µs) is written there for the probe. ``--max-rate``: publish back to back (the
encoders still take only the latest frame), and tell the server 1000 fps.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from pathlib import Path

import numpy as np


def load(path: str, w: int, h: int, fmt: str) -> np.ndarray:
    channels = {"rgb24": 3, "rgba": 4}[fmt]
    return np.fromfile(path, dtype=np.uint8).reshape(-1, h, w, channels)


class Loop:
    """The publish cadence and the per-call timings, shared by both packages."""

    def __init__(self, frames: np.ndarray, fps: float, max_rate: bool):
        self.frames, self.period, self.max_rate = frames, 1.0 / fps, max_rate
        self.publish_us: list[float] = []
        self.stop = False
        self.i = 0

    def publish(self, display, prepare=None) -> None:
        frame = self.frames[self.i % len(self.frames)]
        t0 = time.perf_counter()
        display.publish(prepare(frame) if prepare else frame)
        dt = (time.perf_counter() - t0) * 1e6
        if self.i >= 30:
            self.publish_us.append(dt)
        self.i += 1


def run_framecast(a, frames, w, h, loop: Loop) -> None:
    import framecast

    display = framecast.serve(
        w,
        h,
        host="127.0.0.1",
        port=a.port,
        fps=1000 if a.max_rate else a.fps,
        bitrate=a.bitrate,
        stats_interval=None,
    )
    due = time.monotonic()
    while not loop.stop:
        loop.publish(display)
        if not loop.max_rate:
            due += loop.period
            time.sleep(max(0.0, due - time.monotonic()))
    display.close()


def run_pdum(a, frames, w, h, loop: Loop) -> None:
    from pdum import rfb

    async def main() -> None:
        display = await rfb.serve(
            w, h, host="127.0.0.1", port=a.port, fps=1000 if a.max_rate else int(a.fps),
            bitrate=a.bitrate,
        )  # fmt: skip
        if a.offset_file:
            offset = time.time() * 1e6 - (time.monotonic() - display._start) * 1e6
            Path(a.offset_file).write_text(str(int(offset)))
        # pdum.rfb 0.3's H.264 encoder takes rgb24 only (RGBA frames end each connection
        # with 1011 "H264CpuEncoder expects CPU rgb24 frames"): drop the alpha first, as an
        # application would; the copy counts in publish()'s time and the CPU.
        prepare = (
            (lambda f: np.ascontiguousarray(f[..., :3])) if a.format == "rgba" else None
        )
        due = time.monotonic()
        while not loop.stop:
            loop.publish(display, prepare)
            if loop.max_rate:
                await asyncio.sleep(0)  # let its server tasks run
            else:
                due += loop.period
                await asyncio.sleep(max(0.0, due - time.monotonic()))
        await display.aclose()

    asyncio.run(main())


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument("frames")
    ap.add_argument("--impl", choices=["framecast", "pdum"], required=True)
    ap.add_argument("--size", required=True)
    ap.add_argument("--format", choices=["rgb24", "rgba"], default="rgb24")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--max-rate", action="store_true")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--bitrate", type=int, default=8_000_000)
    ap.add_argument("--offset-file")
    ap.add_argument("--stats-file")
    a = ap.parse_args()
    w, h = (int(x) for x in a.size.split("x"))
    loop = Loop(load(a.frames, w, h, a.format), a.fps, a.max_rate)

    def stop(*_):
        loop.stop = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    (run_framecast if a.impl == "framecast" else run_pdum)(a, loop.frames, w, h, loop)
    if a.stats_file:
        Path(a.stats_file).write_text(json.dumps({"publish_us": loop.publish_us}))


if __name__ == "__main__":
    main()
