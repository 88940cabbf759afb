"""The Jupyter widget of a stream: ``display.widget()`` (JupyterLab, Notebook 7, VS Code).

Needs ``pip install 'framecast[jupyter]'`` (anywidget and websockets).

The browser side (``widget.js``) runs the embedded viewer's own modules. Frames reach it

* **directly**, over a WebSocket from the browser to the framecast server, when the page can
  reach the server's port (a local notebook), or
* **through the kernel**, when it cannot (a remote kernel, JupyterHub, an HTTPS page): the
  kernel opens the WebSocket itself and relays it over the widget's comm, frames as binary
  buffers, input events back the same way.

``transport="auto"`` (the default) tries the first and falls back to the second; ``"direct"``
and ``"comm"`` force one. Through the kernel, the relay acknowledges each frame when it hands
it to Jupyter (Jupyter's own connection paces the rest), and the browser's input reaches
:meth:`Display.poll_events` whenever the kernel handles widget messages: between cells, or while
a cell awaits (an ``asyncio`` render loop, as in ``publish_loop`` below), not during a cell that
blocks in a plain ``while`` loop.
"""

from __future__ import annotations

import asyncio
import json
import struct
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

try:
    import anywidget
    import traitlets
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "framecast's Jupyter widget needs anywidget and websockets: "
        "pip install 'framecast[jupyter]'"
    ) from e

from . import _native

if TYPE_CHECKING:
    from ._display import Display

_VIEWER_MODULES = ("framecast.js", "worker.js", "protocol.js", "input.js")


def _viewer_sources() -> dict[str, str]:
    out = {}
    for name in _VIEWER_MODULES:
        data = _native.viewer_file(name)
        if data is None:  # pragma: no cover - a build without the viewer
            raise RuntimeError(f"this framecast build has no viewer/{name}")
        out[name] = data.decode("utf-8")
    return out


def _chunk_seq(message: bytes) -> int | None:
    """The ``seq`` of a binary frame (``u32 LE header length | JSON header | payload``)."""
    if len(message) < 4:
        return None
    (n,) = struct.unpack_from("<I", message)
    try:
        seq = json.loads(message[4 : 4 + n]).get("seq")
    except (ValueError, AttributeError):
        return None
    return seq if isinstance(seq, int) else None


class _Relay:
    """One browser view's connection, opened by the kernel and carried over the comm.

    A thread reads the server's WebSocket and sends each message to the browser (binary
    frames as comm buffers), then acknowledges the frame to the server; the browser's own
    ``ack`` messages are dropped (they would arrive only when the kernel is free), everything
    else it sends (hello, viewport, input events, keyframe requests) goes to the server.
    """

    def __init__(self, widget: FramecastWidget, view_id: str, url: str):
        self._widget, self._id, self._url = widget, view_id, url
        self._ws: Any = None
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"framecast-relay-{view_id}")
        self._thread.daemon = True
        self._thread.start()

    def _to_browser(self, kind: str, buffers: list[bytes] | None = None, **fields: Any) -> None:
        self._widget.send({"type": kind, "id": self._id, **fields}, buffers)

    def _run(self) -> None:
        code, reason = 1006, "connection lost"
        try:
            self._ws = connect(self._url, max_size=None, compression=None, open_timeout=10)
        except Exception as e:  # noqa: BLE001 - reported to the browser, which retries
            self._to_browser(
                "relay_close", code=1006, reason=f"kernel could not connect: {e}"[:120]
            )
            return
        if self._closed.is_set():
            self._ws.close()
            return
        self._to_browser("relay_open")
        try:
            for message in self._ws:
                if isinstance(message, str):
                    self._to_browser("relay_text", text=message)
                    continue
                self._to_browser("relay_binary", [message])
                seq = _chunk_seq(message)
                if seq is not None:
                    ack = {"type": "ack", "seq": seq, "decode_queue_size": 0, "displayed": True}
                    self._ws.send(json.dumps(ack))
            code, reason = 1000, ""
        except ConnectionClosed as e:
            if e.rcvd is not None:
                code, reason = e.rcvd.code, e.rcvd.reason
        finally:
            if not self._closed.is_set():
                self._to_browser("relay_close", code=code, reason=reason)

    def send(self, text: str) -> None:
        try:
            if json.loads(text).get("type") == "ack":
                return
        except (ValueError, AttributeError):
            return
        ws = self._ws
        if ws is not None:
            try:
                ws.send(text)
            except ConnectionClosed:
                pass

    def close(self) -> None:
        self._closed.set()
        ws = self._ws
        if ws is not None:
            ws.close()


class FramecastWidget(anywidget.AnyWidget):
    """A live view of a framecast stream in a notebook, with input going back to the stream.

    Made by :meth:`framecast.Display.widget`; keywords set the traits below.
    """

    _esm = Path(__file__).with_name("widget.js")
    _viewer = traitlets.Dict().tag(sync=True)

    #: "auto" (direct WebSocket when the page can reach the server, else through the kernel),
    #: "direct" or "comm".
    transport = traitlets.Enum(["auto", "direct", "comm"], default_value="auto").tag(sync=True)
    #: WebSocket URL for the browser; empty: ws://<host>:<port>/<stream>.
    url = traitlets.Unicode("").tag(sync=True)
    #: Host the browser connects to; "auto": the notebook page's own host name.
    host = traitlets.Unicode("auto").tag(sync=True)
    port = traitlets.Int(0).tag(sync=True)
    stream = traitlets.Unicode("default").tag(sync=True)
    #: The stream's token, when it has one.
    token = traitlets.Unicode("").tag(sync=True)
    image_only = traitlets.Bool(False).tag(sync=True)
    #: "contain", "cover" or "fill".
    fit = traitlets.Unicode("contain").tag(sync=True)
    #: Height of the view in CSS pixels (the width follows the cell).
    height = traitlets.Int(480).tag(sync=True)
    #: Read back from the browser: "direct" or "comm", the viewer's state, its last error.
    mode = traitlets.Unicode("").tag(sync=True)
    state = traitlets.Unicode("").tag(sync=True)
    last_error = traitlets.Unicode("").tag(sync=True)

    def __init__(self, display: Display, **traits: Any):
        traits.setdefault("port", display.port)
        traits.setdefault("stream", display.name)
        super().__init__(_viewer=_viewer_sources(), **traits)
        self._relay_url = display.ws_url
        self._relays: dict[str, _Relay] = {}
        self.on_msg(self._on_custom)

    def _on_custom(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind, view_id = content.get("type"), str(content.get("id", ""))
        if kind == "relay_connect":
            old = self._relays.pop(view_id, None)
            if old is not None:
                old.close()
            self._relays[view_id] = _Relay(self, view_id, self._relay_url)
        elif kind == "relay_send":
            relay = self._relays.get(view_id)
            if relay is not None and isinstance(content.get("text"), str):
                relay.send(content["text"])
        elif kind == "relay_disconnect":
            relay = self._relays.pop(view_id, None)
            if relay is not None:
                relay.close()

    def close(self) -> None:
        """Close the widget and the connections the kernel relays for it."""
        for relay in self._relays.values():
            relay.close()
        self._relays.clear()
        super().close()


def publish_loop(
    display: Display, render: Callable[[], Any], *, fps: float = 30
) -> asyncio.Task[None]:
    """Run ``display.publish(render())`` ``fps`` times a second as a task on the notebook's
    event loop and return the task at once, so the kernel stays free for widget messages
    and other cells. Stop it with ``task.cancel()``."""

    async def run() -> None:
        period = 1.0 / fps
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not display.closed:
            display.publish(render())
            next_at += period
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    return asyncio.ensure_future(run())
