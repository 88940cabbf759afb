"""Make NVRTC findable for the CUDA frame path.

framecast loads the CUDA driver and NVRTC at run time. NVRTC often comes from pip
(``nvidia-cuda-nvrtc``, a dependency of CuPy, PyTorch and JAX wheels) into a folder that is not
on the loader's path; the array library finds it, and framecast would not. When such a copy
exists, it is loaded here (``RTLD_GLOBAL``), so framecast's ``dlopen("libnvrtc.so.N")`` finds
it by name. Nothing happens where none is installed, or where the system already has one.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys


def preload_nvrtc() -> str | None:
    """Load the newest pip-installed ``libnvrtc.so.*``; returns its path, or None."""
    if not sys.platform.startswith("linux"):
        return None
    found: list[str] = []
    for entry in sys.path:
        base = os.path.join(entry or ".", "nvidia")
        if os.path.isdir(base):
            found += glob.glob(os.path.join(base, "*", "lib", "libnvrtc.so.*"))
    # libnvrtc.so.13 before .12; skip the builtins library and versioned duplicates.
    found = sorted(
        (p for p in found if os.path.basename(p).count(".") == 2),
        key=lambda p: int(p.rsplit(".", 1)[1]) if p.rsplit(".", 1)[1].isdigit() else 0,
        reverse=True,
    )
    for path in found:
        try:
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            return path
        except OSError:
            continue
    return None
