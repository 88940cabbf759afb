"""Streaming from Python against pdum.rfb 0.3 and the Rust CLI: the same frames (a raw
testsrc2 file), the same acking viewers (the `probe` example), in one run.

    python3 scripts/bench/streaming_bench.py --framecast-python .venv-release/bin/python \\
        --pdum-python .peer/bin/python --cli target/release/framecast \\
        --probe target/release/examples/probe --frames-dir /path/to/frames [--seconds 10]
        [--rows 720p,1080p] [--viewers 1,4,8] [--formats rgb24,rgba] [--max-fps]

Frames: FRAMES_DIR/testsrc2_{720p,1080p}.{rgb,rgba}, 60 frames each, made with
``ffmpeg -f lavfi -i testsrc2=size=WxH:rate=30 -frames:v 60 -pix_fmt rgb24|rgba -f rawvideo``.
Every row: start the publisher, let the probe's viewers connect and warm up, then measure the
publisher's CPU (utime + stime of the whole process, /proc) over the probe's window. Prints a
markdown table; JSON rows with --json. The machine should be otherwise idle.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "2160p": (3840, 2160)}
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"publisher exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def run_row(a, impl: str, size: str, fmt: str, viewers: int, max_fps: bool) -> dict:
    w, h = SIZES[size]
    ext = "rgb" if fmt == "rgb24" else "rgba"
    frames = Path(a.frames_dir) / f"testsrc2_{size}.{ext}"
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="fc-bench-"))
    stats_file, offset_file = tmp / "stats.json", tmp / "offset"
    fps = 1000 if max_fps else 30
    if impl == "rust-cli":
        cmd = [a.cli, "serve", str(frames), "--size", f"{w}x{h}", "--format", fmt, "--loop",
               "--fps", str(fps), "--bitrate", "8M", "--listen", f"127.0.0.1:{port}",
               "--stats-interval", "0"]  # fmt: skip
    else:
        py = a.framecast_python if impl == "framecast-py" else a.pdum_python
        cmd = [py, str(HERE / "py_publish.py"), str(frames), "--impl",
               "framecast" if impl == "framecast-py" else "pdum", "--size", f"{w}x{h}",
               "--format", fmt, "--port", str(port), "--bitrate", "8000000",
               "--stats-file", str(stats_file), "--offset-file", str(offset_file)]  # fmt: skip
        if max_fps:
            cmd.append("--max-rate")
    pub = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port, pub)
        time.sleep(1.0)
        probe = [a.probe, "--url", f"ws://127.0.0.1:{port}/", "--viewers", str(viewers),
                 "--seconds", str(a.seconds), "--warmup", str(a.warmup), "--json"]  # fmt: skip
        if impl == "pdum":
            probe += ["--clock-offset-us", offset_file.read_text().strip()]
        pr = subprocess.Popen(
            probe, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        time.sleep(a.warmup)
        c0, t0 = cpu_seconds(pub.pid), time.monotonic()
        out, err = pr.communicate(timeout=a.seconds + a.warmup + 60)
        c1, t1 = cpu_seconds(pub.pid), time.monotonic()
        if pr.returncode != 0:
            raise RuntimeError(f"probe failed: {err}")
        line = [x for x in out.splitlines() if x.startswith("{")][-1]
        res = json.loads(line)
    finally:
        pub.terminate()
        try:
            pub.wait(20)
        except subprocess.TimeoutExpired:
            pub.kill()
    publish_us = []
    if stats_file.exists():
        publish_us = json.loads(stats_file.read_text())["publish_us"]
    cpu = c1 - c0
    frames_out = res["fps_per_viewer"] * (t1 - t0)
    return {
        "impl": impl,
        "size": size,
        "format": fmt,
        "viewers": viewers,
        "max_fps": max_fps,
        "fps": res["fps_per_viewer"],
        "cpu_pct": 100 * cpu / (t1 - t0),
        "cpu_ms_per_frame": 1000 * cpu / frames_out if frames_out else float("nan"),
        "lat_p50": res["latency_ms"]["p50"],
        "lat_p95": res["latency_ms"]["p95"],
        "publish_us_p50": statistics.median(publish_us) if publish_us else None,
        "publish_us_p95": pct(publish_us, 0.95) if publish_us else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument("--framecast-python", required=True)
    ap.add_argument("--pdum-python", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--probe", required=True)
    ap.add_argument("--frames-dir", required=True)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--rows", default="720p,1080p")
    ap.add_argument("--viewers", default="1,4,8")
    ap.add_argument("--formats", default="rgb24,rgba")
    ap.add_argument("--impls", default="rust-cli,framecast-py,pdum")
    ap.add_argument(
        "--max-fps", action="store_true", help="also: highest fps with 1 viewer"
    )
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--table-from", help="print the table of JSON rows saved from stderr"
    )
    a = ap.parse_args()
    if a.table_from:
        lines = Path(a.table_from).read_text().splitlines()
        print_table([json.loads(x) for x in lines if x.startswith("{")])
        return
    rows = []
    plan = [
        (impl, size, fmt, int(v), False)
        for size in a.rows.split(",")
        for fmt in a.formats.split(",")
        for v in a.viewers.split(",")
        for impl in a.impls.split(",")
    ]
    if a.max_fps:
        plan += [
            (impl, size, "rgb24", 1, True)
            for size in a.rows.split(",")
            for impl in a.impls.split(",")
        ]
    for impl, size, fmt, v, mx in plan:
        r = run_row(a, impl, size, fmt, v, mx)
        rows.append(r)
        print(json.dumps(r), file=sys.stderr, flush=True)
    if a.json:
        print(json.dumps(rows, indent=1))
        return
    print_table(rows)


def fmt_pair(a: float | None, b: float | None, digits: int) -> str:
    return "–" if a is None or b is None else f"{a:.{digits}f} / {b:.{digits}f}"


def print_table(rows: list[dict]) -> None:
    print("| size | frames | viewers | mode | publisher | fps/viewer | CPU % | CPU ms/frame | "
          "publish→receive p50 / p95 ms | publish() µs p50 / p95 |")  # fmt: skip
    print("|---|---|--:|---|---|--:|--:|--:|--:|--:|")
    for r in rows:
        mode = "max" if r["max_fps"] else "30 fps"
        print(f"| {r['size']} | {r['format']} | {r['viewers']} | {mode} | {r['impl']} "
              f"| {r['fps']:.1f} | {r['cpu_pct']:.0f} | {r['cpu_ms_per_frame']:.2f} "
              f"| {fmt_pair(r['lat_p50'], r['lat_p95'], 1)} "
              f"| {fmt_pair(r['publish_us_p50'], r['publish_us_p95'], 0)} |")  # fmt: skip


if __name__ == "__main__":
    main()
