"""Shared helpers: a test card with known colour blocks, BT.709 YUV→RGB for decoded pictures,
H.264 NAL parsing, and a minimal pdum.rfb protocol client (``websockets``)."""

from __future__ import annotations

import asyncio
import json
import struct
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from typing_extensions import Self

W, H = 320, 240

#: 80x80 blocks: (x, y, RGB). Large and flat, so 4:2:0 and the encoder leave their middles
#: within a few levels.
BLOCKS = [
    (0, 0, (235, 40, 40)),
    (80, 0, (40, 200, 60)),
    (160, 0, (30, 60, 220)),
    (240, 0, (240, 240, 240)),
    (0, 80, (20, 20, 20)),
    (80, 80, (230, 210, 30)),
    (160, 80, (40, 200, 210)),
    (240, 80, (128, 128, 128)),
]


def make_card(w: int = W, h: int = H, t: int = 0) -> np.ndarray:
    """RGB uint8 (h, w, 3): colour blocks on top, a moving gradient below."""
    f = np.zeros((h, w, 3), np.uint8)
    x = np.arange(w)
    # A smooth gradient (rendered content is mostly smooth), sliding with t.
    for row in range(160, h):
        f[row, :, 0] = (x // 2 + row // 2 + 4 * t) % 256
        f[row, :, 1] = (200 - x // 3 + 2 * t) % 256
        f[row, :, 2] = (row + t) % 256
    for bx, by, rgb in BLOCKS:
        f[by : by + 80, bx : bx + 80] = rgb
    return f


def yuv420_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """BT.709 limited-range YUV 4:2:0 planes to RGB uint8 (framecast's default signalling)."""
    h, w = y.shape
    up = np.repeat(np.repeat(u, 2, 0), 2, 1)[:h, :w].astype(np.float64) - 128
    vp = np.repeat(np.repeat(v, 2, 0), 2, 1)[:h, :w].astype(np.float64) - 128
    yy = (y.astype(np.float64) - 16) * 255 / 219
    cu, cv = up * 255 / 224, vp * 255 / 224
    r = yy + 1.5748 * cv
    g = yy - 0.1873 * cu - 0.4681 * cv
    b = yy + 1.8556 * cu
    return np.clip(np.stack([r, g, b], -1).round(), 0, 255).astype(np.uint8)


def rgb_to_nv12(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 to NV12 ``(H*3//2, W)``, BT.709 limited range, chroma averaged over 2x2 (the
    inverse of :func:`yuv420_to_rgb`; independent of any library's defaults)."""
    f = rgb.astype(np.float64)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    cb = (b - y) / 1.8556
    cr = (r - y) / 1.5748
    h, w = y.shape

    def half(p: np.ndarray) -> np.ndarray:
        return p.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))

    uv = np.empty((h // 2, w), np.float64)
    uv[:, 0::2] = 128 + half(cb) * 224 / 255
    uv[:, 1::2] = 128 + half(cr) * 224 / 255
    luma = 16 + y * 219 / 255
    return np.clip(np.vstack([luma, uv]).round(), 0, 255).astype(np.uint8)


def decode_h264(data: bytes) -> list[np.ndarray]:
    """Every picture of an Annex B stream, as RGB (via PyAV's YUV planes, converted here)."""
    import av

    codec = av.CodecContext.create("h264", "r")
    out = []
    # parse(None) flushes the parser's last access unit; decode(None) drains the decoder.
    for packet in codec.parse(data) + codec.parse(None) + [None]:
        frames = codec.decode(packet) if packet is not None else codec.decode(None)
        out += [picture_rgb(frame) for frame in frames]
    return out


def picture_rgb(frame) -> np.ndarray:
    """A decoded PyAV ``VideoFrame`` (4:2:0) as RGB, converted here as BT.709 limited."""
    yuv = frame.to_ndarray(format="yuv420p")
    h, w = frame.height, frame.width
    y = yuv[:h]
    u = yuv[h : h + h // 4].reshape(h // 2, w // 2)
    v = yuv[h + h // 4 :].reshape(h // 2, w // 2)
    return yuv420_to_rgb(y, u, v)


def assert_blocks(rgb: np.ndarray, tol: int = 6) -> None:
    for bx, by, want in BLOCKS:
        got = rgb[by + 40, bx + 40].astype(int)
        assert np.all(np.abs(got - np.array(want)) <= tol), f"block at {bx},{by}: {got} vs {want}"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def nal_types(au: bytes) -> list[int]:
    """NAL unit types of an Annex B access unit."""
    types = []
    i = 0
    while True:
        j = au.find(b"\x00\x00\x01", i)
        if j < 0 or j + 3 >= len(au):
            return types
        types.append(au[j + 3] & 0x1F)
        i = j + 3


def sps_of(au: bytes) -> bytes:
    """The first SPS NAL (without its start code) of an Annex B access unit."""
    i = 0
    while True:
        j = au.find(b"\x00\x00\x01", i)
        assert j >= 0, "no SPS"
        if au[j + 3] & 0x1F == 7:
            end = au.find(b"\x00\x00\x01", j + 3)
            nal = au[j + 3 : end if end >= 0 else len(au)]
            return nal.rstrip(b"\x00")
        i = j + 3


def unpack_envelope(buf: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack_from("<I", buf)
    return json.loads(buf[4 : 4 + n]), buf[4 + n :]


class Viewer:
    """A pdum.rfb-protocol viewer: hello, then frames (acked on receipt) and events."""

    def __init__(
        self,
        url: str,
        caps=("image/jpeg", "image/png", "webcodecs/h264-annexb"),
        token=None,
        **connect,
    ):
        self.url, self.caps, self.token, self.connect = url, list(caps), token, connect
        self.ws = None
        self.config = None

    async def __aenter__(self) -> Self:
        import websockets

        self.ws = await websockets.connect(self.url, max_size=None, **self.connect)
        hello = {"type": "hello", "supported": self.caps, "device_pixel_ratio": 1}
        if self.token is not None:
            hello["token"] = self.token
        await self.ws.send(json.dumps(hello))
        return self

    async def __aexit__(self, *exc) -> None:
        await self.ws.close()

    async def next_text(self, timeout: float = 10.0) -> dict:
        while True:
            m = await asyncio.wait_for(self.ws.recv(), timeout)
            if isinstance(m, str):
                return json.loads(m)

    async def frames(self, n: int, timeout: float = 10.0) -> list[tuple[dict, bytes]]:
        out = []
        while len(out) < n:
            m = await asyncio.wait_for(self.ws.recv(), timeout)
            if isinstance(m, bytes):
                header, payload = unpack_envelope(m)
                out.append((header, payload))
                await self.ws.send(
                    json.dumps(
                        {
                            "type": "ack",
                            "seq": header["seq"],
                            "decode_queue_size": 0,
                            "displayed": True,
                        }
                    )
                )
            else:
                msg = json.loads(m)
                if msg["type"] == "config":
                    self.config = msg
        return out

    async def send(self, message: dict) -> None:
        await self.ws.send(json.dumps(message))


@pytest.fixture
def card() -> np.ndarray:
    return make_card()
