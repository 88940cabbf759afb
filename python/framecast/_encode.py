"""Encoding: :class:`Encoder` (frames in, packets out) and :class:`Writer` (frames in, a file
out)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from typing_extensions import Self

from . import _native

__all__ = ["DroppedFrame", "EncodedPacket", "Encoder", "Writer"]

#: One encoded access unit (fields: ``data``, ``pts_ns``, ``dts_ns``, ``duration_ns``,
#: ``is_keyframe``, ``is_codec_config``, ``codec``, ``codec_string``, ``packet_format``,
#: ``token``, ``convert_ms``, ``encode_ms``, ``queue_ms``).
EncodedPacket = _native.EncodedPacket
#: A frame a pipelined encoder dropped under its policy (``token``, ``pts_ns``, ``reason``).
DroppedFrame = _native.DroppedFrame


class Encoder:
    """An H.264 encoder: ``encode(frame, pts_ns)`` returns :class:`EncodedPacket`\\ s.

    Frames are the shapes :meth:`framecast.Display.publish` takes. Every stream starts with
    an IDR carrying SPS/PPS, keyframes always carry them, output order is input order
    (no B-frames), and the SPS tells decoders not to buffer.

    * ``fps``: nominal rate (packet durations, rate control). ``bitrate``: bits/s (default:
      8 Mb/s at 1080p30, scaled). ``gop``: an IDR every this many frames (default 2 s).
    * ``backend``: ``"auto"`` or a name from :func:`framecast.doctor`.
    * ``color``/``range``: the RGB→YUV matrix (``"bt709"``, ``"bt601"``) and range
      (``"limited"``, ``"full"``), signalled in the stream.
    * ``packet_format``: ``"annexb"`` (start codes) or ``"avcc"`` (length-prefixed; the
      avcC is :attr:`extradata`).
    * ``max_in_flight_frames``: 0 is synchronous (each ``encode`` returns its own packet);
      above 0 the backend works on a thread with that many frames in flight, and
      ``drop_policy`` (``"block"``, ``"fail_fast"``, ``"drop_new"``, ``"drop_old"``) decides
      what happens when it is full. A dropped frame is always reported as a
      :class:`DroppedFrame` in the returned list; ``"fail_fast"`` raises ``BlockingIOError``
      and keeps nothing.
    * ``remote="host:port"``: encode on a VTR1 server (a Mac's VideoToolbox through
      ``vtremoted``, or ``framecast remote serve``) with the same contract; ``token`` is its
      shared secret, ``compression`` the frame compression on the wire (``"none"``,
      ``"lz4"``, ``"zstd"``). Several servers (a list, or ``"a:5555,b:5555"``) make a pool:
      the session goes to the first that takes it, passing over busy, refusing and dead
      ones (:attr:`backend` names the one chosen); :class:`RemoteError` lists every attempt
      when none does. If the chosen server's connection dies mid-stream, the session goes on
      on the next server that takes it: the frames whose packets had not come back are sent
      again, the new stream starts with a keyframe, no frame is lost or repeated, and a
      ``RuntimeWarning`` names both servers (:attr:`backend` then names the new one).
    """

    def __init__(
        self,
        width: int,
        height: int,
        *,
        fps: float = 30,
        bitrate: int | None = None,
        gop: int | None = None,
        backend: str = "auto",
        color: str = "bt709",
        range: str = "limited",
        packet_format: str = "annexb",
        max_in_flight_frames: int = 0,
        drop_policy: str = "block",
        pixel_format: str | None = None,
        remote: str | Sequence[str] | None = None,
        token: str | None = None,
        compression: str = "lz4",
        timeout: float = 10.0,
    ):
        self.width, self.height = width, height
        self._native = _native.Encoder(
            width,
            height,
            fps=fps,
            bitrate=bitrate,
            gop=gop,
            backend=backend,
            color=color,
            range=range,
            packet_format=packet_format,
            max_in_flight_frames=max_in_flight_frames,
            drop_policy=drop_policy,
            pixel_format=pixel_format,
            remote=remote if remote is None or isinstance(remote, str) else ",".join(remote),
            token=token,
            compression=compression,
            timeout=timeout,
        )

    def encode(
        self,
        frame: Any,
        pts_ns: int | None = None,
        force_keyframe: bool = False,
        *,
        pixel_format: str | None = None,
    ) -> list[EncodedPacket | DroppedFrame]:
        """Encode ``frame`` (presentation time ``pts_ns``; default: frame index / fps) and
        return the packets ready now, in order. ``force_keyframe`` makes it an IDR (if the
        frame is dropped, the next encoded one is). Each packet's ``token`` is the number of
        the ``encode`` call its frame came from (0, 1, 2, ...).

        ``frame`` is a host array (numpy, buffer protocol) or a CUDA device array (CuPy,
        PyTorch, JAX, Numba), in the shapes :meth:`Display.publish` lists. A CUDA array is
        converted to NV12 on its own GPU, in order with its stream, and only the NV12 is read
        back (this call waits for that readback; :meth:`Display.publish` does not)."""
        return self._native.encode(
            frame, pts_ns=pts_ns, force_keyframe=force_keyframe, pixel_format=pixel_format
        )

    def flush(self) -> list[EncodedPacket | DroppedFrame]:
        """Every packet still inside the encoder, in order; then the encoder is finished."""
        return self._native.flush()

    def close(self) -> None:
        """Release the encoder; later calls raise ``ClosedError``."""
        self._native.close()

    @property
    def codec_string(self) -> str | None:
        """RFC 6381 codec string from the SPS actually emitted (None before the first IDR)."""
        return self._native.codec_string

    @property
    def extradata(self) -> bytes | None:
        """The avcC record (for MP4 and other containers), once known."""
        return self._native.extradata

    @property
    def last_timings(self) -> dict:
        """``{"convert_ms", "encode_ms", "queue_ms"}`` of the last packet."""
        return self._native.last_timings

    @property
    def backend(self) -> str:
        """The backend's name (``remote:HOST:PORT`` for a remote encoder)."""
        return self._native.backend

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Writer:
    """Frames to an ``.mp4`` (fast start) or ``.h264`` file, chosen by extension.

    Nothing appears at ``path`` until :meth:`close` succeeds (the file is written aside and
    renamed). Takes the encoder keywords of :class:`Encoder` (``fps``, ``bitrate``, ``gop``,
    ``backend``, ``color``, ``range``, ``pixel_format``). Use as a context manager::

        with framecast.Writer("out.mp4", 1280, 720, fps=30) as w:
            for frame in frames:
                w.write(frame)
    """

    def __init__(self, path: Any, width: int, height: int, **options: Any):
        self.path = str(path)
        self._native = _native.Writer(self.path, width, height, **options)
        self.summary: dict | None = None

    def write(self, frame: Any, pts_ns: int | None = None, force_keyframe: bool = False) -> None:
        """Encode and append one frame: a host array, or a CUDA device array converted on its
        GPU (see :meth:`Encoder.encode`)."""
        self._native.write(frame, pts_ns=pts_ns, force_keyframe=force_keyframe)

    def close(self) -> dict | None:
        """Finish the file; returns ``{"path", "frames", "bytes", "codec_string"}``."""
        summary = self._native.close()
        if summary is not None:
            self.summary = summary
        return self.summary

    @property
    def frames(self) -> int:
        """Frames written so far."""
        return self._native.frames

    def __enter__(self) -> Self:
        return self

    def abort(self) -> None:
        """Discard the file: nothing appears at ``path`` (the temporary file is removed)."""
        self._native.abort()

    def __exit__(self, exc_type: object, *rest: object) -> None:
        # A block that raised leaves no half-written file behind.
        if exc_type is None:
            self.close()
        else:
            self.abort()
