"""framecast.serve from Python, watched by a pdum.rfb-protocol client (``websockets``):
decodable chunks, events back into poll_events(), token and origin checks, bad input."""

from __future__ import annotations

import asyncio
import io
import json

import numpy as np
import pytest
import websockets
from conftest import H, Viewer, W, assert_blocks, decode_h264, make_card
from PIL import Image

import framecast

VIDEO = ("image/jpeg", "image/png", "webcodecs/h264-annexb")


def run(coro):
    return asyncio.run(coro)


async def publishing(display, frames=None, seconds=5.0, fps=30):
    """Publish the test card (or `frames`) at `fps` until cancelled or `seconds` pass."""
    t = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        frame = frames[t % len(frames)] if frames else make_card(t=t)
        display.publish(frame)
        t += 1
        await asyncio.sleep(1 / fps)


def test_video_chunks_decode_to_the_card_and_events_come_back():
    async def main():
        display = framecast.serve(W, H, port=0, fps=30)
        pub = asyncio.create_task(publishing(display))
        try:
            async with Viewer(display.ws_url, VIDEO) as v:
                config = await v.next_text()
                assert (config["type"], config["transport"]) == ("config", "webcodecs")
                assert (config["width"], config["height"]) == (W, H)
                chunks = await v.frames(12)
                assert chunks[0][0]["keyframe"] and chunks[0][0]["seq"] == 0
                assert [h["seq"] for h, _ in chunks] == list(range(12))
                pictures = decode_h264(b"".join(p for _, p in chunks))
                assert len(pictures) == 12
                for pic in pictures:
                    assert_blocks(pic)
                await v.send(
                    {
                        "type": "event",
                        "event": {
                            "type": "pointer_down",
                            "x": 12.5,
                            "y": 7,
                            "inside": True,
                            "pixel_ratio": 1,
                            "button": 1,
                            "buttons": [1],
                            "modifiers": ["Shift"],
                            "timestamp": 1.0,
                        },
                    }
                )
                await v.send(
                    {
                        "type": "set_viewport",
                        "width": 400,
                        "height": 300,
                        "pwidth": 800,
                        "pheight": 600,
                        "ratio": 2,
                    }
                )
                events = []
                for _ in range(50):
                    events += display.poll_events()
                    if len(events) >= 2:
                        break
                    await asyncio.sleep(0.05)
                assert display.client_count == 1
                m = display.metrics()
                assert m["frames_published"] >= 12 and m["groups"][0]["frames_encoded"] >= 12
                assert m["viewers"][0]["frames_acked"] >= 11
            down, resize = events
            assert down["type"] == "pointer_down" and (down["x"], down["y"]) == (12.5, 7)
            assert down["modifiers"] == ["Shift"] and down["button"] == 1
            assert "viewer" in down and down["received_us"] > 0
            assert resize["type"] == "resize" and resize["pwidth"] == 800
        finally:
            pub.cancel()
            await display.aclose()
        assert display.closed

    run(main())


def test_image_transport_sends_jpeg_of_the_card():
    async def main():
        display = framecast.serve(W, H, port=0, transport="image")
        pub = asyncio.create_task(publishing(display))
        try:
            async with Viewer(display.ws_url, ("image/jpeg",)) as v:
                assert (await v.next_text())["transport"] == "image"
                ((header, payload),) = await v.frames(1)
                assert header["mime"] == "image/jpeg"
                rgb = np.asarray(Image.open(io.BytesIO(payload)).convert("RGB"))
                assert_blocks(rgb, tol=12)
        finally:
            pub.cancel()
            await display.aclose()

    run(main())


def test_async_events_iterator():
    async def main():
        display = framecast.serve(W, H, port=0)
        display.publish(make_card())
        try:
            async with Viewer(display.ws_url, VIDEO) as v:
                await v.next_text()
                for k in ("a", "b"):
                    await v.send(
                        {
                            "type": "event",
                            "event": {
                                "type": "key_down",
                                "key": k,
                                "code": f"Key{k.upper()}",
                                "modifiers": [],
                                "timestamp": 1.0,
                            },
                        }
                    )
                got = []
                async for ev in display.events():
                    got.append(ev["key"])
                    if len(got) == 2:
                        break
                assert got == ["a", "b"]
        finally:
            await display.aclose()

    run(main())


