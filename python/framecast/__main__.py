"""``python -m framecast doctor``: what this machine can do."""

import json
import sys

from . import doctor


def main(argv: list[str]) -> int:
    if argv[:1] not in (["doctor"], []):
        print("usage: python -m framecast doctor [--json]", file=sys.stderr)
        return 2
    report = doctor()
    if "--json" in argv:
        print(json.dumps(report, indent=2))
        return 0
    print(f"framecast {report['version']} on {report['platform']}")
    for b in report["backends"]:
        mark = "ok " if b["available"] else "-- "
        kind = "hardware" if b["hardware"] else "software"
        print(f"  {mark}encoder {b['name']} ({kind}): {b['detail']}")
    if "openh264_assembly" in report:
        print(f"  openh264 assembly: {report['openh264_assembly']}")
    cuda = report.get("cuda", {})
    print(f"  CUDA driver: {cuda.get('driver', 'unknown')}")
    if "nvrtc" in cuda:
        print(f"  CUDA NVRTC: {cuda['nvrtc']}")
    for dev in cuda.get("devices", []):
        print(f"  CUDA device {dev}")
    print(f"  wgpu: {report.get('wgpu', 'unknown')}")
    print("publish() paths:")
    for kind, path in report["publish_paths"].items():
        print(f"  {kind}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
