"""framecast: rendered frames to low-latency H.264, live to browsers, to files, and through
remote encoders.

Streaming (pdum.rfb-compatible on the wire; see :mod:`framecast.rfb` for its Python API)::

    import numpy as np, framecast
    display = framecast.serve(1280, 720)            # http://127.0.0.1:8765, returns at once
    frame = np.zeros((720, 1280, 3), np.uint8)
    display.publish(frame)                          # latest wins; input via poll_events()
    display.close()

Encoding::

    enc = framecast.Encoder(1280, 720, fps=30)
    packets = enc.encode(frame, pts_ns=0)           # [EncodedPacket], Annex B, SPS/PPS in band
    packets += enc.flush()

    with framecast.Writer("out.mp4", 1280, 720) as w:
        w.write(frame)

``framecast.vtenc.VtEncoder`` mirrors pdum.vtenc; ``python -m framecast doctor`` says what
this machine can do.
"""

from ._cudalibs import preload_nvrtc as _preload_nvrtc
from ._display import Display, Server, serve, serve_server
from ._encode import DroppedFrame, EncodedPacket, Encoder, Writer
from ._fanout import MoqPublisher, WhipPublisher
from ._native import ClosedError, CudaConverter, EncoderError, RemoteError, __version__, to_nv12
from ._native import doctor as _doctor

_preload_nvrtc()


def doctor() -> dict:
    """What this build and machine can do: encoder backends and their availability,
    OpenH264's assembly, the CUDA driver, NVRTC and devices, and which path
    :meth:`Display.publish` takes for each kind of frame."""
    return _doctor()


__all__ = [
    "ClosedError",
    "CudaConverter",
    "Display",
    "DroppedFrame",
    "EncodedPacket",
    "Encoder",
    "EncoderError",
    "MoqPublisher",
    "RemoteError",
    "Server",
    "WhipPublisher",
    "Writer",
    "__version__",
    "doctor",
    "serve",
    "serve_server",
    "to_nv12",
]
