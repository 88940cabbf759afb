"""Type stubs of ``framecast._native``, the Rust extension. Applications use the documented
wrappers in :mod:`framecast` (``serve``, ``Display``, ``Encoder``, ``Writer``); these are the
calls those wrappers make."""

from collections.abc import Sequence
from os import PathLike
from typing import Any, final

from typing_extensions import Self

__all__ = [
    "ClosedError",
    "CudaConverter",
    "Display",
    "DroppedFrame",
    "EncodedPacket",
    "Encoder",
    "EncoderError",
    "Publisher",
    "RemoteError",
    "Server",
    "Writer",
    "__version__",
    "doctor",
    "to_nv12",
    "viewer_file",
]

__version__: str

class ClosedError(RuntimeError):
    """The display, server, encoder or writer was closed."""

class EncoderError(RuntimeError):
    """The encoder failed or is not available."""

class RemoteError(RuntimeError):
    """A remote (VTR1) encode failed: refused, unreachable, or the connection broke."""

@final
class EncodedPacket:
    """One encoded access unit."""

    @property
    def data(self) -> bytes: ...
    @property
    def pts_ns(self) -> int: ...
    @property
    def dts_ns(self) -> int: ...
    @property
    def duration_ns(self) -> int: ...
    @property
    def is_keyframe(self) -> bool: ...
    @property
    def is_codec_config(self) -> bool: ...
    @property
    def codec(self) -> str: ...
    @property
    def codec_string(self) -> str: ...
    @property
    def packet_format(self) -> str: ...
    @property
    def token(self) -> int: ...
    @property
    def convert_ms(self) -> float: ...
    @property
    def encode_ms(self) -> float: ...
    @property
    def queue_ms(self) -> float: ...

@final
class DroppedFrame:
    """A frame the pipelined encoder dropped under its backpressure policy."""

    @property
    def token(self) -> int: ...
    @property
    def pts_ns(self) -> int: ...
    @property
    def reason(self) -> str: ...

@final
class Encoder:
    def __new__(
        cls,
        width: int,
        height: int,
        *,
        fps: float = 30.0,
        bitrate: int | None = None,
        gop: int | None = None,
        backend: str = "auto",
        color: str = "bt709",
        range: str = "limited",
        packet_format: str = "annexb",
        max_in_flight_frames: int = 0,
        drop_policy: str = "block",
        pixel_format: str | None = None,
        remote: str | None = None,
        token: str | None = None,
        compression: str = "lz4",
        timeout: float = 10.0,
    ) -> Self: ...
    def encode(
        self,
        frame: Any,
        pts_ns: int | None = None,
        force_keyframe: bool = False,
        pixel_format: str | None = None,
    ) -> list[EncodedPacket | DroppedFrame]: ...
    def flush(self) -> list[EncodedPacket | DroppedFrame]: ...
    def close(self) -> None: ...
    @property
    def codec_string(self) -> str | None: ...
    @property
    def extradata(self) -> bytes | None: ...
    @property
    def last_timings(self) -> dict[str, float]: ...
    @property
    def backend(self) -> str: ...
    @property
    def closed(self) -> bool: ...

@final
class Writer:
    def __new__(
        cls,
        path: str | PathLike[str],
        width: int,
        height: int,
        *,
        fps: float = 30.0,
        bitrate: int | None = None,
        gop: int | None = None,
        backend: str = "auto",
        color: str = "bt709",
        range: str = "limited",
        pixel_format: str | None = None,
    ) -> Self: ...
    def write(
        self, frame: Any, pts_ns: int | None = None, force_keyframe: bool = False
    ) -> None: ...
    def close(self) -> dict[str, Any] | None: ...
    def abort(self) -> None: ...
    @property
    def frames(self) -> int: ...
    @property
    def closed(self) -> bool: ...

def to_nv12(
    frame: Any, *, pixel_format: str | None = None, color: str = "bt709", range: str = "limited"
) -> bytes: ...

@final
class CudaConverter:
    """CUDA device arrays -> NV12 on their own GPU, read back through a ring of ``depth``
    pinned host buffers (what ``Display.publish``, ``Encoder.encode`` and ``Writer.write``
    use for CUDA arrays). ``submit`` queues a frame and returns a ticket at once; ``wait``,
    ``nv12`` and ``release`` take tickets, oldest first or in any order. NV12 bytes are
    ``height`` rows of Y then ``ceil(height/2)`` rows of CbCr, each ``2*ceil(width/2)`` bytes."""

    def __new__(
        cls, *, depth: int = 2, color: str = "bt709", range: str = "limited"
    ) -> CudaConverter: ...
    def submit(self, frame: Any, *, pixel_format: str | None = None) -> int: ...
    def wait(self, ticket: int) -> None: ...
    def ready(self, ticket: int) -> bool: ...
    def nv12(self, ticket: int) -> bytes: ...
    def release(self, ticket: int) -> None: ...
    @property
    def oldest(self) -> int | None: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def depth(self) -> int: ...
    @property
    def device(self) -> dict[str, Any] | None: ...

@final
class Display:
    cuda_ring_depth: int
    def flush_cuda(self) -> None: ...
    def publish(
        self,
        frame: Any,
        *,
        pixel_format: str | None = None,
        pixel_ratio: float | None = None,
        color: Any = None,
    ) -> None: ...
    def poll_events(self) -> list[dict[str, Any]]: ...
    def next_event(self, timeout: float | None) -> dict[str, Any] | None: ...
    def metrics(self) -> dict[str, Any] | None: ...
    @property
    def client_count(self) -> int: ...
    @property
    def url(self) -> str: ...
    @property
    def ws_url(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    @property
    def frames_published(self) -> int: ...
    @property
    def target_size(self) -> tuple[int, int] | None: ...
    def clock(self) -> tuple[int, int]: ...
    def publish_moq(
        self,
        url: str,
        *,
        fingerprint: list[str] | None = None,
        insecure: bool = False,
        keyframe_interval: float = 2.0,
    ) -> Publisher: ...
    def publish_whip(
        self, url: str, *, token: str | None = None, follow_estimate: bool = True
    ) -> Publisher: ...
    def close(self) -> None: ...

@final
class Publisher:
    @property
    def state(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def frames(self) -> int: ...
    @property
    def estimate_bps(self) -> int | None: ...
    def wait_connected(self, timeout: float) -> bool: ...
    def stop(self) -> None: ...

@final
class Server:
    def __new__(
        cls,
        host: str = "127.0.0.1",
        port: int = 8765,
        origins: Sequence[str] | None = None,
        remote_control: bool = False,
    ) -> Self: ...
    def add_stream(
        self,
        name: str,
        width: int,
        height: int,
        *,
        fps: float = 30.0,
        bitrate: int | None = None,
        max_inflight: int = 2,
        token: str | None = None,
        transport: str = "auto",
        backend: str | None = None,
        stats_interval: float | None = None,
        still_after: float | None = None,
        resize_policy: str = "publisher",
        max_render_dimension: int | None = None,
        image_format: str = "jpeg",
        jpeg_quality: int = 80,
        pixel_ratio: float | None = None,
        color: Any = None,
        adaptive: bool = True,
    ) -> Display: ...
    def remove_stream(self, name: str) -> bool: ...
    def close(self) -> None: ...
    @property
    def port(self) -> int: ...
    @property
    def host(self) -> str: ...
    @property
    def streams(self) -> list[str]: ...

def doctor() -> dict[str, Any]: ...
def viewer_file(path: str) -> bytes | None: ...
