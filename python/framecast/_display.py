"""Live streaming: :func:`serve`, :func:`serve_server`, :class:`Server` and :class:`Display`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self

from . import _native
from ._fanout import MoqPublisher, WhipPublisher

__all__ = ["Display", "Server", "serve", "serve_server"]


class _Closable:
    """``aclose()`` and the sync and async context managers, from ``close()``."""

    def close(self) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        """:meth:`close` without blocking the event loop."""
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Display(_Closable):
    """One stream's publishing end: publish frames, read viewer input.

    Made by :func:`serve` (which also owns the server) or :meth:`Server.add_stream`. Every
    method may be called from any thread; none of them calls back into your code from the
    server's threads.
    """

    def __init__(self, native: Any, server: Server | None = None, owns_server: bool = False):
        self._native = native
        self._server = server
        self._owns_server = owns_server

    def publish(
        self,
        frame: Any,
        *,
        pixel_format: str | None = None,
        pixel_ratio: float | None = None,
        color: Any = None,
    ) -> None:
        """Make ``frame`` the latest frame (latest wins: viewers that are behind skip ahead).

        ``frame`` may be a numpy array or any buffer-protocol object numpy can view (an
        evaluated MLX ``mx.array``, a ``memoryview``, a CPU tensor):

        * ``(H, W, 3)`` uint8: RGB; ``(H, W, 4)`` uint8: RGBA (``pixel_format="bgra"`` for BGRA);
        * ``(H, W, 4)`` float16/float32: RGBA in 0..1;
        * ``(H*3//2, W)`` uint8 with ``pixel_format="nv12"``: NV12 (Y rows, then UV rows).

        Rows may be padded or a cropped view; pixels must be contiguous (otherwise
        ``ValueError`` names the fix, ``numpy.ascontiguousarray``). The pixels are copied once
        into a recycled buffer with the GIL released, so the array is yours again on return.
        ``pixel_ratio`` and ``color`` (``"srgb"``, ``"display-p3"``, a dict or a ColorSpace) tag
        this frame for the viewer; they never convert pixels.

        **CUDA arrays** (CuPy, PyTorch, JAX, Numba; same shapes and dtypes) are converted to
        NV12 on their own GPU, in the process's primary context, by a kernel compiled at run
        time (NVRTC), and only the NV12 is read back, through a ring of
        :attr:`cuda_ring_depth` pinned buffers: ``publish`` returns once the conversion is
        queued, and the frame reaches the stream when its readback lands, in order. Ordering:

        * PyTorch: the conversion is queued on ``torch.cuda.current_stream()``;
        * CuPy / Numba (``__cuda_array_interface__`` with a ``stream``): on that stream;
        * JAX and other DLPack producers: on framecast's stream, after the producer's writes
          (``__dlpack__(stream=...)``); the array is held until it has been read.

        So on PyTorch, CuPy and Numba you may render the next frame into the same array at
        once: your stream runs that after the read. Elsewhere, don't write into a published
        array in place (JAX arrays are immutable). :meth:`flush_cuda` waits until every CUDA
        frame has reached the stream.

        Raises ``ClosedError`` after :meth:`close`, ``TypeError`` for unsupported dtypes,
        ``ValueError`` for unsupported shapes, ``RuntimeError`` for a CUDA array on a machine
        without a CUDA driver or NVRTC (``python -m framecast doctor`` says which).
        """
        self._native.publish(frame, pixel_format=pixel_format, pixel_ratio=pixel_ratio, color=color)

    @property
    def cuda_ring_depth(self) -> int:
        """CUDA frames in flight at once (1..16, default 2): each frame's NV12 readback
        overlaps the next frame's rendering; :meth:`publish` waits only when all are in use."""
        return self._native.cuda_ring_depth

    @cuda_ring_depth.setter
    def cuda_ring_depth(self, depth: int) -> None:
        self._native.cuda_ring_depth = depth

    def flush_cuda(self) -> None:
        """Wait until every CUDA frame published so far has reached the stream."""
        self._native.flush_cuda()

    def poll_events(self) -> list[dict]:
        """Input events received since the last call, oldest first.

        Each is a dict in pdum.rfb's event vocabulary (``type`` is ``pointer_move``,
        ``pointer_down``, ``pointer_up``, ``wheel``, ``key_down``, ``key_up`` or ``resize``;
        pointer coordinates are frame pixels), plus ``viewer`` (an id) and ``received_us``.
        """
        return self._native.poll_events()

    def next_event(self, timeout: float | None = None) -> dict | None:
        """Wait up to ``timeout`` seconds (forever when None) for the next input event."""
        while True:
            ev = self._native.next_event(1.0 if timeout is None else timeout)
            if ev is not None or timeout is not None or self.closed:
                return ev

    async def events(self) -> AsyncIterator[dict]:
        """``async for ev in display.events():`` input events as they arrive, until closed."""
        loop = asyncio.get_running_loop()
        while not self.closed:
            ev = await loop.run_in_executor(None, self._native.next_event, 0.25)
            if ev is not None:
                yield ev

    @property
    def client_count(self) -> int:
        """Viewers connected now."""
        return self._native.client_count

    @property
    def url(self) -> str:
        """The viewer page, e.g. ``http://127.0.0.1:8765/``."""
        return self._native.url

    @property
    def ws_url(self) -> str:
        """The WebSocket URL, e.g. ``ws://127.0.0.1:8765/``."""
        return self._native.ws_url

    @property
    def port(self) -> int:
        """The server's port (the real one when started with ``port=0``)."""
        return self._native.port

    @property
    def name(self) -> str:
        """The stream's name (``default`` is served at ``/``)."""
        return self._native.name

    @property
    def target_size(self) -> tuple[int, int] | None:
        """With ``resize_policy="match_client"``: the size the viewers want, once known."""
        return self._native.target_size

    @property
    def frames_published(self) -> int:
        """Frames published so far."""
        return self._native.frames_published

    @property
    def closed(self) -> bool:
        """Whether the display (or its server) is closed."""
        return self._native.closed

    @property
    def server(self) -> Server | None:
        """The server this stream belongs to."""
        return self._server

    def metrics(self) -> dict | None:
        """Counters of the stream: frames, per-group encode times, per-viewer fps, RTT and
        drops (the ``/streams/<name>/metrics`` document); None once closed."""
        return self._native.metrics()

    def publish_moq(
        self,
        url: str,
        *,
        fingerprint: str | Sequence[str] | None = None,
        insecure: bool = False,
        keyframe_interval: float = 2.0,
    ) -> MoqPublisher:
        """Also publish this stream to a Media over QUIC relay (``moq-relay``), for audiences
        one machine cannot serve: ``url`` is ``https://relay:4443/<name>`` and its last segment
        names the broadcast. The H.264 the local viewers get is published as it is (no second
        encode); browsers watch through the relay over WebTransport.

        ``fingerprint``: trust a self-signed relay certificate by its SHA-256 (hex; moq-relay
        serves it at ``http://relay:port/certificate.sha256``), one or several.
        ``insecure``: accept any certificate (testing only). ``keyframe_interval``: seconds
        between the IDRs asked for the relay (late subscribers start at one).
        """
        if isinstance(fingerprint, str):
            fingerprint = [fingerprint]
        native = self._native.publish_moq(
            url,
            fingerprint=None if fingerprint is None else list(fingerprint),
            insecure=insecure,
            keyframe_interval=keyframe_interval,
        )
        return MoqPublisher(native)

    def publish_whip(
        self, url: str, *, token: str | None = None, follow_estimate: bool = True
    ) -> WhipPublisher:
        """Also push this stream to a WebRTC SFU's WHIP endpoint (RFC 9725: LiveKit,
        Cloudflare, mediamtx, Janus front-ends) as one sendonly H.264 track, the H.264 the
        local viewers get (no second encode).

        ``token``: the endpoint's bearer token. ``follow_estimate``: cap the rate sent to the
        SFU at its bandwidth estimate (TWCC/REMB); the stream's congestion control moves the
        SFU to a tier of its own rather than lowering the local viewers. The SFU's keyframe
        requests (PLI/FIR) reach the encoder. An endpoint that refuses the offer (a wrong
        token) raises ``OSError``; one not reachable yet is retried in the background.
        """
        return WhipPublisher(
            self._native.publish_whip(url, token=token, follow_estimate=follow_estimate)
        )

    def widget(self, **options: Any) -> Any:
        """A Jupyter widget showing this stream, with input coming back to
        :meth:`poll_events` (needs ``pip install 'framecast[jupyter]'``)."""
        from .widget import FramecastWidget

        return FramecastWidget(self, **options)

    def close(self) -> None:
        """Close the stream (viewers get 1001); a display from :func:`serve` also stops its
        server. Returns once the viewers have been told (a few seconds at most)."""
        if self._owns_server and self._server is not None:
            self._server.close()
        else:
            self._native.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self.client_count} viewer(s)"
        return f"<framecast.Display {self.name!r} at {self.url} ({state})>"


