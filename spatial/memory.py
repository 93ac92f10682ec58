"""Keep freed memory in the process for reuse, rather than handing it back to the OS.

Raster jobs allocate and free arrays of 8–64 MB per block, hundreds of times. With
glibc's defaults each such array is a fresh ``mmap`` that the kernel must fault in and
zero page by page, and the free returns it at once: on the NDVI-change + zonal job that
kernel work was a third of a worker's time (1 worker 5.7–8.2 s → 4.6–5.2 s with the
thresholds below; ``bench/raster.py``). Raising glibc's mmap and trim thresholds lets
freed blocks be reused. The cost is that the process keeps up to ``TRIM`` of freed
memory instead of returning it, which peak RSS already counts.

Set ``MALLOC_TRIM_THRESHOLD_`` or ``MALLOC_MMAP_THRESHOLD_`` yourself and this leaves
glibc alone; on other C libraries it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

MMAP = 256 << 20  # arrays below this come from the heap and are reused
TRIM = 1 << 30  # free memory kept at the top of the heap before returning it
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters in glibc's malloc.h
_done = False


def environment() -> dict[str, str]:
    """The same settings as environment variables, for worker processes started later."""
    return {"MALLOC_MMAP_THRESHOLD_": str(MMAP), "MALLOC_TRIM_THRESHOLD_": str(TRIM)}


def reuse_freed_memory() -> bool:
    """Apply the thresholds to this process once; True if glibc accepted them."""
    global _done
    if _done:
        return True
    if any(name in os.environ for name in environment()):
        return False  # the user chose
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return False  # not glibc
    _done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM))
    return _done
