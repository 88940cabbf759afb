"""framecast.Encoder(remote=...): the same contract, encoded by a real VTR1 server
(``framecast remote serve``, the CLI binary) over TCP. Decode what comes back and compare."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import H, W, assert_blocks, decode_h264, make_card, nal_types, psnr, sps_of

import framecast

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "remote-test-secret"


def _binary() -> str:
    explicit = os.environ.get("FRAMECAST_BIN")
    path = Path(explicit) if explicit else ROOT / "target" / "debug" / "framecast"
    if not path.is_file():
        if explicit:
            pytest.fail(f"FRAMECAST_BIN={explicit} does not exist")
        pytest.skip(f"no framecast binary at {path} (cargo build -p framecast-cli)")
    return str(path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server() -> tuple[subprocess.Popen, str]:
    """A `framecast remote serve` process with TOKEN, once it accepts connections."""
    port = _free_port()
    proc = subprocess.Popen(
        [_binary(), "remote", "serve", "--listen", f"127.0.0.1:{port}", "--token-env", "TOK"],
        env={**os.environ, "TOK": TOKEN},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"remote server did not start: {proc.stderr.read().decode()}")
            time.sleep(0.1)


@pytest.fixture(scope="module")
def server():
    proc, addr = _start_server()
    yield addr
    proc.terminate()
    proc.wait(10)


def test_remote_encode_decodes_to_the_input(server):
    enc = framecast.Encoder(W, H, fps=30, bitrate=2_000_000, remote=server, token=TOKEN)
    assert enc.backend == f"remote:{server}"
    frames = [make_card(t=t) for t in range(8)]
    packets = []
    for i, f in enumerate(frames):
        got = enc.encode(f, pts_ns=1_000 + i * 33_333_333)
        assert len(got) == 1, "synchronous mode: one packet per frame"
        packets += got
    packets += enc.flush()
    assert [p.token for p in packets] == list(range(8))
    assert [p.pts_ns for p in packets] == [1_000 + i * 33_333_333 for i in range(8)]
    first = packets[0]
    assert first.is_keyframe and {7, 8, 5} <= set(nal_types(first.data))
    sps = sps_of(first.data)
    assert enc.codec_string == first.codec_string == f"avc1.{sps[1]:02X}{sps[2]:02X}{sps[3]:02X}"
    assert enc.extradata is not None and enc.extradata[0] == 1, "avcC version 1"
    decoded = decode_h264(b"".join(p.data for p in packets))
    assert len(decoded) == len(frames)
    for got, want in zip(decoded, frames):
        assert_blocks(got)
        assert psnr(got, want) >= 38
    enc.close()


def test_remote_pipelined_keeps_order_and_forced_keyframes(server):
    enc = framecast.Encoder(
        W, H, gop=1000, remote=server, token=TOKEN, max_in_flight_frames=3, compression="none"
    )
    packets = []
    for i in range(12):
        packets += enc.encode(make_card(t=i), force_keyframe=(i == 6))
    packets += enc.flush()
    assert [p.token for p in packets] == list(range(12))
    assert [p.token for p in packets if p.is_keyframe] == [0, 6]
    assert len(decode_h264(b"".join(p.data for p in packets))) == 12


def test_a_wrong_token_is_a_remote_error(server):
    with pytest.raises(framecast.RemoteError, match="(?i)auth|token"):
        enc = framecast.Encoder(W, H, remote=server, token="wrong")
        enc.encode(make_card())


def test_an_unreachable_server_is_a_remote_error():
    with pytest.raises(framecast.RemoteError):
        enc = framecast.Encoder(W, H, remote=f"127.0.0.1:{_free_port()}", timeout=2)
        enc.encode(make_card())


def test_a_pool_passes_over_dead_and_refusing_servers(server):
    """A list of servers is a pool: the session goes to the first one that takes it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    # The fixture's server refuses a wrong token; the same server with the right one takes it.
    # As a list, and as one comma-separated string.
    for remote in ([dead, server], f"{dead},{server}"):
        enc = framecast.Encoder(W, H, fps=30, remote=remote, token=TOKEN)
        assert enc.backend == f"remote:{server}"
        frames = [make_card(t=t) for t in range(3)]
        packets = [p for i, f in enumerate(frames) for p in enc.encode(f, pts_ns=i * 33_333_333)]
        packets += enc.flush()
        decoded = decode_h264(b"".join(p.data for p in packets))
        assert len(decoded) == 3
        assert psnr(decoded[-1], frames[-1]) > 30
    # The dead address may come back, so the pool goes round three times (the default).
    with pytest.raises(
        framecast.RemoteError, match=r"no VTR1 server took the session \(6 attempts\)"
    ) as e:
        framecast.Encoder(W, H, remote=[dead, server], token="wrong", timeout=2)
    assert dead in str(e.value) and "authentication failed" in str(e.value)


def test_a_server_lost_mid_stream_is_replaced_without_losing_a_frame(server):
    """The first server of the pool dies mid-stream: the session goes on on the next one,
    with a RuntimeWarning, and every frame's packet comes back once, in order."""
    doomed, first = _start_server()
    try:
        enc = framecast.Encoder(W, H, fps=30, gop=1000, remote=[first, server], token=TOKEN)
        assert enc.backend == f"remote:{first}"
        frames = [make_card(t=t) for t in range(10)]
        packets = []
        for i, f in enumerate(frames[:5]):
            packets += enc.encode(f, pts_ns=i * 33_333_333)
        doomed.kill()
        doomed.wait(10)
        # Frame 5's packet comes from the second server: the move is reported with it.
        with pytest.warns(RuntimeWarning, match=f"lost {first} mid-stream.*resumed on {server}"):
            packets += enc.encode(frames[5], pts_ns=5 * 33_333_333)
        for i, f in enumerate(frames[6:], start=6):
            packets += enc.encode(f, pts_ns=i * 33_333_333)
        packets += enc.flush()
        assert enc.backend == f"remote:{server}"
        assert [p.token for p in packets] == list(range(10))
        # The second server starts its stream with an IDR (gop 1000: no periodic one).
        assert [p.token for p in packets if p.is_keyframe] == [0, 5]
        decoded = decode_h264(b"".join(p.data for p in packets))
        assert len(decoded) == 10
        for got, want in zip(decoded, frames):
            assert psnr(got, want) >= 38
    finally:
        doomed.kill()
        doomed.wait(10)
