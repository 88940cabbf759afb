"""CUDA device arrays as frames (CuPy, PyTorch, JAX).

On a machine without an NVIDIA GPU (CI) the GPU tests skip, naming what is missing, and only
the error path runs. On the GPU machine (``FRAMECAST_REQUIRE_CUDA=1``) a missing library or
device fails instead.
"""

from __future__ import annotations

import asyncio
import importlib
import os

import numpy as np
import pytest
from conftest import Viewer, assert_blocks, decode_h264, make_card, psnr

import framecast

REQUIRE = os.environ.get("FRAMECAST_REQUIRE_CUDA") == "1"


def _cuda_available() -> str | None:
    """None when the CUDA path can run here, else why not."""
    report = framecast.doctor()["cuda"]
    if not report.get("devices"):
        return f"no CUDA device ({report.get('driver')})"
    if not str(report.get("nvrtc", "")).split(".")[0].isdigit():
        return f"NVRTC missing ({report.get('nvrtc')})"
    return None


def need(lib: str):
    """Import ``lib`` for a GPU test, or skip (fail under FRAMECAST_REQUIRE_CUDA=1)."""
    why = _cuda_available()
    mod = None
    if why is None:
        try:
            mod = importlib.import_module(lib)
        except ImportError as e:
            why = f"{lib} is not installed ({e})"
    if why is not None:
        if REQUIRE:
            pytest.fail(f"FRAMECAST_REQUIRE_CUDA=1 but {why}")
        pytest.skip(why)
    return mod


# --- converting host data to each library's device arrays ------------------------------------


def to_device(lib: str, host: np.ndarray):
    if lib == "cupy":
        import cupy

        return cupy.asarray(host)
    if lib == "torch":
        import torch

        return torch.from_numpy(np.ascontiguousarray(host)).cuda()
    import jax

    return jax.device_put(host, jax.devices("gpu")[0])


LIBS = ["cupy", "torch", "jax"]

# --- an independent reference: the BT.709 / BT.601 equations in float64 --------------------


