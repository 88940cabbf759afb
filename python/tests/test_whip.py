"""WHIP (RFC 9725) against aiortc, a WebRTC stack nobody here wrote, as the endpoint: the
pictures it decodes (with PyAV) are the card, a PLI from it brings a keyframe, a wrong token
is refused, and ``framecast serve --publish-whip`` does the same from the command line."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import H, W, assert_blocks, make_card, picture_rgb

import framecast

whip_peer = pytest.importorskip("whip_peer", reason="aiortc is not installed (pip install aiortc)")
ROOT = Path(__file__).resolve().parents[2]


class Card:
    """Publishes the card at 30 fps on a thread until stopped."""

    def __init__(self, display: framecast.Display):
        self.display = display
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        t = 0
        while not self.stop.is_set():
            self.display.publish(make_card(t=t))
            t += 1
            time.sleep(1 / 30)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.display.close()


def test_whip_to_aiortc_decodes_the_card_and_a_pli_brings_a_keyframe():
    with whip_peer.WhipEndpoint(token="whip-secret") as ep:
        # 4 Mb/s asked, far above what aiortc estimates for this stream: the cap must show.
        card = Card(framecast.serve(W, H, port=0, fps=30, bitrate=4_000_000))
        try:
            with card.display.publish_whip(ep.url, token="whip-secret") as publisher:
                assert publisher.wait_connected(15), publisher.state
                _, first = ep.next_picture(15)
                assert first.key_frame, "the SFU's first picture is an IDR"
                assert (first.width, first.height) == (W, H)
                assert_blocks(picture_rgb(first), tol=8)
                # With congestion control on, the stream makes no periodic IDRs: let a
                # second pass, then only the PLI can bring one.
                deadline = time.monotonic() + 1.0
                while time.monotonic() < deadline:
                    _, pic = ep.next_picture(5)
                assert_blocks(picture_rgb(pic), tol=8)
                while not ep.pictures.empty():
                    ep.pictures.get_nowait()
                ep.send_pli()
                seen = 0
                while True:
                    _, pic = ep.next_picture(5)
                    seen += 1
                    if pic.key_frame:
                        break
                    assert seen < 30, "no keyframe within 30 pictures of the PLI"
                assert publisher.frames > 30
                # The endpoint's bandwidth estimate reaches the publisher and caps what the
                # stream's congestion control targets for it (90 % of the estimate).
                deadline = time.monotonic() + 15
                capped = None
                while capped is None and time.monotonic() < deadline:
                    estimate = publisher.estimate_bps
                    viewers = (card.display.metrics() or {}).get("viewers", [])
                    if estimate and viewers:
                        target = viewers[0]["congestion"]["target_bitrate"]
                        if target <= 0.9 * estimate + 1 and target < 4_000_000:
                            capped = (estimate, target)
                    time.sleep(0.2)
                assert capped, f"estimate {publisher.estimate_bps}, viewers {viewers}"
            assert publisher.state == "stopped"
            assert ep.deletes == 1, "the session resource was deleted"
        finally:
            card.close()


def test_a_session_the_endpoint_drops_is_set_up_again():
    with whip_peer.WhipEndpoint() as ep:
        card = Card(framecast.serve(W, H, port=0, fps=30))
        try:
            with card.display.publish_whip(ep.url) as publisher:
                assert publisher.wait_connected(15), publisher.state
                ep.next_picture(15)
                ep.drop_sessions()
                deadline = time.monotonic() + 20
                while ep.posts < 2 and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert ep.posts == 2, "a new offer was posted after the drop"
                assert publisher.wait_connected(15), publisher.state
                deadline = time.monotonic() + 15
                while 2 not in ep.first_pictures and time.monotonic() < deadline:
                    time.sleep(0.1)
                first = ep.first_pictures[2]
                assert first.key_frame, "the new session starts at an IDR"
                assert_blocks(picture_rgb(first), tol=8)
        finally:
            card.close()


def test_a_wrong_token_is_refused_by_the_endpoint():
    with whip_peer.WhipEndpoint(token="right") as ep:
        display = framecast.serve(W, H, port=0)
        try:
            with pytest.raises(OSError, match="401"):
                display.publish_whip(ep.url, token="wrong")
            with pytest.raises(ValueError, match="scheme"):
                display.publish_whip("rtmp://example/live")
        finally:
            display.close()


def test_serve_publish_whip_from_the_command_line():
    explicit = os.environ.get("FRAMECAST_BIN")
    binary = Path(explicit) if explicit else ROOT / "target" / "debug" / "framecast"
    if not binary.is_file():
        pytest.skip(f"no framecast binary at {binary}")
    with whip_peer.WhipEndpoint(token="cli") as ep:
        proc = subprocess.Popen(
            [str(binary), "serve", "--pattern", "testcard", "--size", "320x240"]
            + ["--listen", "127.0.0.1:0", "--publish-whip", ep.url, "--whip-token", "cli"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            for _ in range(10):
                _, pic = ep.next_picture(15)
                assert (pic.width, pic.height) == (320, 240)
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=10)
        states = [line for line in err.splitlines() if line.startswith("WHIP endpoint")]
        assert states[:2] == [
            f"WHIP endpoint {ep.url}: connecting",
            f"WHIP endpoint {ep.url}: connected",
        ], err
