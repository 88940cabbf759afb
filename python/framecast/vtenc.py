"""pdum.vtenc's API on any machine: code written for ``pdum.vtenc.VtEncoder`` runs unchanged
(``from framecast.vtenc import VtEncoder``), on VideoToolbox where framecast was built with it
(macOS) and on OpenH264 elsewhere.

NV12 ``(H*3//2, W)`` uint8 in, H.264 Annex B bytes out, SPS/PPS in band on every IDR, no
reordering, synchronous 1-in-1-out, ``codec_string`` from the emitted SPS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self

from ._encode import EncodedPacket, Encoder
from ._native import doctor

__all__ = ["VtEncoder", "supported"]


def supported() -> bool:
    """Whether an H.264 encoder is available (VideoToolbox on a Mac build, else OpenH264)."""
    return any(b["available"] for b in doctor()["backends"])


def _backend() -> str:
    names = {b["name"] for b in doctor()["backends"] if b["available"]}
    return "videotoolbox" if "videotoolbox" in names else "auto"


class VtEncoder:
    """``VtEncoder(width, height, codec="h264", fps=30, gop=30, bitrate=...)``.

    ``encode(nv12, force_idr=False)`` returns this frame's access unit as bytes (Annex B);
    ``flush()`` returns what is left (nothing: the encoder is 1-in-1-out); ``close()``.
    Keywords pdum.vtenc takes that do not apply here are accepted and ignored.
    """

    def __init__(
        self,
        width: int,
        height: int,
        codec: str = "h264",
        fps: float = 30,
        gop: int = 30,
        bitrate: int | None = None,
        **_ignored: Any,
    ):
        if codec.lower() not in ("h264", "avc"):
            raise ValueError(f"codec {codec!r}: only 'h264' is supported")
        self.width, self.height = width, height
        self._fps = fps
        self._frames = 0
        self._encoder: Encoder | None = Encoder(
            width,
            height,
            fps=fps,
            gop=gop,
            bitrate=bitrate,
            backend=_backend(),
            pixel_format="nv12",
        )

    def _enc(self) -> Encoder:
        if self._encoder is None:
            raise RuntimeError("VtEncoder is closed")
        return self._encoder

    @staticmethod
    def _bytes(packets: list) -> bytes:
        return b"".join(p.data for p in packets if isinstance(p, EncodedPacket))

    def encode(self, nv12: Any, force_idr: bool = False) -> bytes:
        """Encode one NV12 frame (any contiguous ``(H*3//2, W)`` uint8 buffer)."""
        pts = self._frames * int(1e9 / self._fps)
        self._frames += 1
        return self._bytes(self._enc().encode(nv12, pts_ns=pts, force_keyframe=force_idr))

    def flush(self) -> bytes:
        """Whatever the encoder still holds: nothing, since each ``encode`` returns its own
        frame (1-in-1-out); the encoder stays usable, as pdum.vtenc's does."""
        self._enc()
        return b""

    @property
    def codec_string(self) -> str:
        """``avc1.PPCCLL`` from the emitted SPS; empty before the first keyframe."""
        return (self._encoder.codec_string if self._encoder else None) or ""

    def close(self) -> None:
        """Release the encoder."""
        if self._encoder is not None:
            self._encoder.close()
            self._encoder = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