def reference_nv12(rgb: np.ndarray, full: bool = False, matrix: str = "bt709"):
    """(Y (h, w), UV (ceil(h/2), 2*ceil(w/2))) from 8-bit RGB, as framecast-core's reference:
    chroma from the 2x2 box average of RGB, edges replicated."""
    kr, kb = (0.2126, 0.0722) if matrix == "bt709" else (0.299, 0.114)
    kg = 1 - kr - kb
    ys, yo, cs = (255.0, 0.0, 255.0) if full else (219.0, 16.0, 224.0)
    f = rgb.astype(np.float64) / 255
    y = yo + ys * (kr * f[..., 0] + kg * f[..., 1] + kb * f[..., 2])
    h, w = rgb.shape[:2]
    p = np.pad(f, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    avg = p.reshape(p.shape[0] // 2, 2, p.shape[1] // 2, 2, 3).mean(axis=(1, 3))
    ey = kr * avg[..., 0] + kg * avg[..., 1] + kb * avg[..., 2]
    cb = 128 + cs * (avg[..., 2] - ey) / (2 * (1 - kb))
    cr = 128 + cs * (avg[..., 0] - ey) / (2 * (1 - kr))
    uv = np.stack([cb, cr], -1).reshape(avg.shape[0], -1)
    q = lambda a: np.clip(np.round(a), 0, 255).astype(np.int16)
    return q(y), q(uv)


def split_nv12(data: bytes, w: int, h: int):
    stride = 2 * ((w + 1) // 2)
    a = np.frombuffer(data, np.uint8)
    y = a[: stride * h].reshape(h, stride)[:, :w]
    uv = a[stride * h :].reshape((h + 1) // 2, stride)
    return y.astype(np.int16), uv.astype(np.int16)


def content(w: int, h: int, seed: int) -> np.ndarray:
    """RGBA uint8 with gradients, sharp edges and noise."""
    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(np.arange(w), np.arange(h))
    r = (x * 255 // max(w, 1)).astype(np.int32)
    g = (y * 255 // max(h, 1)).astype(np.int32)
    b = np.where((x // 7 + y // 5) % 2 == 0, 230, 20)
    rgb = np.stack([r, g, b], -1) + rng.integers(-6, 7, (h, w, 1))
    a = rng.integers(0, 256, (h, w, 1))
    return np.clip(np.concatenate([rgb, a], -1), 0, 255).astype(np.uint8)


def formats(rgba: np.ndarray):
    """(name, host array, pixel_format) for every supported input layout of ``rgba``."""
    yield "rgb", np.ascontiguousarray(rgba[..., :3]), None
    yield "rgba", rgba, None
    yield "bgra", np.ascontiguousarray(rgba[..., [2, 1, 0, 3]]), "bgra"
    yield "float16", (rgba / 255).astype(np.float16), None
    yield "float32", (rgba / 255).astype(np.float32), None


SIZES = [(1, 1), (2, 2), (5, 3), (33, 17), (640, 360), (1283, 721)]


def test_cuda_arrays_without_a_driver_raise_a_clear_error():
    if _cuda_available() is None:
        pytest.skip("this machine has a CUDA device: the GPU tests below run instead")

    class FakeCupy:
        @property
        def __cuda_array_interface__(self) -> dict:
            return {
                "shape": (4, 4, 4),
                "typestr": "|u1",
                "data": (0x7F0000000000, False),
                "version": 3,
                "strides": None,
                "stream": None,
            }

    for call in (
        lambda f: framecast.CudaConverter().submit(f),
        lambda f: framecast.Encoder(4, 4).encode(f),
    ):
        with pytest.raises(RuntimeError, match="CUDA"):
            call(FakeCupy())
    display = framecast.serve(4, 4, port=0)
    try:
        with pytest.raises(RuntimeError, match="CUDA"):
            display.publish(FakeCupy())
        display.publish(np.zeros((4, 4, 3), np.uint8))  # the host path still works
    finally:
        display.close()


@pytest.mark.parametrize("lib", LIBS)
def test_every_format_and_odd_size_matches_the_reference(lib):
    need(lib)
    conv = framecast.CudaConverter(depth=2)
    full = framecast.CudaConverter(depth=1, color="bt601", range="full")
    for w, h in SIZES:
        rgba = content(w, h, w * 31 + h)
        want = reference_nv12(rgba[..., :3])
        want_full = reference_nv12(rgba[..., :3], full=True, matrix="bt601")
        for name, host, pf in formats(rgba):
            dev = to_device(lib, host)
            for c, (ry, ruv) in ((conv, want), (full, want_full)):
                t = c.submit(dev, pixel_format=pf)
                y, uv = split_nv12(c.nv12(t), w, h)
                c.release(t)
                dy, duv = np.abs(y - ry).max(), np.abs(uv - ruv).max()
                assert dy <= 1 and duv <= 1, f"{lib} {name} {w}x{h}: Y off {dy}, UV off {duv}"
    assert conv.device["compute_capability"][0] >= 3


@pytest.mark.parametrize("lib", LIBS)
def test_nv12_and_cropped_views_come_through(lib):
    need(lib)
    conv = framecast.CudaConverter()
    w, h = 66, 35
    rows = h + (h + 1) // 2
    nv12 = np.random.default_rng(1).integers(0, 256, (rows, w), dtype=np.uint8)
    t = conv.submit(to_device(lib, nv12), pixel_format="nv12")
    y, uv = split_nv12(conv.nv12(t), w, h)
    conv.release(t)
    assert (y == nv12[:h]).all() and (uv == nv12[h:]).all()
    if lib == "jax":
        return  # JAX has no strided views: slicing copies.
    # A cropped view: rows longer than the picture (pitch > width * 4).
    rgba = content(w + 10, h, 5)
    big = to_device(lib, rgba)
    t = conv.submit(big[:, 3 : 3 + w])
    y, uv = split_nv12(conv.nv12(t), w, h)
    conv.release(t)
    ry, ruv = reference_nv12(rgba[:, 3 : 3 + w, :3])
    assert np.abs(y - ry).max() <= 1 and np.abs(uv - ruv).max() <= 1


@pytest.mark.parametrize("lib", ["cupy", "torch"])
def test_the_ring_delivers_every_frame_once_in_order_from_a_reused_buffer(lib):
    """Render into ONE array on a side stream, publishing each frame at once, with the ring
    three deep: each ticket must hold its own frame (the read is ordered on the producer's
    stream, before the next fill), once, in submission order."""
    mod = need(lib)
    w, h, n = 1920, 1080, 40
    conv = framecast.CudaConverter(depth=3)
    levels = [(16 + 5 * i) % 256 for i in range(n)]
    if lib == "cupy":
        stream = mod.cuda.Stream(non_blocking=True)
        buf = mod.zeros((h, w, 4), mod.uint8)
        ctx = stream
    else:
        stream = mod.cuda.Stream()
        buf = mod.zeros((h, w, 4), dtype=mod.uint8, device="cuda")
        ctx = mod.cuda.stream(stream)
    got = []
    with ctx:
        for i, level in enumerate(levels):
            buf[...] = level  # queued on `stream`
            while True:
                try:
                    assert conv.submit(buf) == i
                    break
                except BlockingIOError:
                    t = conv.oldest
                    got.append((t, int(np.frombuffer(conv.nv12(t), np.uint8)[0])))
                    conv.release(t)
    while conv.oldest is not None:
        t = conv.oldest
        got.append((t, int(np.frombuffer(conv.nv12(t), np.uint8)[0])))
        conv.release(t)
    ry = [int(reference_nv12(np.full((1, 1, 3), lv, np.uint8))[0][0, 0]) for lv in levels]
    assert got == list(zip(range(n), ry))


@pytest.mark.parametrize("lib", LIBS)
def test_encoder_and_writer_take_cuda_arrays(lib, tmp_path):
    """Encoder.encode of device frames gives the same bitstream as the host frames when
    the NV12 is the same, and a file written from device frames decodes to the card."""
    need(lib)
    w, h = 320, 240
    # NV12 in: the conversion is a copy, so the bitstreams must be identical.
    card = make_card(w, h)
    ry, ruv = reference_nv12(card)
    nv12 = np.concatenate([ry.astype(np.uint8), ruv.astype(np.uint8)])
    host_enc = framecast.Encoder(w, h, pixel_format="nv12")
    dev_enc = framecast.Encoder(w, h, pixel_format="nv12")
    host = b"".join(p.data for p in host_enc.encode(nv12) + host_enc.flush())
    dev = b"".join(p.data for p in dev_enc.encode(to_device(lib, nv12)) + dev_enc.flush())
    assert dev == host and len(host) > 0
    # RGB in: decode what was written.
    path = tmp_path / f"{lib}.h264"
    with framecast.Writer(path, w, h, bitrate=4_000_000) as wr:
        for t in range(10):
            wr.write(to_device(lib, make_card(w, h, t)))
    pictures = decode_h264(path.read_bytes())
    assert len(pictures) == 10
    for t, pic in enumerate(pictures):
        assert_blocks(pic)
        assert psnr(pic, make_card(w, h, t)) > 30


def test_display_publishes_cupy_frames_to_a_viewer():
    cupy = need("cupy")
    from conftest import H, W

    async def main():
        display = framecast.serve(W, H, port=0, fps=30)
        display.cuda_ring_depth = 3
        frame = cupy.asarray(make_card(W, H))

        async def publishing():
            while True:
                display.publish(frame)
                await asyncio.sleep(1 / 60)

        pub = asyncio.create_task(publishing())
        try:
            async with Viewer(display.ws_url, ("webcodecs/h264-annexb",)) as v:
                config = await v.next_text()
                assert (config["width"], config["height"]) == (W, H)
                chunks = await v.frames(8)
                pictures = decode_h264(b"".join(p for _, p in chunks))
                assert len(pictures) == 8
                for pic in pictures:
                    assert_blocks(pic)
        finally:
            pub.cancel()
            display.flush_cuda()
            await display.aclose()

    asyncio.run(main())
