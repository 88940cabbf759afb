"""framecast's x264 backend against ``ffmpeg -c:v libx264`` with the same settings on the same
frames, whole runs timed from outside (read raw NV12, encode, write Annex B).

    python3 scripts/bench/x264_wall.py --framecast target/release/framecast [--runs 5]

Frames: ``/tmp/t_WxH.nv12``, 240 frames of testsrc2 each, made with
``ffmpeg -f lavfi -i testsrc2=size=WxH:rate=30 -frames:v 240 -pix_fmt nv12 -f rawvideo``
(``--frames-dir`` moves them). Settings on both sides: preset ultrafast, tune zerolatency,
sliced threads (1 or 2), ABR at the bitrate with a one-second VBV, an IDR every 60 frames, no
scene cuts. Runs alternate between the two encoders; the table gives the median (and the
fastest) wall time per frame and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

SIZES = [("1280x720", 3555), ("1920x1080", 8000), ("3840x2160", 32000)]
FRAMES = 240


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(
        cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--framecast", default="target/release/framecast")
    ap.add_argument("--frames-dir", default="/tmp")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    print(
        "| size | threads | framecast x264 ms/frame (fastest) | ffmpeg libx264 ms/frame (fastest) | framecast / ffmpeg |"
    )
    print("|---|--:|--:|--:|--:|")
    for size, kbps in SIZES:
        src = f"{a.frames_dir}/t_{size}.nv12"
        for threads in (1, 2):
            ours = [
                a.framecast,
                "encode",
                src,
                "--size",
                size,
                "--fps",
                "30",
                "--backend",
                "x264",
            ]
            ours += [
                "--bitrate",
                f"{kbps}k",
                "--keyint",
                "60",
                "--threads",
                str(threads),
            ]
            ours += ["-o", "/tmp/x264_wall_fc.h264", "-q"]
            params = (
                f"sliced-threads=1:vbv-maxrate={kbps}:vbv-bufsize={kbps}:scenecut=0"
            )
            peer = [
                "ffmpeg",
                "-nostdin",
                "-v",
                "error",
                "-y",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "nv12",
            ]
            peer += [
                "-s",
                size,
                "-r",
                "30",
                "-i",
                src,
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
            ]
            peer += [
                "-tune",
                "zerolatency",
                "-threads",
                str(threads),
                "-x264-params",
                params,
            ]
            peer += ["-b:v", f"{kbps}k", "-g", "60", "-keyint_min", "60", "-f", "h264"]
            peer += ["/tmp/x264_wall_ff.h264"]
            a_t, b_t = [], []
            for _ in range(a.runs):
                a_t.append(timed(ours))
                b_t.append(timed(peer))
            ma, mb = statistics.median(a_t), statistics.median(b_t)
            per = 1000 / FRAMES
            print(
                f"| {size} | {threads} | {ma * per:.2f} ({min(a_t) * per:.2f}) "
                f"| {mb * per:.2f} ({min(b_t) * per:.2f}) | {ma / mb:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
