#!/usr/bin/env python3
"""A delaying TCP relay: the round trip and jitter of the test network's profiles.

This kernel has tbf and htb but no netem, so the test network (scripts/testnet.sh) limits the
rate with tbf on the server's veth and adds delay here, on the viewers' side of the
bottleneck: the server's TCP connection ends at this relay, so its socket meets the real tbf
queue, and every byte then waits DELAY/2 (plus up to JITTER) before it is passed on, in each
direction, in order. Bytes are read as soon as they arrive (the relay never slows the
server's TCP down; it only holds what is "in flight").

    python3 scripts/net/delay_relay.py --listen 127.0.0.1:9000 --to 10.77.0.1:8765 \\
        --rtt-ms 40 [--jitter-ms 5] [--seed 1] [--source 10.77.0.3]

--source makes the relay's connections to the server come from that address, so a shaper on
the server side can tell two viewers' links apart (scripts/bench/twolinks.sh).

Standard library only; runs until killed.
"""

import argparse
import asyncio
import random
import socket
import time


def split(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host, int(port)


async def pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    delay: float,
    jitter: float,
    rng: random.Random,
) -> None:
    """Copy reader to writer, each chunk delivered `delay` (+ up to `jitter`) after it came,
    never before the chunk ahead of it."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def feed() -> None:
        last = 0.0
        while True:
            try:
                data = await reader.read(1 << 16)
            except ConnectionError:
                data = b""
            last = max(last, time.monotonic() + delay + rng.uniform(0.0, jitter))
            await queue.put((last, data))
            if not data:
                return

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if not data:
                break
            try:
                writer.write(data)
                await writer.drain()
            except ConnectionError:
                break
        writer.close()

    await asyncio.gather(feed(), deliver())


async def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--listen", required=True, help="HOST:PORT to accept viewers on")
    ap.add_argument("--to", required=True, help="HOST:PORT of the server")
    ap.add_argument(
        "--rtt-ms", type=float, default=0.0, help="round trip added (half each way)"
    )
    ap.add_argument(
        "--jitter-ms",
        type=float,
        default=0.0,
        help="extra delay, uniform 0..J, per chunk",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--source", default=None, help="local address of the connections to the server"
    )
    a = ap.parse_args()
    rng = random.Random(a.seed)
    half, jitter = a.rtt_ms / 2e3, a.jitter_ms / 1e3
    up_host, up_port = split(a.to)

    async def client(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(
                up_host,
                up_port,
                local_addr=(a.source, 0) if a.source else None,
            )
        except OSError:
            writer.close()
            return
        for w in (writer, up_writer):
            sock = w.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(
            pipe(reader, up_writer, half, jitter, rng),
            pipe(up_reader, writer, half, jitter, rng),
        )

    host, port = split(a.listen)
    server = await asyncio.start_server(client, host, port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
