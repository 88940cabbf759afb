"""framecast.Encoder, Writer and vtenc.VtEncoder: decode what is encoded (PyAV) and compare
pixels; check the bitstream contract on the bytes."""

from __future__ import annotations

import struct

import av
import numpy as np
import pytest
from conftest import (
    H,
    W,
    assert_blocks,
    decode_h264,
    make_card,
    nal_types,
    picture_rgb,
    psnr,
    rgb_to_nv12,
    sps_of,
)

import framecast
from framecast.vtenc import VtEncoder


def annexb(packets) -> bytes:
    return b"".join(p.data for p in packets if isinstance(p, framecast.EncodedPacket))


def test_first_packet_is_an_idr_with_parameter_sets_and_the_codec_string_is_the_sps():
    enc = framecast.Encoder(W, H, fps=30)
    first = enc.encode(make_card())
    assert len(first) == 1, "synchronous: one packet per frame"
    p = first[0]
    assert p.is_keyframe and not p.is_codec_config
    assert nal_types(p.data)[:3] == [7, 8, 5], nal_types(p.data)
    sps = sps_of(p.data)
    assert p.codec_string == enc.codec_string == f"avc1.{sps[1]:02X}{sps[2]:02X}{sps[3]:02X}"
    assert (p.codec, p.packet_format, p.token) == ("h264", "annexb", 0)
    second = enc.encode(make_card(t=1))[0]
    assert not second.is_keyframe and 5 not in nal_types(second.data)


def test_decoded_pixels_match_the_input():
    enc = framecast.Encoder(W, H, fps=30, bitrate=2_000_000)
    frames = [make_card(t=t) for t in range(10)]
    packets = [p for f in frames for p in enc.encode(f)] + enc.flush()
    decoded = decode_h264(annexb(packets))
    assert len(decoded) == len(frames)
    for got, want in zip(decoded, frames):
        assert got.shape == want.shape
        assert_blocks(got)
        assert psnr(got, want) >= 38, psnr(got, want)


@pytest.mark.parametrize("fmt", ["rgba", "bgra", "f16", "f32", "nv12", "padded"])
def test_every_input_format_decodes_to_the_same_picture(fmt):
    rgb = make_card()
    if fmt == "rgba":
        frame, kw = np.dstack([rgb, np.full((H, W), 255, np.uint8)]), {}
    elif fmt == "bgra":
        frame, kw = (
            np.dstack([rgb[..., ::-1], np.full((H, W), 255, np.uint8)]),
            {"pixel_format": "bgra"},
        )
    elif fmt in ("f16", "f32"):
        dtype = np.float16 if fmt == "f16" else np.float32
        frame, kw = (np.dstack([rgb, np.full((H, W), 255, np.uint8)]) / 255).astype(dtype), {}
    elif fmt == "nv12":
        # NV12 made here (BT.709 limited, as framecast signals).
        frame, kw = rgb_to_nv12(rgb), {"pixel_format": "nv12"}
    else:  # a cropped view with padded rows
        big = np.zeros((H + 20, W + 64, 3), np.uint8)
        big[10 : 10 + H, 32 : 32 + W] = rgb
        frame, kw = big[10 : 10 + H, 32 : 32 + W], {}
    enc = framecast.Encoder(W, H)
    got = decode_h264(annexb(enc.encode(frame, **kw) + enc.flush()))[0]
    assert_blocks(got, tol=8 if fmt == "f16" or fmt == "nv12" else 6)


def test_pts_and_tokens_round_trip():
    enc = framecast.Encoder(W, H, fps=25)
    pts = [0, 40_000_000, 80_000_000, 200_000_000]
    out = [p for i, t in enumerate(pts) for p in enc.encode(make_card(t=i), pts_ns=t)]
    assert [p.pts_ns for p in out] == pts
    assert [p.dts_ns for p in out] == pts
    assert [p.token for p in out] == [0, 1, 2, 3]
    assert all(p.duration_ns == 40_000_000 for p in out)
    # Without pts_ns: frame index / fps.
    auto = framecast.Encoder(W, H, fps=50)
    assert [auto.encode(make_card())[0].pts_ns for _ in range(3)] == [0, 20_000_000, 40_000_000]


def test_forced_keyframes_land_on_that_frame():
    enc = framecast.Encoder(W, H, gop=1000)
    keys = [enc.encode(make_card(t=i), force_keyframe=(i == 5))[0].is_keyframe for i in range(8)]
    assert keys == [True, False, False, False, False, True, False, False]


