"""Display.publish_moq: the stream's H.264 through a real moq-relay. The relay's HTTP
``/fetch`` serves the newest group of the video track, which PyAV decodes to the card."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import H, W, assert_blocks, decode_h264, make_card

import framecast

ROOT = Path(__file__).resolve().parents[2]


def _relay_binary() -> str:
    for candidate in (os.environ.get("MOQ_RELAY"), ROOT / ".tools/moq-relay/bin/moq-relay"):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    found = shutil.which("moq-relay")
    if found:
        return found
    if os.environ.get("FRAMECAST_REQUIRE_MOQ_RELAY") == "1":
        pytest.fail(
            "FRAMECAST_REQUIRE_MOQ_RELAY=1 but no moq-relay (./scripts/test.sh installs it)"
        )
    pytest.skip(
        "no moq-relay (cargo install --locked moq-relay --version 0.17.8, or MOQ_RELAY=...)"
    )


def _free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


def _get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.read()


def _get_for(port: int, path: str, seconds: float) -> bytes:
    """The body a streamed (chunked) response sends within ``seconds``: the relay's
    ``/fetch`` of a live track keeps its response open."""
    raw = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                data = s.recv(65536)
            except TimeoutError:
                continue
            if not data:
                break
            raw += data
    head, _, rest = bytes(raw).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"chunked" in head.lower(), head
    body = bytearray()
    while True:
        size_line, sep, rest = rest.partition(b"\r\n")
        if not sep or not size_line:
            break
        size = int(size_line.split(b";")[0], 16)
        if size == 0 or len(rest) < size:
            break  # the end, or a chunk cut off by the deadline
        body += rest[:size]
        rest = rest[size + 2 :]
    return bytes(body)


@pytest.fixture
def relay():
    port = _free_port()
    addr = f"127.0.0.1:{port}"
    proc = subprocess.Popen(
        [_relay_binary(), "--listen", addr, "--listen-tls-generate", "localhost"]
        + ["--web-http-listen", addr, "--auth-public", "**", "--log-level", "warn"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            fingerprint = _get(port, "/certificate.sha256").decode().strip()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("moq-relay did not start")
            time.sleep(0.1)
    yield port, fingerprint
    proc.kill()
    proc.wait(10)


def test_publish_moq_reaches_the_relay_and_decodes(relay):
    port, fingerprint = relay
    display = framecast.serve(W, H, port=0, fps=30)
    stop = threading.Event()

    def render() -> None:
        t = 0
        while not stop.is_set():
            display.publish(make_card(t=t))
            t += 1
            time.sleep(1 / 30)

    thread = threading.Thread(target=render)
    thread.start()
    try:
        with display.publish_moq(
            f"https://127.0.0.1:{port}/pycam", fingerprint=fingerprint, keyframe_interval=1.0
        ) as publisher:
            assert publisher.wait_connected(10), publisher.state
            assert publisher.state == "connected"
            deadline = time.monotonic() + 10
            catalog = None
            while time.monotonic() < deadline:
                try:
                    catalog = json.loads(_get(port, "/fetch/pycam/catalog.json"))
                    if catalog["video"]["renditions"]:
                        break
                except OSError:
                    pass
                time.sleep(0.2)
            assert catalog is not None
            video = catalog["video"]["renditions"]["video"]
            assert video["codec"].startswith("avc3."), video
            assert (video["codedWidth"], video["codedHeight"]) == (W, H)
            group = _get_for(port, "/fetch/pycam/video", 1.5)
            assert publisher.frames > 0
        assert publisher.state == "stopped"
    finally:
        stop.set()
        thread.join()
        display.close()
    # The newest group: frames in the legacy container, each a QUIC varint timestamp and an
    # access unit (PyAV takes the timestamps as trailing bytes of the slice before them); the
    # group opens with an IDR.
    skip = 1 << (group[0] >> 6)
    assert group[skip : skip + 5] == b"\x00\x00\x00\x01\x67", group[:16].hex()
    pictures = decode_h264(group[skip:])
    assert pictures, "the group decodes"
    assert_blocks(pictures[0], tol=8)
    assert_blocks(pictures[-1], tol=8)


def test_publish_moq_refuses_a_bad_url():
    display = framecast.serve(W, H, port=0)
    try:
        with pytest.raises(ValueError, match="no broadcast name"):
            display.publish_moq("https://relay.example:4443/")
        with pytest.raises(ValueError, match="keyframe_interval"):
            display.publish_moq("https://relay.example:4443/x", keyframe_interval=0)
    finally:
        display.close()
