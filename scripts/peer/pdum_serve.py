"""pdum.rfb 0.3 as a benchmark peer: serve the frames of a raw rgb24 file at a fixed rate.

    .peer/bin/python scripts/peer/pdum_serve.py FRAMES.rgb --size 1920x1080 [--fps 30]
        [--host 127.0.0.1] [--port 8765] [--bitrate 8000000] [--adaptive]
        [--offset-file PATH]

Uses only pdum.rfb's public ``serve``/``publish``. pdum.rfb has no clock endpoint, so the
offset between its header clock (``time.monotonic()`` since the display started) and the Unix
clock is written to ``--offset-file`` (microseconds) for the probe's latency figures.
"""

import argparse
import asyncio
import time
from pathlib import Path

import numpy as np
from pdum.rfb import serve


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("frames")
    ap.add_argument("--size", required=True)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--bitrate", type=int, default=8_000_000)
    ap.add_argument("--adaptive", action="store_true")
    ap.add_argument("--offset-file")
    a = ap.parse_args()
    w, h = (int(x) for x in a.size.split("x"))
    frames = np.fromfile(a.frames, dtype=np.uint8).reshape(-1, h, w, 3)
    display = await serve(
        w,
        h,
        host=a.host,
        port=a.port,
        fps=int(a.fps),
        bitrate=a.bitrate,
        adaptive=a.adaptive,
    )
    if a.offset_file:
        offset = time.time() * 1e6 - (time.monotonic() - display._start) * 1e6
        Path(a.offset_file).write_text(str(int(offset)))
    period = 1.0 / a.fps
    due = time.monotonic()
    i = 0
    while True:
        display.publish(frames[i % len(frames)])
        i += 1
        due += period
        await asyncio.sleep(max(0.0, due - time.monotonic()))


asyncio.run(main())