class Server(_Closable):
    """A server with several named streams on one port (``ws://host:port/<name>``).

    Made by :func:`serve_server`; add streams with :meth:`add_stream`.
    """

    def __init__(self, native: Any):
        self._native = native
        self._streams: dict[str, Display] = {}

    def add_stream(self, name: str, width: int, height: int, **config: Any) -> Display:
        """Add a stream served at ``/<name>`` (``default`` is also ``/``); returns its
        :class:`Display`. ``config`` takes the stream keywords of :func:`serve`."""
        display = Display(self._native.add_stream(name, width, height, **config), self)
        self._streams[name] = display
        return display

    def stream(self, name: str = "default") -> Display:
        """The display of stream ``name`` (``KeyError`` when there is none)."""
        return self._streams[name]

    def remove_stream(self, name: str) -> None:
        """Remove a stream; its viewers get 1001."""
        self._native.remove_stream(name)
        self._streams.pop(name, None)

    @property
    def streams(self) -> list[str]:
        """Names of the streams."""
        return list(self._native.streams)

    @property
    def port(self) -> int:
        """The bound port."""
        return self._native.port

    @property
    def url(self) -> str:
        """``http://host:port/``."""
        return f"http://{self._native.host}:{self._native.port}/"

    def close(self) -> None:
        """Close every stream and stop listening."""
        self._native.close()


