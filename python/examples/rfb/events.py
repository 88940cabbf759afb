"""pdum.rfb 0.3's other input style: ``async for ev in display.events()`` in its own task
while the render loop publishes. Runs unchanged with ``import pdum.rfb as rfb``.

    python events.py [--port 8765]
"""

import argparse
import asyncio
import json

from quickstart import H, W, render

import framecast.rfb as rfb  # noqa: PLR0402 (pdum.rfb's own import line, one word changed)


async def main(port):
    display = await rfb.serve(W, H, port=port)

    async def consume():
        async for ev in display.events():  # wakes when input arrives
            print(json.dumps(ev.event), flush=True)

    consumer = asyncio.create_task(consume())
    try:
        while True:
            display.publish(render(None))
            await asyncio.sleep(1 / 30)
    finally:
        consumer.cancel()
        await display.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    asyncio.run(main(parser.parse_args().port))
