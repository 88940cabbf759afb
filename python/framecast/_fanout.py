"""Fan-out: :class:`MoqPublisher`, a stream published to a Media over QUIC relay."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self

    from . import _native

__all__ = ["MoqPublisher"]


class MoqPublisher:
    """A stream's H.264 published to a MoQ relay, made by :meth:`Display.publish_moq`.

    The broadcast carries the hang catalog and one H.264 track (a MoQ group per IDR).
    Publishing never slows the local viewers; a relay that goes away is redialled with a
    backoff (1 s, doubling to 5 s) for as long as the publisher runs. Use it as a context
    manager, or call :meth:`stop`.
    """

    def __init__(self, native: _native.MoqPublisher):
        self._native = native

    @property
    def state(self) -> str:
        """``connecting``, ``connected``, ``disconnected (reconnecting with backoff)``,
        ``migrating (relay GOAWAY)`` or ``stopped``."""
        return self._native.state

    @property
    def url(self) -> str:
        """The relay URL it publishes to (its last segment names the broadcast)."""
        return self._native.url

    @property
    def frames(self) -> int:
        """Access units written to the broadcast so far."""
        return self._native.frames

    def wait_connected(self, timeout: float = 10.0) -> bool:
        """Wait up to ``timeout`` seconds for the relay session; True once connected."""
        return self._native.wait_connected(timeout)

    def stop(self) -> None:
        """End the broadcast (subscribers see it end) and leave the stream. Idempotent."""
        self._native.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"MoqPublisher({self.url!r}, state={self.state!r})"