def serve_server(
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    origins: Sequence[str] | None = None,
    remote_control: bool = False,
) -> Server:
    """Start a server with no stream yet, on background threads; returns at once.

    ``origins`` lists page origins allowed to open WebSockets (``"*"`` for any); by default
    same-host and localhost pages are. ``port=0`` picks a free port (see :attr:`Server.port`).
    """
    return Server(
        _native.Server(
            host=host,
            port=port,
            origins=list(origins) if origins is not None else None,
            remote_control=remote_control,
        )
    )


def serve(
    width: int,
    height: int,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    fps: float = 30,
    bitrate: int | None = None,
    max_inflight: int = 2,
    token: str | None = None,
    origins: Sequence[str] | None = None,
    transport: str = "auto",
    backend: str | None = None,
    stats_interval: float | None = None,
    still_after: float | None = None,
    resize_policy: str = "publisher",
    max_render_dimension: int | None = None,
    adaptive: bool = True,
) -> Display:
    """Serve one stream of ``width`` x ``height`` at ``http://host:port/`` and return its
    :class:`Display`; the server runs on background threads and this returns at once.

    * ``fps``: the frame rate you intend to publish at (GOP length, stats targets).
    * ``bitrate``: H.264 bits/s (default: 8 Mb/s at 1080p30, scaled by pixel rate).
    * ``max_inflight``: frames a viewer may have unacknowledged before frames are skipped
      for it (latest wins).
    * ``token``: viewers must present it (``?token=`` or in their ``hello``).
    * ``transport``: ``"auto"`` (H.264 where the browser has WebCodecs, JPEG otherwise),
      ``"video"`` or ``"image"``. ``backend``: encoder name (see :func:`framecast.doctor`).
    * ``stats_interval``: push stats to viewers this often (seconds). ``still_after``: send
      the resting frame again losslessly after this long without a publish.
    * ``resize_policy``: ``"publisher"`` or ``"match_client"`` (then :attr:`Display.target_size`
      follows the viewers, clamped to ``max_render_dimension``).
    * ``adaptive``: congestion control (on by default). Each viewer's link sets its bitrate
      (down to a tenth of ``bitrate``), frame rate and in-flight window, so latency stays low
      on slow and changing networks; a viewer on a much slower link gets a lower encoder tier
      of its own. Viewers see changes as pdum.rfb's ``set_quality``. The encoder then makes
      no periodic IDRs (joins and decoder resets still get one at once). ``False``: every
      viewer gets ``bitrate`` and ``fps``, with an IDR every second.

    Raises ``OSError`` when the port is taken, ``ValueError`` for bad settings.
    """
    server = serve_server(host=host, port=port, origins=origins)
    try:
        native = server._native.add_stream(
            "default",
            width,
            height,
            fps=fps,
            bitrate=bitrate,
            max_inflight=max_inflight,
            token=token,
            transport=transport,
            backend=backend,
            stats_interval=stats_interval,
            still_after=still_after,
            resize_policy=resize_policy,
            max_render_dimension=max_render_dimension,
            adaptive=adaptive,
        )
    except BaseException:
        server.close()
        raise
    display = Display(native, server, owns_server=True)
    server._streams["default"] = display
    return display
