"""CUDA frames into framecast, on a GPU machine (BENCHMARKS.md, "CUDA frames").

Per frame at 1080p and 4K, from a CuPy array already on the GPU:
  * framecast: convert + NV12 readback through ``framecast.CudaConverter`` (ring depth 1, 2,
    3): latency of one frame, sustained frames/s with the ring kept full, host CPU per frame;
  * pdum.rfb 0.3's CuPy kernel (``pdum.rfb.gpu.rgb_to_nv12``; pass ``--pdum DIR`` holding the
    ``pdum`` package) followed by ``.get()`` into ordinary and into pinned host memory, and
    its kernel alone;
  * ``.get()`` of the RGBA followed by framecast's CPU conversion (``framecast.to_nv12``);
  * end to end: a CuPy render loop publishing to ``framecast.serve`` with one acking viewer:
    frames/s, and host CPU per frame in each thread (publish, readback hand-off, encoder).

Medians and p95 in milliseconds; one JSON document on stdout (``--out`` writes it too).
Needs cupy, numpy, framecast (and websockets for the end-to-end part).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import numpy as np


def stats(xs: list[float]) -> dict:
    a = np.sort(np.asarray(xs))
    return {
        "median_ms": round(float(np.median(a)) * 1e3, 4),
        "p95_ms": round(float(a[int(0.95 * (len(a) - 1))]) * 1e3, 4),
        "n": len(xs),
    }


def timed(fn, n: int, warmup: int = 20) -> dict:
    for _ in range(warmup):
        fn()
    xs = []
    cpu0 = time.process_time()
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        xs.append(time.perf_counter() - t0)
    out = stats(xs)
    out["cpu_ms_per_frame"] = round((time.process_time() - cpu0) / n * 1e3, 4)
    return out


def framecast_ring(fc, x, depth: int, n: int) -> dict:
    conv = fc.CudaConverter(depth=depth)

    def one():
        t = conv.submit(x)
        conv.wait(t)
        conv.release(t)

    latency = timed(one, n)

    # Sustained: keep the ring full; each frame is waited for and released oldest first.
    def burst(count: int) -> float:
        t0 = time.perf_counter()
        for _ in range(count):
            while True:
                try:
                    conv.submit(x)
                    break
                except BlockingIOError:
                    t = conv.oldest
                    conv.wait(t)
                    conv.release(t)
        while conv.oldest is not None:
            t = conv.oldest
            conv.wait(t)
            conv.release(t)
        return time.perf_counter() - t0

    burst(50)
    cpu0 = time.process_time()
    elapsed = burst(n)
    return {
        "latency": latency,
        "sustained_fps": round(n / elapsed, 1),
        "sustained_cpu_ms_per_frame": round((time.process_time() - cpu0) / n * 1e3, 4),
    }


def kernel_ms(cp, fn, n: int = 200, after=lambda: None) -> dict:
    """GPU time of what ``fn`` queues on the current stream (CUDA events around each call);
    ``after`` runs once that has finished."""
    xs = []
    for i in range(n + 20):
        a, b = cp.cuda.Event(), cp.cuda.Event()
        a.record()
        fn()
        b.record()
        b.synchronize()
        after()
        if i >= 20:
            xs.append(cp.cuda.get_elapsed_time(a, b) / 1e3)
    return stats(xs)


def thread_cpu() -> dict[str, float]:
    """CPU seconds per thread name (Linux /proc)."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def end_to_end(
    fc, cp, w: int, h: int, seconds: float, depth: int, fps: float = 0
) -> dict:
    sys.path.insert(
        0, os.path.join(os.path.dirname(__file__), "..", "..", "python", "tests")
    )
    from conftest import Viewer  # the tests' acking pdum.rfb-protocol viewer

    display = fc.serve(w, h, port=0, fps=240, adaptive=False, bitrate=20_000_000)
    display.cuda_ring_depth = depth
    frame = cp.zeros((h, w, 4), cp.uint8)
    x = cp.arange(w, dtype=cp.uint16)[None, :]
    y = cp.arange(h, dtype=cp.uint16)[:, None]

    async def main() -> dict:
        loop = asyncio.get_running_loop()
        publish_s: list[float] = []
        rendered = 0
        running = True

        async def render() -> None:
            nonlocal rendered
            while running:
                # "Render": a moving pattern, written into the same array every frame.
                frame[..., 0] = ((x + rendered) & 255).astype(cp.uint8)
                frame[..., 1] = ((y + 2 * rendered) & 255).astype(cp.uint8)
                t = time.perf_counter()
                display.publish(frame)
                publish_s.append(time.perf_counter() - t)
                rendered += 1
                # Unpaced (fps 0): as fast as the ring takes frames; else a real-time loop.
                await asyncio.sleep(
                    0 if fps <= 0 else max(0.0, next_at(rendered) - loop.time())
                )

        start = loop.time()

        def next_at(n: int) -> float:
            return start + n / fps

        renderer = asyncio.create_task(render())
        async with Viewer(display.ws_url, ("webcodecs/h264-annexb",)) as v:
            await v.frames(3, timeout=30)
            publish_s.clear()
            rendered0, received = rendered, 0
            cpu0, main_cpu0 = thread_cpu(), time.thread_time()
            published0 = display.frames_published
            t0 = time.perf_counter()
            stop = loop.time() + seconds
            while loop.time() < stop:
                received += len(await v.frames(1, timeout=30))
            elapsed = time.perf_counter() - t0
            cpu1, main_cpu = thread_cpu(), time.thread_time() - main_cpu0
            published = display.frames_published - published0
            frames_rendered = rendered - rendered0
            m = display.metrics()
        running = False
        await renderer
        per_thread = {
            k: round((cpu1.get(k, 0) - cpu0.get(k, 0)) / max(published, 1) * 1e3, 4)
            for k in cpu1
            if cpu1.get(k, 0) - cpu0.get(k, 0) > 0.001
        }
        group = m["groups"][0]
        return {
            "render_loop_fps": round(frames_rendered / elapsed, 1),
            "frames_published_per_s": round(published / elapsed, 1),
            "frames_received_per_s": round(received / elapsed, 1),
            "publish_call": stats(publish_s),
            "main_thread_cpu_ms_per_render_frame": round(
                main_cpu / max(frames_rendered, 1) * 1e3, 4
            ),
            "cpu_ms_per_published_frame_by_thread": per_thread,
            "encode_ms": {
                k: v for k, v in group.items() if "encode" in k and "ms" in k
            },
        }

    try:
        return asyncio.run(main())
    finally:
        display.flush_cuda()
        display.close()