@pytest.mark.parametrize("policy", ["drop_new", "drop_old"])
def test_pipelined_drops_are_reported_never_silent(policy):
    # 40 NV12 1080p frames submitted back to back into two slots (one in the encoder, one
    # waiting): submitting is a copy (tens of µs), encoding takes milliseconds, so frames drop:
    # drop_new refuses the newcomer, drop_old replaces the waiting one. Whatever the timing,
    # every token must come back once, as a packet or a drop report with the policy's reason.
    # Whether a given batch drops depends on the scheduler (a starved caller lets the encoder
    # keep up), so batches repeat until one has dropped, to be sure the drop path ran.
    frame = rgb_to_nv12(make_card(1920, 1080))
    reason = "encoder_full" if policy == "drop_new" else "superseded"
    dropped = 0
    for _batch in range(10):
        enc = framecast.Encoder(1920, 1080, max_in_flight_frames=2, drop_policy=policy)
        events = [e for _ in range(40) for e in enc.encode(frame, pixel_format="nv12")]
        events += enc.flush()  # drop reports keep submission order: some come only now
        assert sorted(e.token for e in events) == list(range(40)), "each frame once, never lost"
        drops = [e for e in events if isinstance(e, framecast.DroppedFrame)]
        assert {d.reason for d in drops} <= {reason}
        packets = [e for e in events if isinstance(e, framecast.EncodedPacket)]
        assert len(decode_h264(annexb(packets))) == len(packets)
        dropped += len(drops)
        if dropped:
            break
    assert dropped, "10 batches of 40 frames into 2 slots and nothing dropped"


def test_pipelined_block_keeps_every_frame_in_order():
    enc = framecast.Encoder(W, H, max_in_flight_frames=3, drop_policy="block")
    events = [e for t in range(20) for e in enc.encode(make_card(t=t))] + enc.flush()
    assert [e.token for e in events] == list(range(20))
    assert all(isinstance(e, framecast.EncodedPacket) for e in events)


def test_fail_fast_refuses_without_losing_packets():
    # As above: NV12 1080p frames back to back into one slot are refused while it is busy;
    # batches repeat until one was refused (the scheduler decides how often that happens).
    frame = rgb_to_nv12(make_card(1920, 1080))
    refused = 0
    for _batch in range(10):
        enc = framecast.Encoder(1920, 1080, max_in_flight_frames=1, drop_policy="fail_fast")
        taken, events = 0, []
        for _ in range(30):
            try:
                events += enc.encode(frame, pixel_format="nv12")
                taken += 1
            except BlockingIOError as e:
                assert "fail_fast" in str(e)
                refused += 1
        events += enc.flush()
        assert [e.token for e in events] == list(range(taken)), "no accepted frame is lost"
        assert all(isinstance(e, framecast.EncodedPacket) for e in events)
        if refused:
            break
    assert refused, "10 batches of 30 frames into 1 slot and nothing was refused"


def test_avcc_packets_and_extradata():
    enc = framecast.Encoder(W, H, packet_format="avcc")
    packets = [p for t in range(3) for p in enc.encode(make_card(t=t))] + enc.flush()
    avcc = enc.extradata
    assert avcc[0] == 1 and avcc[1:4] == sps_of(b"\x00\x00\x01" + avcc[8:])[1:4]
    for p in packets:
        assert p.packet_format == "avcc"
        # Length-prefixed NAL units that exactly fill the packet.
        i = 0
        while i < len(p.data):
            (n,) = struct.unpack_from(">I", p.data, i)
            i += 4 + n
        assert i == len(p.data)
    codec = av.CodecContext.create("h264", "r")
    codec.extradata = avcc
    frames = []
    for p in packets:
        frames += codec.decode(av.Packet(p.data))
    frames += codec.decode(None)
    assert len(frames) == 3


def test_writer_mp4_and_h264(tmp_path):
    for name in ("a.mp4", "b.h264"):
        path = tmp_path / name
        with framecast.Writer(path, W, H, fps=30) as w:
            for t in range(15):
                w.write(make_card(t=t))
            assert not path.exists(), "written aside until close"
        assert w.summary["frames"] == 15 and w.summary["bytes"] == path.stat().st_size
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            assert (s.codec_context.width, s.codec_context.height) == (W, H)
            frames = [picture_rgb(f) for f in c.decode(video=0)]
        assert len(frames) == 15
        for t in (0, 14):
            assert_blocks(frames[t])
            assert psnr(frames[t], make_card(t=t)) >= 38


def test_writer_leaves_nothing_when_its_block_raises(tmp_path):
    path = tmp_path / "a.mp4"
    with pytest.raises(KeyError), framecast.Writer(path, W, H) as w:
        w.write(make_card())
        raise KeyError("the renderer failed")
    assert list(tmp_path.iterdir()) == [], "no file and no temporary file"
    with pytest.raises(framecast.ClosedError):
        w.write(make_card())


def test_writer_refuses_unknown_extensions_and_empty_files(tmp_path):
    with pytest.raises(ValueError, match="unknown extension"):
        framecast.Writer(tmp_path / "x.avi", W, H)
    w = framecast.Writer(tmp_path / "empty.mp4", W, H)
    with pytest.raises(framecast.EncoderError, match="no frames"):
        w.close()
    assert not (tmp_path / "empty.mp4").exists()


