"""What intra refresh does to bitrate peaks: x264 at 4 Mb/s, 1080p30, with an IDR every 30
frames, with only the first frame an IDR, and with intra refresh (period 30 frames).

    python3 scripts/bench/intra_refresh_peaks.py --framecast target/release/framecast

Sources: ``/tmp/t_1920x1080.nv12`` (240 frames of testsrc2, see ``x264_wall.py``) and the
plasma pattern. Frame sizes come from ffprobe's packets of the ``.h264``; IDRs are counted from
the NAL unit types. The first second (the joining IDR every mode has) is left out of the
largest frame and of the worst 100 ms window.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess

MODES = [
    ("IDR every 30 frames", ["--keyint", "30"]),
    ("IDR first frame only", ["--keyint", "0"]),
    ("intra refresh, period 30", ["--keyint", "30", "--intra-refresh"]),
]


def frames(path: str) -> list[tuple[int, bool]]:
    """(size, holds an IDR slice) for every access unit."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_packets", "-show_entries", "packet=size,pos"]
        + ["-of", "json", path],
        capture_output=True,
        check=True,
    ).stdout
    with open(path, "rb") as f:
        data = f.read()
    result = []
    for p in json.loads(out)["packets"]:
        pos, size = int(p["pos"]), int(p["size"])
        au = data[pos : pos + size]
        types = [
            au[m.end()] & 0x1F
            for m in re.finditer(b"\x00\x00\x01", au)
            if m.end() < len(au)
        ]
        result.append((size, 5 in types))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--framecast", default="target/release/framecast")
    ap.add_argument("--testsrc2", default="/tmp/t_1920x1080.nv12")
    a = ap.parse_args()
    sources = {
        "testsrc2": [a.testsrc2, "--size", "1920x1080", "--fps", "30"],
        "plasma": ["--pattern", "plasma", "--size", "1920x1080", "--frames", "240"],
    }
    print(
        "| source | mode | IDRs | mean kB/frame | largest frame after 1 s, kB | largest / mean "
        "| p95 kB | worst 100 ms after 1 s, kB (Mb/s over it) | kb/s | PSNR dB |"
    )
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for name, src in sources.items():
        for mode, extra in MODES:
            cmd = [a.framecast, "encode", *src, "--backend", "x264", "--bitrate", "4M"]
            cmd += ["-o", "/tmp/intra_refresh_peaks.h264", "--psnr", "-q", *extra]
            line = subprocess.run(
                cmd, capture_output=True, text=True, check=True
            ).stdout
            psnr = float(line.split("PSNR ")[1].split(" dB")[0])
            f = frames("/tmp/intra_refresh_peaks.h264")
            sizes = [s for s, _ in f]
            mean = statistics.mean(sizes)
            p95 = sorted(sizes)[int(0.95 * len(sizes)) - 1]
            late = sizes[30:]
            window = max(sum(late[i : i + 3]) for i in range(len(late) - 2))
            kbps = sum(sizes) * 8 / (len(sizes) / 30) / 1000
            print(
                f"| {name} | {mode} | {sum(idr for _, idr in f)} | {mean / 1000:.1f} "
                f"| {max(late) / 1000:.1f} | {max(late) / mean:.1f} | {p95 / 1000:.1f} "
                f"| {window / 1000:.1f} ({window * 8 / 0.1 / 1e6:.1f}) | {kbps:.0f} | {psnr:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
