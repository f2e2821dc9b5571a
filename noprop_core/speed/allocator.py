"""Keep freed CPU memory in the process for reuse, instead of handing it back to the system.

PyTorch's CPU tensors come from the C library's malloc. With glibc's defaults, large tensors
are mapped fresh from the system for every step and unmapped when freed, and every 4 kB page
of a fresh mapping costs a page fault on first touch. A stacked step of the paper's MNIST blocks
holds tensors of 128 MB (ten blocks' activations, (128, 320, 28, 28) in float32), so without
this it spends most of its time in the kernel (docs/measurements.md, "Measured on a 2-core CPU";
tests/speed/test_allocator.py counts the page faults).

``keep_freed_memory`` sets glibc's malloc (``mallopt``) to serve large requests from the heap
instead of fresh mappings, to return freed memory to the system only above 2 GB, and to grow
the heap in steps of 256 MB. The cost: the process keeps its peak memory until it exits, as
PyTorch's CUDA caching allocator does on a GPU. Elsewhere (another C library, macOS, Windows)
it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

# glibc's malloc.h parameters:
M_TRIM_THRESHOLD = -1  # free memory at the heap's top above this is returned to the system
M_TOP_PAD = -2  # extra memory taken from the system whenever the heap grows
M_MMAP_MAX = -4  # how many allocations may be served by mmap
TOP_PAD_BYTES = 256 * 2**20
TRIM_THRESHOLD_BYTES = 2**31 - 1  # the largest an int can say


@functools.cache
def keep_freed_memory() -> bool:
    """Switch glibc's malloc to keep freed memory (once per process); whether it applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version"):  # another C library (musl, …): other malloc options
        return False
    # mallopt returns 1 on success. All three are needed: with mmap off alone, freed memory at
    # the heap's top is still trimmed and faulted in again; without the top pad the heap grows
    # in small steps, each faulted in.
    settings = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES), (M_TOP_PAD, TOP_PAD_BYTES))
    return all(libc.mallopt(parameter, value) == 1 for parameter, value in settings)