def test_vtenc_api_runs_unchanged():
    enc = VtEncoder(W, H, fps=30, bitrate=2_000_000)
    yuv = rgb_to_nv12(make_card())
    first = enc.encode(yuv, force_idr=True)
    assert isinstance(first, bytes) and nal_types(first)[:3] == [7, 8, 5]
    assert enc.codec_string.startswith("avc1.")
    rest = b"".join(enc.encode(yuv) for _ in range(4)) + enc.flush()
    assert len(decode_h264(first + rest)) == 5
    enc.encode(yuv)  # still usable after flush, as pdum.vtenc's
    enc.close()
    with pytest.raises(RuntimeError, match="closed"):
        enc.encode(yuv)


def test_bad_input_is_a_clear_exception():
    enc = framecast.Encoder(W, H)
    for bad, exc, text in [
        (np.zeros((H, W), np.uint8), ValueError, "unsupported frame"),
        (np.zeros((H, W, 3), np.int32), TypeError, "uint8"),
        (np.zeros((H // 2, W // 2, 3), np.uint8), ValueError, "make a new Encoder"),
        (make_card()[:, ::2], ValueError, "ascontiguousarray"),
        ("frame", TypeError, "not a str"),
        (np.zeros((0, W, 3), np.uint8), ValueError, "empty"),
    ]:
        with pytest.raises(exc, match=text):
            enc.encode(bad)
    with pytest.raises(ValueError, match="drop_policy"):
        framecast.Encoder(W, H, max_in_flight_frames=1, drop_policy="sometimes")
    with pytest.raises(ValueError, match="unknown encoder backend"):
        framecast.Encoder(W, H, backend="magic")
    enc.close()
    with pytest.raises(framecast.ClosedError):
        enc.encode(make_card())


def test_buffer_protocol_objects_encode_like_arrays():
    card = make_card()
    enc = framecast.Encoder(W, H, bitrate=2_000_000)
    packets = enc.encode(memoryview(card)) + enc.flush()
    (got,) = decode_h264(annexb(packets))
    assert_blocks(got)
    assert psnr(got, card) >= 38


class _CudaArray:
    """Looks like a CuPy / Numba device array."""

    @property
    def __cuda_array_interface__(self):
        return {"shape": (H, W, 4), "typestr": "|u1", "data": (0, False), "version": 3}


class _DlpackOnGpu:
    """Looks like a torch / JAX tensor on a CUDA device (DLPack device type 2)."""

    def __dlpack_device__(self):
        return (2, 0)


@pytest.mark.parametrize("frame", [_CudaArray(), _DlpackOnGpu()], ids=["cuda-array", "dlpack"])
def test_device_arrays_without_cuda_name_the_host_memory_fix(frame):
    if framecast.doctor()["cuda"].get("devices"):
        pytest.skip("this machine has CUDA: test_cuda.py converts device arrays on it")
    enc = framecast.Encoder(W, H)
    with pytest.raises(RuntimeError, match=r"no CUDA driver.*cupy\.asnumpy"):
        enc.encode(frame)
    assert enc.encode(make_card())[0].is_keyframe, "the encoder is still usable"


def random_frames(n: int):
    """Random shapes, dtypes, strides, byte orders and pixel formats."""
    rng = np.random.default_rng(7)
    dtypes = [np.uint8, np.int8, np.uint16, np.float16, np.float32, np.float64, ">f4", bool]
    formats = [None, "rgb", "rgba", "bgra", "nv12", "yuv"]
    for _ in range(n):
        ndim = int(rng.integers(0, 5))
        shape = tuple(int(x) for x in rng.integers(0, 6, ndim)) if ndim else ()
        if rng.random() < 0.3:
            shape = (H, W, int(rng.integers(1, 6)))[: max(ndim, 1)]
        a = np.zeros(shape, dtype=dtypes[int(rng.integers(0, len(dtypes)))])
        if a.ndim >= 2 and rng.random() < 0.3:
            a = a[::2] if rng.random() < 0.5 else a[:, ::-1]
        yield a, formats[int(rng.integers(0, len(formats)))]


@pytest.mark.parametrize("target", ["Encoder.encode", "Display.publish"])
def test_random_input_raises_python_errors_and_never_crashes(target):
    """Each call is a Python exception naming the problem, or a frame; then all still works."""
    if target == "Encoder.encode":
        obj = framecast.Encoder(W, H)
        call = obj.encode
    else:
        obj = framecast.serve(W, H, port=0)
        call = obj.publish
    outcomes = set()
    for a, fmt in random_frames(300):
        try:
            call(a, pixel_format=fmt)
            outcomes.add("accepted")
        except (ValueError, TypeError) as e:
            assert str(e), "errors say what is wrong"
            outcomes.add(type(e).__name__)
    assert {"ValueError", "TypeError"} <= outcomes
    call(make_card())  # still works
    obj.close()
