"""Fan-out: :class:`MoqPublisher` (a Media over QUIC relay) and :class:`WhipPublisher` (a
WebRTC SFU over WHIP), made by :meth:`Display.publish_moq` and :meth:`Display.publish_whip`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self

    from . import _native

__all__ = ["MoqPublisher", "WhipPublisher"]


class _Publisher:
    """What both publishers share: state, counters, waiting and stopping. Publishing never
    slows the local viewers; a session that is lost is set up again with a backoff (1 s,
    doubling to 5 s) for as long as the publisher runs. Use it as a context manager, or call
    :meth:`stop`."""

    def __init__(self, native: _native.Publisher):
        self._native = native

    @property
    def state(self) -> str:
        """``connecting``, ``connected``, ``disconnected (reconnecting with backoff)``,
        ``migrating (GOAWAY)`` or ``stopped``."""
        return self._native.state

    @property
    def url(self) -> str:
        """Where it publishes."""
        return self._native.url

    @property
    def frames(self) -> int:
        """Access units handed to the relay or SFU so far."""
        return self._native.frames

    def wait_connected(self, timeout: float = 10.0) -> bool:
        """Wait up to ``timeout`` seconds for the session; True once connected."""
        return self._native.wait_connected(timeout)

    def stop(self) -> None:
        """End the session and leave the stream. Idempotent."""
        self._native.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, state={self.state!r})"


class MoqPublisher(_Publisher):
    """A stream's H.264 published to a MoQ relay: the hang catalog and one H.264 track, a
    MoQ group per IDR."""


class WhipPublisher(_Publisher):
    """A stream's H.264 pushed to a WebRTC SFU over WHIP: one sendonly video track; the SFU's
    keyframe requests (PLI/FIR) reach the encoder and its bandwidth estimate caps the rate."""

    @property
    def estimate_bps(self) -> int | None:
        """The SFU's latest bandwidth estimate (TWCC or REMB), bits/s; None until it gives one."""
        return self._native.estimate_bps
