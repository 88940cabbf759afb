"""pdum.rfb 0.3's quick start ("How it works" in its README), filled in: one stream, your
loop, input drained with poll_events(). Runs unchanged with ``import pdum.rfb as rfb``.

    python quickstart.py [--port 8765]      # then open http://127.0.0.1:8765
"""

import argparse
import asyncio
import json

import numpy as np

import framecast.rfb as rfb  # noqa: PLR0402 (pdum.rfb's own import line, one word changed)

W, H = 640, 360
QUADRANTS = [(220, 40, 40), (40, 200, 40), (40, 40, 220), (230, 230, 230)]


def initial_state():
    return {"clicks": 0}


def running(state):
    return True


def update(state, ev):
    print(json.dumps(ev.event), flush=True)  # the test reads the events from stdout
    if ev.event.get("type") == "pointer_down":
        state["clicks"] += 1
    return state


def render(state):
    frame = np.empty((H, W, 3), np.uint8)
    for i, rgb in enumerate(QUADRANTS):
        y, x = (i // 2) * H // 2, (i % 2) * W // 2
        frame[y : y + H // 2, x : x + W // 2] = rgb
    return frame


async def main(port):
    display = await rfb.serve(W, H, port=port)  # WS server starts in the background
    state = initial_state()
    try:
        while running(state):
            for ev in display.poll_events():  # input from every viewer
                state = update(state, ev)
            display.publish(render(state))  # sync, latest-wins, fans out to all viewers
            await asyncio.sleep(1 / 30)  # or on-demand — you own the cadence
    finally:
        await display.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    asyncio.run(main(parser.parse_args().port))
