"""pdum.rfb 0.3's multi-stream hub (``serve_server`` + ``add_stream``): two streams on one
port, viewers attach by path (``ws://host:port/camera``, ``/depth``). Runs unchanged with
``import pdum.rfb as rfb``.

    python hub.py [--port 8765]      # then open http://127.0.0.1:8765/camera
"""

import argparse
import asyncio
import json

import numpy as np
from quickstart import H, W, render

import framecast.rfb as rfb  # noqa: PLR0402 (pdum.rfb's own import line, one word changed)


async def main(port):
    server = await rfb.serve_server(port=port)
    cam = server.add_stream("camera", W, H)
    depth = server.add_stream("depth", W // 2, H // 2, has_h264=False)
    try:
        while True:
            for name, display in (("camera", cam), ("depth", depth)):
                for ev in display.poll_events():
                    print(json.dumps({"stream": name, **ev.event}), flush=True)
            frame = render(None)
            cam.publish(frame)
            depth.publish(np.ascontiguousarray(frame[::2, ::2]))
            await asyncio.sleep(1 / 30)
    finally:
        await server.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    asyncio.run(main(parser.parse_args().port))