def measure_size(fc, cp, cupyx, pdum, w: int, h: int, n: int) -> dict:
    rng = cp.random.default_rng(1)
    rgba = rng.integers(0, 256, (h, w, 4), dtype=cp.uint8)
    rgb = cp.ascontiguousarray(rgba[..., :3])
    r: dict = {}
    for depth in (1, 2, 3):
        r[f"framecast_rgba_depth{depth}"] = framecast_ring(fc, rgba, depth, n)
    r["framecast_rgb_depth2"] = framecast_ring(fc, rgb, 2, n)
    # framecast's kernel alone: it runs on CuPy's current stream (the array's stream), so
    # events recorded there around `submit` bracket exactly the kernel.
    conv = fc.CudaConverter(depth=1)
    tickets: list[int] = []

    def fc_kernel():
        tickets.append(conv.submit(rgba))

    def fc_release():
        conv.release(tickets.pop())

    r["framecast_kernel_only"] = kernel_ms(cp, fc_kernel, after=fc_release)
    if pdum is not None:
        out = cp.empty((h + h // 2, w), cp.uint8)
        pinned = cupyx.empty_pinned((h + h // 2, w), np.uint8)
        r["pdum_kernel_only"] = kernel_ms(cp, lambda: pdum.rgb_to_nv12(rgb, out=out))
        r["pdum_kernel_get"] = timed(lambda: pdum.rgb_to_nv12(rgb, out=out).get(), n)
        r["pdum_kernel_get_pinned"] = timed(
            lambda: pdum.rgb_to_nv12(rgb, out=out).get(out=pinned), n
        )
        # pdum's kernel takes RGB; from RGBA it first makes a contiguous RGB copy.
        r["pdum_from_rgba_get_pinned"] = timed(
            lambda: pdum.rgb_to_nv12(rgba).get(out=pinned), n
        )
    host_rgba = cupyx.empty_pinned((h, w, 4), np.uint8)
    r["get_rgba_then_framecast_cpu"] = timed(
        lambda: fc.to_nv12(rgba.get(out=host_rgba)), max(n // 3, 30), warmup=5
    )
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--pdum", help="folder holding the pdum package (pdum.rfb 0.3)")
    ap.add_argument("--e2e-seconds", type=float, default=5.0)
    ap.add_argument(
        "--e2e-fps",
        type=float,
        default=60.0,
        help="render-loop rate end to end (0: unpaced)",
    )
    ap.add_argument("--out")
    args = ap.parse_args()
    import cupy as cp
    import cupyx
    import framecast as fc

    pdum = None
    if args.pdum:
        sys.path.insert(0, args.pdum)
        import pdum.rfb.gpu as pdum  # type: ignore[no-redef]

    report: dict = {"device": cp.cuda.runtime.getDeviceProperties(0)["name"].decode()}
    for label, (w, h) in {"1080p": (1920, 1080), "4K": (3840, 2160)}.items():
        n = args.frames if h <= 1080 else max(args.frames // 2, 50)
        r = measure_size(fc, cp, cupyx, pdum, w, h, n)
        report[label] = r
        print(label, json.dumps(r), file=sys.stderr, flush=True)
    if args.e2e_seconds > 0:
        for label, (w, h) in {"1080p": (1920, 1080), "4K": (3840, 2160)}.items():
            for fps in sorted({args.e2e_fps, 0.0}, reverse=True):
                key = f"end_to_end_{label}_" + (f"{fps:g}fps" if fps > 0 else "unpaced")
                report[key] = end_to_end(fc, cp, w, h, args.e2e_seconds, 2, fps)
                print(key, json.dumps(report[key]), file=sys.stderr, flush=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