def test_token_and_origin_are_enforced():
    async def main():
        display = framecast.serve(W, H, port=0, token="s3cret")
        display.publish(make_card())
        try:
            async with Viewer(display.ws_url, VIDEO, token="wrong") as v:
                with pytest.raises(websockets.ConnectionClosed) as e:
                    await v.next_text()
                assert e.value.rcvd.code == 4401
            async with Viewer(display.ws_url, VIDEO, token="s3cret") as v:
                assert (await v.next_text())["type"] == "config"
            with pytest.raises(websockets.InvalidStatus) as e:
                async with Viewer(
                    display.ws_url, VIDEO, token="s3cret", origin="http://evil.example"
                ):
                    pass
            assert e.value.response.status_code == 403
        finally:
            await display.aclose()

    run(main())
    with pytest.raises(TypeError, match="token must be a str"):
        framecast.serve(W, H, port=0, token=b"bytes")


def test_bad_publishes_raise_and_the_stream_keeps_serving():
    async def main():
        display = framecast.serve(W, H, port=0)
        display.publish(make_card())
        try:
            async with Viewer(display.ws_url, VIDEO) as v:
                await v.next_text()
                await v.frames(1)
                for bad, exc in [
                    (np.zeros((H, W), np.uint8), ValueError),
                    (np.zeros((H, W, 3), np.float64), TypeError),
                    (np.zeros((0, 0, 4), np.uint8), ValueError),
                    (make_card()[::-1], ValueError),
                    (object(), TypeError),
                ]:
                    with pytest.raises(exc):
                        display.publish(bad)
                # A size change mid-stream: the viewer is told, and gets the new size.
                big = make_card(640, 480)
                display.publish(big)
                chunks = await v.frames(1)
                assert v.config is not None and (v.config["width"], v.config["height"]) == (
                    640,
                    480,
                )
                assert (chunks[-1][0]["width"], chunks[-1][0]["height"]) == (640, 480)
                assert chunks[-1][0]["keyframe"]
        finally:
            await display.aclose()
        with pytest.raises(framecast.ClosedError):
            display.publish(make_card())

    run(main())


def test_hub_with_several_streams_and_pixel_ratio_tags():
    async def main():
        with framecast.serve_server(port=0) as server:
            a = server.add_stream("a", W, H)
            b = server.add_stream("b", 160, 120, transport="image")
            assert sorted(server.streams) == ["a", "b"]
            a.publish(make_card(), pixel_ratio=2.0, color="display-p3")
            b.publish(make_card(160, 120))
            async with Viewer(a.ws_url, VIDEO) as va, Viewer(b.ws_url, VIDEO) as vb:
                ca = await va.next_text()
                assert ca["transport"] == "webcodecs" and ca["pixel_ratio"] == 2.0
                assert ca["color"]["primaries"] == "display-p3"
                assert (await vb.next_text())["transport"] == "image"
                ((ha, _),) = await va.frames(1)
                assert ha["pixel_ratio"] == 2.0
                ((hb, _),) = await vb.frames(1)
                assert (hb["width"], hb["height"]) == (160, 120)
            with pytest.raises(ValueError, match="already exists"):
                server.add_stream("a", W, H)

    run(main())


def test_port_in_use_is_an_os_error():
    with framecast.serve_server(port=0) as s, pytest.raises(OSError, match="cannot listen"):
        framecast.serve(W, H, port=s.port)


def test_metrics_endpoint_json_matches_metrics():
    async def main():
        display = framecast.serve(W, H, port=0)
        display.publish(make_card())
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", display.port)
            writer.write(b"GET /streams HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            body = (await reader.read()).split(b"\r\n\r\n", 1)[1]
            streams = json.loads(body)
            assert streams[0]["name"] == "default" and streams[0]["width"] == W
        finally:
            await display.aclose()

    run(main())


def test_congestion_control_is_on_by_default_and_adaptive_false_turns_it_off():
    async def main():
        for adaptive in (True, False):
            display = framecast.serve(W, H, port=0, bitrate=2_000_000, adaptive=adaptive)
            pub = asyncio.create_task(publishing(display))
            try:
                async with Viewer(display.ws_url) as v:
                    await v.next_text()
                    await v.frames(10)
                    m = display.metrics()
            finally:
                pub.cancel()
                await display.aclose()
            viewer, group = m["viewers"][0], m["groups"][0]
            # A loopback viewer that keeps up: full quality either way.
            assert group["target_bitrate"] == 2_000_000 and group["target_fps"] == 30
            if adaptive:
                cc = viewer["congestion"]
                assert cc["state"] == "full" and cc["target_bitrate"] == 2_000_000, cc
                assert cc["window"] >= 2, cc
            else:
                assert "congestion" not in viewer, viewer

    run(main())
