"""A drop-in for pdum.rfb 0.3: ``import framecast.rfb as rfb`` instead of
``import pdum.rfb as rfb`` and programs written against pdum.rfb's documented API run on
framecast's server (same wire protocol, so pdum.rfb's viewer and framecast's both watch).

Provided: ``await serve(...)`` (same keywords), ``await serve_server(...)`` with
``Server.add_stream``/``stream``/``remove_stream``/``streams``/``port``/``aclose``,
``Display.publish(frame, pixel_ratio=, color=)``, ``poll_events()`` (``InputEvent``\\ s),
``async for ev in display.events()``, ``client_count``, ``port``, ``ws_url``,
``target_size``, ``server``, ``aclose()``, and ``RawFrame``, ``InputEvent``,
``ColorSpace``, ``SRGB``, ``DISPLAY_P3``.

pdum.rfb keywords with no framecast counterpart are accepted: ``has_nvenc``, ``gpu``,
``encode_pipeline_depth``, ``own_frames`` (framecast always copies once into a recycled
buffer) and ``record_events``/``event_log`` are ignored with a warning. ``adaptive`` maps to
framecast's congestion control, which is on unless ``adaptive=False`` is given (pdum.rfb's
controller is off by default; framecast's keeps latency low on slow links, so it stays on);
``authenticate`` (a callback) raises ``NotImplementedError`` rather than leave a stream
open that its author meant to protect: use ``token=`` of :func:`framecast.serve`.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self

from . import _display

__all__ = [
    "DISPLAY_P3",
    "SRGB",
    "ColorSpace",
    "Display",
    "InputEvent",
    "RawFrame",
    "Server",
    "serve",
    "serve_server",
]


@dataclass(frozen=True)
class ColorSpace:
    """A colour description the frames are tagged with (never converted)."""

    primaries: str = "bt709"
    transfer: str = "srgb"
    matrix: str = "rgb"
    full_range: bool = True
    bit_depth: int = 8

    def to_dict(self) -> dict:
        """The wire form."""
        return asdict(self)


#: sRGB, the default.
SRGB = ColorSpace()
#: Display P3 (wide-gamut SDR).
DISPLAY_P3 = ColorSpace(primaries="display-p3", matrix="bt709")


@dataclass
class RawFrame:
    """A frame with its layout, as pdum.rfb passes them (``memory="cpu"`` only here)."""

    seq: int
    width: int
    height: int
    timestamp_us: int
    pixel_format: str
    memory: str
    data: Any
    pixel_ratio: float = 1.0
    color: dict | None = None


@dataclass(frozen=True)
class InputEvent:
    """One input event: ``event`` is the event dict (``{"type": "pointer_move", "x": ...}``),
    ``client_id`` names the viewer, ``received_us`` is when the server got it."""

    client_id: str
    principal: Any
    event: dict
    received_us: int


_IGNORED = ("has_nvenc", "gpu", "encode_pipeline_depth", "record_events", "event_log")
_FORMATS = {"rgb24": "rgb", "rgba8": "rgba", "bgra8": "bgra", "nv12": "nv12"}


def _input_event(ev: dict) -> InputEvent:
    ev = dict(ev)
    viewer = ev.pop("viewer", 0)
    received = ev.pop("received_us", 0)
    return InputEvent(client_id=str(viewer), principal=None, event=ev, received_us=received)


class Display:
    """pdum.rfb's ``Display`` on framecast's server."""

    def __init__(self, inner: _display.Display, server: Server, pixel_ratio: float = 1.0):
        self._inner = inner
        self._server = server
        self._pixel_ratio = pixel_ratio
        self._color: dict | None = None

    def publish(self, frame: Any, *, pixel_ratio: float | None = None, color: Any = None) -> None:
        """Make ``frame`` (an array or a :class:`RawFrame`) the latest frame."""
        fmt = None
        if isinstance(frame, RawFrame):
            if frame.memory != "cpu":
                raise TypeError(f"RawFrame memory {frame.memory!r}: framecast.rfb takes cpu frames")
            fmt = _FORMATS.get(frame.pixel_format)
            if fmt is None:
                raise ValueError(f"RawFrame pixel_format {frame.pixel_format!r} is not supported")
            pixel_ratio = frame.pixel_ratio if pixel_ratio is None else pixel_ratio
            color = frame.color if color is None else color
            frame = frame.data
        if pixel_ratio is not None:
            self._pixel_ratio = float(pixel_ratio)
        if color is not None:
            self._color = color.to_dict() if hasattr(color, "to_dict") else dict(color)
        self._inner.publish(
            frame,
            pixel_format=fmt,
            pixel_ratio=None if pixel_ratio is None else float(pixel_ratio),
            color=color,
        )

    def poll_events(self) -> list[InputEvent]:
        """Everything queued since the last poll."""
        return [_input_event(e) for e in self._inner.poll_events()]

    async def events(self) -> AsyncIterator[InputEvent]:
        """Async-iterate the input events."""
        async for ev in self._inner.events():
            yield _input_event(ev)

    @property
    def client_count(self) -> int:
        """Number of connected viewers."""
        return self._inner.client_count

    @property
    def pixel_ratio(self) -> float:
        """The last published pixel ratio."""
        return self._pixel_ratio

    @property
    def color(self) -> dict | None:
        """The last published colour description."""
        return self._color

    @property
    def target_size(self) -> tuple[int, int] | None:
        """``match_client``: the size viewers want."""
        return self._inner.target_size

    @property
    def port(self) -> int:
        """The bound port."""
        return self._inner.port

    @property
    def server(self) -> Server:
        """The hub this stream belongs to."""
        return self._server

    @property
    def ws_url(self) -> str:
        """The stream's WebSocket URL."""
        return self._inner.ws_url

    def widget(self, **options: Any) -> Any:
        """A Jupyter widget of this stream."""
        return self._inner.widget(**options)

    async def aclose(self) -> None:
        """Close the stream (and the server, for a display from :func:`serve`)."""
        await self._inner.aclose()


