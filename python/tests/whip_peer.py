"""A WHIP endpoint (RFC 9725) made of aiortc, a WebRTC stack nobody here wrote: POST an SDP
offer, get the answer and a resource URL; the pictures it decodes (with PyAV) are kept with
their arrival time. Used by the WHIP tests and the WHIP latency benchmark.

aioice leaves 127.0.0.1 out of its host candidates; the endpoint puts it back so the test's
media stays on loopback."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import aioice.ice
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

if TYPE_CHECKING:
    from typing_extensions import Self

aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]  # type: ignore[assignment]


class WhipEndpoint:
    """``with WhipEndpoint(token="t") as ep:`` then publish to ``ep.url``; read
    ``ep.pictures`` (a queue of ``(arrival_unix_s, av.VideoFrame)``)."""

    def __init__(self, token: str | None = None):
        self.token = token
        self.pictures: queue.Queue[tuple[float, Any]] = queue.Queue()
        self.posts = 0
        self.deletes = 0
        # The first picture of each session (1, 2, ...), to check a new session starts at an IDR.
        self.first_pictures: dict[int, Any] = {}
        self._sessions = 0
        self._pcs: list[RTCPeerConnection] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _auth_ok(self) -> bool:
                if endpoint.token is None:
                    return True
                return self.headers.get("Authorization") == f"Bearer {endpoint.token}"

            def do_POST(self) -> None:
                if not self._auth_ok():
                    self.send_response(401)
                    self.end_headers()
                    self.wfile.write(b"bad token")
                    return
                if self.headers.get("Content-Type") != "application/sdp":
                    self.send_response(415)
                    self.end_headers()
                    return
                offer = self.rfile.read(int(self.headers["Content-Length"])).decode()
                answer = endpoint._run(endpoint._answer(offer))
                endpoint.posts += 1
                body = answer.encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/sdp")
                self.send_header("Location", f"/whip/session/{endpoint.posts}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_DELETE(self) -> None:
                endpoint.deletes += 1
                self.send_response(200)
                self.end_headers()

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/whip"

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    async def _answer(self, offer: str) -> str:
        pc = RTCPeerConnection()
        self._pcs.append(pc)
        self._sessions += 1
        session = self._sessions

        @pc.on("track")
        def on_track(track: Any) -> None:
            async def consume() -> None:
                while True:
                    try:
                        frame = await track.recv()
                    except MediaStreamError:
                        return
                    self.first_pictures.setdefault(session, frame)
                    self.pictures.put((time.time(), frame))

            asyncio.ensure_future(consume())

        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    def send_pli(self) -> None:
        """Ask the publisher for a keyframe (RTCP PLI), as an SFU does for a new subscriber."""

        async def pli() -> None:
            for pc in self._pcs:
                for receiver in pc.getReceivers():
                    streams = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
                    for ssrc in list(streams):
                        await receiver._send_rtcp_pli(ssrc)

        self._run(pli())

    def drop_sessions(self) -> None:
        """Close every peer connection, as an SFU that restarts or evicts the publisher."""
        for pc in self._pcs:
            self._run(pc.close())
        self._pcs.clear()

    def next_picture(self, timeout: float = 10.0) -> tuple[float, Any]:
        return self.pictures.get(timeout=timeout)

    def close(self) -> None:
        self.drop_sessions()
        self._http.shutdown()
        self._loop.call_soon_threadsafe(self._loop.stop)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