class Server:
    """pdum.rfb's multi-stream hub on framecast's server."""

    def __init__(self, inner: _display.Server):
        self._inner = inner
        self._displays: dict[str, Display] = {}

    def add_stream(self, name: str, width: int, height: int, **config: Any) -> Display:
        """Register a named stream and return its :class:`Display`."""
        if name in self._displays:
            raise ValueError(f"stream {name!r} already exists")
        kwargs = _stream_kwargs(config)
        display = Display(self._inner.add_stream(name, width, height, **kwargs), self)
        self._displays[name] = display
        return display

    def stream(self, name: str = "default") -> Display:
        """The :class:`Display` of stream ``name``."""
        return self._displays[name]

    def remove_stream(self, name: str) -> None:
        """Remove a stream (no-op when absent)."""
        if self._displays.pop(name, None) is not None:
            self._inner.remove_stream(name)

    @property
    def streams(self) -> list[str]:
        """The names of the registered streams."""
        return list(self._displays)

    @property
    def port(self) -> int:
        """The bound port."""
        return self._inner.port

    async def start(self) -> Server:
        """Already listening (framecast starts in :func:`serve_server`); returns ``self``."""
        return self

    async def aclose(self) -> None:
        """Close every stream and stop listening."""
        await self._inner.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _stream_kwargs(config: dict) -> dict:
    if config.pop("authenticate", None) is not None:
        raise NotImplementedError(
            "authenticate= (a callback) is pdum.rfb's; framecast checks a token instead: "
            "framecast.serve(..., token=...)"
        )
    for key in _IGNORED:
        if config.pop(key, None):
            warnings.warn(f"framecast.rfb: {key}= is not supported and is ignored", stacklevel=3)
    config.pop("own_frames", None)  # framecast always copies once into a recycled buffer
    has_h264 = config.pop("has_h264", None)
    if has_h264 is False:
        config["transport"] = "image"
    config.pop("event_queue_size", None)
    return config


async def serve_server(
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    origins: list | None = None,
    streams: list[dict] | None = None,
) -> Server:
    """Start a multi-stream hub (pdum.rfb's ``serve_server``)."""
    origins = [o for o in origins or [] if o is not None] or None
    server = Server(_display.serve_server(host=host, port=port, origins=origins))
    for spec in streams or []:
        spec = dict(spec)
        server.add_stream(spec.pop("name"), spec.pop("width"), spec.pop("height"), **spec)
    return server


async def serve(
    width: int,
    height: int,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    origins: list | None = None,
    **config: Any,
) -> Display:
    """Serve one stream at ``ws://host:port/`` (pdum.rfb's ``serve``; same keywords)."""
    server = await serve_server(host=host, port=port, origins=origins)
    try:
        display = server.add_stream("default", width, height, **config)
    except BaseException:
        await server.aclose()
        raise
    display._inner._owns_server = True
    return display
